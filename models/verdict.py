"""A verdict: what the classifier and the site policy decided for a comment, and why."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class Verdict(Timestamped, Base):
    __tablename__ = "verdicts"
    __table_args__ = (Index("ix_verdicts_comment_created", "comment_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("comments.id", ondelete="CASCADE")
    )
    classifier_version: Mapped[str] = mapped_column(String(64))
    score: Mapped[float]
    #: approved, held or spam.
    decision: Mapped[str] = mapped_column(String(16))
    discard: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: [{"phrase", "weight", "feature"} ...] from the classifier, then the policy's rules.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    #: Time from the comment's creation to this verdict, in milliseconds.
    latency_ms: Mapped[float]
