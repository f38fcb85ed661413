"""moderation: audit log, labels, author bans, thread and ip indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:10:06.989321
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("actor_issuer", sa.String(length=512), nullable=False),
        sa.Column("actor_subject", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("from_state", sa.String(length=64), nullable=True),
        sa.Column("to_state", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_audit_log_comment_id_comments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_audit_log_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_log_comment_created", ["comment_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_log_site_created", ["site_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column(
            "source",
            sa.Enum("moderator", "import", name="label_source", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "label",
            sa.Enum("spam", "ham", name="label_value", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        sa.Column("author_email", sa.String(length=320), nullable=True),
        sa.Column("author_url", sa.Text(), nullable=True),
        sa.Column("dataset", sa.String(length=300), nullable=True),
        sa.Column("actor_issuer", sa.String(length=512), nullable=True),
        sa.Column("actor_subject", sa.String(length=255), nullable=True),
        sa.Column("audit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_log.id"],
            name=op.f("fk_labels_audit_id_audit_log"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_labels_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_labels_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index(
            "ix_labels_comment_created", ["comment_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_labels_site_created", ["site_id", "created_at", "id"], unique=False
        )

    with op.batch_alter_table("authors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("banned_until", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_site_thread_created"))
        batch_op.create_index(
            "ix_comments_site_ip_created", ["site_id", "user_ip", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_comments_site_thread_status_created",
            ["site_id", "thread", "status", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_site_thread_status_created")
        batch_op.drop_index("ix_comments_site_ip_created")
        batch_op.create_index(
            batch_op.f("ix_comments_site_thread_created"),
            ["site_id", "thread", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("authors", schema=None) as batch_op:
        batch_op.drop_column("banned_until")

    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index("ix_labels_site_created")
        batch_op.drop_index("ix_labels_comment_created")

    op.drop_table("labels")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_site_created")
        batch_op.drop_index("ix_audit_log_comment_created")

    op.drop_table("audit_log")
