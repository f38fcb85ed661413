"""The moderation queue: one site's comments in one status, a page at a time.

Pages are cut by keyset (the sort key of the last item served, carried in a signed cursor,
see ``service/moderation/cursors.py``), never by offset: comments that arrive, or leave
the status, while a moderator pages neither shift nor repeat the items after the cursor,
and a deep page costs what the first does (one index range scan).

Orders, each ending in the comment id as a tie-breaker in the same direction:

* ``created`` / ``-created``: oldest / newest first (index site, status, created_at, id);
* ``score`` / ``-score``: least / most spam-like first (index site, status, score, id).
  Comments without a score (``pending`` ones, waiting for the classifier) come after all
  scored ones in both directions. The two groups are read as two keyset segments (scored,
  then unscored), so that the order is the same on PostgreSQL and SQLite whatever each
  does with NULLs, and each segment stays an index range scan.

Counts per status come from ``comment_counts`` (kept by triggers, see
``models/comment_count.py``): a handful of rows whatever the site's size.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, and_, func, literal, select, text, tuple_, type_coerce
from sqlalchemy.orm import Session

from models import Author, Comment, CommentCount, Status, Trust, Verdict
from models.comment import CONTENT_SEARCH_VECTOR
from service.moderation.cursors import decode_cursor, encode_cursor, scope_of
from service.moderation.errors import FieldError, InvalidInput

#: A select of queue rows (SQLAlchemy 2.1's Select is variadic in its column types).
_Rows = Select[*tuple[Any, ...]]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_QUERY_LENGTH = 200
#: The longest thread key a comment can have (``comments.thread``).
MAX_THREAD_LENGTH = 512
#: Reasons shown per item (the verdict's strongest first, as the classifier wrote them).
TOP_REASONS = 3


class QueueSort(enum.StrEnum):
    score = "score"
    score_desc = "-score"
    created = "created"
    created_desc = "-created"


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """What a moderator asked for; validate with :func:`queue_query`."""

    status: Status = Status.held
    sort: QueueSort = QueueSort.created_desc
    q: str | None = None
    author_id: int | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    #: One thread's comments only (the thread key, exactly as stored).
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorSummary:
    id: int
    issuer: str
    subject: str
    display_name: str | None
    trust: Trust
    banned_until: dt.datetime | None
    approved_count: int
    spam_count: int


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: uuid.UUID
    thread: str
    parent_id: uuid.UUID | None
    status: Status
    discard: bool
    score: float | None
    reasons: list[dict[str, Any]]
    author_name: str | None
    author_email: str | None
    author: AuthorSummary
    content: str
    created_at: dt.datetime
    version: int


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: list[QueueItem]
    #: The cursor of the next page; None on the last page.
    next_cursor: str | None
    #: Every status of the site with its number of comments (zeros included).
    counts: dict[str, int]


def queue_query(
    *,
    status: str | None,
    sort: str | None,
    q: str | None,
    author: str | None,
    limit: str | None,
    cursor: str | None,
    thread: str | None = None,
) -> QueueQuery:
    """The query string's values, validated: ``InvalidInput`` naming every bad field.
    ``thread`` (optional; blank: none) keeps one thread's comments."""
    errors: list[FieldError] = []
    status_value = Status.held
    if status is not None:
        try:
            status_value = Status(status)
        except ValueError:
            errors.append(FieldError("status", f"one of {', '.join(s.value for s in Status)}"))
    sort_value = QueueSort.created_desc
    if sort is not None:
        try:
            sort_value = QueueSort(sort)
        except ValueError:
            errors.append(FieldError("sort", f"one of {', '.join(s.value for s in QueueSort)}"))
    text_query = q.strip() if q is not None else None
    if text_query is not None and len(text_query) > MAX_QUERY_LENGTH:
        errors.append(FieldError("q", f"at most {MAX_QUERY_LENGTH} characters"))
    if text_query is not None and "\x00" in text_query:
        errors.append(FieldError("q", "must not contain NUL characters"))
    author_id = None
    if author is not None:
        # Length first: int() refuses (ValueError) strings of more than 4,300 digits.
        if author.isascii() and author.isdigit() and len(author) <= 10 and 0 < int(author) < 2**31:
            author_id = int(author)
        else:
            errors.append(FieldError("author", "an author id (a positive integer)"))
    limit_value = DEFAULT_LIMIT
    if limit is not None:
        if limit.isascii() and limit.isdigit() and len(limit) <= 6 and 1 <= int(limit) <= MAX_LIMIT:
            limit_value = int(limit)
        else:
            errors.append(FieldError("limit", f"an integer from 1 to {MAX_LIMIT}"))
    if cursor is not None and not cursor:
        errors.append(FieldError("cursor", "must not be empty"))
    thread_value = thread or None
    if thread_value is not None and len(thread_value) > MAX_THREAD_LENGTH:
        errors.append(FieldError("thread", f"at most {MAX_THREAD_LENGTH} characters"))
    if thread_value is not None and "\x00" in thread_value:
        errors.append(FieldError("thread", "must not contain NUL characters"))
    if errors:
        raise InvalidInput("invalid queue query", errors)
    return QueueQuery(
        status=status_value,
        sort=sort_value,
        q=text_query or None,
        author_id=author_id,
        limit=limit_value,
        cursor=cursor,
        thread=thread_value,
    )


