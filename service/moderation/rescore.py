"""Re-scoring after a promotion: pending and held comments decided again by the classifier
now active for their site.

A batch locks its comments (``FOR UPDATE SKIP LOCKED``: a worker classifying one of them
right now keeps it), skips every comment whose latest verdict already came from the
version that would score it now (so running a re-score twice writes nothing the second
time) and every held comment a person has acted on (an ``audit_log`` row: a moderator's
hold is a decision, not a score), and runs each remaining comment through the worker's
own path (:func:`~service.moderation.classify.classify_comment`), which writes a new
verdict and moves the comment as the site's policy says. The batch is scored at once
(``score_many`` per classifier); a comment whose record changed meanwhile (its author's
counts moved with an earlier comment of the batch) is scored again on its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from models import AuditEntry, Author, Comment, Status, Verdict
from service.moderation.classify import (
    BatchScores,
    ClassifierChoice,
    classify_comment,
    record_of,
)
from service.moderation.deliveries import DEFAULT_LEASE

RESCORED_STATUSES = frozenset({Status.pending, Status.held})


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch's outcome: comments ``seen`` (locked), ``rescored`` (a new verdict),
    and the last id seen, from which the next batch starts (None: nothing was left)."""

    seen: int
    rescored: int
    last_id: uuid.UUID | None
    #: The webhook deliveries the new verdicts wrote.
    deliveries: tuple[int, ...] = ()


def rescore_batch(
    session: Session,
    *,
    classifier: ClassifierChoice,
    site_id: int | None,
    after: uuid.UUID | None,
    size: int,
    now: dt.datetime | None = None,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> Batch:
    """Re-score up to ``size`` pending or held comments (of ``site_id``, or of every site
    when None) with ids after ``after``, in id order. The webhook deliveries of the new
    verdicts (``comment.classified`` events with ``rescore: true``) are in
    ``Batch.deliveries``, due ``webhook_lease`` after ``now``, for the caller to send after
    its commit. Executes statements; the caller commits once per batch."""
    now = now or dt.datetime.now(dt.UTC)
    acted_on = exists().where(AuditEntry.comment_id == Comment.id)
    query = (
        select(
            Comment.id,
            Comment.site_id,
            Comment.status,
            Comment.content,
            Comment.author_name,
            Comment.author_email,
            Comment.author_url,
            Comment.user_ip,
            Comment.user_agent,
            Comment.referrer,
            Comment.permalink,
            Comment.lang,
            Author.approved_count,
            Author.spam_count,
        )
        .join(Author, Author.id == Comment.author_id)
        .where(Comment.status.in_(list(RESCORED_STATUSES)))
        .where(~((Comment.status == Status.held) & acted_on))
        .order_by(Comment.id)
        .limit(size)
        .with_for_update(of=Comment, skip_locked=True)
    )
    if site_id is not None:
        query = query.where(Comment.site_id == site_id)
    if after is not None:
        query = query.where(Comment.id > after)
    rows = session.execute(query).all()
    if not rows:
        return Batch(0, 0, None)
    latest = _latest_versions(session, [row.id for row in rows])
    todo = [row for row in rows if latest.get(row.id) != classifier.for_site(row.site_id).version]
    scored = BatchScores(classifier)
    scored.score_batch([(row.site_id, record_of(row)) for row in todo])
    rescored = 0
    deliveries: list[int] = []
    for row in todo:
        decided = classify_comment(
            session,
            comment_id=row.id,
            classifier=scored,
            now=now,
            statuses=RESCORED_STATUSES,
            rescore=True,
            webhook_lease=webhook_lease,
        )
        if decided is not None:
            rescored += 1
            deliveries.extend(decided.deliveries)
    return Batch(len(rows), rescored, rows[-1].id, tuple(deliveries))


def _latest_versions(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    found: dict[uuid.UUID, str] = {}
    rows = session.execute(
        select(Verdict.comment_id, Verdict.classifier_version)
        .where(Verdict.comment_id.in_(ids))
        .order_by(Verdict.created_at, Verdict.id)
    )
    for comment_id, version in rows:
        found[comment_id] = version
    return found
