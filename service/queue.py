"""The task queue as the rest of the service sees it: a configured Celery app and senders.

``make_celery`` is the one place Celery is configured, for the API (which only sends) and
for the workers and beat (``workers/celery_app.py``). ``TaskQueue`` sends tasks by name,
so the API never imports the workers, and tells whether the broker is reachable.
``ClassificationBatcher`` is how the API enqueues the comments it accepts: many to a
message, from a background thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from kombu.entity import Queue
from kombu.transport import redis as kombu_redis

from service.logs import request_id_var
from service.settings import Settings

log = logging.getLogger(__name__)

CLASSIFY_COMMENT = "commentguard.classify_comment"
#: The API's classification task: many comments per message (see ``ClassificationBatcher``).
CLASSIFY_COMMENTS = "commentguard.classify_comments"
SWEEP_OUTBOX = "commentguard.sweep_outbox"
RETRAIN = "commentguard.retrain"
RESCORE = "commentguard.rescore"
SCHEDULED_RETRAIN = "commentguard.scheduled_retrain"
#: Send webhook deliveries: ``deliveries=[[delivery id, attempts], ...]`` (one is sent,
#: several are fanned out to one task each).
DELIVER_WEBHOOKS = "commentguard.deliver_webhooks"
SWEEP_WEBHOOKS = "commentguard.sweep_webhooks"

#: The queue of the comment path (classification, the sweep): Celery's default.
COMMENTS_QUEUE = "celery"
#: The queue of long jobs (retraining, re-scoring). Separate, so that a deployment can give
#: them their own worker and a retrain never takes a process away from classification;
#: a worker started without ``-Q`` consumes both.
TRAINING_QUEUE = "training"
#: The queue of webhook deliveries and their sweep: network waits on other people's
#: servers (up to ``webhook_timeout_seconds`` each), kept off the comment path's workers.
#: A deployment gives it a worker of its own with a threads pool (docker-compose.yml).
WEBHOOKS_QUEUE = "webhooks"

#: A message header carrying the id of the HTTP request that enqueued a task, so that the
#: worker's log lines for it can be matched with the API's.
REQUEST_ID_HEADER = "commentguard_request_id"

#: Redis re-delivers a message not acknowledged this long after delivery. It must exceed
#: the longest retry countdown (an ETA message counts as unacknowledged while it waits) or
#: retries are doubled; recovering from a crashed worker is the outbox sweeper's job, which
#: is much quicker (``outbox_timeout_seconds``).
VISIBILITY_TIMEOUT_SECONDS = 3600

#: How long ``TaskQueue.ping`` trusts its last answer.
PING_CACHE_SECONDS = 1.0


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, keeping one client for its synchronous commands.

    kombu builds a new ``redis.Redis`` for every publish and every acknowledgement; with
    redis-py 5 and later that costs about 0.1-0.2 ms of CPU each (its command table is
    copied into a fresh dict), a sizeable share of sending or running a small task. A
    client holds no connection of its own (each command borrows one from the channel's
    pool), so one per channel serves every command; it is rebuilt when the channel
    replaces its pool (after a disconnect)."""

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[no-untyped-call]
        return client


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`_RedisChannel`."""

    Channel = _RedisChannel


def make_celery(settings: Settings, *, name: str = "commentguard") -> Celery:
    """A Celery app for ``settings.broker_url`` with the service's delivery guarantees.

    * At least once: ``task_acks_late`` (a message is acknowledged after its task ends) and
      ``task_reject_on_worker_lost`` (a pool process killed mid-task sends its message back),
      with a prefetch of one, so a dead worker strands at most one message per process.
      Tasks are therefore idempotent.
    * JSON only, in and out: no pickle from the broker.
    * No result backend: tasks write their results to the database.
    * A broker outage surfaces within ``settings.dependency_timeout_seconds`` (connects,
      socket reads, one quick publish retry) instead of hanging a request.
    * Beat sends ``SWEEP_OUTBOX`` every ``settings.sweep_interval_seconds``; a sweep not
      started within one interval expires, so an outage does not pile them up. With
      ``settings.retrain_interval_seconds`` it also sends ``SCHEDULED_RETRAIN`` (likewise
      expiring).
    * Retraining and re-scoring go to ``TRAINING_QUEUE``, webhook deliveries and their
      sweep (every ``settings.webhook_sweep_interval_seconds``) to ``WEBHOOKS_QUEUE``,
      everything else to ``COMMENTS_QUEUE``; a worker consumes all three unless told
      otherwise (``-Q``).
    * On Redis, :class:`RedisTransport` (kombu's, reusing one client per channel).

    Works with Redis (``redis://``) and with kombu's server-less SQLAlchemy transport
    (``sqla+sqlite:///var/broker.sqlite``) for development.
    """
    timeout = settings.dependency_timeout_seconds
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        transport_options = {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "retry_on_timeout": True,
            "health_check_interval": 25,
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        }
    # kombu's SQLAlchemy transport hands every transport option to create_engine (even
    # its own polling_interval), so it gets none: it polls once a second.

    app = Celery(name, broker=settings.broker_url, set_as_current=False)
    if transport_options:
        app.conf.broker_transport = RedisTransport
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        # The service configures logging itself (service.logs); Celery must not replace it.
        worker_hijack_root_logger=False,
        enable_utc=True,
        timezone="UTC",
        task_default_queue=COMMENTS_QUEUE,
        task_queues=[Queue(name) for name in (COMMENTS_QUEUE, TRAINING_QUEUE, WEBHOOKS_QUEUE)],  # type: ignore[no-untyped-call]  # kombu ships no annotations
        task_routes={
            **{name: {"queue": TRAINING_QUEUE} for name in (RETRAIN, RESCORE, SCHEDULED_RETRAIN)},
            **{name: {"queue": WEBHOOKS_QUEUE} for name in (DELIVER_WEBHOOKS, SWEEP_WEBHOOKS)},
        },
        beat_schedule={
            "sweep-outbox": {
                "task": SWEEP_OUTBOX,
                "schedule": settings.sweep_interval_seconds,
                "options": {"expires": settings.sweep_interval_seconds},
            }
        },
    )
    app.conf.beat_schedule["sweep-webhooks"] = {
        "task": SWEEP_WEBHOOKS,
        "schedule": settings.webhook_sweep_interval_seconds,
        "options": {"expires": settings.webhook_sweep_interval_seconds},
    }
    if settings.retrain_interval_seconds > 0:
        app.conf.beat_schedule["scheduled-retrain"] = {
            "task": SCHEDULED_RETRAIN,
            "schedule": settings.retrain_interval_seconds,
            "options": {"expires": settings.retrain_interval_seconds},
        }
    return app


def send_deliveries(queue: Any, deliveries: Sequence[Sequence[int]]) -> None:
    """Enqueue ``DELIVER_WEBHOOKS`` for ``deliveries`` (``[delivery id, attempts]``
    pairs) on ``queue`` (anything with ``enqueue(task, payload)``), in one message. Call
    after the commit that wrote them. A failure is logged, not raised: the decision is
    committed, and its deliveries are due for the webhook sweeper."""
    if not deliveries:
        return
    try:
        queue.enqueue(DELIVER_WEBHOOKS, {"deliveries": [list(pair) for pair in deliveries]})
    except Exception:
        log.warning(
            "enqueueing %d webhook deliveries failed; the webhook sweeper will send them",
            len(deliveries),
            exc_info=True,
        )


class TaskQueue:
    """Sends tasks by name; thread-safe (the producer pool is Celery's)."""

    def __init__(self, celery: Celery, *, ping_cache_seconds: float = PING_CACHE_SECONDS) -> None:
        self._celery = celery
        self._ping_cache_seconds = ping_cache_seconds
        self._lock = threading.Lock()
        self._last_ping: tuple[float, bool] | None = None

    def enqueue_classification(self, comment_id: uuid.UUID) -> None:
        """Send ``CLASSIFY_COMMENT`` for ``comment_id``. Call only after the commit that
        stored the comment (the worker must find it). Raises kombu's ``OperationalError``
        when the broker cannot be reached; the outbox row makes that recoverable."""
        self._send(CLASSIFY_COMMENT, args=[str(comment_id)])

    def enqueue_classifications(
        self, comment_ids: Sequence[str], request_ids: Sequence[str | None]
    ) -> None:
        """Send one ``CLASSIFY_COMMENTS`` for ``comment_ids`` (each comment's HTTP request
        id beside it, for the worker's log lines). Call and raise as
        ``enqueue_classification``."""
        self._send(CLASSIFY_COMMENTS, args=[list(comment_ids), list(request_ids)])

    def enqueue(self, task: str, payload: dict[str, Any]) -> None:
        """Send ``task`` with ``payload`` as its keyword arguments (an outbox row's task and
        payload). Raises like ``enqueue_classification``."""
        self._send(task, kwargs=dict(payload))

    def ping(self) -> bool:
        """Whether the broker accepts a connection, answered within about
        ``dependency_timeout_seconds`` and then cached for ``ping_cache_seconds``, so that
        it can be asked on every request. A task sent successfully is an answer too (the
        broker took a message), so a busy API never probes; a failed send forgets the
        last answer, so the next ping probes."""
        with self._lock:
            last = self._last_ping
        now = time.monotonic()
        if last is not None and now - last[0] < self._ping_cache_seconds:
            return last[1]
        reachable = self._probe()
        with self._lock:
            self._last_ping = (time.monotonic(), reachable)
        return reachable

    def queue_lengths(self, names: Sequence[str]) -> dict[str, int]:
        """Messages waiting in each broker queue of ``names``: sent, not yet delivered to a
        worker (one taken by a worker and not yet acknowledged is not counted). A message
        may carry many comments (``ClassificationBatcher``). On Redis, one pipelined LLEN
        round trip per queue over a pooled connection. Raises kombu's or the socket's error
        when the broker cannot be reached (within ``dependency_timeout_seconds``)."""
        with self._celery.pool.acquire(block=True) as connection:
            channel = connection.default_channel
            return {name: int(channel.queue_declare(queue=name).message_count) for name in names}

    def _probe(self) -> bool:
        try:
            with self._celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=0)
        except Exception as exc:
            log.warning("broker unreachable: %s", exc)
            return False
        return True

    def _send(
        self,
        task: str,
        *,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        request_id = request_id_var.get()
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        try:
            self._celery.send_task(task, args=args, kwargs=kwargs, headers=headers)
        except BaseException:
            with self._lock:
                self._last_ping = None
            raise
        answer = (time.monotonic(), True)
        with self._lock:
            self._last_ping = answer


class ClassificationBatcher:
    """Enqueues the classification of the comments this process accepts, many comments to
    a message, from a background thread.

    ``add`` returns at once: the comment joins the next batch. The thread sends a batch
    (one ``CLASSIFY_COMMENTS`` message) once ``linger_seconds`` have passed since the
    batch's first comment, or as soon as it holds ``max_batch``; so a comment waits at most
    ``linger_seconds`` before it is sent. Under load, building and publishing a Celery
    message, and delivering and acknowledging it on a worker, are paid once per batch
    instead of once per comment.

    A batch that is never sent loses nothing: each comment's outbox row, committed before
    ``add``, stays undone, and the sweeper enqueues it after ``outbox_timeout_seconds``.
    That covers a broker that fails the send (logged, and the next broker ping probes
    again) and a process killed with comments pending. ``close`` sends what is pending
    and stops the thread (the app registers it to run at exit). Thread-safe. A child
    process forked from one with a batcher starts with nothing pending (its parent sends
    its own) and starts its own thread.
    """

    def __init__(self, queue: TaskQueue, *, linger_seconds: float, max_batch: int) -> None:
        if linger_seconds < 0 or max_batch < 1:
            raise ValueError("linger_seconds must be >= 0 and max_batch >= 1")
        self._queue = queue
        self._linger = linger_seconds
        self._max_batch = max_batch
        self._start_afresh()
        # Weakly: a fork hook must not keep every batcher a process ever made alive.
        start_afresh = weakref.WeakMethod(self._start_afresh)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(start_afresh))

    def _start_afresh(self) -> None:
        self._ready = threading.Condition()
        self._pending: list[tuple[str, str | None]] = []
        self._first_at = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, comment_id: uuid.UUID, request_id: str | None = None) -> None:
        """Have ``comment_id`` classified: sent within ``linger_seconds``. Call only after
        the commit that stored the comment and its outbox row. After ``close``, sends at
        once in this thread (raising as ``TaskQueue.enqueue_classification``)."""
        with self._ready:
            if not self._closed:
                if not self._pending:
                    self._first_at = time.monotonic()
                self._pending.append((str(comment_id), request_id))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="classification-batcher", daemon=True
                    )
                    self._thread.start()
                elif len(self._pending) in (1, self._max_batch):
                    self._ready.notify()
                return
        self._queue.enqueue_classifications([str(comment_id)], [request_id])

    def close(self, timeout: float = 5.0) -> None:
        """Send what is pending and stop the thread (waiting up to ``timeout`` seconds)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return
                deadline = self._first_at + self._linger
                while len(self._pending) < self._max_batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
                batch = self._pending[: self._max_batch]
                # What is left is older than its deadline: it goes out next, at once.
                del self._pending[: self._max_batch]
            self._send(batch)

    def _send(self, batch: list[tuple[str, str | None]]) -> None:
        comment_ids = [comment_id for comment_id, _ in batch]
        try:
            self._queue.enqueue_classifications(
                comment_ids, [request_id for _, request_id in batch]
            )
        except Exception:
            log.warning(
                "enqueueing %d comment(s) failed (first %s); the sweeper will send them",
                len(batch),
                comment_ids[0],
                exc_info=True,
            )


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()
