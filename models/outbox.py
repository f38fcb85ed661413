"""The transactional outbox: a task to run, written in the same transaction as its cause."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class OutboxTask(Timestamped, Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # The sweeper only ever looks at rows still to do.
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
        Index("ix_outbox_task_key", "task", "key"),
        # The age of the oldest row still to do (a metric read at every scrape): one index
        # probe, however many rows are done. Small: it holds only the rows still to do.
        Index(
            "ix_outbox_pending_created",
            "created_at",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
    )

    # SQLite only autoincrements an INTEGER primary key.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    task: Mapped[str] = mapped_column(String(128))
    #: What the task is about (a comment id for classification), so the task can mark its row
    #: done knowing only the ids it was given.
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime]
    done_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
