"""labels.permalink: the page a labelled text was left on, so that retraining sees links
to the page itself as the classifier does when it scores

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("permalink", sa.Text(), nullable=True))
    # Moderators' labels name their comment, which knows its page.
    op.execute(
        "UPDATE labels SET permalink = (SELECT comments.permalink FROM comments"
        " WHERE comments.id = labels.comment_id) WHERE labels.comment_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_column("permalink")
