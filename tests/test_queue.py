"""The Celery configuration and the sender the API uses, against the run's real Redis."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu.exceptions import OperationalError

from service.queue import (
    CLASSIFY_COMMENT,
    CLASSIFY_COMMENTS,
    COMMENTS_QUEUE,
    DELIVER_WEBHOOKS,
    RESCORE,
    RETRAIN,
    SCHEDULED_RETRAIN,
    SWEEP_OUTBOX,
    SWEEP_WEBHOOKS,
    TRAINING_QUEUE,
    WEBHOOKS_QUEUE,
    ClassificationBatcher,
    TaskQueue,
    make_celery,
)
from service.settings import Settings
from tests.support.wait import wait_until


def test_delivery_guarantees_and_the_sweep_schedule(settings: Settings) -> None:
    conf = make_celery(settings).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_backend is None
    entries = {entry["task"]: entry for entry in conf.beat_schedule.values()}
    assert set(entries) == {SWEEP_OUTBOX, SWEEP_WEBHOOKS}
    assert entries[SWEEP_OUTBOX]["schedule"] == settings.sweep_interval_seconds
    assert entries[SWEEP_WEBHOOKS]["schedule"] == settings.webhook_sweep_interval_seconds


def test_long_jobs_have_their_own_queue_and_a_plain_worker_consumes_both(
    settings: Settings,
) -> None:
    app = make_celery(settings)
    router = app.amqp.router
    for task in (RETRAIN, RESCORE, SCHEDULED_RETRAIN):
        assert router.route({}, task)["queue"].name == TRAINING_QUEUE
    for task in (CLASSIFY_COMMENT, SWEEP_OUTBOX):
        assert router.route({}, task)["queue"].name == COMMENTS_QUEUE
    # Webhook deliveries wait on other servers: never on the comment path's workers.
    for task in (DELIVER_WEBHOOKS, SWEEP_WEBHOOKS):
        assert router.route({}, task)["queue"].name == WEBHOOKS_QUEUE
    # A worker started without -Q consumes every queue of task_queues.
    assert set(app.amqp.queues) == {COMMENTS_QUEUE, TRAINING_QUEUE, WEBHOOKS_QUEUE}


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


class InspectedQueue:
    """A TaskQueue sending to a queue of its own that no worker of this run consumes, and
    the (args, kwargs) of the messages sent to it, oldest first."""

    def __init__(self, settings: Settings) -> None:
        app = make_celery(settings)
        self.name = app.conf.task_default_queue = f"inspect-{uuid.uuid4().hex}"
        self.queue = TaskQueue(app)
        self._client = redis.Redis.from_url(settings.broker_url)

    def messages(self) -> list[tuple[str, list[object], dict[str, object]]]:
        # kombu LPUSHes and its consumers BRPOP: the oldest message is last in the list.
        found = []
        for raw in reversed(self._client.lrange(self.name, 0, -1)):
            message = json.loads(raw)
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            found.append((message["headers"]["task"], args, kwargs))
        return found

    def close(self) -> None:
        self._client.delete(self.name)
        self._client.close()


@pytest.fixture
def inspected(settings: Settings) -> Iterator[InspectedQueue]:
    queue = InspectedQueue(settings)
    yield queue
    queue.close()


def test_a_batcher_sends_what_came_within_its_linger_as_one_message(
    inspected: InspectedQueue,
) -> None:
    batcher = ClassificationBatcher(inspected.queue, linger_seconds=0.3, max_batch=100)
    ids = [uuid.uuid4() for _ in range(5)]
    for n, comment_id in enumerate(ids):
        batcher.add(comment_id, f"req-{n}" if n % 2 == 0 else None)

    [message] = wait_until(inspected.messages, timeout=10, message="the batch to be sent")
    assert message == (
        CLASSIFY_COMMENTS,
        [[str(i) for i in ids], ["req-0", None, "req-2", None, "req-4"]],
        {},
    )
    # A later comment starts a batch of its own.
    later = uuid.uuid4()
    batcher.add(later)
    wait_until(lambda: len(inspected.messages()) == 2, timeout=10, message="the second batch")
    assert inspected.messages()[1][1] == [[str(later)], [None]]
    batcher.close()


def test_a_full_batch_goes_at_once_and_close_sends_the_rest(inspected: InspectedQueue) -> None:
    # A linger no test waits out: only a full batch, or close, sends anything.
    batcher = ClassificationBatcher(inspected.queue, linger_seconds=3600, max_batch=3)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for comment_id in ids:
        batcher.add(uuid.UUID(comment_id))

    [full] = wait_until(inspected.messages, timeout=10, message="the full batch to be sent")
    assert full[1][0] == ids[:3]
    batcher.close()
    assert [args[0] for _, args, _ in inspected.messages()] == [ids[:3], ids[3:]]
    # Once closed, a comment is sent at once, in the caller's thread.
    last = uuid.uuid4()
    batcher.add(last)
    assert inspected.messages()[-1][1] == [[str(last)], [None]]


def test_a_forked_child_sends_only_its_own_comments(inspected: InspectedQueue) -> None:
    batcher = ClassificationBatcher(inspected.queue, linger_seconds=3600, max_batch=100)
    parents, childs = str(uuid.uuid4()), str(uuid.uuid4())
    batcher.add(uuid.UUID(parents))
    pid = os.fork()
    if pid == 0:  # the child: its batcher starts empty, with a thread of its own
        code = 1
        try:
            batcher.add(uuid.UUID(childs))
            batcher.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    batcher.close()
    assert [args[0] for _, args, _ in inspected.messages()] == [[childs], [parents]]


def test_a_batch_the_broker_refuses_is_logged_for_the_sweeper(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    queue = ProbeCountingQueue(make_celery(down), ping_cache_seconds=60)
    batcher = ClassificationBatcher(queue, linger_seconds=0, max_batch=100)
    comment_id = uuid.uuid4()
    with caplog.at_level(logging.WARNING, logger="service.queue"):
        batcher.add(comment_id)
        batcher.close(timeout=settings.dependency_timeout_seconds * 4)
    [record] = [r for r in caplog.records if "the sweeper will send them" in r.getMessage()]
    assert f"enqueueing 1 comment(s) failed (first {comment_id})" in record.getMessage()
    # The failed send made the next ping probe the broker again.
    assert queue.ping() is False
    assert queue.probes == 1


def test_a_batcher_refuses_a_negative_linger_or_an_empty_batch(settings: Settings) -> None:
    queue = TaskQueue(make_celery(settings))
    with pytest.raises(ValueError, match="linger"):
        ClassificationBatcher(queue, linger_seconds=-1, max_batch=10)
    with pytest.raises(ValueError, match="max_batch"):
        ClassificationBatcher(queue, linger_seconds=0, max_batch=0)
