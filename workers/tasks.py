"""The Celery tasks: thin wrappers that own a transaction around one domain call.

Tasks take ids, never objects; they never touch Flask. Each is safe to run more than once
for the same arguments (delivery is at least once: ``acks_late``, the outbox sweeper).
``register_tasks`` binds them to a Celery app and to the per-process resources the
composition root (``workers/celery_app.py``) provides, so that nothing here is built at
import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from celery import Celery
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.classifier.model import Classifier
from service.logs import bind_request_id, request_id_var
from service.moderation.active import ClassifierProvider
from service.moderation.classify import classify_comment, classify_comments, log_verdict
from service.moderation.deliveries import DeliveryPolicy, claim, due_pairs, purge_finished, settle
from service.moderation.deliveries import claim_due as claim_due_deliveries
from service.moderation.errors import NotFound
from service.moderation.outbox import claim_due, purge_done
from service.moderation.registry import create_job, get_job
from service.moderation.rescore import rescore_batch
from service.moderation.retrain import (
    RetrainFailed,
    RetrainOptions,
    RetrainResult,
    new_labels_since_last_version,
    run_retrain,
)
from service.queue import (
    CLASSIFY_COMMENT,
    CLASSIFY_COMMENTS,
    DELIVER_WEBHOOKS,
    RESCORE,
    RETRAIN,
    SCHEDULED_RETRAIN,
    SWEEP_OUTBOX,
    SWEEP_WEBHOOKS,
    TaskQueue,
    send_deliveries,
)
from service.settings import Settings
from service.webhooks.sender import Outcome, send

log = logging.getLogger(__name__)

#: Retries of a task whose database is unreachable; with the backoff below they span about
#: a quarter of an hour, after which the outbox sweeper takes over.
MAX_DATABASE_RETRIES = 10
MAX_BACKOFF_SECONDS = 300.0
#: Outbox rows one sweep claims at most; the next sweep takes the rest.
SWEEP_LIMIT = 500
#: The oldest outbox rows one sweep looks at to delete those long done (one statement, a
#: bounded read): at the default interval up to 20,000 a minute, far more than the service
#: accepts, so a backlog shrinks.
PURGE_LIMIT = 10_000


class TaskMetrics(Protocol):
    """What the tasks count (``service.metrics.WorkerMetrics``)."""

    def verdict(self, decision: str, latency_ms: float) -> None: ...

    def outbox_requeued(self, count: int) -> None: ...


class TaskResources(Protocol):
    """What the tasks need from the process they run in (``workers.celery_app.WorkerProcess``)."""

    @property
    def settings(self) -> Settings: ...

    def sessions(self) -> sessionmaker[Session]: ...

    def classifier(self) -> ClassifierProvider: ...

    def queue(self) -> TaskQueue: ...

    def metrics(self) -> TaskMetrics: ...


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or dropped the connection
    (worth retrying later), as opposed to a bug or bad data (not worth it)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with jitter: about 1, 2, 4 ... seconds, at most 300.

    The jitter (50-100 % of the step) keeps a fleet of workers that lost the database
    together from hammering it together when it returns.
    """
    step = min(2.0**retries, MAX_BACKOFF_SECONDS)
    return step * random.uniform(0.5, 1.0)


def webhook_lease(settings: Settings) -> dt.timedelta:
    """How long a new or claimed webhook delivery is left to its task before the sweeper
    sends it (``Settings.webhook_lease_seconds``)."""
    return dt.timedelta(seconds=settings.webhook_lease_seconds)


def classify(resources: TaskResources, comment_id: str) -> str:
    """Classify one comment in one transaction; the decision, or ``"unchanged"`` when the
    comment was no longer pending (already classified, moderated, or deleted). The
    verdict's webhook deliveries are enqueued after the commit, and the verdict counted
    (its latency, by decision)."""
    with resources.sessions().begin() as session:
        verdict = classify_comment(
            session,
            comment_id=uuid.UUID(comment_id),
            classifier=resources.classifier(),
            webhook_lease=webhook_lease(resources.settings),
        )
        decision = verdict.decision if verdict is not None else "unchanged"
    if verdict is None:
        log.info("comment %s is no longer pending; nothing to do", comment_id)
    else:
        send_deliveries(resources.queue(), due_pairs(verdict.deliveries))
        resources.metrics().verdict(verdict.decision.value, verdict.latency_ms)
    return decision


