"""Retraining from labels: importing data sets, gathering labels, training a candidate,
measuring it beside the active version, storing it and letting the quality gate decide.

:func:`import_labels` and :func:`gather_labels` take a session and never commit, like
the rest of the domain. :func:`run_retrain` is the one exception, on purpose: it runs
for minutes and its progress must be visible while it runs, so it takes a sessionmaker
and commits its progress, then the stored version, in short transactions of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from models import (
    ClassifierVersion,
    JobState,
    Label,
    LabelSource,
    LabelValue,
    RetrainJob,
    VersionStatus,
)
from service.classifier.artifacts import new_version_id
from service.classifier.datasets import DatasetError, RowError, dataset_fingerprint, read_dataset
from service.classifier.evaluation import compute_metrics
from service.classifier.model import Classifier, classifier_bytes, train
from service.classifier.report import Scored, report_data
from service.classifier.types import CommentRecord
from service.moderation.errors import FieldError, InvalidInput
from service.moderation.registry import (
    Actor,
    activate,
    quality_gate,
    store_version,
)

log = logging.getLogger(__name__)

#: Rows per INSERT when importing.
_IMPORT_BATCH: Final = 5_000
#: The seed of the held-out split and of training: the same labels give the same split.
SEED: Final = 0


# --- importing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did: ``dataset`` (``name@sha256``), rows ``stored`` (0 when the same
    file was imported before: ``already`` is then the count stored that time), and the
    ``errors`` of the lines skipped as malformed."""

    dataset: str
    stored: int
    already: int
    spam: int
    ham: int
    errors: list[RowError]


def import_labels(session: Session, *, site_id: int, path: Path) -> Imported:
    """Store the labelled rows of the data set at ``path`` as labels of ``site_id`` with
    source ``import``. Idempotent: a file with the same name and bytes already imported
    for this site stores nothing again. Malformed lines are skipped and returned; a file
    that cannot be read at all is ``InvalidInput``."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        dataset = read_dataset(path, skip_malformed=True)
    except (OSError, DatasetError) as exc:
        raise InvalidInput(f"cannot import {path}", [FieldError("data", str(exc))]) from None
    name = f"{path.name}@{digest}"[:300]
    already = session.scalar(
        select(func.count())
        .select_from(Label)
        .where(Label.site_id == site_id, Label.dataset == name)
    )
    spam = dataset.spam_count
    if already:
        return Imported(name, 0, int(already), spam, len(dataset) - spam, dataset.errors)
    rows = [
        {
            "site_id": site_id,
            "comment_id": None,
            "source": LabelSource.import_,
            "label": LabelValue.spam if label else LabelValue.ham,
            "content": record.content,
            "author_name": (record.author_name or None) and record.author_name[:200],
            "author_email": (record.author_email or None) and record.author_email[:320],
            "author_url": record.author_url,
            "permalink": record.permalink,
            "dataset": name,
        }
        for record, label in zip(dataset.records, dataset.labels, strict=True)
    ]
    for start in range(0, len(rows), _IMPORT_BATCH):
        session.execute(insert(Label), rows[start : start + _IMPORT_BATCH])
    return Imported(name, len(rows), 0, spam, len(rows) - spam, dataset.errors)


# --- gathering -------------------------------------------------------------------------


@dataclass(slots=True)
class LabelSet:
    """Labelled comments for training: parallel lists. ``sources`` says where each came
    from (moderator, import); ``weights`` is its sample weight."""

    records: list[CommentRecord] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    datasets: set[str] = field(default_factory=set)
    #: The highest label id read: labels above it came after this set was gathered.
    last_id: int = 0

    def counts(self) -> dict[str, int]:
        found = {"moderator": 0, "import": 0}
        for source in self.sources:
            found[source] = found.get(source, 0) + 1
        return found

    def __len__(self) -> int:
        return len(self.labels)


def gather_labels(
    session: Session,
    *,
    site_id: int | None,
    moderator_weight: float,
    import_weight: float,
) -> LabelSet:
    """The labels to train on: for a site, its own; globally, every site's. Of the
    labels of one comment only the latest counts (by ``created_at``, then id); imported
    labels (no comment) each count. A moderator's label weighs ``moderator_weight``, an
    imported one ``import_weight``. Ordered by id, so the same labels give the same set."""
    ranked = select(
        Label.id,
        Label.source,
        Label.label,
        Label.content,
        Label.author_name,
        Label.author_email,
        Label.author_url,
        Label.permalink,
        Label.dataset,
        func.row_number()
        .over(
            partition_by=Label.comment_id,
            order_by=(Label.created_at.desc(), Label.id.desc()),
        )
        .label("rank"),
        Label.comment_id,
    )
    if site_id is not None:
        ranked = ranked.where(Label.site_id == site_id)
    sub = ranked.subquery()
    query = (
        select(sub)
        .where((sub.c.comment_id.is_(None)) | (sub.c.rank == 1))
        .order_by(sub.c.id)
        .execution_options(yield_per=10_000)
    )
    found = LabelSet()
    for row in session.execute(query):
        moderator = LabelSource(row.source) is LabelSource.moderator
        found.records.append(
            CommentRecord(
                content=row.content,
                author_name=row.author_name,
                author_email=row.author_email,
                author_url=row.author_url,
                permalink=row.permalink,
            )
        )
        found.labels.append(1 if LabelValue(row.label) is LabelValue.spam else 0)
        found.sources.append("moderator" if moderator else "import")
        found.weights.append(moderator_weight if moderator else import_weight)
        if row.dataset:
            found.datasets.add(row.dataset)
        found.last_id = max(found.last_id, row.id)
    return found


def split_holdout(n: int, share: float, *, seed: int = SEED) -> tuple[list[int], list[int]]:
    """Indexes ``(train, holdout)``: a shuffled ``share`` of ``range(n)`` held out (at
    least one of each when ``n >= 2``)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = min(max(1, round(n * share)), n - 1) if n >= 2 else 0
    return sorted(order[held:]), sorted(order[:held])


