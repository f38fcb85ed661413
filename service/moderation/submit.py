"""Accepting a comment: checks, then the comment and its outbox row in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Author, Comment, OutboxTask, Site, Status, Trust
from service.moderation.errors import Conflict, FieldError, InvalidInput, RateLimited
from service.moderation.sites import site_policy_of
from service.moderation.types import Identity

CLASSIFY_TASK = "commentguard.classify_comment"

#: A duplicate is the same text from the same author in the same thread within this window.
DUPLICATE_WINDOW = dt.timedelta(days=1)
FLOOD_WINDOW = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CommentInput:
    """A validated comment as the API received it (lengths and formats already checked)."""

    thread: str
    content: str
    parent: uuid.UUID | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_url: str | None = None
    user_ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    permalink: str | None = None
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """The stored comment; ``replayed`` when an idempotent retry found the first one."""

    comment: Comment
    replayed: bool


def content_hash(text: str) -> str:
    """sha256 of the text after Unicode NFKC, case folding and collapsing white space, so
    that trivially re-typed duplicates hash alike."""
    normal = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


def submit_comment(
    session: Session,
    *,
    site: Site,
    identity: Identity,
    data: CommentInput,
    idempotency_key: str | None,
    request_hash: str,
    now: dt.datetime,
    outbox_timeout: dt.timedelta,
) -> Submission:
    """Store a new comment (``pending``) and the outbox row that gets it classified.

    Raises ``InvalidInput`` for a parent outside the thread or an idempotency key reused
    with another request, ``Conflict`` for a duplicate, ``RateLimited`` for a flood. A retry
    with the same idempotency key and the same ``request_hash`` returns the first comment
    and writes nothing. Flushes; never commits.
    """
    author = _author_for(session, site=site, identity=identity)

    if idempotency_key is not None:
        earlier = session.scalar(
            select(Comment).where(
                Comment.author_id == author.id, Comment.idempotency_key == idempotency_key
            )
        )
        if earlier is not None:
            return _replay(earlier, request_hash)

    if data.parent is not None:
        parent_thread = session.scalar(
            select(Comment.thread).where(Comment.id == data.parent, Comment.site_id == site.id)
        )
        if parent_thread != data.thread:
            raise InvalidInput(
                "invalid comment",
                [FieldError("parent", "no comment with this id in this thread")],
            )

    digest = content_hash(data.content)
    duplicate = session.scalar(
        select(Comment.id).where(
            Comment.author_id == author.id,
            Comment.content_hash == digest,
            Comment.thread == data.thread,
            Comment.status != Status.trash,
            Comment.created_at >= now - DUPLICATE_WINDOW,
        )
    )
    if duplicate is not None:
        raise Conflict(f"duplicate comment: this author said that already ({duplicate})")

    limit = site_policy_of(site).flood_limit_per_minute
    if limit and author.trust is not Trust.trusted:
        recent = session.scalar(
            select(func.count(Comment.id)).where(
                Comment.author_id == author.id, Comment.created_at >= now - FLOOD_WINDOW
            )
        )
        if (recent or 0) >= limit:
            raise RateLimited(
                f"more than {limit} comments a minute from this author",
                retry_after=int(FLOOD_WINDOW.total_seconds()),
            )

    comment = Comment(
        id=uuid.uuid4(),
        site_id=site.id,
        thread=data.thread,
        parent_id=data.parent,
        author_id=author.id,
        author_name=data.author_name or identity.name,
        author_email=data.author_email or identity.email,
        author_url=data.author_url,
        content=data.content,
        user_ip=data.user_ip,
        user_agent=data.user_agent,
        referrer=data.referrer,
        permalink=data.permalink,
        lang=data.lang,
        status=Status.pending,
        content_hash=digest,
        idempotency_key=idempotency_key,
        request_hash=request_hash if idempotency_key is not None else None,
        extra={"email_verified": identity.email_verified} if identity.email else {},
    )
    outbox = OutboxTask(
        task=CLASSIFY_TASK,
        key=str(comment.id),
        payload={"comment_id": str(comment.id)},
        next_attempt_at=now + outbox_timeout,
    )
    if idempotency_key is None:
        session.add_all([comment, outbox])
        session.flush()
        return Submission(comment, replayed=False)

    # Two retries racing with one key: the unique constraint lets one insert win; the
    # loser finds the winner's comment and answers as a replay.
    try:
        with session.begin_nested():
            session.add_all([comment, outbox])
            session.flush()
    except IntegrityError:
        winner = session.scalar(
            select(Comment).where(
                Comment.author_id == author.id, Comment.idempotency_key == idempotency_key
            )
        )
        if winner is None:
            raise
        return _replay(winner, request_hash)
    return Submission(comment, replayed=False)


def _replay(earlier: Comment, request_hash: str) -> Submission:
    if earlier.request_hash != request_hash:
        raise InvalidInput(
            "Idempotency-Key reused with a different request",
            [FieldError("Idempotency-Key", "this key was used for a different request body")],
        )
    return Submission(earlier, replayed=True)


def _author_for(session: Session, *, site: Site, identity: Identity) -> Author:
    """The site's author row for this identity, created on first sight.

    Uses INSERT ... ON CONFLICT DO NOTHING so two first comments racing from one new
    author do not fail on the unique (site, issuer, subject) constraint.
    """
    where = (
        Author.site_id == site.id,
        Author.issuer == identity.issuer,
        Author.subject == identity.subject,
    )
    author = session.scalar(select(Author).where(*where))
    if author is not None:
        if identity.name and author.display_name != identity.name:
            author.display_name = identity.name
        return author
    values = {
        "site_id": site.id,
        "issuer": identity.issuer,
        "subject": identity.subject,
        "display_name": identity.name,
        "email": identity.email,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Author).values(**values).on_conflict_do_nothing())
    author = session.scalar(select(Author).where(*where))
    assert author is not None, "author row exists after insert-or-ignore"
    return author
