"""moderation: audit log, labels, author bans, thread and ip indexes, comment counts, search

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

# comment_counts (models/comment_count.py) is kept by these triggers, in the transaction
# of every change to comments. PostgreSQL: statement-level triggers with transition
# tables, so a bulk load or a bulk action costs one aggregated upsert, written in key
# order (no lock-order deadlock within a statement), on the session's own shard.
_PG_TRACK = """
CREATE FUNCTION comment_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO comment_counts AS cc (site_id, status, shard, n)
        SELECT site_id, status, pg_backend_pid() % 16, count(*)
        FROM new_rows GROUP BY site_id, status ORDER BY site_id, status
        ON CONFLICT (site_id, status, shard) DO UPDATE SET n = cc.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO comment_counts AS cc (site_id, status, shard, n)
        SELECT site_id, status, pg_backend_pid() % 16, -count(*)
        FROM old_rows GROUP BY site_id, status ORDER BY site_id, status
        ON CONFLICT (site_id, status, shard) DO UPDATE SET n = cc.n + excluded.n;
    ELSE
        INSERT INTO comment_counts AS cc (site_id, status, shard, n)
        SELECT site_id, status, pg_backend_pid() % 16, sum(delta)
        FROM (
            SELECT o.site_id, o.status, -1 AS delta
            FROM old_rows o JOIN new_rows w ON w.id = o.id
            WHERE o.status <> w.status OR o.site_id <> w.site_id
            UNION ALL
            SELECT w.site_id, w.status, 1 AS delta
            FROM old_rows o JOIN new_rows w ON w.id = o.id
            WHERE o.status <> w.status OR o.site_id <> w.site_id
        ) moved
        GROUP BY site_id, status HAVING sum(delta) <> 0 ORDER BY site_id, status
        ON CONFLICT (site_id, status, shard) DO UPDATE SET n = cc.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$
"""
_PG_TRIGGERS = [
    "CREATE TRIGGER comment_counts_insert AFTER INSERT ON comments "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comment_counts_track()",
    "CREATE TRIGGER comment_counts_update AFTER UPDATE ON comments "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION comment_counts_track()",
    "CREATE TRIGGER comment_counts_delete AFTER DELETE ON comments "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION comment_counts_track()",
]
# SQLite: one writer at a time, row-level triggers on shard 0.
_SQLITE_ADD = (
    "INSERT INTO comment_counts (site_id, status, shard, n) VALUES ({row}.site_id, "
    "{row}.status, 0, {delta}) ON CONFLICT (site_id, status, shard) DO UPDATE SET n = n + {delta};"
)
_SQLITE_TRIGGERS = [
    "CREATE TRIGGER comment_counts_insert AFTER INSERT ON comments BEGIN "
    + _SQLITE_ADD.format(row="NEW", delta=1)
    + " END",
    "CREATE TRIGGER comment_counts_update AFTER UPDATE OF status, site_id ON comments "
    "WHEN OLD.status IS NOT NEW.status OR OLD.site_id IS NOT NEW.site_id BEGIN "
    + _SQLITE_ADD.format(row="OLD", delta=-1)
    + " "
    + _SQLITE_ADD.format(row="NEW", delta=1)
    + " END",
    "CREATE TRIGGER comment_counts_delete AFTER DELETE ON comments BEGIN "
    + _SQLITE_ADD.format(row="OLD", delta=-1)
    + " END",
]
_TRIGGER_NAMES = ("comment_counts_insert", "comment_counts_update", "comment_counts_delete")


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
            server_default=sa.func.now(),
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
            server_default=sa.func.now(),
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

    op.create_table(
        "comment_counts",
        sa.Column("site_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("site_id", "status", "shard", name=op.f("pk_comment_counts")),
    )
    op.execute(
        "INSERT INTO comment_counts (site_id, status, shard, n) "
        "SELECT site_id, status, 0, count(*) FROM comments GROUP BY site_id, status"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_TRACK)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
        op.create_index(
            "ix_comments_content_fts",
            "comments",
            [sa.text("to_tsvector('simple'::regconfig, content)")],
            unique=False,
            postgresql_using="gin",
        )
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgresql_ = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON comments" if postgresql_ else ""))
    if postgresql_:
        op.execute("DROP FUNCTION IF EXISTS comment_counts_track()")
        op.drop_index("ix_comments_content_fts", table_name="comments", postgresql_using="gin")
    op.drop_table("comment_counts")

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