# --- running ---------------------------------------------------------------------------

Progress = Callable[[int, str], None]


@dataclass(frozen=True, slots=True)
class RetrainOptions:
    """One run's knobs (from Settings, or overridden by the caller)."""

    holdout: float = 0.2
    moderator_weight: float = 3.0
    import_weight: float = 1.0
    min_labels: int = 50
    max_f1_drop: float = 0.01
    max_fpr_rise: float = 0.005
    promote: bool = True


@dataclass(frozen=True, slots=True)
class RetrainResult:
    """What a run did: the version stored, whether the gate (or promotion) activated it,
    the gate's reasons, and the seconds spent per phase (loading, training, evaluating,
    storing, total)."""

    version_id: str
    status: VersionStatus
    activated: bool
    gate: dict[str, Any]
    timings: dict[str, float]


ActiveLoader = Callable[[Session, int | None], tuple[str, Classifier]]
"""Gives the version serving a scope and its classifier: ``(version id, classifier)``."""


class RetrainFailed(Exception):
    """Training could not run (too few labels, one class only); the job says why."""


def _say(sessions: sessionmaker[Session], job_id: uuid.UUID, percent: int, message: str) -> None:
    """Commit one progress step of the job, so that readers see it at once."""
    entry: dict[str, Any] = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "percent": percent,
        "message": message,
    }
    with sessions.begin() as session:
        job = session.get(RetrainJob, job_id, with_for_update=True)
        if job is None:
            return
        job.percent = percent
        job.messages = [*job.messages, entry]
    log.info("retrain %s: %d%% %s", job_id, percent, message)


def claim_job(sessions: sessionmaker[Session], *, job_id: uuid.UUID) -> RetrainJob | None:
    """Mark a queued job running (committed) and return it; None when it is unknown or
    finished already (a redelivered task then does nothing). A job found ``running`` was
    left by a worker that died mid-run, and is run again from the start."""
    with sessions.begin() as session:
        job = session.get(RetrainJob, job_id, with_for_update=True)
        if job is None or job.state in (JobState.succeeded, JobState.failed):
            return None
        job.state = JobState.running
        job.started_at = dt.datetime.now(dt.UTC)
        session.flush()
        session.expunge(job)
        return job


