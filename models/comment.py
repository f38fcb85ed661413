"""A comment and its lifecycle status; ``version`` guards concurrent updates."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class Status(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    held = "held"
    spam = "spam"
    trash = "trash"


class Comment(Timestamped, Base):
    __tablename__ = "comments"
    __table_args__ = (
        # The idempotency key is scoped to the author who sent it.
        UniqueConstraint("author_id", "idempotency_key"),
        Index("ix_comments_site_status_score", "site_id", "status", "score", "id"),
        Index("ix_comments_site_status_created", "site_id", "status", "created_at", "id"),
        # The public thread view: one thread's approved comments in order.
        Index(
            "ix_comments_site_thread_status_created",
            "site_id",
            "thread",
            "status",
            "created_at",
            "id",
        ),
        # A moderator's "other recent comments from the same IP".
        Index("ix_comments_site_ip_created", "site_id", "user_ip", "created_at"),
        Index("ix_comments_author_created", "author_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    thread: Mapped[str] = mapped_column(String(512))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL")
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"))
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_email: Mapped[str | None] = mapped_column(String(320))
    author_url: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    user_ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    permalink: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[Status] = mapped_column(
        Enum(Status, name="comment_status", native_enum=False, length=16),
        default=Status.pending,
        server_default=Status.pending.value,
    )
    discard: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The latest verdict's spam probability, copied here so the queue sorts on one table.
    score: Mapped[float | None]
    #: sha256 of the normalised content, for duplicate detection.
    content_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: sha256 of the request that carried the idempotency key: a replay must match it.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: Claims the comment came with that are not columns (email_verified, ...).
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    # eager_defaults: read created_at/updated_at back with RETURNING at insert, so the API can
    # answer from the object after its session has closed.
    __mapper_args__ = {"version_id_col": version, "eager_defaults": True}  # noqa: RUF012


#: The queue's text search (``q``) on PostgreSQL: words of the content, in the ``simple``
#: configuration (lower-cased, no stemming and no stop words, so that it treats every
#: language alike). The queue's query repeats this expression exactly, so that the planner
#: can use the index. SQLite has no such index; the queue falls back to LIKE there.
CONTENT_SEARCH_VECTOR = func.to_tsvector(text("'simple'::regconfig"), Comment.__table__.c.content)
Index("ix_comments_content_fts", CONTENT_SEARCH_VECTOR, postgresql_using="gin").ddl_if(
    dialect="postgresql"
)
