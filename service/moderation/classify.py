"""Classifying one comment: score, apply the site policy, record the verdict."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from models import Author, Comment, OutboxTask, Site, Status, Trust, Verdict
from service.classifier import CommentRecord, Score
from service.classifier.evaluation import Thresholds
from service.moderation.policy import (
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


# Statements are built once per process: this is the worker's hot path.
_LOCK_COMMENT = (
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
    )
    .join(Author, Author.id == Comment.author_id)
    .join(Site, Site.id == Comment.site_id)
    .where(Comment.id == bindparam("comment_id"))
    .with_for_update(of=Comment)
)
# PostgreSQL: the same, and the transaction commits without waiting for its WAL to reach the
# disk (synchronous_commit off, for this transaction only; set in the same round trip). A
# verdict lost in a database crash is lost with its comment's move and its outbox row's
# mark, so the comment is pending again with its task due, and the sweeper has it scored
# again. What a moderator or the API commits afterwards is flushed with everything before
# it. The comment path then waits for one WAL flush per comment (its acceptance), not two.
_LOCK_COMMENT_ASYNC = _LOCK_COMMENT.add_columns(
    func.set_config("synchronous_commit", "off", True).label("synchronous_commit")
)
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
# PostgreSQL: every write of a verdict in one round trip, through data-modifying CTEs.
_WRITE_ALL = _MARK_DONE.add_cte(
    _INSERT_VERDICT.cte("new_verdict"),
    _UPDATE_COMMENT.cte("moved_comment"),
    _COUNT_AUTHOR.cte("counted_author"),
)


def classify_comment(
    session: Session,
    *,
    comment_id: uuid.UUID,
    classifier: ClassifierChoice,
    now: dt.datetime | None = None,
    statuses: frozenset[Status] = frozenset({Status.pending}),
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
    Executes statements; the caller commits once.
    """
    now = now or dt.datetime.now(dt.UTC)
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    lock = _LOCK_COMMENT_ASYNC if postgresql else _LOCK_COMMENT
    row = connection.execute(lock, {"comment_id": comment_id}).one_or_none()
    if row is None or Status(row.status) not in statuses:
        connection.execute(_MARK_DONE, {"o_key": str(comment_id), "o_now": now})
        return None

    policy = SitePolicy.model_validate(row.policy or {})
    trust = effective_trust(Trust(row.trust), row.banned_until, now)
    chosen = classifier.for_site(row.site_id)
    score = chosen.score(record_of(row))
    thresholds = effective_thresholds(policy, chosen.thresholds)
    decision = decide(
        policy,
        thresholds,
        score=score.probability,
        text=row.content,
        trust=trust,
        # approved_count counts the author's comments that are approved now (see
        # service/moderation/actions.py), so a comment a moderator took back counts no more.
        known_author=row.approved_count > 0,
    )

    reasons: list[dict[str, Any]] = [
        {"phrase": r.phrase, "weight": round(r.weight, 4), "feature": r.feature}
        for r in score.reasons
    ]
    reasons.extend(
        {"phrase": r.phrase, "weight": None, "feature": r.feature} for r in decision.rules
    )
    decided = Decided(
        comment_id=comment_id,
        decision=decision.status,
        discard=decision.discard,
        score=score.probability,
        classifier_version=chosen.version,
        reasons=reasons,
        latency_ms=_elapsed_ms(row.created_at, now),
    )
    params = {
        "v_comment_id": comment_id,
        "v_version": decided.classifier_version,
        "v_score": decided.score,
        "v_decision": decided.decision.value,
        "v_discard": decided.discard,
        "v_reasons": reasons,
        "v_latency_ms": decided.latency_ms,
        "c_id": comment_id,
        "c_status": decided.decision.value,
        "c_discard": decided.discard,
        "c_score": decided.score,
        "a_id": row.author_id,
        "a_approved": 1 if decided.decision is Status.approved else 0,
        "a_spam": 1 if decided.decision is Status.spam else 0,
        "o_key": str(comment_id),
        "o_now": now,
    }
    if postgresql:
        connection.execute(_WRITE_ALL, params)
    else:
        for statement in (_INSERT_VERDICT, _UPDATE_COMMENT, _COUNT_AUTHOR, _MARK_DONE):
            connection.execute(statement, params)
    log.info(
        "verdict comment=%s decision=%s score=%.4f version=%s",
        comment_id,
        decided.decision.value,
        decided.score,
        decided.classifier_version,
    )
    return decided


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