def queue_page(
    session: Session, *, site_id: int, query: QueueQuery, cursor_key: bytes
) -> QueuePage:
    """One page of the site's queue, the cursor of the next, and the counts per status.

    ``query.cursor`` must come from an earlier page of the same query (site, status,
    sort, ``q``, author): anything else is ``InvalidInput``. Reads only.
    """
    # The thread joins the scope only when given, so that cursors made before the filter
    # existed stay valid.
    thread = () if query.thread is None else (query.thread,)
    scope = scope_of("queue", site_id, query.status, query.sort, query.q, query.author_id, *thread)
    position = (
        None if query.cursor is None else decode_cursor(cursor_key, query.cursor, scope=scope)
    )
    sqlite = session.get_bind().dialect.name == "sqlite"
    base = _filtered(_base_select(sqlite), site_id, query, sqlite)
    if query.sort in (QueueSort.created, QueueSort.created_desc):
        rows = _created_page(session, base, position, query, sqlite)
    else:
        rows = _score_page(session, base, position, query)

    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        next_cursor = encode_cursor(cursor_key, scope=scope, position=_position_of(rows[-1], query))
    reasons = _top_reasons(session, [r.id for r in rows])
    return QueuePage(
        items=[_item(r, reasons.get(r.id, [])) for r in rows],
        next_cursor=next_cursor,
        counts=status_counts(session, site_id=site_id),
    )


