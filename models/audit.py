"""The audit trail: one row per thing a person did (a moderator's action on a comment, an
author's trust changed, a site's rules edited, a classifier version promoted).

Rows are only ever inserted. ``site_id`` is empty for actions on the whole service (a
globally active classifier version). ``comment_id`` survives the comment only as
``target_id``: erasing a comment must not erase the record that someone acted on it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class AuditEntry(Timestamped, Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_site_created", "site_id", "created_at", "id"),
        Index("ix_audit_log_comment_created", "comment_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    #: Who acted: the verified token's issuer and subject (or ``cli`` and the OS user).
    actor_issuer: Mapped[str] = mapped_column(String(512))
    actor_subject: Mapped[str] = mapped_column(String(255))
    #: approve, hold, spam, ham, trash, restore, trust, ban, unban, rules, promote, rollback ...
    action: Mapped[str] = mapped_column(String(32))
    #: comment, author, site or classifier; ``target_id`` is its id as text.
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(64))
    comment_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("comments.id", ondelete="SET NULL")
    )
    #: The state before and after (a comment's status, an author's trust, a version id).
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    #: Anything else worth keeping (the rules before and after, a ban's end ...).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
