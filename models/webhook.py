"""Webhooks: the URLs a site has its decisions POSTed to, and every delivery to them.

A delivery row is written in the transaction of the decision it reports (a verdict, a
moderator's action), so that a decision and its deliveries commit together or not at
all; a Celery task sends it after the commit, and the webhook sweeper sends again those
whose task never finished (see ``service/moderation/deliveries.py``).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class WebhookEvent(enum.StrEnum):
    """What a webhook may subscribe to."""

    #: The classifier decided a comment (approved, held or spam), first or on a re-score.
    classified = "comment.classified"
    #: A moderator acted on a comment (one action, or one comment of a bulk action).
    moderated = "comment.moderated"


class DeliveryState(enum.StrEnum):
    #: To be sent, or sent and to be retried at ``next_attempt_at``.
    pending = "pending"
    #: The receiver answered 2xx.
    delivered = "delivered"
    #: Given up: a 4xx (but 408 and 429), a redirect, a refused address, or the attempts
    #: or the age ran out.
    failed = "failed"


class Webhook(Timestamped, Base):
    __tablename__ = "webhooks"
    __table_args__ = (
        # Also the index of "the site's hooks" (its first column), which every decision
        # of the site consults.
        UniqueConstraint("site_id", "url"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    #: The ``WebhookEvent`` values this hook receives.
    events: Mapped[list[str]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    description: Mapped[str | None] = mapped_column(String(200))
    #: The signing secret (``whsec_...``). Kept as is: the service signs with it.
    secret: Mapped[str] = mapped_column(Text)
    #: After a rotation that keeps the old secret for a while, deliveries are signed with
    #: both until this time, so the receiver can switch without losing one.
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[dt.datetime | None]
    #: Guards concurrent changes (``ETag: "w<version>"``).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class WebhookDelivery(Timestamped, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The delivery log: a hook's rows, newest (highest id) first.
        Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"),
        # The sweeper only ever looks at rows still to send.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )

    # SQLite only autoincrements an INTEGER primary key.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhooks.id", ondelete="CASCADE")
    )
    #: The event's id: the same for every hook the event goes to, for every attempt and
    #: for a redelivery, so that a receiver can drop what it has seen.
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_type: Mapped[str] = mapped_column(String(64))
    #: The JSON body, exactly as sent on every attempt.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(
        Enum(DeliveryState, name="delivery_state", native_enum=False, length=16),
        default=DeliveryState.pending,
        server_default=DeliveryState.pending.value,
    )
    #: Attempts made (requests sent, or refused before sending).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    #: When the row is due to be sent (again); a run in progress holds it off until its
    #: lease ends. None once delivered or failed.
    next_attempt_at: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]
    #: When it was delivered or failed: the retention counts from here.
    finished_at: Mapped[dt.datetime | None]
    #: The delivery this one sends again (``POST .../redeliver``); no foreign key, so the
    #: original may be purged first.
    redelivery_of: Mapped[int | None] = mapped_column(BigInteger)
