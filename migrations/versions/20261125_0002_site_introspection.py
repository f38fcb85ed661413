"""site introspection: endpoint and client credentials for opaque tokens (RFC 7662)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("introspection_endpoint", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("introspection_client_id", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(sa.Column("introspection_client_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("introspection_client_secret")
        batch_op.drop_column("introspection_client_id")
        batch_op.drop_column("introspection_endpoint")
