"""The task bodies in this process, against the run's real database: what a sweep commits
before it enqueues, which outbox rows it deletes, and which database errors are worth a
retry."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models import Comment, OutboxTask, Status
from service.metrics import WorkerMetrics
from service.moderation.active import ClassifierProvider
from service.moderation.outbox import purge_done
from service.queue import TaskQueue, make_celery
from service.settings import Settings
from tests.support.comments import make_site, submit_comments
from workers.tasks import (
    MAX_BACKOFF_SECONDS,
    BatchInterrupted,
    backoff_seconds,
    classify,
    classify_batch,
    classify_one_by_one,
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

    def metrics(self) -> WorkerMetrics:
        return WorkerMetrics(self.settings)


def _broker_down(settings: Settings, committed: sessionmaker[Session]) -> Resources:
    """Resources whose broker cannot be reached (nothing listens on port 1)."""
    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    return Resources(settings, committed, TaskQueue(make_celery(down)))


def test_a_sweep_commits_its_claim_even_when_the_broker_is_down(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    # Due only in an hour, so the run's worker (which sweeps with the real clock) keeps off.
    with committed.begin() as session:
        site = make_site(session)
        ids = submit_comments(session, site, 3, outbox_timeout=dt.timedelta(hours=1), now=now)
    resources = _broker_down(settings, committed)

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


def _mark_done(session: Session, ids: list[uuid.UUID], done_at: dt.datetime) -> None:
    session.execute(
        update(OutboxTask).where(OutboxTask.key.in_([str(i) for i in ids])).values(done_at=done_at)
    )


def _outbox_keys(session: Session, ids: list[uuid.UUID]) -> set[str]:
    keys = [str(i) for i in ids]
    return set(session.scalars(select(OutboxTask.key).where(OutboxTask.key.in_(keys))))


def test_a_sweep_deletes_the_rows_done_before_the_retention_and_no_others(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    retention = dt.timedelta(seconds=settings.outbox_retention_seconds)
    with committed.begin() as session:
        site = make_site(session)
        # Not due for an hour: nothing for the sweep (or the run's worker) to send.
        ids = submit_comments(session, site, 5, outbox_timeout=dt.timedelta(hours=1), now=now)
        old, recent, pending = ids[:2], ids[2:4], ids[4:]
        _mark_done(session, old, now - retention - dt.timedelta(days=30))
        _mark_done(session, recent, now - retention + dt.timedelta(hours=1))
    resources = _broker_down(settings, committed)

    assert sweep(resources, now=now) == 0

    with committed() as session:
        assert _outbox_keys(session, ids) == {str(i) for i in recent + pending}


def test_with_no_retention_a_sweep_deletes_nothing(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    with committed.begin() as session:
        site = make_site(session)
        ids = submit_comments(session, site, 2, outbox_timeout=dt.timedelta(hours=1), now=now)
        # Done long ago, though not so long that the run's worker (which sweeps with the
        # default retention) may delete them while this test looks.
        kept = dt.timedelta(seconds=settings.outbox_retention_seconds)
        _mark_done(session, ids, now - kept + dt.timedelta(hours=1))
    resources = _broker_down(settings.model_copy(update={"outbox_retention_seconds": 0}), committed)

    sweep(resources, now=now)

    with committed() as session:
        assert _outbox_keys(session, ids) == {str(i) for i in ids}


def test_a_purge_looks_at_the_oldest_rows_only_and_deletes_those_done_before(
    db_session: Session,
) -> None:
    now = dt.datetime.now(dt.UTC)
    long_ago = now - dt.timedelta(days=1000)  # before any other test's rows were done
    site = make_site(db_session)
    ids = submit_comments(db_session, site, 6, outbox_timeout=dt.timedelta(hours=1), now=now)
    # The first row (the oldest) is never done; the last was done just now.
    _mark_done(db_session, ids[1:5], long_ago)
    _mark_done(db_session, ids[5:], now)
    first_id = db_session.scalar(select(OutboxTask.id).where(OutboxTask.key == str(ids[0])))
    older = db_session.scalar(select(func.count()).where(OutboxTask.id < first_id)) or 0
    cutoff = long_ago + dt.timedelta(seconds=1)

    # The three oldest of this test's rows: the one not done stays, two go.
    assert purge_done(db_session, done_before=cutoff, limit=older + 3) == 2
    assert _outbox_keys(db_session, ids) == {str(ids[i]) for i in (0, 3, 4, 5)}
    assert purge_done(db_session, done_before=cutoff, limit=older + 6) == 2
    assert _outbox_keys(db_session, ids) == {str(ids[0]), str(ids[5])}


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


@dataclass
class FailingAfter(Resources):
    """Resources whose database stops answering after ``good`` transactions: sessions of
    the run's database, then of one that cannot be reached (nothing listens on port 1)."""

    good: int = 1
    provider: ClassifierProvider | None = None

    def sessions(self) -> sessionmaker[Session]:
        if self.good > 0:
            self.good -= 1
            return self.session_factory
        dead = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
        )
        return sessionmaker(dead)

    def classifier(self) -> ClassifierProvider:
        if self.provider is None:
            self.provider = ClassifierProvider(None, sessions=self.session_factory)
        return self.provider


def _three_pending(committed: sessionmaker[Session]) -> list[uuid.UUID]:
    with committed.begin() as session:
        site = make_site(session)
        # Due only in an hour, so the run's worker keeps off them.
        return submit_comments(session, site, 3, outbox_timeout=dt.timedelta(hours=1))


def test_a_batch_whose_database_is_gone_leaves_every_comment_to_the_retry(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    ids = _three_pending(committed)
    resources = FailingAfter(settings, committed, TaskQueue(make_celery(settings)), good=0)

    with pytest.raises(BatchInterrupted) as stopped:
        classify_batch(resources, [str(i) for i in ids], [None, None, None])

    assert stopped.value.remaining == 3
    assert database_unreachable(stopped.value.cause)
    with committed() as session:
        assert [session.get_one(Comment, i).status for i in ids] == [Status.pending] * 3


def test_one_at_a_time_stops_where_the_database_went_away_and_says_how_many_are_left(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    ids = _three_pending(committed)
    resources = FailingAfter(settings, committed, TaskQueue(make_celery(settings)), good=1)

    with pytest.raises(BatchInterrupted) as stopped:
        classify_one_by_one(resources, [str(i) for i in ids], [None, None, None])

    assert stopped.value.remaining == 2
    assert database_unreachable(stopped.value.cause)
    with committed() as session:
        assert session.get_one(Comment, ids[0]).status is not Status.pending
        assert [session.get_one(Comment, i).status for i in ids[1:]] == [Status.pending] * 2
