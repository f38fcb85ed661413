"""Prometheus metrics: what the API and the workers count, and how a scrape reads them.

Two modes, as prometheus_client has them (``docs/metrics.md``):

* One process (no ``PROMETHEUS_MULTIPROC_DIR``): each process keeps its metrics in a
  registry of its own, and its scrape reads them there. Right for the Flask test client,
  a solo Celery worker, or gunicorn with one worker.
* Multiprocess (``PROMETHEUS_MULTIPROC_DIR`` set): every process of a tree (gunicorn's
  workers; a Celery worker's pool processes) writes its values to files of its own in
  that directory, and a scrape in any of them adds up every file there. The tree's parent
  (gunicorn's master, the Celery worker's main process) prepares the directory before any
  child starts (:func:`prepare_directory`: created, locked against a second tree, emptied
  of a previous run's files) and marks each child that exits (:func:`mark_dead`), so
  that the live gauges forget it while its counters keep counting.

The library chooses its mode when it is imported, from the environment; the settings read
the same variable, and :func:`multiprocess_directory` refuses a process where the two
disagree. Nothing here is built at import time; no Flask, no Celery, no SQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from service.moderation.errors import UnauthorizedReason
from service.settings import MetricsSettings, Settings, SettingsError

log = logging.getLogger(__name__)

NAMESPACE = "commentguard"

#: Seconds from a comment's acceptance to its verdict: a verdict normally comes within a
#: second (the API's 100 ms linger, then a batch's classification); a burst queues for
#: seconds; a comment the sweeper had to send again waits its outbox timeout (60 s).
VERDICT_LATENCY_BUCKETS = (
    0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
#: Seconds of an HTTP request: an accepted comment takes a few milliseconds.
HTTP_DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Seconds of a Celery task: a batch's classification is milliseconds, a retrain minutes.
TASK_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip

#: What became of a ``POST /v1/comments``, by the answer's status.
SUBMISSION_OUTCOMES: Mapping[int, str] = {
    202: "accepted",
    400: "malformed",
    401: "unauthorized",
    404: "unknown_site",
    409: "duplicate",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}
#: A 202 that replays an earlier answer (``Idempotency-Key``); any other status.
REPLAYED, OTHER_ERROR = "replayed", "error"
TOKEN_FAILURE_REASONS: tuple[str, ...] = get_args(UnauthorizedReason)
#: The methods a request is timed under by name; any other is ``other``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DECISIONS = ("approved", "held", "spam")

#: The lock a tree's parent holds on its directory while the tree runs.
LOCK_FILE = "commentguard-metrics.lock"
#: prometheus_client's value files: ``<type>[_<gauge mode>]_<pid>.db``.
_VALUE_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


# --- the multiprocess directory --------------------------------------------------------


def multiprocess_directory(settings: MetricsSettings) -> Path | None:
    """``settings.prometheus_multiproc_dir`` once checked against the mode prometheus_client
    was imported in (it reads the variable itself, at import): ``SettingsError`` when
    they differ, as when Settings are built by hand with a directory the environment
    lacks. A directory it may use is created if missing."""
    directory = settings.prometheus_multiproc_dir
    library_multiprocess = bool(getattr(values.ValueClass, "_multiprocess", False))
    if (directory is not None) != library_multiprocess:
        raise SettingsError(
            "PROMETHEUS_MULTIPROC_DIR must be in the environment of the process from its "
            "start (prometheus_client reads it when imported): the settings say "
            f"{directory or 'none'}, the library is in "
            f"{'multiprocess' if library_multiprocess else 'single-process'} mode"
        )
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    return directory


class DirectoryLock:
    """The exclusive lock a tree's parent holds on its metrics directory: held while the
    file stays open, by the parent and the children that inherit it, and released by the
    system when the last of them exits."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()


