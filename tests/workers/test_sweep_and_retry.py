"""The task bodies in this process, against the run's real database: what a sweep commits
before it enqueues, and which database errors are worth a retry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models import OutboxTask
from service.moderation.active import ClassifierProvider
from service.queue import TaskQueue, make_celery
from service.settings import Settings
from tests.support.comments import make_site, submit_comments
from workers.tasks import (
    MAX_BACKOFF_SECONDS,
    backoff_seconds,
    classify,
    database_unreachable,
    sweep,
)


@dataclass
class Resources:
    """``workers.tasks.TaskResources`` built from the test run's own pieces."""

    settings: Settings
    session_factory: sessionmaker[Session]
    task_queue: TaskQueue

    def sessions(self) -> sessionmaker[Session]:
        return self.session_factory

    def classifier(self) -> ClassifierProvider:
        raise AssertionError("these tests never reach the classifier")

    def queue(self) -> TaskQueue:
        return self.task_queue


def test_a_sweep_commits_its_claim_even_when_the_broker_is_down(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    # Due only in an hour, so the run's worker (which sweeps with the real clock) keeps off.
    with committed.begin() as session:
        site = make_site(session)
        ids = submit_comments(session, site, 3, outbox_timeout=dt.timedelta(hours=1), now=now)
    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    resources = Resources(settings, committed, TaskQueue(make_celery(down)))

    sent = sweep(resources, now=now + dt.timedelta(hours=2))

    assert sent == 0
    with committed() as session:
        rows = session.scalars(
            select(OutboxTask).where(OutboxTask.key.in_([str(i) for i in ids]))
        ).all()
    assert [r.attempts for r in rows] == [1, 1, 1]
    # Claimed: left alone until a timeout after the sweep's "now".
    assert all(r.next_attempt_at > now + dt.timedelta(hours=2) for r in rows)
    assert all(r.done_at is None for r in rows)


def test_an_unreachable_database_is_worth_a_retry() -> None:
    engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    try:
        with pytest.raises(OperationalError) as raised, engine.connect():
            pass
    finally:
        engine.dispose()
    assert database_unreachable(raised.value)


def test_a_malformed_comment_id_fails_at_once(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    resources = Resources(settings, committed, TaskQueue(make_celery(settings)))
    with pytest.raises(ValueError, match="badly formed"):
        classify(resources, "not-a-uuid")


def test_constraint_violations_are_not_retried(committed: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError) as raised, committed.begin() as session:
        session.execute(text("INSERT INTO sites (slug) VALUES (NULL)"))
    assert isinstance(raised.value, DBAPIError)
    assert not database_unreachable(raised.value)


def test_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    for retries in range(12):
        step = min(2.0**retries, MAX_BACKOFF_SECONDS)
        assert step / 2 <= backoff_seconds(retries) <= step
    assert backoff_seconds(30) <= MAX_BACKOFF_SECONDS
