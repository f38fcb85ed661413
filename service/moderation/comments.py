"""Reading comments: one comment with its latest verdict, for the people allowed to see it;
for a moderator of its site, with everything needed to judge it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEntry, Author, Comment, Site, Status, Verdict
from service.moderation.errors import NotFound
from service.moderation.types import Identity

#: The role (``Identity.roles``) that may read every comment of its site.
MODERATOR = "moderator"


def comment_etag(version: int) -> str:
    """The strong ETag of a comment at ``version`` (``Comment.version``): ``"v<version>"``.

    ``GET /v1/comments/{id}`` sends it and the moderation actions compare ``If-Match``
    against it, so both must build it here.
    """
    return f'"v{version}"'


#: How many of the author's other comments, and of the same IP's, a moderator sees.
RECENT_LIMIT = 10
#: Recent comments show this much of their content.
EXCERPT_CHARS = 280


@dataclass(frozen=True, slots=True)
class RecentComment:
    """Another comment, as listed beside the one a moderator reads."""

    id: uuid.UUID
    thread: str
    status: str
    score: float | None
    author_id: int
    author_name: str | None
    excerpt: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ModeratorDetail:
    """What a moderator of the comment's site sees beyond its author's view."""

    #: Every verdict, oldest first, with all its reasons.
    verdicts: list[Verdict]
    #: The moderation history: the audit rows naming this comment, oldest first.
    history: list[AuditEntry]
    author: Author
    #: The author's comments on this site by status (every status, zeros included).
    author_counts: dict[str, int]
    #: The author's latest other comments, newest first.
    author_recent: list[RecentComment]
    #: The latest other comments from the same IP on the same site, newest first.
    same_ip: list[RecentComment]


@dataclass(frozen=True, slots=True)
class CommentView:
    comment: Comment
    site: Site
    verdict: Verdict | None
    #: Only for a moderator of the comment's site.
    detail: ModeratorDetail | None = None


def find_comment(session: Session, *, comment_id: uuid.UUID) -> tuple[Comment, Site]:
    """The comment and its site, or ``NotFound``."""
    row = session.execute(
        select(Comment, Site).join(Site, Site.id == Comment.site_id).where(Comment.id == comment_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no comment {comment_id}")
    return row[0], row[1]


def read_comment(
    session: Session, *, comment: Comment, site: Site, reader: Identity
) -> CommentView:
    """The comment with its latest verdict, if ``reader`` may see it.

    The comment's author may, and so may a moderator of the comment's site (``reader``
    must have been authenticated for that site: its ``roles`` are the roles it holds
    there). Anyone else gets ``NotFound``, as if it did not exist, so that ids cannot be
    probed. A moderator also gets the :class:`ModeratorDetail`; the author does not, even
    when the author is a moderator of another site.
    """
    moderator = MODERATOR in reader.roles
    if not moderator:
        author = session.get_one(Author, comment.author_id)
        if (author.issuer, author.subject) != (reader.issuer, reader.subject):
            raise NotFound(f"no comment {comment.id}")
    verdict = session.scalar(
        select(Verdict)
        .where(Verdict.comment_id == comment.id)
        .order_by(Verdict.created_at.desc(), Verdict.id.desc())
        .limit(1)
    )
    detail = moderator_detail(session, comment=comment) if moderator else None
    return CommentView(comment, site, verdict, detail)


def moderator_detail(session: Session, *, comment: Comment) -> ModeratorDetail:
    """Verdicts, moderation history, the author's record and the same IP's other comments."""
    verdicts = list(
        session.scalars(
            select(Verdict)
            .where(Verdict.comment_id == comment.id)
            .order_by(Verdict.created_at, Verdict.id)
        )
    )
    history = list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.comment_id == comment.id)
            .order_by(AuditEntry.created_at, AuditEntry.id)
        )
    )
    author = session.get_one(Author, comment.author_id)
    # Authors are per site, so the author's comments are all on this site.
    counts = dict.fromkeys((s.value for s in Status), 0)
    for status, n in session.execute(
        select(Comment.status, func.count())
        .where(Comment.author_id == author.id)
        .group_by(Comment.status)
    ):
        counts[Status(status).value] = int(n)
    author_recent = _recent(
        session,
        select(*_RECENT_COLUMNS)
        .where(Comment.author_id == author.id, Comment.id != comment.id)
        .order_by(Comment.created_at.desc(), Comment.id.desc()),
    )
    same_ip: list[RecentComment] = []
    if comment.user_ip is not None:
        same_ip = _recent(
            session,
            select(*_RECENT_COLUMNS)
            .where(
                Comment.site_id == comment.site_id,
                Comment.user_ip == comment.user_ip,
                Comment.id != comment.id,
            )
            .order_by(Comment.created_at.desc()),
        )
    return ModeratorDetail(verdicts, history, author, counts, author_recent, same_ip)


_RECENT_COLUMNS = (
    Comment.id,
    Comment.thread,
    Comment.status,
    Comment.score,
    Comment.author_id,
    Comment.author_name,
    func.substr(Comment.content, 1, EXCERPT_CHARS).label("excerpt"),
    Comment.created_at,
)


def _recent(session: Session, stmt: Any) -> list[RecentComment]:
    return [
        RecentComment(
            id=row.id,
            thread=row.thread,
            status=Status(row.status).value,
            score=row.score,
            author_id=row.author_id,
            author_name=row.author_name,
            excerpt=row.excerpt,
            created_at=row.created_at,
        )
        for row in session.execute(stmt.limit(RECENT_LIMIT))
    ]