def status_counts(session: Session, *, site_id: int) -> dict[str, int]:
    """The number of the site's comments in each status (every status, zeros included)."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    rows = session.execute(
        select(CommentCount.status, func.sum(CommentCount.n))
        .where(CommentCount.site_id == site_id)
        .group_by(CommentCount.status)
    )
    for status, n in rows:
        counts[str(status)] = int(n or 0)
    return counts


# --- the statements ------------------------------------------------------------------------


def _base_select(sqlite: bool) -> _Rows:
    # On SQLite created_at is stored as text, in whichever format wrote it (the database's
    # CURRENT_TIMESTAMP has no fraction, SQLAlchemy's has six digits): the cursor carries
    # the stored text itself and compares text with text, so no row is skipped or repeated.
    created_key = (
        type_coerce(Comment.created_at, String).label("created_key")
        if sqlite
        else Comment.created_at.label("created_key")
    )
    return select(
        Comment.id,
        Comment.thread,
        Comment.parent_id,
        Comment.status,
        Comment.discard,
        Comment.score,
        Comment.author_name,
        Comment.author_email,
        Comment.content,
        Comment.created_at,
        Comment.version,
        created_key,
        Author.id.label("a_id"),
        Author.issuer.label("a_issuer"),
        Author.subject.label("a_subject"),
        Author.display_name.label("a_display_name"),
        Author.trust.label("a_trust"),
        Author.banned_until.label("a_banned_until"),
        Author.approved_count.label("a_approved_count"),
        Author.spam_count.label("a_spam_count"),
    ).join(Author, Author.id == Comment.author_id)


def _filtered(stmt: _Rows, site_id: int, query: QueueQuery, sqlite: bool) -> _Rows:
    stmt = stmt.where(Comment.site_id == site_id, Comment.status == query.status)
    if query.author_id is not None:
        stmt = stmt.where(Comment.author_id == query.author_id)
    if query.thread is not None:
        stmt = stmt.where(Comment.thread == query.thread)
    if query.q:
        if sqlite:
            # No full-text index: every word must occur in the content (LIKE is
            # case-insensitive for ASCII letters in SQLite).
            words = query.q.split()
            stmt = stmt.where(
                and_(*(Comment.content.like(f"%{_escape_like(w)}%", escape="\\") for w in words))
            )
        else:
            stmt = stmt.where(
                CONTENT_SEARCH_VECTOR.op("@@")(
                    func.plainto_tsquery(text("'simple'::regconfig"), query.q)
                )
            )
    return stmt


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _created_page(
    session: Session,
    base: _Rows,
    position: list[Any] | None,
    query: QueueQuery,
    sqlite: bool,
) -> list[Any]:
    desc = query.sort is QueueSort.created_desc
    stmt = base
    if position is not None:
        created, last_id = _created_position(position, sqlite)
        key = tuple_(Comment.created_at, Comment.id)
        bound = tuple_(
            literal(created, String) if sqlite else literal(created, Comment.created_at.type),
            literal(last_id, Comment.id.type),
        )
        stmt = stmt.where(key < bound if desc else key > bound)
    order = (
        (Comment.created_at.desc(), Comment.id.desc())
        if desc
        else (Comment.created_at.asc(), Comment.id.asc())
    )
    return list(session.execute(stmt.order_by(*order).limit(query.limit + 1)))


def _score_page(
    session: Session, base: _Rows, position: list[Any] | None, query: QueueQuery
) -> list[Any]:
    desc = query.sort is QueueSort.score_desc
    want = query.limit + 1
    rows: list[Any] = []
    segment, score, last_id = _score_position(position)
    if segment == 0:
        stmt = base.where(Comment.score.is_not(None))
        if position is not None:
            key = tuple_(Comment.score, Comment.id)
            bound = tuple_(literal(score, Comment.score.type), literal(last_id, Comment.id.type))
            stmt = stmt.where(key < bound if desc else key > bound)
        order = (
            (Comment.score.desc(), Comment.id.desc())
            if desc
            else (Comment.score.asc(), Comment.id.asc())
        )
        rows = list(session.execute(stmt.order_by(*order).limit(want)))
        if len(rows) >= want:
            return rows
        last_id = None
    # The unscored ones, after every scored one, by id in the sort's direction.
    stmt = base.where(Comment.score.is_(None))
    if last_id is not None:
        bound_id = literal(last_id, Comment.id.type)
        stmt = stmt.where(Comment.id < bound_id if desc else Comment.id > bound_id)
    stmt = stmt.order_by(Comment.id.desc() if desc else Comment.id.asc())
    rows.extend(session.execute(stmt.limit(want - len(rows))))
    return rows


# --- positions in cursors -------------------------------------------------------------------


def _position_of(row: Any, query: QueueQuery) -> list[Any]:
    if query.sort in (QueueSort.created, QueueSort.created_desc):
        key = row.created_key
        return [key.isoformat() if isinstance(key, dt.datetime) else str(key), str(row.id)]
    if row.score is None:
        return [1, None, str(row.id)]
    return [0, float(row.score), str(row.id)]


def _created_position(position: list[Any], sqlite: bool) -> tuple[Any, uuid.UUID]:
    try:
        created, last_id = position
        if sqlite:
            if not isinstance(created, str):
                raise TypeError(created)
            return created, uuid.UUID(last_id)
        return dt.datetime.fromisoformat(created), uuid.UUID(last_id)
    except (TypeError, ValueError):
        raise _bad_position() from None


def _score_position(position: list[Any] | None) -> tuple[int, float | None, uuid.UUID | None]:
    if position is None:
        return 0, None, None
    try:
        segment, score, last_id = position
        if segment == 0 and isinstance(score, int | float) and not isinstance(score, bool):
            return 0, float(score), uuid.UUID(last_id)
        if segment == 1 and score is None:
            return 1, None, uuid.UUID(last_id)
    except (TypeError, ValueError):
        pass
    raise _bad_position()


def _bad_position() -> InvalidInput:
    return InvalidInput("invalid cursor", [FieldError("cursor", "holds no valid position")])


# --- what goes with each item -----------------------------------------------------------------


def _top_reasons(
    session: Session, comment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The latest verdict's first reasons for each comment (none for unscored ones): the
    site's rules first (a blocked or moderation word decided the status whatever the
    score), then the classifier's, in the verdict's order."""
    if not comment_ids:
        return {}
    latest: dict[uuid.UUID, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(Verdict.comment_id, Verdict.reasons)
        .where(Verdict.comment_id.in_(comment_ids))
        .order_by(Verdict.created_at, Verdict.id)
    )
    for comment_id, reasons in rows:
        every = list(reasons or [])
        rules = [r for r in every if str(r.get("feature") or "").startswith("rule:")]
        rest = [r for r in every if not str(r.get("feature") or "").startswith("rule:")]
        latest[comment_id] = (rules + rest)[:TOP_REASONS]
    return latest


def _item(row: Any, reasons: list[dict[str, Any]]) -> QueueItem:
    return QueueItem(
        id=row.id,
        thread=row.thread,
        parent_id=row.parent_id,
        status=Status(row.status),
        discard=row.discard,
        score=row.score,
        reasons=reasons,
        author_name=row.author_name,
        author_email=row.author_email,
        author=AuthorSummary(
            id=row.a_id,
            issuer=row.a_issuer,
            subject=row.a_subject,
            display_name=row.a_display_name,
            trust=Trust(row.a_trust),
            banned_until=row.a_banned_until,
            approved_count=row.a_approved_count,
            spam_count=row.a_spam_count,
        ),
        content=row.content,
        created_at=row.created_at,
        version=row.version,
    )
