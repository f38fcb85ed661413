"""Reading comments: one comment with its latest verdict, for the people allowed to see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Author, Comment, Site, Verdict
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


@dataclass(frozen=True, slots=True)
class CommentView:
    comment: Comment
    site: Site
    verdict: Verdict | None


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
    probed.
    """
    if MODERATOR not in reader.roles:
        author = session.get_one(Author, comment.author_id)
        if (author.issuer, author.subject) != (reader.issuer, reader.subject):
            raise NotFound(f"no comment {comment.id}")
    verdict = session.scalar(
        select(Verdict)
        .where(Verdict.comment_id == comment.id)
        .order_by(Verdict.created_at.desc(), Verdict.id.desc())
        .limit(1)
    )
    return CommentView(comment, site, verdict)
