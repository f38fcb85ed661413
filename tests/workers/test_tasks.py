"""The tasks through a real worker: the sweeper recovers what was never enqueued, and a
task delivered many times writes one verdict."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import Comment, OutboxTask, Status, Verdict
from service.logs import bind_request_id, request_id_var
from service.queue import TaskQueue
from service.settings import Settings
from tests.support.comments import make_site, submit_comments, verdict_counts
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker


def test_sweeper_enqueues_an_outbox_row_that_was_never_enqueued(
    committed: sessionmaker[Session], running_worker: CeleryWorker, settings: Settings
) -> None:
    # As if the API had crashed between its commit and its enqueue.
    with committed.begin() as session:
        site = make_site(session)
        [comment_id] = submit_comments(
            session, site, 1, outbox_timeout=dt.timedelta(seconds=settings.outbox_timeout_seconds)
        )

    def classified() -> Comment | None:
        with committed() as session:
            comment = session.get(Comment, comment_id)
            return comment if comment is not None and comment.status != Status.pending else None

    comment = wait_until(
        classified,
        timeout=settings.outbox_timeout_seconds + 10 * settings.sweep_interval_seconds + 10,
        interval=0.1,
        message=lambda: f"the sweeper to get the comment classified:\n{running_worker.log_tail()}",
    )
    assert comment.status in {Status.approved, Status.held, Status.spam}
    with committed() as session:
        outbox = session.scalars(select(OutboxTask).where(OutboxTask.key == str(comment_id))).one()
        assert verdict_counts(session, [comment_id]) == {comment_id: 1}
    assert outbox.attempts >= 1
    assert outbox.done_at is not None


def test_a_task_delivered_many_times_writes_one_verdict(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    settings: Settings,
) -> None:
    deliveries = 6
    with committed.begin() as session:
        site = make_site(session)
        [comment_id] = submit_comments(
            session, site, 1, outbox_timeout=dt.timedelta(seconds=settings.outbox_timeout_seconds)
        )
    # Back to back, so that the worker's two processes run copies at the same time.
    for _ in range(deliveries):
        task_queue.enqueue_classification(comment_id)

    no_op = f"comment {comment_id} is no longer pending; nothing to do"
    # Every copy but one finds the comment classified already; sweeps may add more copies.
    wait_until(
        lambda: running_worker.log().count(no_op) >= deliveries - 1,
        timeout=60,
        message=lambda: f"{deliveries} deliveries to be handled:\n{running_worker.log_tail()}",
    )
    with committed() as session:
        verdicts = session.scalars(select(Verdict).where(Verdict.comment_id == comment_id)).all()
        comment = session.get_one(Comment, comment_id)
    assert len(verdicts) == 1
    assert comment.status.value == verdicts[0].decision
    assert comment.score == verdicts[0].score


def test_worker_lines_carry_the_task_id_and_the_id_of_the_request_that_enqueued(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    settings: Settings,
) -> None:
    with committed.begin() as session:
        site = make_site(session)
        [comment_id] = submit_comments(
            session, site, 1, outbox_timeout=dt.timedelta(seconds=settings.outbox_timeout_seconds)
        )
    request_id = f"req-{uuid.uuid4().hex}"
    token = bind_request_id(request_id)
    try:
        task_queue.enqueue_classification(comment_id)
    finally:
        request_id_var.reset(token)

    def verdict_line() -> str | None:
        lines = running_worker.log().splitlines()
        return next((line for line in lines if f"verdict comment={comment_id}" in line), None)

    line = wait_until(verdict_line, timeout=30, message="the verdict's log line")
    assert f"request_id={request_id} " in line
    assert re.search(r"task_id=[0-9a-f-]{36} ", line), line
