"""The sweeper's side of the outbox: find tasks whose run never finished and claim them,
and delete the rows of tasks done long ago; and how far behind it is (for metrics)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from models import OutboxTask

#: Back off up to this many timeouts between attempts on a task that keeps failing.
MAX_BACKOFF_FACTOR = 16


def claim_due(
    session: Session, *, now: dt.datetime, limit: int, timeout: dt.timedelta
) -> list[OutboxTask]:
    """Claim up to ``limit`` outbox rows not done by their ``next_attempt_at``.

    Each claimed row gets ``attempts + 1`` and a later ``next_attempt_at`` (the timeout,
    doubled per attempt up to 16x), so a second sweeper, or this one next time, leaves it
    alone until then. Rows locked by another sweeper are skipped, not waited for. Rows are
    never given up on: every accepted comment must reach a verdict. Flushes; the caller
    commits, then enqueues the claimed tasks.
    """
    rows = list(
        session.scalars(
            select(OutboxTask)
            .where(OutboxTask.done_at.is_(None), OutboxTask.next_attempt_at <= now)
            .order_by(OutboxTask.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.attempts += 1
        factor = min(2 ** (row.attempts - 1), MAX_BACKOFF_FACTOR)
        row.next_attempt_at = now + timeout * factor
    session.flush()
    return rows


def purge_done(session: Session, *, done_before: dt.datetime, limit: int) -> int:
    """Of the ``limit`` oldest outbox rows (lowest ids), delete those done before
    ``done_before``; how many were deleted. A row not done is never deleted, however old.

    Each call reads at most ``limit`` rows through the primary key, however large the
    table (a search by ``done_at`` would need an index that every verdict updates, or a
    scan of every row kept). Rows are written in about the order they are done, so the
    oldest ones are those due; one done late waits at the head until it is due too. The
    bound on ids is found first and passed as a value, so that the planner sees how few
    rows it covers (``id IN (... LIMIT n)`` was planned as a scan of the whole table).
    Executes; the caller commits."""
    return delete_oldest(
        session, OutboxTask.id, OutboxTask.done_at, before=done_before, limit=limit
    )


def delete_oldest(
    session: Session,
    id_column: InstrumentedAttribute[Any],
    stamp: InstrumentedAttribute[Any],
    *,
    before: dt.datetime,
    limit: int,
) -> int:
    """Of the ``limit`` rows of ``id_column``'s table with the lowest ids, delete those whose
    ``stamp`` is before ``before`` (a row whose stamp is NULL is kept); how many. The bound
    on ids is read first and passed as a value, so that the planner sees how few rows it
    covers. Executes; the caller commits."""
    oldest = select(id_column).order_by(id_column).limit(limit).subquery()
    bound = session.scalar(select(func.max(oldest.c[id_column.key])))
    if bound is None:
        return 0
    result = cast(
        CursorResult[Any],
        session.execute(
            delete(id_column.class_)
            .where(id_column <= bound, stamp < before)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount


@dataclass(frozen=True, slots=True)
class Backlog:
    """The outbox rows still to do: how many (counted up to a limit) and when the oldest
    was written (None when there are none)."""

    pending: int
    oldest_created_at: dt.datetime | None


def backlog(session: Session, *, count_limit: int) -> Backlog:
    """The outbox's backlog, in one statement over the index of rows still to do
    (``ix_outbox_pending_created``): the oldest row is its first entry, and the count
    reads at most ``count_limit`` entries, so a scrape costs little even when a broker
    outage has left a large backlog (the count then reads ``count_limit``)."""
    still_to_do = (
        select(OutboxTask.created_at)
        .where(OutboxTask.done_at.is_(None))
        .order_by(OutboxTask.created_at)
        .limit(count_limit)
        .subquery()
    )
    pending, oldest = session.execute(
        select(func.count(), func.min(still_to_do.c.created_at)).select_from(still_to_do)
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        # SQLite hands back naive timestamps; they are UTC (CURRENT_TIMESTAMP).
        oldest = oldest.replace(tzinfo=dt.UTC)
    return Backlog(pending=int(pending), oldest_created_at=oldest)
