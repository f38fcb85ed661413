"""The public view of a thread: its approved comments, threaded by parent, a page at a time.

The model (what a blog renders):

* Only ``approved`` comments are shown, and only their public fields.
* A page holds up to ``limit`` *top-level* comments, oldest first, each with all its
  approved replies nested under it (replies oldest first at every level). Pages are cut
  by keyset on the top-level comments (``created_at``, ``id``), so comments that arrive
  while a reader pages go to the end (or into the replies of their parent) and never
  shift or repeat the top-level comments of later pages.
* A reply whose parent is not approved (held, spam, trash, still pending, or gone) is
  shown as a top-level comment at its own time, with ``parent`` null: an approved reply
  is never hidden because of its parent, and a hidden parent is never revealed.
* Nesting stops at :data:`MAX_DEPTH` levels: a deeper reply is listed at the last level,
  right after the comment it descends from (depth first), with ``parent`` still naming
  the comment it answers (so the blog can say "in reply to"), as WordPress flattens
  past its thread depth.

The thread's shape (ids, parents, times of its approved comments) is read with one index
range scan; the full rows only for the comments of the page.
"""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from models import Comment, Status
from service.moderation.cursors import decode_cursor, encode_cursor, scope_of
from service.moderation.errors import FieldError, InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_THREAD_LENGTH = 512
#: Levels of nesting: top-level comments are level 1.
MAX_DEPTH = 8


@dataclass(slots=True)
class ThreadComment:
    id: uuid.UUID
    #: The approved comment it answers; None at the top level.
    parent_id: uuid.UUID | None
    author_name: str | None
    author_url: str | None
    content: str
    created_at: dt.datetime
    replies: list[ThreadComment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ThreadPage:
    comments: list[ThreadComment]
    next_cursor: str | None
    #: Approved comments in the whole thread.
    total: int


def thread_page(
    session: Session,
    *,
    site_id: int,
    thread: str,
    limit: int,
    cursor: str | None,
    cursor_key: bytes,
) -> ThreadPage:
    """One page of the thread's approved comments (see the module's docstring).

    ``cursor`` comes from an earlier page of the same site and thread, else
    ``InvalidInput``. An unknown thread is an empty one. Reads only.
    """
    if not thread or len(thread) > MAX_THREAD_LENGTH or "\x00" in thread:
        raise InvalidInput(
            "invalid thread",
            [FieldError("thread", f"1 to {MAX_THREAD_LENGTH} characters, no NUL")],
        )
    scope = scope_of("thread", site_id, thread)
    sqlite = session.get_bind().dialect.name == "sqlite"
    created_key = (type_coerce(Comment.created_at, String) if sqlite else Comment.created_at).label(
        "created_key"
    )
    shape = session.execute(
        select(Comment.id, Comment.parent_id, created_key)
        .where(
            Comment.site_id == site_id,
            Comment.thread == thread,
            Comment.status == Status.approved,
        )
        .order_by(Comment.created_at, Comment.id)
    ).all()

    approved = {row.id for row in shape}
    children: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    roots: list[tuple[Any, uuid.UUID]] = []
    for row in shape:
        if row.parent_id is not None and row.parent_id in approved:
            children[row.parent_id].append(row.id)
        else:
            roots.append((row.created_key, row.id))

    start = 0
    if cursor is not None:
        start = bisect.bisect_right(
            roots, _position(decode_cursor(cursor_key, cursor, scope=scope), sqlite)
        )
    page_roots = roots[start : start + limit]
    more = start + limit < len(roots)

    # Which comment goes under which, depth-capped, before reading the full rows.
    placed: list[tuple[uuid.UUID, uuid.UUID | None]] = []  # (id, where it is nested)
    for _, root_id in page_roots:
        placed.append((root_id, None))
        _place(root_id, children, 1, placed)
    rows = _full_rows(session, [i for i, _ in placed])
    nodes: dict[uuid.UUID, ThreadComment] = {}
    top: list[ThreadComment] = []
    for comment_id, under in placed:
        row = rows[comment_id]
        node = ThreadComment(
            id=row.id,
            parent_id=row.parent_id if under is not None else None,
            author_name=row.author_name,
            author_url=row.author_url,
            content=row.content,
            created_at=row.created_at,
        )
        nodes[comment_id] = node
        (top if under is None else nodes[under].replies).append(node)

    next_cursor = None
    if more and page_roots:
        key, last_id = page_roots[-1]
        position = [key.isoformat() if isinstance(key, dt.datetime) else str(key), str(last_id)]
        next_cursor = encode_cursor(cursor_key, scope=scope, position=position)
    return ThreadPage(comments=top, next_cursor=next_cursor, total=len(shape))


def _place(
    parent: uuid.UUID,
    children: dict[uuid.UUID, list[uuid.UUID]],
    depth: int,
    placed: list[tuple[uuid.UUID, uuid.UUID | None]],
) -> None:
    """Appends ``parent``'s descendants to ``placed`` in display order. Iterative, so a
    long chain of replies cannot exhaust the stack."""
    # Each entry: (comment, the node it goes under, its level).
    stack = [(child, parent, depth + 1) for child in reversed(children.get(parent, []))]
    while stack:
        comment_id, under, level = stack.pop()
        placed.append((comment_id, under))
        # Past the last level, descendants go under the last-level ancestor, flattened.
        next_under = comment_id if level < MAX_DEPTH else under
        stack.extend((c, next_under, level + 1) for c in reversed(children.get(comment_id, [])))


def _full_rows(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            Comment.id,
            Comment.parent_id,
            Comment.author_name,
            Comment.author_url,
            Comment.content,
            Comment.created_at,
        ).where(Comment.id.in_(ids))
    )
    return {row.id: row for row in rows}


def _position(position: list[Any], sqlite: bool) -> tuple[Any, uuid.UUID]:
    try:
        key, last_id = position
        if not isinstance(key, str):
            raise TypeError(key)
        return (key if sqlite else dt.datetime.fromisoformat(key)), uuid.UUID(last_id)
    except (TypeError, ValueError):
        raise InvalidInput(
            "invalid cursor", [FieldError("cursor", "holds no valid position")]
        ) from None
