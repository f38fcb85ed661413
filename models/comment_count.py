"""How many comments each site has in each status, kept by database triggers.

The queue shows these counts on every page. Counting a site's comments at each request
costs time in proportion to the site (an index scan of every row), so the database keeps
them instead: triggers on ``comments`` (migration 0004) add and subtract in the same
transaction as every insert, status change and delete, whoever makes it (the API, the
worker, a moderator's action, a bulk load, plain SQL). Nothing in the application writes
this table.

A site's count for a status is the SUM over its ``shard`` rows. On PostgreSQL each
database session writes the row of its own shard (``pg_backend_pid() % 16``), so that
concurrent transactions of one site do not queue on one row lock; a shard may go negative
(a comment counted in by one session and out by another), the sum stays exact. SQLite has
one writer at a time and uses shard 0. There is deliberately no foreign key to ``sites``:
the rows of a deleted site's comments are deleted in the same cascade, and a key would
make that cascade order-dependent; rows of a deleted site are inert (ids are not reused).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

#: How many rows per (site, status) PostgreSQL sessions spread their updates over.
COUNT_SHARDS = 16


class CommentCount(Base):
    __tablename__ = "comment_counts"

    site_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