def prepare_directory(settings: MetricsSettings) -> DirectoryLock | None:
    """In a tree's parent, before it starts any child: create the metrics directory, lock
    it, and delete the value files a previous run left there (their counters would
    otherwise add to this run's). None in single-process mode.

    Raises ``SettingsError`` when another running tree holds the directory: two trees
    that shared one would each empty it under the other's feet, and the scrape of each
    would add up both (give each, the API and each Celery worker, a directory of its own).
    Only prometheus_client's value files are deleted, whatever else the directory holds.
    """
    directory = multiprocess_directory(settings)
    if directory is None:
        return None
    handle = (directory / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SettingsError(
            f"the metrics directory {directory} (PROMETHEUS_MULTIPROC_DIR) is in use by "
            "another running process tree; give each gunicorn and each Celery worker a "
            "directory of its own"
        ) from None
    removed = 0
    for path in directory.iterdir():
        if _VALUE_FILE.match(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    log.info("metrics directory %s ready (%d old value file(s) removed)", directory, removed)
    return DirectoryLock(handle)


def mark_dead(settings: MetricsSettings, pid: int) -> None:
    """In a tree's parent (or the child itself, on its way out): ``pid`` has exited, so
    its live gauges no longer count. Its counters and histograms stay: they are part of
    the tree's totals. Nothing in single-process mode."""
    directory = settings.prometheus_multiproc_dir
    if directory is not None:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def forget_dead_processes(directory: Path) -> None:
    """Mark dead every process whose live gauge files are in ``directory`` and which no
    longer runs (one killed outright, which had no chance to mark itself). Only for a
    directory of this process's own tree: its pids are this machine's."""
    for path in directory.glob("gauge_live*.db"):
        found = _LIVE_GAUGE_FILE.match(path.name)
        if found is not None and not _alive(int(found.group(1))):
            mark_process_dead(int(found.group(1)), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the metrics -----------------------------------------------------------------------


class Exposition:
    """The registry a scrape of this process's tree reads (subclasses add the metrics
    one kind of process counts).

    In single-process mode the metrics are registered in that registry; in multiprocess
    mode they are registered nowhere (their values go to files) and the registry reads
    the directory's files. ``extra`` collectors (scrape-time gauges) are added either way.
    Every collector is guarded: one that fails is logged and left out of the scrape,
    which therefore never fails.
    """

    def __init__(self, settings: MetricsSettings) -> None:
        self.directory = multiprocess_directory(settings)
        self._own = None if self.directory is not None else CollectorRegistry(auto_describe=True)
        self.registry = CollectorRegistry(auto_describe=False)
        if self.directory is not None:
            self.registry.register(_Guarded("multiprocess", _TreeCollector(self.directory)))
        else:
            assert self._own is not None
            self.registry.register(_Guarded("process", self._own))

    def add_collector(self, name: str, collector: Collector) -> None:
        self.registry.register(_Guarded(name, collector))

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape's body in the format ``accept`` prefers (Prometheus text or
        OpenMetrics), and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def _counter(self, name: str, documentation: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(name, documentation, list(labels), namespace=NAMESPACE, registry=self._own)

    def _histogram(
        self, name: str, documentation: str, labels: Iterable[str], buckets: Iterable[float]
    ) -> Histogram:
        return Histogram(
            name,
            documentation,
            list(labels),
            namespace=NAMESPACE,
            registry=self._own,
            buckets=tuple(buckets),
        )

    def _live_gauge(self, name: str, documentation: str, labels: Iterable[str] = ()) -> Gauge:
        # livesum: the sum over the processes that run now; a dead one's file is removed.
        return Gauge(
            name,
            documentation,
            list(labels),
            namespace=NAMESPACE,
            registry=self._own,
            multiprocess_mode="livesum",
        )


class ApiMetrics(Exposition):
    """What an API process counts, and what its ``GET /metrics`` answers (every API
    process of its tree, plus the scrape-time gauges added with :meth:`add_collector`).
    Thread-safe."""

    def __init__(self, settings: MetricsSettings) -> None:
        super().__init__(settings)
        self.submissions = self._counter(
            "comment_submissions_total",
            "POST /v1/comments requests, by what became of them: accepted, replayed (an "
            "Idempotency-Key's earlier answer), duplicate, rate_limited, invalid, malformed, "
            "too_large, unsupported_media_type, unauthorized, unknown_site, unavailable, error.",
            ["outcome"],
        )
        self.token_failures = self._counter(
            "token_failures_total",
            "Credentials refused with 401, by reason (missing, malformed, algorithm, "
            "untrusted_issuer, unknown_kid, unusable_key, bad_signature, expired, "
            "not_yet_valid, wrong_audience, introspection_inactive, invalid_api_key).",
            ["reason"],
        )
        self.request_duration = self._histogram(
            "http_request_duration_seconds",
            "Time the API took to answer a request, by route template, method and status.",
            ["route", "method", "status"],
            HTTP_DURATION_BUCKETS,
        )
        self.processes = self._live_gauge(
            "api_processes", "API (gunicorn worker) processes running."
        )
        # Every known outcome and reason at 0, so that a rate is defined from the start;
        # and each labelled child kept, so that counting skips the label lookup (a few
        # microseconds of every request).
        self._outcomes = {
            outcome: self.submissions.labels(outcome)
            for outcome in (*SUBMISSION_OUTCOMES.values(), REPLAYED, OTHER_ERROR)
        }
        for reason in TOKEN_FAILURE_REASONS:
            self.token_failures.labels(reason)
        self._durations: dict[tuple[str, str, int], Any] = {}
        self.processes.set(1)

    def submission(self, status: int, *, replayed: bool) -> None:
        """Count a ``POST /v1/comments`` answered with ``status``."""
        outcome = REPLAYED if replayed else SUBMISSION_OUTCOMES.get(status, OTHER_ERROR)
        self._outcomes[outcome].inc()

    def token_failure(self, reason: str) -> None:
        self.token_failures.labels(reason).inc()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Time a request. ``route`` is a route template (bounded by the app's routes);
        a method outside HTTP's usual ones is counted as ``other``, so that a client
        cannot make up new series."""
        if method not in HTTP_METHODS:
            method = "other"
        key = (route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.request_duration.labels(route, method, str(status))
        child.observe(seconds)


class WorkerMetrics(Exposition):
    """What a Celery worker process counts; its tree's parent serves them
    (:func:`start_exporter`). Thread-safe."""

    def __init__(self, settings: MetricsSettings) -> None:
        super().__init__(settings)
        self.verdict_latency = self._histogram(
            "verdict_latency_seconds",
            "Time from a comment's acceptance to its classifier verdict (the verdict's "
            "latency_ms), by decision: approved, held, spam.",
            ["decision"],
            VERDICT_LATENCY_BUCKETS,
        )
        self.tasks = self._counter(
            "worker_tasks_total",
            "Celery tasks that ended, by task name and state (success, failure, retry, "
            "rejected, ignored).",
            ["task", "state"],
        )
        self.task_duration = self._histogram(
            "worker_task_duration_seconds",
            "Time a Celery task ran, by task name.",
            ["task"],
            TASK_DURATION_BUCKETS,
        )
        self.tasks_running = self._live_gauge(
            "worker_tasks_running", "Celery tasks running now, by task name.", ["task"]
        )
        self.requeued = self._counter(
            "outbox_requeued_total",
            "Outbox rows the sweeper sent again because their task had not finished in time.",
        )
        self.processes = self._live_gauge(
            "worker_processes", "Celery processes that run tasks (pool processes), running."
        )
        for decision in DECISIONS:
            self.verdict_latency.labels(decision)
        self.processes.set(1)

    def verdict(self, decision: str, latency_ms: float) -> None:
        self.verdict_latency.labels(decision).observe(latency_ms / 1000.0)

    def outbox_requeued(self, count: int) -> None:
        if count:
            self.requeued.inc(count)

    def task_started(self, task: str) -> None:
        self.tasks_running.labels(task).inc()

    def task_ended(self, task: str, state: str, seconds: float | None) -> None:
        self.tasks_running.labels(task).dec()
        self.tasks.labels(task, state.lower()).inc()
        if seconds is not None:
            self.task_duration.labels(task).observe(seconds)


def start_exporter(settings: Settings, metrics: Exposition) -> Any:
    """Serve ``metrics``' registry over HTTP on ``worker_metrics_host``:
    ``worker_metrics_port`` from a daemon thread of this process (a Celery worker's main
    process); the server, which ``shutdown()`` stops."""
    server, _thread = start_http_server(
        settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=metrics.registry
    )
    log.info(
        "worker metrics on http://%s:%d/metrics",
        settings.worker_metrics_host,
        settings.worker_metrics_port,
    )
    return server


# --- collectors ------------------------------------------------------------------------


class _TreeCollector:
    """Every process's values in a multiprocess directory, after forgetting the live
    gauges of processes that died without a word."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._files = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        forget_dead_processes(self._directory)
        return self._files.collect()  # type: ignore[no-untyped-call, no-any-return]


class _Guarded:
    """A collector that never fails a scrape: when ``inner`` raises, the error is logged
    and its metrics are left out of that scrape."""

    def __init__(self, name: str, inner: Any) -> None:
        self._name = name
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self._inner.collect())
        except Exception:
            log.exception("metrics: the %s collector failed; left out of this scrape", self._name)
            return []


@dataclass(frozen=True, slots=True)
class ServiceState:
    """What the scrape-time gauges show, read from the database, the broker and the
    classifier provider. A part that could not be read is None, and named in ``failed``."""

    outbox_pending: int | None = None
    outbox_oldest_age_seconds: float | None = None
    broker_queues: Mapping[str, int] | None = None
    #: (scope, site slug or "", version); scope is ``global`` or ``site``.
    classifier_versions: tuple[tuple[str, str, str], ...] | None = None
    failed: frozenset[str] = field(default_factory=frozenset)


#: The parts a :class:`ServiceState` is read from.
STATE_SOURCES = ("database", "broker", "classifier")


class ServiceStateCollector:
    """Gauges computed at scrape time from ``read()`` (one :class:`ServiceState`), read at
    most once per ``cache_seconds`` (concurrent scrapes wait for one reading), so that
    scrapes, however frequent, cost the database one small query per interval."""

    def __init__(
        self,
        read: Callable[[], ServiceState],
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, ServiceState] | None = None

    def state(self) -> ServiceState:
        with self._lock:
            last = self._last
            if last is None or self._clock() - last[0] >= self._cache_seconds:
                last = (self._clock(), self._read())
                self._last = last
            return last[1]

    def collect(self) -> Iterator[Metric]:
        state = self.state()
        up = GaugeMetricFamily(
            f"{NAMESPACE}_scrape_source_up",
            "Whether the last scrape-time reading of a source succeeded (1) or not (0): "
            "database, broker, classifier.",
            labels=["source"],
        )
        for source in STATE_SOURCES:
            up.add_metric([source], 0.0 if source in state.failed else 1.0)
        yield up
        if state.outbox_pending is not None:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_outbox_pending_rows",
                "Outbox rows whose task has not finished (accepted comments not yet "
                "classified, among them), counted up to 10000.",
                value=state.outbox_pending,
            )
        if state.outbox_oldest_age_seconds is not None:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox row whose task has not finished (0 when none).",
                value=state.outbox_oldest_age_seconds,
            )
        if state.broker_queues is not None:
            queues = GaugeMetricFamily(
                f"{NAMESPACE}_broker_queue_messages",
                "Messages waiting in a broker queue (celery: classification, a message "
                "holding up to COMMENTGUARD_ENQUEUE_MAX_BATCH comments; training; webhooks).",
                labels=["queue"],
            )
            for name, length in sorted(state.broker_queues.items()):
                queues.add_metric([name], float(length))
            yield queues
        if state.classifier_versions is not None:
            versions = GaugeMetricFamily(
                f"{NAMESPACE}_classifier_version_info",
                "The classifier version served, 1 per scope: global (every site without "
                "its own), or site (with the site's slug).",
                labels=["scope", "site", "version"],
            )
            for scope, site, version in state.classifier_versions:
                versions.add_metric([scope, site, version], 1.0)
            yield versions
