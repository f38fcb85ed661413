"""Classifying one comment: score, apply the site policy, record the verdict."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Author, Comment, OutboxTask, Site, Status, Verdict
from service.classifier import CommentRecord, Score
from service.classifier.evaluation import Thresholds
from service.moderation.policy import decide, effective_thresholds
from service.moderation.sites import site_policy_of
from service.moderation.submit import CLASSIFY_TASK

log = logging.getLogger(__name__)


class ScoringClassifier(Protocol):
    """What classification needs of a classifier: a version, suggested thresholds, scores."""

    @property
    def version(self) -> str: ...

    @property
    def thresholds(self) -> Thresholds: ...

    def score(self, record: CommentRecord) -> Score: ...


def record_of(comment: Comment, author: Author) -> CommentRecord:
    """The classifier's view of a stored comment and its author's history."""
    return CommentRecord(
        content=comment.content,
        author_name=comment.author_name,
        author_email=comment.author_email,
        author_url=comment.author_url,
        user_ip=comment.user_ip,
        user_agent=comment.user_agent,
        referrer=comment.referrer,
        permalink=comment.permalink,
        lang=comment.lang,
        approved_count=author.approved_count,
        spam_count=author.spam_count,
    )


def classify_comment(
    session: Session,
    *,
    comment_id: uuid.UUID,
    classifier: ScoringClassifier,
    now: dt.datetime | None = None,
) -> Verdict | None:
    """Score a pending comment, decide by the site's policy, and record it all.

    Guarantees: the comment row is locked for the duration, so two deliveries of the same
    task cannot both write a verdict; a comment that is no longer ``pending`` (or no longer
    exists) gets nothing new and ``None`` is returned. Either way the comment's outbox row
    is marked done. Flushes; the caller commits once.
    """
    now = now or dt.datetime.now(dt.UTC)
    # One round trip: the comment (locked), its author and its site.
    row = session.execute(
        select(Comment, Author, Site)
        .join(Author, Author.id == Comment.author_id)
        .join(Site, Site.id == Comment.site_id)
        .where(Comment.id == comment_id)
        .with_for_update(of=Comment)
    ).one_or_none()
    if row is None or row[0].status is not Status.pending:
        _mark_done(session, comment_id, now)
        return None
    comment, author, site = row
    policy = site_policy_of(site)
    score = classifier.score(record_of(comment, author))
    thresholds = effective_thresholds(policy, classifier.thresholds)
    decision = decide(
        policy, thresholds, score=score.probability, text=comment.content, trust=author.trust
    )

    reasons: list[dict[str, Any]] = [
        {"phrase": r.phrase, "weight": round(r.weight, 4), "feature": r.feature}
        for r in score.reasons
    ]
    reasons.extend(
        {"phrase": r.phrase, "weight": None, "feature": r.feature} for r in decision.rules
    )
    verdict = Verdict(
        comment_id=comment.id,
        classifier_version=classifier.version,
        score=score.probability,
        decision=decision.status.value,
        discard=decision.discard,
        reasons=reasons,
        latency_ms=_elapsed_ms(comment.created_at, now),
    )
    session.add(verdict)
    comment.status = decision.status
    comment.discard = decision.discard
    comment.score = score.probability
    # Counters move in SQL, not in Python: concurrent workers must not lose increments.
    if decision.status is Status.approved:
        session.execute(
            update(Author)
            .where(Author.id == author.id)
            .values(approved_count=Author.approved_count + 1)
        )
    elif decision.status is Status.spam:
        session.execute(
            update(Author).where(Author.id == author.id).values(spam_count=Author.spam_count + 1)
        )
    _mark_done(session, comment_id, now)
    session.flush()
    log.info(
        "verdict comment=%s decision=%s score=%.4f version=%s",
        comment.id,
        decision.status.value,
        score.probability,
        classifier.version,
    )
    return verdict


def _mark_done(session: Session, comment_id: uuid.UUID, now: dt.datetime) -> None:
    session.execute(
        update(OutboxTask)
        .where(
            OutboxTask.task == CLASSIFY_TASK,
            OutboxTask.key == str(comment_id),
            OutboxTask.done_at.is_(None),
        )
        .values(done_at=now)
    )


def _elapsed_ms(created_at: dt.datetime, now: dt.datetime) -> float:
    # SQLite hands back naive timestamps; they are UTC (CURRENT_TIMESTAMP).
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    return max(0.0, (now - created_at).total_seconds() * 1000.0)
