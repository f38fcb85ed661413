"""Test data made through the domain, as the API makes it: sites, then comments that are
``pending`` with their outbox rows; and what the workers made of them."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Comment, OutboxTask, Site, Status, Verdict
from service.moderation.policy import SitePolicy
from service.moderation.sites import SiteInfo, create_site
from service.moderation.submit import CommentInput, submit_comment
from service.moderation.types import Identity

ISSUER = "https://issuer.test"

#: Plain comments and obvious spam, so the classifier has both to decide on.
SAMPLE_TEXTS = (
    "Thanks for writing this up, the section on connection pools saved me an afternoon.",
    "I tried the second approach and it works on PostgreSQL 15 as well.",
    "BUY CHEAP FOLLOWERS NOW!!! visit http://cheap-followers.example/promo best prices",
    "Could you say more about how the retries interact with the visibility timeout?",
    "Earn $5000 a week from home, click here http://money.example/now limited offer",
)


def make_site(session: Session, *, policy: SitePolicy | None = None) -> Site:
    """A site with a random slug and flood control off (tests post many comments quickly)."""
    return create_site(
        session,
        slug=f"site-{secrets.token_hex(4)}",
        name="Test site",
        url="https://blog.test",
        issuers=[ISSUER],
        audiences=["commentguard"],
        policy=policy or SitePolicy(flood_limit_per_minute=0),
    )


def submit_text(session: Session, site: SiteInfo, subject: str, content: str) -> uuid.UUID:
    """Submit one comment by ``subject`` (of :data:`ISSUER`) on ``/post/1`` of ``site``, as
    the API does; its id. Flushes; the caller commits."""
    return submit_comment(
        session,
        site=site,
        identity=Identity(issuer=ISSUER, subject=subject),
        data=CommentInput(thread="/post/1", content=content),
        idempotency_key=None,
        request_hash=hashlib.sha256(content.encode()).hexdigest(),
        now=dt.datetime.now(dt.UTC),
        outbox_timeout=dt.timedelta(minutes=5),
    ).id


def submit_comments(
    session: Session,
    site: Site,
    count: int,
    *,
    outbox_timeout: dt.timedelta,
    now: dt.datetime | None = None,
) -> list[uuid.UUID]:
    """Store ``count`` pending comments on ``site`` (each with its outbox row, exactly as
    ``submit_comment`` writes them) and return their ids. Flushes; the caller commits."""
    now = now or dt.datetime.now(dt.UTC)
    ids: list[uuid.UUID] = []
    for n in range(count):
        identity = Identity(issuer=ISSUER, subject=f"reader-{n % 7}", name=f"Reader {n % 7}")
        text = f"{SAMPLE_TEXTS[n % len(SAMPLE_TEXTS)]} (#{n} {secrets.token_hex(3)})"
        submission = submit_comment(
            session,
            site=SiteInfo.of(site),
            identity=identity,
            data=CommentInput(thread="/post/1", content=text),
            idempotency_key=None,
            request_hash=hashlib.sha256(text.encode()).hexdigest(),
            now=now,
            outbox_timeout=outbox_timeout,
        )
        ids.append(submission.id)
    session.flush()
    return ids


def verdict_counts(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many verdicts each of ``ids`` has (absent: none)."""
    rows = session.execute(
        select(Verdict.comment_id, func.count(Verdict.id))
        .where(Verdict.comment_id.in_(ids))
        .group_by(Verdict.comment_id)
    )
    return dict(rows.all())


def pending_count(session: Session, ids: Sequence[uuid.UUID]) -> int:
    """How many of ``ids`` are still ``pending``."""
    return (
        session.scalar(
            select(func.count(Comment.id)).where(
                Comment.id.in_(ids), Comment.status == Status.pending
            )
        )
        or 0
    )


def open_outbox_rows(session: Session, ids: Sequence[uuid.UUID]) -> list[OutboxTask]:
    """The outbox rows of ``ids`` not yet marked done."""
    keys = [str(i) for i in ids]
    return list(
        session.scalars(
            select(OutboxTask).where(OutboxTask.key.in_(keys), OutboxTask.done_at.is_(None))
        )
    )
