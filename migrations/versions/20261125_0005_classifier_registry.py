"""classifier registry: classifier_versions (one active globally, one per site), classifier_jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:13:08.754908
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "classifier_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=800), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                name="job_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column(
            "messages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_classifier_jobs_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifier_jobs")),
    )
    with op.batch_alter_table("classifier_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_classifier_jobs_created", ["created_at"], unique=False)

    op.create_table(
        "classifier_versions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=800), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "candidate",
                "active",
                "retired",
                "failed",
                name="version_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "training",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "thresholds",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "gate",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("replaced_id", sa.String(length=64), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_classifier_versions_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifier_versions")),
    )
    with op.batch_alter_table("classifier_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_classifier_versions_site_created", ["site_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_classifier_versions_status_site", ["status", "site_id"], unique=False
        )
        batch_op.create_index(
            "uq_classifier_versions_active_global",
            ["status"],
            unique=True,
            postgresql_where=sa.text("status = 'active' AND site_id IS NULL"),
            sqlite_where=sa.text("status = 'active' AND site_id IS NULL"),
        )
        batch_op.create_index(
            "uq_classifier_versions_active_site",
            ["site_id"],
            unique=True,
            postgresql_where=sa.text("status = 'active' AND site_id IS NOT NULL"),
            sqlite_where=sa.text("status = 'active' AND site_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("classifier_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_classifier_versions_active_site",
            postgresql_where=sa.text("status = 'active' AND site_id IS NOT NULL"),
            sqlite_where=sa.text("status = 'active' AND site_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_classifier_versions_active_global",
            postgresql_where=sa.text("status = 'active' AND site_id IS NULL"),
            sqlite_where=sa.text("status = 'active' AND site_id IS NULL"),
        )
        batch_op.drop_index("ix_classifier_versions_status_site")
        batch_op.drop_index("ix_classifier_versions_site_created")

    op.drop_table("classifier_versions")
    with op.batch_alter_table("classifier_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_classifier_jobs_created")

    op.drop_table("classifier_jobs")
