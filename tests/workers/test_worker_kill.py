"""A worker killed outright (SIGKILL: no warm shutdown, no acknowledgement, no cleanup)
while comments are queued loses none of them: a new worker, helped by the outbox sweeper,
gives every comment exactly one verdict. So does a worker stopped the polite way (SIGTERM,
as a deployment does). Both for comments enqueued one to a message (as the sweeper sends
them) and many to a message (as the API does)."""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.queue import TaskQueue
from service.settings import Settings
from tests.support.comments import (
    make_site,
    open_outbox_rows,
    pending_count,
    submit_comments,
    verdict_counts,
)
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker

COMMENTS = 300
#: Comments to a message in the batched case: few enough that the 300 comments make 75
#: messages, so the kill lands while most are still queued (with 20 to a message, 15
#: messages, a fast machine classified them all before the first verdict was seen).
BATCH = 4


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_worker_loses_no_comment_and_doubles_none(
    sig: signal.Signals,
    batched: bool,
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    settings: Settings,
) -> None:
    timeout = dt.timedelta(seconds=settings.outbox_timeout_seconds)
    with committed.begin() as session:
        site = make_site(session)
        ids = submit_comments(session, site, COMMENTS, outbox_timeout=timeout)
    # Enqueued after the commit, as the API and the sweeper do.
    if batched:
        for start in range(0, COMMENTS, BATCH):
            batch = [str(i) for i in ids[start : start + BATCH]]
            task_queue.enqueue_classifications(batch, [None] * len(batch))
    else:
        for comment_id in ids:
            task_queue.enqueue_classification(comment_id)

    def some_classified() -> bool:
        with committed() as session:
            return bool(verdict_counts(session, ids))

    wait_until(some_classified, timeout=60, interval=0.01, message="a first verdict")
    running_worker.kill(sig)

    with committed() as session:
        left = pending_count(session, ids)
    assert left > 0, "the worker finished everything before it was killed: nothing was shown"

    running_worker.start()

    def all_classified() -> bool:
        with committed() as session:
            return pending_count(session, ids) == 0

    wait_until(
        all_classified,
        timeout=120,
        interval=0.2,
        message=lambda: f"every comment to be classified; worker log:\n{running_worker.log_tail()}",
    )
    with committed() as session:
        counts = verdict_counts(session, ids)
        assert open_outbox_rows(session, ids) == []
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}, "a comment got more than one verdict"
