"""An author: one identity (issuer + subject) commenting on one site."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class Trust(enum.StrEnum):
    normal = "normal"
    trusted = "trusted"
    banned = "banned"


class Author(Timestamped, Base):
    __tablename__ = "authors"
    __table_args__ = (UniqueConstraint("site_id", "issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    trust: Mapped[Trust] = mapped_column(
        Enum(Trust, name="author_trust", native_enum=False, length=16),
        default=Trust.normal,
        server_default=Trust.normal.value,
    )
    #: A ban's end; empty while ``trust`` is banned means banned until lifted.
    banned_until: Mapped[dt.datetime | None]
    approved_count: Mapped[int] = mapped_column(default=0, server_default="0")
    spam_count: Mapped[int] = mapped_column(default=0, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
