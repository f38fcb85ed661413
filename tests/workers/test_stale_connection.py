"""The worker's pool does not ping each connection before a task: a connection that died
meanwhile fails that task once, and its retry (on a new connection) classifies the
comment."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from service.queue import TaskQueue
from service.settings import Settings
from tests.support.comments import make_site, submit_comments, verdict_counts
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker


def test_a_comment_is_classified_after_the_database_dropped_the_workers_connections(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    settings: Settings,
) -> None:
    timeout = dt.timedelta(seconds=settings.outbox_timeout_seconds)
    with committed.begin() as session:
        site = make_site(session)
        first, second = submit_comments(session, site, 2, outbox_timeout=timeout)

    def classified(comment_id: uuid.UUID) -> bool:
        with committed() as session:
            return verdict_counts(session, [comment_id]).get(comment_id) == 1

    task_queue.enqueue_classification(first)
    wait_until(
        lambda: classified(first),
        timeout=60,
        message=lambda: f"the first comment's verdict:\n{running_worker.log_tail()}",
    )
    # Every other connection to this run's database goes: the worker's pooled ones too.
    with committed() as session:
        dropped = session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert dropped

    task_queue.enqueue_classification(second)
    wait_until(
        lambda: classified(second),
        timeout=60,
        message=lambda: f"the second comment's verdict:\n{running_worker.log_tail()}",
    )
    with committed() as session:
        assert verdict_counts(session, [first, second]) == {first: 1, second: 1}
