"""The webhook sweeper's and the delivery task's bodies in this process, against the run's
real database: what a sweep claims and commits before it enqueues, which deliveries its
retention deletes, and what a duplicate task does."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models import DeliveryState, WebhookDelivery
from service.metrics import WorkerMetrics
from service.moderation.active import ClassifierProvider
from service.queue import TaskQueue, make_celery, send_deliveries
from service.settings import Settings
from tests.support.comments import make_site
from tests.support.receiver import Receiver, running_receiver
from tests.support.webhooks import add_hook
from workers.tasks import deliver, sweep_webhooks


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def _broker_down(settings: Settings, committed: sessionmaker[Session]) -> Resources:
    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    return Resources(settings, committed, TaskQueue(make_celery(down)))


def _deliveries(
    committed: sessionmaker[Session], count: int, *, due: dt.datetime, url: str
) -> list[int]:
    """``count`` pending deliveries to ``url``, due at ``due`` (as if their decision had
    committed and their task been lost)."""
    with committed.begin() as session:
        site = make_site(session)
        hook = add_hook(session, site, url)
        rows = [
            WebhookDelivery(
                webhook_id=hook.webhook.id,
                event_id=uuid.uuid4(),
                event_type="comment.classified",
                body='{"id":"x"}',
                next_attempt_at=due,
            )
            for _ in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_a_sweep_commits_its_claim_even_when_the_broker_is_down(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    # Due only in an hour, so the run's worker (which sweeps with the real clock) keeps off.
    ids = _deliveries(committed, 2, due=now + dt.timedelta(hours=1), url="http://127.0.0.1:9/")
    later = now + dt.timedelta(hours=2)

    assert sweep_webhooks(_broker_down(settings, committed), now=later) == 0

    with committed() as session:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))).all()
    lease = dt.timedelta(seconds=settings.webhook_lease_seconds)
    assert [r.next_attempt_at for r in rows] == [later + lease] * 2
    assert [(r.state, r.attempts) for r in rows] == [(DeliveryState.pending, 0)] * 2


def test_a_sweep_deletes_deliveries_settled_before_the_retention_and_no_others(
    committed: sessionmaker[Session], settings: Settings
) -> None:
    now = dt.datetime.now(dt.UTC)
    retention = dt.timedelta(seconds=settings.webhook_retention_seconds)
    ids = _deliveries(committed, 4, due=now + dt.timedelta(hours=1), url="http://127.0.0.1:9/")
    old, recent, pending = ids[:2], ids[2:3], ids[3:]
    with committed.begin() as session:
        for chosen, finished in ((old, now - retention - dt.timedelta(days=1)), (recent, now)):
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(chosen))
                .values(state=DeliveryState.delivered, finished_at=finished, next_attempt_at=None)
            )
    kept = settings.model_copy(update={"webhook_retention_seconds": 0})

    sweep_webhooks(_broker_down(kept, committed), now=now)
    with committed() as session:
        assert len(session.scalars(select(WebhookDelivery.id)).all()) == 4
    sweep_webhooks(_broker_down(settings, committed), now=now)

    with committed() as session:
        left = set(session.scalars(select(WebhookDelivery.id)))
    assert left == set(recent + pending)


def test_a_duplicate_task_sends_nothing(
    committed: sessionmaker[Session], settings: Settings, receiver: Receiver
) -> None:
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    [delivery_id] = _deliveries(committed, 1, due=far, url=receiver.url())
    resources = Resources(settings, committed, TaskQueue(make_celery(settings)))

    assert deliver(resources, delivery_id, 0) == "delivered"
    # The same message again (redelivered by the broker, or sent by a sweep meanwhile).
    assert deliver(resources, delivery_id, 0) == "skipped"
    assert deliver(resources, delivery_id, 1) == "skipped"
    assert len(receiver.received) == 1
    with committed() as session:
        row = session.get_one(WebhookDelivery, delivery_id)
    assert (row.state, row.attempts, row.last_status_code) == (DeliveryState.delivered, 1, 200)


def test_deliveries_the_broker_refuses_are_logged_for_the_sweeper(
    committed: sessionmaker[Session], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    resources = _broker_down(settings, committed)
    with caplog.at_level(logging.WARNING, logger="service.queue"):
        send_deliveries(resources.queue(), [[1, 0], [2, 0]])
    assert "enqueueing 2 webhook deliveries failed; the webhook sweeper will send them" in (
        caplog.text
    )
    send_deliveries(resources.queue(), [])  # nothing to send: not even a try
