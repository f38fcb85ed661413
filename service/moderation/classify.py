"""Classifying one comment: score, apply the site policy, record the verdict."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import ARRAY, Uuid, any_, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from models import Author, Comment, OutboxTask, Site, Status, Trust, Verdict, WebhookEvent
from service.classifier import CommentRecord, Score
from service.classifier.evaluation import Thresholds
from service.moderation.deliveries import (
    DEFAULT_LEASE,
    Event,
    hooks_exist,
    new_event,
)
from service.moderation.deliveries import record as record_deliveries
from service.moderation.policy import (
    Decision,
    RuleReason,
    SitePolicy,
    decide,
    effective_thresholds,
    effective_trust,
)
from service.moderation.submit import CLASSIFY_TASK

log = logging.getLogger(__name__)


class ScoringClassifier(Protocol):
    """What classification needs of a classifier: a version, suggested thresholds, scores."""

    @property
    def version(self) -> str: ...

    @property
    def thresholds(self) -> Thresholds: ...

    def score(self, record: CommentRecord) -> Score: ...


class ClassifierChoice(Protocol):
    """The classifier for a site: its own active version, else the global one (see
    ``service.moderation.active``); a loaded classifier serves every site itself."""

    def for_site(self, site_id: int | None) -> ScoringClassifier: ...


@dataclass(frozen=True, slots=True)
class Decided:
    """What classification decided for one comment (the verdict row, as written)."""

    comment_id: uuid.UUID
    decision: Status
    discard: bool
    score: float
    classifier_version: str
    reasons: list[dict[str, Any]]
    latency_ms: float
    #: The webhook deliveries written with the verdict, for the caller to send after its
    #: commit (``service.moderation.deliveries``).
    deliveries: tuple[int, ...] = ()


# Statements are built once per process: this is the worker's hot path.
_LOCKED = (
    select(
        Comment.id,
        Comment.site_id,
        Comment.status,
        Comment.created_at,
        Comment.content,
        Comment.author_name,
        Comment.author_email,
        Comment.author_url,
        Comment.user_ip,
        Comment.user_agent,
        Comment.referrer,
        Comment.permalink,
        Comment.lang,
        Author.id.label("author_id"),
        Author.trust,
        Author.banned_until,
        Author.approved_count,
        Author.spam_count,
        Site.policy,
        # What the webhooks' event needs, read in the same round trip; a site without
        # hooks costs one probe of an index.
        Comment.thread,
        Comment.version,
        Site.slug.label("site_slug"),
        hooks_exist(Comment.site_id, WebhookEvent.classified).label("has_hooks"),
    )
    .join(Author, Author.id == Comment.author_id)
    .join(Site, Site.id == Comment.site_id)
    .with_for_update(of=Comment)
)
_LOCK_COMMENT = _LOCKED.where(Comment.id == bindparam("comment_id"))
# PostgreSQL: the same, and the transaction commits without waiting for its WAL to reach the
# disk (synchronous_commit off, for this transaction only; set in the same round trip). A
# verdict lost in a database crash is lost with its comment's move and its outbox row's
# mark, so the comment is pending again with its task due, and the sweeper has it scored
# again. What a moderator or the API commits afterwards is flushed with everything before
# it. The comment path then waits for one WAL flush per comment (its acceptance), not two.
_ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True).label("synchronous_commit")
_LOCK_COMMENT_ASYNC = _LOCK_COMMENT.add_columns(_ASYNC_COMMIT)
_INSERT_VERDICT = insert(Verdict).values(
    comment_id=bindparam("v_comment_id"),
    classifier_version=bindparam("v_version"),
    score=bindparam("v_score"),
    decision=bindparam("v_decision"),
    discard=bindparam("v_discard"),
    reasons=bindparam("v_reasons", type_=Verdict.__table__.c.reasons.type),
    latency_ms=bindparam("v_latency_ms"),
)
_UPDATE_COMMENT = (
    update(Comment)
    .where(Comment.id == bindparam("c_id"))
    .values(
        status=bindparam("c_status"),
        discard=bindparam("c_discard"),
        score=bindparam("c_score"),
        version=Comment.version + 1,
        updated_at=func.now(),
    )
)
_COUNT_AUTHOR = (
    update(Author)
    .where(Author.id == bindparam("a_id"))
    .values(
        approved_count=Author.approved_count + bindparam("a_approved"),
        spam_count=Author.spam_count + bindparam("a_spam"),
    )
)
_MARK_DONE = (
    update(OutboxTask)
    .where(
        OutboxTask.task == CLASSIFY_TASK,
        OutboxTask.key == bindparam("o_key"),
        OutboxTask.done_at.is_(None),
    )
    .values(done_at=bindparam("o_now"))
)
#: What records a verdict and moves its author's count (parameters: :func:`record_params`),
#: for the paths that decide elsewhere than in a worker (the Akismet endpoint).
INSERT_VERDICT = _INSERT_VERDICT
COUNT_AUTHOR = _COUNT_AUTHOR
# PostgreSQL: every write of a verdict in one round trip, through data-modifying CTEs.
_WRITE_ALL = _MARK_DONE.add_cte(
    _INSERT_VERDICT.cte("new_verdict"),
    _UPDATE_COMMENT.cte("moved_comment"),
    _COUNT_AUTHOR.cte("counted_author"),
)


# PostgreSQL, a batch (:func:`classify_comments`). The comments are locked in id order, so
# that two batches sharing comments (one sent again) wait for each other, never deadlock.
# Then one statement moves them all, so that the counts trigger runs once and takes its
# count rows in key order; then, per comment, the verdict, the author's count and the
# outbox mark (:data:`_RECORD`), in author id order, for the same reason.
_LOCK_COMMENTS = (
    _LOCKED.add_columns(_ASYNC_COMMIT)
    .where(Comment.id == any_(bindparam("comment_ids", type_=ARRAY(Uuid))))
    .order_by(Comment.id)
)
_MOVE_COMMENTS = text(
    "UPDATE comments SET status = d.status, discard = d.discard, score = d.score,"
    " version = comments.version + 1, updated_at = now()"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:discards AS boolean[]),"
    " CAST(:scores AS float8[])) AS d (id, status, discard, score)"
    " WHERE comments.id = d.id"
)
_RECORD = _MARK_DONE.add_cte(
    _INSERT_VERDICT.cte("new_verdict"),
    _COUNT_AUTHOR.cte("counted_author"),
)


def classify_comment(
    session: Session,
    *,
    comment_id: uuid.UUID,
    classifier: ClassifierChoice,
    now: dt.datetime | None = None,
    statuses: frozenset[Status] = frozenset({Status.pending}),
    rescore: bool = False,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> Decided | None:
    """Score a pending comment, decide by the site's policy, and record it all.

    Guarantees: the comment row is locked for the duration, so two deliveries of the same
    task cannot both write a verdict; a comment that is no longer ``pending`` (or no
    longer exists) gets nothing new and ``None`` is returned. Either way the comment's
    outbox row is marked done. The comment is scored by ``classifier.for_site(its site)``,
    whose version the verdict records; re-scoring after a promotion passes ``statuses``
    (pending and held) to decide held comments again. The author's approved or spam count
    moves in SQL (``count + 1``), so concurrent workers lose no increment. On PostgreSQL
    the transaction commits asynchronously (:data:`_LOCK_COMMENT_ASYNC`): a crash of the
    database within a fraction of a second of the commit may undo all of it, leaving the
    comment as it was (a pending one is then scored again by the sweeper).
    Where the site has webhooks subscribed to ``comment.classified``, their deliveries are
    written in the same transaction (one more statement; ``rescore`` says so in the
    event), due ``webhook_lease`` after ``now`` unless sent sooner: the caller sends
    ``Decided.deliveries`` after its commit.
    Executes statements; the caller commits once. Logs the verdict (:func:`log_verdict`).
    """
    decided = _classify_one(
        session,
        comment_id=comment_id,
        classifier=classifier,
        now=now,
        statuses=statuses,
        rescore=rescore,
        webhook_lease=webhook_lease,
    )
    if decided is not None:
        log_verdict(decided)
    return decided


def _classify_one(
    session: Session,
    *,
    comment_id: uuid.UUID,
    classifier: ClassifierChoice,
    now: dt.datetime | None,
    statuses: frozenset[Status],
    rescore: bool = False,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> Decided | None:
    now = now or dt.datetime.now(dt.UTC)
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    lock = _LOCK_COMMENT_ASYNC if postgresql else _LOCK_COMMENT
    row = connection.execute(lock, {"comment_id": comment_id}).one_or_none()
    if row is None or Status(row.status) not in statuses:
        connection.execute(_MARK_DONE, {"o_key": str(comment_id), "o_now": now})
        return None

    chosen = classifier.for_site(row.site_id)
    decided = _decided(row, chosen, chosen.score(record_of(row)), now)
    params = record_params(decided, row.author_id, now)
    if postgresql:
        connection.execute(_WRITE_ALL, params)
    else:
        for statement in (_INSERT_VERDICT, _UPDATE_COMMENT, _COUNT_AUTHOR, _MARK_DONE):
            connection.execute(statement, params)
    if row.has_hooks:
        event = classified_event(row, decided, now, rescore=rescore)
        written = record_deliveries(
            session,
            event_type=WebhookEvent.classified,
            events=[event],
            due=now + webhook_lease,
        )
        decided = dataclasses.replace(decided, deliveries=tuple(written.get(event.event_id, ())))
    return decided


def classify_comments(
    session: Session,
    *,
    comment_ids: Sequence[uuid.UUID],
    classifier: ClassifierChoice,
    now: dt.datetime | None = None,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> list[Decided]:
    """Classify a batch of comments in the caller's transaction: for each pending one,
    exactly what :func:`classify_comment` would decide and record if called for each in
    turn (in the order given); the verdicts recorded, in that order. Logs nothing: the
    caller logs each (:func:`log_verdict`) where it knows more, such as request ids.

    Guarantees, beyond :func:`classify_comment`'s for each comment: the batch is one
    transaction (all of it or none); a comment given twice is classified once. An author
    with several comments in the batch is seen by each later one with the counts the
    earlier ones moved, as one at a time; such a comment is scored again on its own, the
    others with one ``score_many`` per classifier. On PostgreSQL that takes four round
    trips whatever the batch's size (lock the comments, move them, record the verdicts
    with their counts and outbox marks, commit; one more marks the outbox rows of
    comments no longer pending; one more writes the webhook deliveries of all the
    verdicts whose sites have hooks, when any has), and the transaction commits
    asynchronously as :func:`classify_comment`'s does; elsewhere it is
    :func:`classify_comment`'s statements for each comment. Executes statements; the
    caller commits once, then sends each ``Decided.deliveries``.
    """
    now = now or dt.datetime.now(dt.UTC)
    wanted = list(dict.fromkeys(comment_ids))
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        found = (
            _classify_one(
                session,
                comment_id=comment_id,
                classifier=classifier,
                now=now,
                statuses=frozenset({Status.pending}),
                webhook_lease=webhook_lease,
            )
            for comment_id in wanted
        )
        return [decided for decided in found if decided is not None]

    locked = connection.execute(_LOCK_COMMENTS, {"comment_ids": wanted}).all()
    by_id = {row.id: row for row in locked}
    rows = [
        by_id[comment_id]
        for comment_id in wanted
        if comment_id in by_id and Status(by_id[comment_id].status) is Status.pending
    ]
    scored = BatchScores(classifier)
    scored.score_batch([(row.site_id, record_of(row)) for row in rows])
    decided: list[Decided] = []
    moved: dict[int, list[int]] = {}  # author id -> [approved, spam] this batch adds
    for row in rows:
        counts = moved.setdefault(row.author_id, [0, 0])
        seen = row if counts == [0, 0] else _with_counts(row, *counts)
        chosen = scored.for_site(row.site_id)
        verdict = _decided(seen, chosen, chosen.score(record_of(seen)), now)
        counts[0] += verdict.decision is Status.approved
        counts[1] += verdict.decision is Status.spam
        decided.append(verdict)

    if decided:
        connection.execute(
            _MOVE_COMMENTS,
            {
                "ids": [d.comment_id for d in decided],
                "statuses": [d.decision.value for d in decided],
                "discards": [d.discard for d in decided],
                "scores": [d.score for d in decided],
            },
        )
        author_of = {row.id: row.author_id for row in rows}
        in_author_order = sorted(decided, key=lambda d: author_of[d.comment_id])
        # executemany: psycopg pipelines the statements, one round trip for all of them.
        connection.execute(
            _RECORD, [record_params(d, author_of[d.comment_id], now) for d in in_author_order]
        )
        decided = _with_deliveries(session, rows, decided, now, webhook_lease)
    recorded = {d.comment_id for d in decided}
    undecided = [comment_id for comment_id in wanted if comment_id not in recorded]
    if undecided:
        connection.execute(_MARK_DONE, [{"o_key": str(i), "o_now": now} for i in undecided])
    return decided


def _with_deliveries(
    session: Session,
    rows: list[Any],
    decided: list[Decided],
    now: dt.datetime,
    lease: dt.timedelta,
) -> list[Decided]:
    """``decided`` with the webhook deliveries of the verdicts whose sites have hooks,
    written in one statement (none when no site has)."""
    row_of = {row.id: row for row in rows if row.has_hooks}
    events = {
        d.comment_id: classified_event(row_of[d.comment_id], d, now, rescore=False)
        for d in decided
        if d.comment_id in row_of
    }
    if not events:
        return decided
    written = record_deliveries(
        session,
        event_type=WebhookEvent.classified,
        events=list(events.values()),
        due=now + lease,
    )
    return [
        dataclasses.replace(d, deliveries=tuple(written.get(events[d.comment_id].event_id, ())))
        if d.comment_id in events
        else d
        for d in decided
    ]


def classified_event(row: Any, decided: Decided, now: dt.datetime, *, rescore: bool) -> Event:
    """The ``comment.classified`` event of a verdict, for the locked comment ``row`` (the
    columns of :data:`_LOCKED`)."""
    return new_event(
        site_id=row.site_id,
        site=row.site_slug,
        event_type=WebhookEvent.classified,
        occurred_at=now,
        data={
            "comment": {
                "id": str(row.id),
                "thread": row.thread,
                "status": decided.decision.value,
                "previous_status": Status(row.status).value,
                "discard": decided.discard,
                "version": row.version + 1,
            },
            "verdict": {
                "decision": decided.decision.value,
                "score": decided.score,
                "discard": decided.discard,
                "reasons": decided.reasons,
                "classifier_version": decided.classifier_version,
                "rescore": rescore,
            },
        },
    )


def record_params(decided: Decided, author_id: int, now: dt.datetime) -> dict[str, Any]:
    """The parameters of :data:`_RECORD` (and of :data:`_WRITE_ALL`, :data:`INSERT_VERDICT`
    and :data:`COUNT_AUTHOR`) for one verdict."""
    comment_id = decided.comment_id
    return {
        "v_comment_id": comment_id,
        "v_version": decided.classifier_version,
        "v_score": decided.score,
        "v_decision": decided.decision.value,
        "v_discard": decided.discard,
        "v_reasons": decided.reasons,
        "v_latency_ms": decided.latency_ms,
        "c_id": comment_id,
        "c_status": decided.decision.value,
        "c_discard": decided.discard,
        "c_score": decided.score,
        "a_id": author_id,
        "a_approved": 1 if decided.decision is Status.approved else 0,
        "a_spam": 1 if decided.decision is Status.spam else 0,
        "o_key": str(comment_id),
        "o_now": now,
    }


def _with_counts(row: Any, approved: int, spam: int) -> Any:
    """``row`` as it reads once the batch's earlier verdicts moved its author's counts."""
    values = row._asdict()
    values["approved_count"] += approved
    values["spam_count"] += spam
    return SimpleNamespace(**values)


class _Prescored:
    """A classifier whose scores of known records were computed beforehand."""

    def __init__(self, inner: ScoringClassifier, scores: dict[CommentRecord, Score]) -> None:
        self._inner = inner
        self._scores = scores
        self.version = inner.version
        self.thresholds: Thresholds = inner.thresholds

    def score(self, record: CommentRecord) -> Score:
        found = self._scores.get(record)
        return found if found is not None else self._inner.score(record)


class BatchScores:
    """``ClassifierChoice`` over ``classifier`` that serves a batch's scores, computed by
    :meth:`score_batch` with one ``score_many`` per classifier (when it has one); a record
    it was not given is scored on its own."""

    def __init__(self, classifier: ClassifierChoice) -> None:
        self._classifier = classifier
        self._by_version: dict[str, _Prescored] = {}

    def score_batch(self, items: list[tuple[int, CommentRecord]]) -> None:
        groups: dict[str, tuple[ScoringClassifier, list[CommentRecord]]] = {}
        for site_id, record in items:
            chosen = self._classifier.for_site(site_id)
            groups.setdefault(chosen.version, (chosen, []))[1].append(record)
        for version, (chosen, records) in groups.items():
            many = getattr(chosen, "score_many", None)
            scores = many(records) if many is not None else [chosen.score(r) for r in records]
            self._by_version[version] = _Prescored(chosen, dict(zip(records, scores, strict=True)))

    def for_site(self, site_id: int | None) -> ScoringClassifier:
        chosen = self._classifier.for_site(site_id)
        return self._by_version.get(chosen.version) or chosen


def log_verdict(decided: Decided) -> None:
    """The log line of a recorded verdict (INFO)."""
    log.info(
        "verdict comment=%s decision=%s score=%.4f version=%s",
        decided.comment_id,
        decided.decision.value,
        decided.score,
        decided.classifier_version,
    )


def _decided(row: Any, chosen: ScoringClassifier, score: Score, now: dt.datetime) -> Decided:
    """What the site's policy makes of ``score`` for the locked comment ``row`` (the
    columns of :data:`_LOCK_COMMENT`)."""
    judged = judge(
        SitePolicy.model_validate(row.policy or {}),
        chosen.thresholds,
        score=score,
        content=row.content,
        trust=effective_trust(Trust(row.trust), row.banned_until, now),
        # approved_count counts the author's comments that are approved now (see
        # service/moderation/actions.py), so a comment a moderator took back counts no more.
        known_author=row.approved_count > 0,
    )
    return Decided(
        comment_id=row.id,
        decision=judged.decision.status,
        discard=judged.decision.discard,
        score=score.probability,
        classifier_version=chosen.version,
        reasons=judged.reasons,
        latency_ms=_elapsed_ms(row.created_at, now),
    )


@dataclass(frozen=True, slots=True)
class Judgement:
    """The policy's decision on a scored comment, and the verdict's reasons: the
    classifier's, then the policy's rules (``weight`` null), as verdicts store them."""

    decision: Decision
    reasons: list[dict[str, Any]]


def judge(
    policy: SitePolicy,
    suggested: Thresholds,
    *,
    score: Score,
    content: str,
    trust: Trust,
    known_author: bool,
) -> Judgement:
    """The one path from a score to a decision, for the worker and for every caller that
    decides in-process (the Akismet endpoint): the site's thresholds (``suggested`` by the
    classifier where the site sets none) and rules applied by
    :func:`~service.moderation.policy.decide`. ``trust`` is the effective trust."""
    decision = decide(
        policy,
        effective_thresholds(policy, suggested),
        score=score.probability,
        text=content,
        trust=trust,
        known_author=known_author,
    )
    reasons: list[dict[str, Any]] = [
        {"phrase": r.phrase, "weight": round(r.weight, 4), "feature": r.feature}
        for r in score.reasons
    ]
    reasons.extend(rule_reason(r) for r in decision.rules)
    return Judgement(decision, reasons)


def rule_reason(rule: RuleReason) -> dict[str, Any]:
    """A policy rule as a verdict's reason."""
    return {"phrase": rule.phrase, "weight": None, "feature": rule.feature}


def record_of(row: Any) -> CommentRecord:
    """The classifier's view of a stored comment (any object with the comment's columns
    and its author's ``approved_count`` and ``spam_count``)."""
    return CommentRecord(
        content=row.content,
        author_name=row.author_name,
        author_email=row.author_email,
        author_url=row.author_url,
        user_ip=row.user_ip,
        user_agent=row.user_agent,
        referrer=row.referrer,
        permalink=row.permalink,
        lang=row.lang,
        approved_count=row.approved_count,
        spam_count=row.spam_count,
    )


def _elapsed_ms(created_at: dt.datetime, now: dt.datetime) -> float:
    # SQLite hands back naive timestamps; they are UTC (CURRENT_TIMESTAMP).
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    return max(0.0, (now - created_at).total_seconds() * 1000.0)