class BatchInterrupted(Exception):
    """The database became unreachable in the middle of a batch: ``remaining`` (the
    comment it failed on and those after it) are still to be classified."""

    def __init__(self, cause: DBAPIError, remaining: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.remaining = remaining


def classify_batch(
    resources: TaskResources, comment_ids: list[str], request_ids: list[str | None]
) -> dict[str, int]:
    """Classify a batch of comments in one transaction
    (:func:`~service.moderation.classify.classify_comments`); how many got each decision
    (``"unchanged"``: no longer pending; ``"failed"``: an error). Each verdict's log line
    carries the id of the HTTP request that accepted its comment; each is counted in the
    metrics (its latency, by decision) once the batch is committed.

    When the batch fails for any reason but an unreachable database (a bug, bad data, a
    malformed id), nothing of it was written, and its comments are classified again one
    at a time (:func:`classify_one_by_one`), so that one bad comment costs only itself.
    A database that cannot be reached raises :class:`BatchInterrupted` with every comment
    left, for the task to retry. The verdicts' webhook deliveries are enqueued after the
    commit, in one message.
    """
    if len(request_ids) != len(comment_ids):
        request_ids = [None] * len(comment_ids)
    try:
        ids = [uuid.UUID(comment_id) for comment_id in comment_ids]
        with resources.sessions().begin() as session:
            decided = classify_comments(
                session,
                comment_ids=ids,
                classifier=resources.classifier(),
                webhook_lease=webhook_lease(resources.settings),
            )
    except Exception as exc:
        if isinstance(exc, DBAPIError) and database_unreachable(exc):
            raise BatchInterrupted(exc, len(comment_ids)) from exc
        log.warning(
            "classifying a batch of %d comment(s) failed; classifying them one at a time",
            len(comment_ids),
            exc_info=True,
        )
        return classify_one_by_one(resources, comment_ids, request_ids)
    send_deliveries(
        resources.queue(), due_pairs([d for verdict in decided for d in verdict.deliveries])
    )
    request_of: dict[uuid.UUID, str | None] = {}
    for comment_id, request_id in zip(ids, request_ids, strict=True):
        request_of.setdefault(comment_id, request_id)  # a comment sent twice: its first
    metrics = resources.metrics()
    for verdict in decided:
        with _request_id(request_of[verdict.comment_id]):
            log_verdict(verdict)
        metrics.verdict(verdict.decision.value, verdict.latency_ms)
    decisions = Counter(verdict.decision.value for verdict in decided)
    recorded = {verdict.comment_id for verdict in decided}
    for unchanged in request_of.keys() - recorded:
        with _request_id(request_of[unchanged]):
            log.info("comment %s is no longer pending; nothing to do", unchanged)
        decisions["unchanged"] += 1
    return dict(decisions)


def classify_one_by_one(
    resources: TaskResources, comment_ids: list[str], request_ids: list[str | None]
) -> dict[str, int]:
    """Classify each comment of a batch in its own transaction, as :func:`classify`; how
    many got each decision (``"unchanged"``, ``"failed"`` as :func:`classify_batch`).

    One comment's failure (a bug, bad data) is logged and the rest go on: that comment's
    outbox row stays undone, so the sweeper sends it again on its own. A database that
    cannot be reached stops with :class:`BatchInterrupted`, which says how many comments
    are left, for the task to retry them.
    """
    decisions: Counter[str] = Counter()
    for done, (comment_id, request_id) in enumerate(zip(comment_ids, request_ids, strict=True)):
        with _request_id(request_id):
            try:
                decisions[classify(resources, comment_id)] += 1
            except Exception as exc:
                if isinstance(exc, DBAPIError) and database_unreachable(exc):
                    raise BatchInterrupted(exc, len(comment_ids) - done) from exc
                log.exception(
                    "classifying comment %s failed; the sweeper will send it again", comment_id
                )
                decisions["failed"] += 1
    return dict(decisions)


@contextlib.contextmanager
def _request_id(request_id: str | None) -> Iterator[None]:
    """Log lines within carry ``request_id`` (none when None)."""
    token = bind_request_id(request_id) if request_id else request_id_var.set(None)
    try:
        yield
    finally:
        request_id_var.reset(token)


def sweep(resources: TaskResources, *, now: dt.datetime | None = None) -> int:
    """Claim the outbox rows due, commit the claim, then enqueue each; how many were sent.
    Then, in a transaction of its own, delete those of the :data:`PURGE_LIMIT` oldest rows
    done more than ``outbox_retention_seconds`` ago (none when that is 0).

    Enqueueing happens after the commit so that a task never runs against a claim that may
    still roll back. If the broker fails midway, the rest stay claimed until their next
    ``next_attempt_at`` and a later sweep sends them.
    """
    now = now or dt.datetime.now(dt.UTC)
    sent = _send_due(resources, now)
    resources.metrics().outbox_requeued(sent)
    retention = resources.settings.outbox_retention_seconds
    if retention:
        with resources.sessions().begin() as session:
            purged = purge_done(
                session, done_before=now - dt.timedelta(seconds=retention), limit=PURGE_LIMIT
            )
        if purged:
            log.info("sweep: deleted %d outbox row(s) done over %d s ago", purged, retention)
    return sent


def _send_due(resources: TaskResources, now: dt.datetime) -> int:
    timeout = dt.timedelta(seconds=resources.settings.outbox_timeout_seconds)
    with resources.sessions().begin() as session:
        rows = claim_due(session, now=now, limit=SWEEP_LIMIT, timeout=timeout)
        claimed = [(row.id, row.task, dict(row.payload), row.attempts) for row in rows]

    queue = resources.queue()
    sent = 0
    for outbox_id, task, payload, attempts in claimed:
        try:
            queue.enqueue(task, payload)
        except Exception:
            log.exception(
                "sweep: enqueueing outbox row %s (%s) failed; %d left for a later sweep",
                outbox_id,
                task,
                len(claimed) - sent,
            )
            break
        sent += 1
        # Rows are never given up (every accepted comment must reach a verdict), but one
        # that keeps coming back needs a person: say so loudly past the configured count.
        level = (
            logging.ERROR if attempts >= resources.settings.outbox_max_attempts else logging.INFO
        )
        log.log(
            level, "sweep: re-enqueued outbox row %s (%s, attempt %d)", outbox_id, task, attempts
        )
    return sent


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How hard the webhook deliveries are tried, from ``settings``."""
    return DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        max_age=dt.timedelta(seconds=settings.webhook_max_age_seconds),
        backoff_base_seconds=settings.webhook_backoff_base_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        lease=webhook_lease(settings),
    )


def deliver(resources: TaskResources, delivery_id: int, attempts: int) -> str:
    """One attempt of a webhook delivery that was at ``attempts`` when sent: claim it
    (a short transaction), POST it (no transaction open), record the result (another);
    the delivery's state afterwards, or ``"skipped"`` when there was nothing to do
    (settled already, another run has it, a duplicate of this task; see
    :func:`service.moderation.deliveries.claim`)."""
    settings = resources.settings
    policy = delivery_policy(settings)
    with resources.sessions().begin() as session:
        claimed = claim(
            session,
            delivery_id=delivery_id,
            attempts=attempts,
            now=dt.datetime.now(dt.UTC),
            policy=policy,
        )
    if claimed is None:
        return "skipped"
    result = send(
        claimed.url,
        claimed.body.encode("utf-8"),
        event_type=claimed.event_type,
        event_id=str(claimed.event_id),
        delivery_id=claimed.delivery_id,
        secrets=claimed.secrets,
        allow_private=claimed.allow_private,
        timeout=settings.webhook_timeout_seconds,
    )
    with resources.sessions().begin() as session:
        settled = settle(
            session, claimed=claimed, result=result, now=dt.datetime.now(dt.UTC), policy=policy
        )
        state = settled.state.value if settled is not None else "superseded"
        due = settled.next_attempt_at if settled is not None else None
    level = logging.INFO if result.outcome is Outcome.delivered else logging.WARNING
    log.log(
        level,
        "webhook delivery %s (event %s %s, webhook %s) attempt %d: %s%s%s",
        claimed.delivery_id,
        claimed.event_type,
        claimed.event_id,
        claimed.webhook_id,
        claimed.attempt,
        f"HTTP {result.status_code}, " if result.status_code is not None else "",
        state if state != "pending" else f"retry at {due.isoformat() if due else '?'}",
        f" ({result.error})" if result.error else "",
    )
    return state


def sweep_webhooks(resources: TaskResources, *, now: dt.datetime | None = None) -> int:
    """Claim the webhook deliveries due (retries whose time has come, and deliveries whose
    task never ran or never finished), commit, then enqueue each; how many were sent.
    Then, in a transaction of its own, delete those of the :data:`PURGE_LIMIT` oldest
    deliveries settled more than ``webhook_retention_seconds`` ago (none when 0)."""
    now = now or dt.datetime.now(dt.UTC)
    settings = resources.settings
    with resources.sessions().begin() as session:
        due = claim_due_deliveries(
            session, now=now, limit=SWEEP_LIMIT, lease=webhook_lease(settings)
        )
    queue = resources.queue()
    sent = 0
    for pair in due:
        try:
            queue.enqueue(DELIVER_WEBHOOKS, {"deliveries": [pair]})
        except Exception:
            log.exception(
                "webhook sweep: enqueueing delivery %s failed; %d left for a later sweep",
                pair[0],
                len(due) - sent,
            )
            break
        sent += 1
    if sent:
        log.info("webhook sweep: sent %d due deliveries", sent)
    if settings.webhook_retention_seconds:
        with resources.sessions().begin() as session:
            purged = purge_finished(
                session,
                finished_before=now - dt.timedelta(seconds=settings.webhook_retention_seconds),
                limit=PURGE_LIMIT,
            )
        if purged:
            log.info(
                "webhook sweep: deleted %d deliveries settled over %d s ago",
                purged,
                settings.webhook_retention_seconds,
            )
    return sent


def retrain_options(settings: Settings, options: dict[str, Any]) -> RetrainOptions:
    """A job's options (``promote``) over the settings' defaults. A ``bootstrap`` count
    in a job queued before synthetic comments were taken out is ignored."""
    return RetrainOptions(
        holdout=settings.retrain_holdout,
        moderator_weight=settings.retrain_moderator_weight,
        import_weight=settings.retrain_import_weight,
        min_labels=settings.retrain_min_labels,
        max_f1_drop=settings.gate_max_f1_drop,
        max_fpr_rise=settings.gate_max_fpr_rise,
        promote=bool(options.get("promote", True)),
    )


def retrain(resources: TaskResources, job_id: str) -> RetrainResult | None:
    """Run one retraining job (see :func:`service.moderation.retrain.run_retrain`); after
    an activation, make this process serve it at once and, when the job or the settings
    ask for it, enqueue a re-score. None when the job was finished already."""
    provider = resources.classifier()

    def active(_session: Session, site_id: int | None) -> tuple[str, Classifier]:
        loaded = provider.for_site(site_id)
        return loaded.version, loaded.classifier

    sessions = resources.sessions()
    with sessions() as session:
        try:
            job = get_job(session, job_id=uuid.UUID(job_id))
        except NotFound:
            # Its transaction never committed (or the job was deleted): nothing to run.
            log.warning("retrain: no job %s; nothing to do", job_id)
            return None
        options, site_id = dict(job.options), job.site_id
    result = run_retrain(
        sessions,
        job_id=uuid.UUID(job_id),
        options=retrain_options(resources.settings, options),
        active_loader=active,
    )
    if result is not None and result.activated:
        provider.check_now()
        if options.get("rescore", resources.settings.rescore_after_promotion):
            resources.queue().enqueue(RESCORE, {"site_id": site_id})
    return result


def rescore(resources: TaskResources, site_id: int | None) -> int:
    """Re-score the pending and held comments (of ``site_id``, or of every site) with the
    versions active now, one committed batch of ``rescore_batch_size`` at a time; how
    many got a new verdict."""
    provider = resources.classifier()
    provider.check_now()
    after: uuid.UUID | None = None
    total = 0
    while True:
        with resources.sessions().begin() as session:
            batch = rescore_batch(
                session,
                classifier=provider,
                site_id=site_id,
                after=after,
                size=resources.settings.rescore_batch_size,
                webhook_lease=webhook_lease(resources.settings),
            )
        send_deliveries(resources.queue(), due_pairs(batch.deliveries))
        total += batch.rescored
        if batch.last_id is None:
            break
        after = batch.last_id
    log.info("rescore: %d comments got a new verdict", total)
    return total


def scheduled_retrain(resources: TaskResources) -> str | None:
    """Beat's retraining of the global classifier: skipped (with a log line) when fewer
    than ``retrain_min_new_labels`` labels came since the last global version; else a job
    is made and run here. The job id, or None when skipped."""
    settings = resources.settings
    with resources.sessions().begin() as session:
        fresh = new_labels_since_last_version(session, site_id=None)
        if fresh < settings.retrain_min_new_labels:
            log.info(
                "scheduled retrain skipped: %d new labels since the last version (needs %d)",
                fresh,
                settings.retrain_min_new_labels,
            )
            return None
        job = create_job(session, site_id=None, requested_by="schedule beat", kind="schedule")
        job_id = str(job.id)
    log.info("scheduled retrain: %d new labels; job %s", fresh, job_id)
    # A failure is recorded on the job; a schedule has nobody to raise it to.
    with contextlib.suppress(RetrainFailed):
        retrain(resources, job_id)
    return job_id


def register_tasks(app: Celery, resources: TaskResources) -> None:
    """Register ``CLASSIFY_COMMENT``, ``CLASSIFY_COMMENTS``, ``SWEEP_OUTBOX``, ``RETRAIN``,
    ``RESCORE``, ``SCHEDULED_RETRAIN``, ``DELIVER_WEBHOOKS`` and ``SWEEP_WEBHOOKS`` on
    ``app``, run with ``resources``."""

    def classify_comment_task(task: Any, comment_id: str) -> str:
        try:
            return classify(resources, comment_id)
        except DBAPIError as exc:
            if not database_unreachable(exc):
                raise
            retries: int = task.request.retries
            countdown = backoff_seconds(retries)
            log.warning(
                "database unreachable classifying comment %s (retry %d of %d in %.1fs): %s",
                comment_id,
                retries + 1,
                MAX_DATABASE_RETRIES,
                countdown,
                exc.orig or exc,
            )
            raise task.retry(exc=exc, countdown=countdown) from exc

    def classify_comments_task(
        task: Any, comment_ids: list[str], request_ids: list[str | None] | None = None
    ) -> dict[str, int]:
        try:
            return classify_batch(resources, comment_ids, request_ids or [])
        except BatchInterrupted as stop:
            left = len(comment_ids) - stop.remaining
            retries: int = task.request.retries
            countdown = backoff_seconds(retries)
            log.warning(
                "database unreachable classifying a batch: %d of %d comment(s) left "
                "(retry %d of %d in %.1fs): %s",
                stop.remaining,
                len(comment_ids),
                retries + 1,
                MAX_DATABASE_RETRIES,
                countdown,
                stop.cause.orig or stop.cause,
            )
            rest = [comment_ids[left:], (request_ids or [])[left:] or None]
            raise task.retry(args=rest, exc=stop.cause, countdown=countdown) from stop.cause

    def sweep_outbox_task() -> int:
        return sweep(resources)

    # Both classification tasks retry their own database outages (task.retry).
    for name, body in (
        (CLASSIFY_COMMENT, classify_comment_task),
        (CLASSIFY_COMMENTS, classify_comments_task),
    ):
        app.task(
            name=name,
            bind=True,
            max_retries=MAX_DATABASE_RETRIES,
            acks_late=True,
            ignore_result=True,
        )(body)
    app.task(name=SWEEP_OUTBOX, acks_late=True, ignore_result=True)(sweep_outbox_task)

    def retrain_task(job_id: str) -> str | None:
        try:
            result = retrain(resources, job_id)
        except RetrainFailed:
            return None
        return result.version_id if result is not None else None

    def rescore_task(site_id: int | None = None) -> int:
        return rescore(resources, site_id)

    def scheduled_retrain_task() -> str | None:
        return scheduled_retrain(resources)

    app.task(name=RETRAIN, acks_late=True, ignore_result=True)(retrain_task)
    app.task(name=RESCORE, acks_late=True, ignore_result=True)(rescore_task)
    app.task(name=SCHEDULED_RETRAIN, acks_late=True, ignore_result=True)(scheduled_retrain_task)

    def deliver_webhooks_task(deliveries: list[list[int]]) -> str | None:
        # One delivery is sent here; several (a batch's, a bulk action's) are fanned out,
        # one task each, so that a slow receiver delays no other delivery.
        if len(deliveries) == 1:
            [(delivery_id, attempts)] = deliveries
            return deliver(resources, int(delivery_id), int(attempts))
        send_each(resources.queue(), deliveries)
        return None

    def sweep_webhooks_task() -> int:
        return sweep_webhooks(resources)

    # Retries are the database's business (deliveries.settle): a failed task leaves its
    # delivery due, and the webhook sweeper sends it again.
    app.task(name=DELIVER_WEBHOOKS, acks_late=True, ignore_result=True)(deliver_webhooks_task)
    app.task(name=SWEEP_WEBHOOKS, acks_late=True, ignore_result=True)(sweep_webhooks_task)


def send_each(queue: TaskQueue, deliveries: list[list[int]]) -> None:
    """Enqueue one ``DELIVER_WEBHOOKS`` per delivery; on a broker failure the rest are
    left to the webhook sweeper (they are due when their lease ends)."""
    for done, pair in enumerate(deliveries):
        try:
            queue.enqueue(DELIVER_WEBHOOKS, {"deliveries": [pair]})
        except Exception:
            log.exception(
                "enqueueing webhook delivery %s failed; %d left for the webhook sweeper",
                pair[0],
                len(deliveries) - done,
            )
            return
