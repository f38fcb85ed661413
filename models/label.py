"""A training label: one text a person (or an imported data set) called spam or ham.

Moderators' actions write labels with ``source = moderator`` and the comment they judged;
``commentguard classifier import`` writes ``source = import`` with no comment. The text
and author fields are copied into the label, so that retraining reads one table and a
label means what it meant when it was given. Several labels may exist for one comment;
the latest wins.
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class LabelSource(enum.StrEnum):
    moderator = "moderator"
    import_ = "import"


class LabelValue(enum.StrEnum):
    spam = "spam"
    ham = "ham"


class Label(Timestamped, Base):
    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_site_created", "site_id", "created_at", "id"),
        Index("ix_labels_comment_created", "comment_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("comments.id", ondelete="CASCADE")
    )
    source: Mapped[LabelSource] = mapped_column(
        Enum(
            LabelSource,
            name="label_source",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    label: Mapped[LabelValue] = mapped_column(
        Enum(LabelValue, name="label_value", native_enum=False, length=8)
    )
    content: Mapped[str] = mapped_column(Text)
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_email: Mapped[str | None] = mapped_column(String(320))
    author_url: Mapped[str | None] = mapped_column(Text)
    #: The page the text was left on: the comment's permalink, or the data set's page.
    permalink: Mapped[str | None] = mapped_column(Text)
    #: For imports: the file's name and sha256 (``youtube.csv@3f2a...``).
    dataset: Mapped[str | None] = mapped_column(String(300))
    #: Who gave the label (a moderator's issuer and subject); empty for imports.
    actor_issuer: Mapped[str | None] = mapped_column(String(512))
    actor_subject: Mapped[str | None] = mapped_column(String(255))
    audit_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("audit_log.id", ondelete="SET NULL"),
    )