def run_retrain(
    sessions: sessionmaker[Session],
    *,
    job_id: uuid.UUID,
    options: RetrainOptions,
    active_loader: ActiveLoader,
) -> RetrainResult | None:
    """Run the retraining job ``job_id`` to its end: gather the labels, hold out
    ``options.holdout`` of them, train a candidate on the rest, measure the candidate and
    the version serving the scope on the same held-out labels, store the candidate with
    both metric sets and the report data, and, when ``options.promote`` and the quality
    gate passes, activate it (audited, by the job's requester). None when the job was
    finished already. A failure marks the job failed (with a failed version when
    training itself failed) and is re-raised."""
    job = claim_job(sessions, job_id=job_id)
    if job is None:
        log.info("retrain %s: already finished; nothing to do", job_id)
        return None
    try:
        result = _run(sessions, job, options, active_loader)
    except Exception as exc:
        error = str(exc) or type(exc).__name__
        failed_id = new_version_id()
        with sessions.begin() as session:
            # A failed version keeps the attempt visible in the registry's history.
            store_version(
                session,
                ClassifierVersion(
                    id=failed_id,
                    site_id=job.site_id,
                    created_by=job.requested_by,
                    status=VersionStatus.failed,
                    training={"job": str(job_id)},
                    metrics={},
                    thresholds={},
                    gate={},
                    notes=f"training failed: {error}",
                ),
            )
            session.execute(
                update(RetrainJob)
                .where(RetrainJob.id == job_id)
                .values(
                    state=JobState.failed,
                    error=error,
                    version_id=failed_id,
                    finished_at=dt.datetime.now(dt.UTC),
                )
            )
        log.exception("retrain %s failed", job_id)
        raise
    with sessions.begin() as session:
        session.execute(
            update(RetrainJob)
            .where(RetrainJob.id == job_id)
            .values(
                state=JobState.succeeded,
                percent=100,
                version_id=result.version_id,
                finished_at=dt.datetime.now(dt.UTC),
            )
        )
    return result


