"""The Celery configuration and the sender the API uses, against the run's real Redis."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import redis
from kombu.exceptions import OperationalError

from service.queue import (
    CLASSIFY_COMMENT,
    COMMENTS_QUEUE,
    RESCORE,
    RETRAIN,
    SCHEDULED_RETRAIN,
    SWEEP_OUTBOX,
    TRAINING_QUEUE,
    TaskQueue,
    make_celery,
)
from service.settings import Settings


def test_delivery_guarantees_and_the_sweep_schedule(settings: Settings) -> None:
    conf = make_celery(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_backend is None
    [entry] = conf.beat_schedule.values()
    assert entry["task"] == SWEEP_OUTBOX
    assert entry["schedule"] == settings.sweep_interval_seconds


def test_long_jobs_have_their_own_queue_and_a_plain_worker_consumes_both(
    settings: Settings,
) -> None:
    app = make_celery(settings)
    router = app.amqp.router
    for task in (RETRAIN, RESCORE, SCHEDULED_RETRAIN):
        assert router.route({}, task)["queue"].name == TRAINING_QUEUE
    for task in (CLASSIFY_COMMENT, SWEEP_OUTBOX):
        assert router.route({}, task)["queue"].name == COMMENTS_QUEUE
    # A worker started without -Q consumes every queue of task_queues.
    assert set(app.amqp.queues) == {COMMENTS_QUEUE, TRAINING_QUEUE}


def test_enqueue_classification_sends_the_comment_id_by_task_name(settings: Settings) -> None:
    app = make_celery(settings)
    # A queue no worker of this run listens to, so the message stays to be read.
    queue_name = f"inspect-{uuid.uuid4().hex}"
    app.conf.task_default_queue = queue_name
    comment_id = uuid.uuid4()

    TaskQueue(app).enqueue_classification(comment_id)

    client = redis.Redis.from_url(settings.broker_url)
    try:
        raw = client.lpop(queue_name)
    finally:
        client.close()
    assert isinstance(raw, bytes)
    message = json.loads(raw)
    assert message["headers"]["task"] == CLASSIFY_COMMENT
    assert message["content-type"] == "application/json"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([str(comment_id)], {})


def test_ping_gives_up_after_its_timeout_and_caches_its_answer(settings: Settings) -> None:
    assert TaskQueue(make_celery(settings)).ping() is True

    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    queue = ProbeCountingQueue(make_celery(down), ping_cache_seconds=60)
    started = time.monotonic()
    assert queue.ping() is False
    # A bound on a timeout (the call must not hang), not a performance figure.
    assert time.monotonic() - started < settings.dependency_timeout_seconds + 1
    assert queue.ping() is False
    assert queue.probes == 1


class ProbeCountingQueue(TaskQueue):
    """A TaskQueue that counts its broker probes (each still a real connection)."""

    probes = 0

    def _probe(self) -> bool:
        self.probes += 1
        return super()._probe()


def test_a_task_sent_answers_the_ping_and_a_failed_send_forgets_it(settings: Settings) -> None:
    app = make_celery(settings)
    app.conf.task_default_queue = f"inspect-{uuid.uuid4().hex}"
    queue = ProbeCountingQueue(app, ping_cache_seconds=60)
    queue.enqueue_classification(uuid.uuid4())
    assert queue.ping() is True
    assert queue.probes == 0

    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    broken = ProbeCountingQueue(make_celery(down), ping_cache_seconds=60)
    assert broken.ping() is False
    with pytest.raises((OperationalError, OSError)):
        broken.enqueue_classification(uuid.uuid4())
    assert broken.ping() is False
    assert broken.probes == 2


def test_a_redis_channel_reuses_one_client_until_its_pool_is_replaced(settings: Settings) -> None:
    # kombu builds a redis client per publish and per acknowledgement; ours keeps one per
    # channel (clients borrow a pooled connection per command), and a new pool a new one.
    app = make_celery(settings)
    queue_name = f"inspect-{uuid.uuid4().hex}"
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        assert channel._create_client(asynchronous=True) is not first
        producer = connection.Producer(channel)
        producer.publish({"n": 1}, routing_key=queue_name, declare=[])
        producer.publish({"n": 2}, routing_key=queue_name, declare=[])
        assert channel._create_client() is first
        channel._disconnect_pools()
        renewed = channel._create_client()
        assert renewed is not first
        assert renewed.connection_pool is channel.pool
        assert renewed.llen(queue_name) == 2
        renewed.delete(queue_name)
