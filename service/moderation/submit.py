"""Accepting a comment: checks, then the comment and its outbox row in one transaction.

This is the hot path of the API, so it speaks SQL Core on the session's connection with as
few round trips as the guarantees allow. On PostgreSQL, without an idempotency key: one
statement finds the author with the counts the duplicate and flood checks need and, when
they pass, inserts the comment and its outbox row (for a new author, a second statement
inserts the author row, the comment and its outbox row). Otherwise: the author and its
counts (one SELECT), the replay lookup, then the comment and its outbox row (one INSERT
on PostgreSQL, two elsewhere).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Author, Comment, OutboxTask, Status, Trust
from service.moderation.errors import Conflict, FieldError, InvalidInput, RateLimited
from service.moderation.sites import SiteInfo
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
class Accepted:
    """An accepted comment as it was when accepted; ``replayed`` when an idempotent retry
    found the first one instead of storing a new one."""

    id: uuid.UUID
    thread: str
    parent: uuid.UUID | None
    author_name: str | None
    content: str
    created_at: dt.datetime
    replayed: bool


def content_hash(text: str) -> str:
    """sha256 of the text after Unicode NFKC, case folding and collapsing white space, so
    that trivially re-typed duplicates hash alike."""
    normal = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


def submit_comment(
    session: Session,
    *,
    site: SiteInfo,
    identity: Identity,
    data: CommentInput,
    idempotency_key: str | None,
    request_hash: str | None,
    now: dt.datetime,
    outbox_timeout: dt.timedelta,
) -> Accepted:
    """Store a new comment (``pending``) and the outbox row that gets it classified.

    Raises ``InvalidInput`` for a parent outside the thread or an idempotency key reused
    with another request, ``Conflict`` for a duplicate, ``RateLimited`` for a flood. A retry
    with the same idempotency key and the same ``request_hash`` returns the first comment
    and writes nothing. ``request_hash`` is needed only with an idempotency key (``None``
    without one: nothing compares it). Executes statements; never commits. On PostgreSQL
    without an idempotency key, at most one of the statements it runs writes (the comment
    and its outbox row, and a new author's row, all in that one), so that it may run
    without a transaction around it and still never leave half of it written.
    """
    if idempotency_key is not None and request_hash is None:
        raise ValueError("an idempotency key needs the request's hash")
    digest = content_hash(data.content)
    comment_id = uuid.uuid4()
    values: dict[str, Any] = {
        "id": comment_id,
        "site_id": site.id,
        "thread": data.thread,
        "parent_id": data.parent,
        "author_id": None,
        "author_name": data.author_name or identity.name,
        "author_email": data.author_email or identity.email,
        "author_url": data.author_url,
        "content": data.content,
        "user_ip": data.user_ip,
        "user_agent": data.user_agent,
        "referrer": data.referrer,
        "permalink": data.permalink,
        "lang": data.lang,
        "status": Status.pending,
        "content_hash": digest,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash if idempotency_key is not None else None,
        "extra": {"email_verified": identity.email_verified} if identity.email else {},
        "version": 1,
    }
    outbox = {
        "task": CLASSIFY_TASK,
        "key": str(comment_id),
        "payload": {"comment_id": str(comment_id)},
        "next_attempt_at": now + outbox_timeout,
        "attempts": 0,
    }
    connection = session.connection()
    if idempotency_key is None and connection.dialect.name == "postgresql":
        if data.parent is not None:
            _check_parent(session, site=site, data=data)
        return _check_and_insert(
            session, site=site, identity=identity, values=values, outbox=outbox, now=now
        )

    author = _author_for(
        session, site=site, identity=identity, digest=digest, thread=data.thread, now=now
    )
    values["author_id"] = author_id = author.id
    if idempotency_key is not None:
        earlier = _by_key(session, author_id, idempotency_key)
        if earlier is not None:
            return _replay(earlier, request_hash)
    if data.parent is not None:
        _check_parent(session, site=site, data=data)
    _check_author(author, site)
    if idempotency_key is None:
        return _insert(session, values, outbox)
    # Two retries racing with one key: the unique constraint lets one insert win; the
    # loser finds the winner's comment and answers as a replay.
    try:
        with session.begin_nested():
            return _insert(session, values, outbox)
    except IntegrityError:
        winner = _by_key(session, author_id, idempotency_key)
        if winner is None:
            raise
        return _replay(winner, request_hash)


def _check_parent(session: Session, *, site: SiteInfo, data: CommentInput) -> None:
    parent_thread = session.scalar(
        select(Comment.thread).where(Comment.id == data.parent, Comment.site_id == site.id)
    )
    if parent_thread != data.thread:
        raise InvalidInput(
            "invalid comment",
            [FieldError("parent", "no comment with this id in this thread")],
        )


def _check_author(author: _Author, site: SiteInfo) -> None:
    """``Conflict`` for a duplicate, ``RateLimited`` for a flood (trusted authors have no
    flood limit). :data:`_ADMITTED` says the same in SQL."""
    if author.duplicates:
        raise Conflict("duplicate comment: this author said that already in this thread")
    limit = site.policy.flood_limit_per_minute if author.trust is not Trust.trusted else 0
    if limit and author.recent >= limit:
        raise RateLimited(
            f"more than {limit} comments a minute from this author",
            retry_after=int(FLOOD_WINDOW.total_seconds()),
        )


_COMMENT_COLUMNS = (
    "id",
    "site_id",
    "thread",
    "parent_id",
    "author_id",
    "author_name",
    "author_email",
    "author_url",
    "content",
    "user_ip",
    "user_agent",
    "referrer",
    "permalink",
    "lang",
    "status",
    "content_hash",
    "idempotency_key",
    "request_hash",
    "extra",
    "version",
)
_OUTBOX_COLUMNS = ("task", "key", "payload", "next_attempt_at", "attempts")

# Statements are built once: building one per request (coercing 25 values, computing its
# cache key) cost more than executing it.
_INSERT_COMMENT = (
    insert(Comment)
    .values({name: bindparam(f"comment_{name}") for name in _COMMENT_COLUMNS})
    .returning(Comment.created_at)
)
_INSERT_OUTBOX = insert(OutboxTask).values(
    {name: bindparam(f"outbox_{name}") for name in _OUTBOX_COLUMNS}
)
# PostgreSQL: both rows in one round trip, through a data-modifying CTE.
_NEW_COMMENT = _INSERT_COMMENT.cte("new_comment")
_INSERT_BOTH = _INSERT_OUTBOX.add_cte(_NEW_COMMENT).returning(
    select(_NEW_COMMENT.c.created_at).scalar_subquery()
)


def _insert(session: Session, values: dict[str, Any], outbox: dict[str, Any]) -> Accepted:
    """Insert the comment and its outbox row; on PostgreSQL in one statement, elsewhere
    in two."""
    connection = session.connection()
    params = {f"comment_{name}": value for name, value in values.items()}
    params.update({f"outbox_{name}": value for name, value in outbox.items()})
    if connection.dialect.name == "postgresql":
        created_at = connection.execute(_INSERT_BOTH, params).scalar_one()
    else:
        created_at = connection.execute(_INSERT_COMMENT, params).scalar_one()
        connection.execute(_INSERT_OUTBOX, params)
    return Accepted(
        id=values["id"],
        thread=values["thread"],
        parent=values["parent_id"],
        author_name=values["author_name"],
        content=values["content"],
        created_at=created_at,
        replayed=False,
    )


_ACCEPTED_COLUMNS = (
    Comment.id,
    Comment.thread,
    Comment.parent_id,
    Comment.author_name,
    Comment.content,
    Comment.created_at,
    Comment.request_hash,
)


def _by_key(session: Session, author_id: int, key: str) -> Any:
    return (
        session.connection()
        .execute(
            select(*_ACCEPTED_COLUMNS).where(
                Comment.author_id == author_id, Comment.idempotency_key == key
            )
        )
        .one_or_none()
    )


def _replay(earlier: Any, request_hash: str | None) -> Accepted:
    if earlier.request_hash != request_hash:
        raise InvalidInput(
            "Idempotency-Key reused with a different request",
            [FieldError("Idempotency-Key", "this key was used for a different request body")],
        )
    return Accepted(
        id=earlier.id,
        thread=earlier.thread,
        parent=earlier.parent_id,
        author_name=earlier.author_name,
        content=earlier.content,
        created_at=earlier.created_at,
        replayed=True,
    )


_MINE = Comment.author_id == Author.id
_AUTHOR_QUERY = select(
    Author.id.label("author_id"),
    Author.trust.label("trust"),
    select(func.count())
    .where(_MINE, Comment.created_at >= bindparam("flood_since"))
    .scalar_subquery()
    .label("recent"),
    select(func.count())
    .where(
        _MINE,
        Comment.created_at >= bindparam("duplicate_since"),
        Comment.content_hash == bindparam("digest"),
        Comment.thread == bindparam("thread"),
        Comment.status != Status.trash,
    )
    .scalar_subquery()
    .label("duplicates"),
).where(
    Author.site_id == bindparam("site_id"),
    Author.issuer == bindparam("issuer"),
    Author.subject == bindparam("subject"),
)


def _typed(table: Any, prefix: str, name: str) -> Any:
    # A parameter in a SELECT list has no column to take its type from: give it one.
    return bindparam(f"{prefix}_{name}", type_=table.c[name].type)


# PostgreSQL, a known author, no idempotency key (the common case): the author's counts,
# the checks on them, and both inserts in one statement. Rows are inserted only when the
# checks pass; the counts come back either way, so that a refusal can say why.
_FOUND = _AUTHOR_QUERY.cte("author")
_FLOOD_LIMIT = bindparam("flood_limit", type_=Integer)
_ADMITTED = and_(
    _FOUND.c.duplicates == 0,
    or_(
        _FOUND.c.trust == Trust.trusted,
        _FLOOD_LIMIT == 0,
        _FOUND.c.recent < _FLOOD_LIMIT,
    ),
)


def _insert_both(author: Any, admitted: Any, recent: Any, duplicates: Any) -> Any:
    """One statement: from the CTE ``author`` (``author_id``, ``trust``), the comment and
    its outbox row, inserted only where ``admitted``; it answers the author's id, trust,
    ``recent`` and ``duplicates`` counts, and the comment's ``created_at`` (None when
    refused)."""
    # Every column is given (discard: its default), so that no Python-side default is
    # left for SQLAlchemy to fill in a nested INSERT.
    comment = (
        insert(Comment)
        .from_select(
            [*_COMMENT_COLUMNS, "discard"],
            select(
                *(
                    author.c.author_id
                    if name == "author_id"
                    else _typed(Comment.__table__, "comment", name)
                    for name in _COMMENT_COLUMNS
                ),
                false(),
            ).where(admitted),
        )
        .returning(Comment.created_at)
        .cte("new_comment")
    )
    outbox = insert(OutboxTask).from_select(
        list(_OUTBOX_COLUMNS),
        select(
            *(_typed(OutboxTask.__table__, "outbox", name) for name in _OUTBOX_COLUMNS)
        ).select_from(comment),
    )
    return select(
        author.c.author_id,
        author.c.trust,
        recent.label("recent"),
        duplicates.label("duplicates"),
        select(comment.c.created_at).scalar_subquery().label("created_at"),
    ).add_cte(outbox.cte("new_outbox"))


_CHECK_AND_INSERT = _insert_both(_FOUND, _ADMITTED, _FOUND.c.recent, _FOUND.c.duplicates)


def _new_author(insert_of: Any) -> Any:
    """The new-author upsert, in the INSERT of one dialect (``postgresql`` or ``sqlite``).
    Every column is given (the defaults' values), so that the statement can also stand in
    a CTE, where SQLAlchemy fills in no Python-side default."""
    return (
        insert_of(Author)
        .values(
            site_id=bindparam("site_id"),
            issuer=bindparam("issuer"),
            subject=bindparam("subject"),
            display_name=bindparam("display_name"),
            email=bindparam("email"),
            trust=Trust.normal,
            approved_count=0,
            spam_count=0,
        )
        .on_conflict_do_nothing()
    )


# Built once: building the statement and its cache key at each first comment of a new
# author cost 0.3-0.6 ms of Python, more than executing it.
_NEW_AUTHOR_POSTGRESQL = _new_author(postgresql.insert)
_NEW_AUTHOR_SQLITE = _new_author(sqlite.insert)
#: The new-author upsert per dialect (parameters ``site_id``, ``issuer``, ``subject``,
#: ``display_name``, ``email``), for the other paths that create authors (Akismet's).
NEW_AUTHOR = {"postgresql": _NEW_AUTHOR_POSTGRESQL, "sqlite": _NEW_AUTHOR_SQLITE}
# PostgreSQL, an author's first comment (no row found above): the author row, the comment
# and its outbox row in one statement. A new author has no comment yet, so nothing to
# check. Another request that created the same author meanwhile makes the author's
# INSERT do nothing (after waiting for that request's transaction), and so the whole
# statement: no row comes back, and :data:`_CHECK_AND_INSERT` runs again.
_NEW_AUTHOR_ROW = _NEW_AUTHOR_POSTGRESQL.returning(
    Author.id.label("author_id"), Author.trust.label("trust")
).cte("author")
_CREATE_AND_INSERT = _insert_both(_NEW_AUTHOR_ROW, true(), literal_column("0"), literal_column("0"))


def _check_and_insert(
    session: Session,
    *,
    site: SiteInfo,
    identity: Identity,
    values: dict[str, Any],
    outbox: dict[str, Any],
    now: dt.datetime,
) -> Accepted:
    """PostgreSQL without an idempotency key: :data:`_CHECK_AND_INSERT`, one round trip
    for a known author; for a new one, then :data:`_CREATE_AND_INSERT` (two); when
    another request created the same author meanwhile, :data:`_CHECK_AND_INSERT` again
    (three)."""
    connection = session.connection()
    params = _author_params(site, identity, values["content_hash"], values["thread"], now)
    params["flood_limit"] = site.policy.flood_limit_per_minute
    params.update({f"comment_{name}": value for name, value in values.items()})
    params.update({f"outbox_{name}": value for name, value in outbox.items()})
    row = connection.execute(_CHECK_AND_INSERT, params).one_or_none()
    if row is None:
        params.update(display_name=identity.name, email=identity.email)
        row = connection.execute(_CREATE_AND_INSERT, params).one_or_none()
    if row is None:
        row = connection.execute(_CHECK_AND_INSERT, params).one()
    if row.created_at is None:
        _check_author(_author_of(row), site)
        raise RuntimeError("the comment was refused by a check that raised nothing")
    return Accepted(
        id=values["id"],
        thread=values["thread"],
        parent=values["parent_id"],
        author_name=values["author_name"],
        content=values["content"],
        created_at=row.created_at,
        replayed=False,
    )


@dataclass(frozen=True, slots=True)
class _Author:
    id: int
    trust: Trust
    #: Comments of this author in the last minute (flood control).
    recent: int
    #: The same text from this author in this thread within the duplicate window.
    duplicates: int


def _author_for(
    session: Session,
    *,
    site: SiteInfo,
    identity: Identity,
    digest: str,
    thread: str,
    now: dt.datetime,
) -> _Author:
    """The site's author row for this identity (created on first sight), with the counts
    the duplicate and flood checks need: one statement for a known author."""
    connection = session.connection()
    params = _author_params(site, identity, digest, thread, now)
    row = connection.execute(_AUTHOR_QUERY, params).one_or_none()
    if row is None:
        _create_author(connection, site=site, identity=identity)
        row = connection.execute(_AUTHOR_QUERY, params).one()
    return _author_of(row)


def _author_params(
    site: SiteInfo, identity: Identity, digest: str, thread: str, now: dt.datetime
) -> dict[str, Any]:
    return {
        "site_id": site.id,
        "issuer": identity.issuer,
        "subject": identity.subject,
        "digest": digest,
        "thread": thread,
        "flood_since": now - FLOOD_WINDOW,
        "duplicate_since": now - DUPLICATE_WINDOW,
    }


def _create_author(connection: Connection, *, site: SiteInfo, identity: Identity) -> None:
    """Uses INSERT ... ON CONFLICT DO NOTHING so two first comments racing from one new
    author do not fail on the unique (site, issuer, subject) constraint."""
    connection.execute(
        _NEW_AUTHOR_POSTGRESQL if connection.dialect.name == "postgresql" else _NEW_AUTHOR_SQLITE,
        {
            "site_id": site.id,
            "issuer": identity.issuer,
            "subject": identity.subject,
            "display_name": identity.name,
            "email": identity.email,
        },
    )


def _author_of(row: Any) -> _Author:
    return _Author(id=int(row[0]), trust=Trust(row[1]), recent=int(row[2]), duplicates=int(row[3]))