def _run(
    sessions: sessionmaker[Session],
    job: RetrainJob,
    options: RetrainOptions,
    active_loader: ActiveLoader,
) -> RetrainResult:
    started = time.perf_counter()
    say: Progress = lambda percent, message: _say(sessions, job.id, percent, message)  # noqa: E731
    say(1, "gathering labels")
    with sessions() as session:
        labels = gather_labels(
            session,
            site_id=job.site_id,
            moderator_weight=options.moderator_weight,
            import_weight=options.import_weight,
        )
    counts = labels.counts()
    spam = sum(labels.labels)
    say(10, f"{len(labels)} labels ({counts['moderator']} moderator, {counts['import']} import)")
    if len(labels) < options.min_labels or spam == 0 or spam == len(labels):
        raise RetrainFailed(
            f"{len(labels)} labels ({spam} spam): retraining needs at least "
            f"{options.min_labels}, with both spam and ham"
        )
    fit, held = split_holdout(len(labels), options.holdout)
    records = [labels.records[i] for i in fit]
    y = [labels.labels[i] for i in fit]
    weights = [labels.weights[i] for i in fit]
    sources = [labels.sources[i] for i in fit]
    held_records = [labels.records[i] for i in held]
    held_y = [labels.labels[i] for i in held]
    loaded = time.perf_counter()

    def training_progress(message: str) -> None:
        percent = 15
        if "cross-validating" in message:
            percent = 30
        elif "final model" in message:
            percent = 60
        elif message.startswith("done"):
            percent = 75
        say(percent, f"training: {message}")

    say(15, f"training on {len(records)} comments, {len(held)} held out")
    if sum(y) == 0 or sum(y) == len(y):
        raise RetrainFailed("the training split holds one class only; label more comments")
    candidate = train(
        records,
        y,
        seed=SEED,
        sources=sources,
        sample_weight=weights,
        progress=training_progress,
    )
    trained = time.perf_counter()

    say(78, "measuring the candidate and the active version on the held-out labels")
    # The scores the service would use (weak evidence held, not marked spam), so that the
    # gate weighs what each version would decide.
    candidate_scores = candidate.probabilities(held_records)
    candidate_metrics = compute_metrics(held_y, candidate_scores, candidate.thresholds.spam)
    with sessions() as session:
        active_id, active = active_loader(session, job.site_id)
    active_scores = active.probabilities(held_records)
    active_metrics = compute_metrics(held_y, active_scores, active.thresholds.spam)
    gate = quality_gate(
        candidate_metrics.to_dict(),
        active_metrics.to_dict(),
        max_f1_drop=options.max_f1_drop,
        max_fpr_rise=options.max_fpr_rise,
    )
    data, metadata = classifier_bytes(candidate)
    report = report_data(
        title=f"Classifier {metadata.version}",
        labels=np.asarray(held_y),
        scores=candidate_scores,
        thresholds=candidate.thresholds,
        name="candidate",
        compare={"active": Scored(np.asarray(held_y), active_scores, active.thresholds)},
        extra_metrics=candidate.metadata["metrics"],
        meta={
            "version": metadata.version,
            "active_version": active_id,
            "training": {**counts, "train": len(records), "holdout": len(held)},
        },
    )
    evaluated = time.perf_counter()

    say(90, f"storing version {metadata.version}; gate {'passed' if gate.passed else 'failed'}")
    activated = False
    with sessions.begin() as session:
        version = store_version(
            session,
            ClassifierVersion(
                id=metadata.version,
                site_id=job.site_id,
                created_by=job.requested_by,
                status=VersionStatus.candidate,
                artifact=data,
                artifact_sha256=hashlib.sha256(data).hexdigest(),
                training={
                    **counts,
                    "train": len(records),
                    "holdout": len(held),
                    "spam": spam,
                    "ham": len(labels) - spam,
                    "fingerprint": dataset_fingerprint(labels.records, labels.labels),
                    "datasets": sorted(labels.datasets),
                    "last_label_id": labels.last_id,
                    "job": str(job.id),
                },
                metrics={
                    "candidate": candidate_metrics.to_dict(),
                    "active": active_metrics.to_dict(),
                    "active_version": active_id,
                    "cross_validated": candidate.metadata["metrics"],
                },
                thresholds=candidate.thresholds.to_dict(),
                gate=gate.to_dict(),
                report=report,
                notes=None,
            ),
        )
        if gate.passed and options.promote:
            actor = _actor_of(job.requested_by)
            activate(
                session,
                version_id=version.id,
                actor=actor,
                now=dt.datetime.now(dt.UTC),
                note="activated by the quality gate: " + "; ".join(gate.reasons),
            )
            activated = True
        elif not gate.passed:
            version.notes = "kept as a candidate by the quality gate: " + "; ".join(gate.reasons)
    stored = time.perf_counter()
    status = VersionStatus.active if activated else VersionStatus.candidate
    say(99, f"version {metadata.version} is {status.value}")
    return RetrainResult(
        version_id=metadata.version,
        status=status,
        activated=activated,
        gate=gate.to_dict(),
        timings={
            "loading": round(loaded - started, 3),
            "training": round(trained - loaded, 3),
            "evaluating": round(evaluated - trained, 3),
            "storing": round(stored - evaluated, 3),
            "total": round(stored - started, 3),
        },
    )


def _actor_of(requested_by: str) -> Actor:
    issuer, _, subject = requested_by.partition(" ")
    return Actor(issuer=issuer, subject=subject or issuer)


def new_labels_since_last_version(session: Session, *, site_id: int | None) -> int:
    """Labels (of the site, or of every site) that came after the newest version of the
    scope was gathered (above the highest label id it read; for a version without that,
    created after it); all of them when the scope has no version yet."""
    scope = (
        ClassifierVersion.site_id.is_(None)
        if site_id is None
        else ClassifierVersion.site_id == site_id
    )
    last = session.execute(
        select(ClassifierVersion.training, ClassifierVersion.created_at)
        .where(scope)
        .order_by(ClassifierVersion.created_at.desc())
        .limit(1)
    ).one_or_none()
    query = select(func.count()).select_from(Label)
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    if last is not None:
        last_id = (last.training or {}).get("last_label_id")
        if isinstance(last_id, int):
            query = query.where(Label.id > last_id)
        else:
            query = query.where(Label.created_at > last.created_at)
    return int(session.scalar(query) or 0)
