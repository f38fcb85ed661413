"""The workers' composition root: ``celery -A workers.celery_app worker`` (or ``beat``).

Importing this module builds the Settings from the environment, configures logging and
the Celery ``app``, and registers the tasks. It opens no connection: Celery imports it in
the parent process, which forks the pool; every process that runs tasks builds its own
engine, sessionmaker and classifier on ``worker_process_init`` (or, in a pool without
child processes, on first use), because a connection inherited across ``fork`` would be
shared by two processes.

Logging is the service's (``service.logs``, at ``COMMENTGUARD_LOG_LEVEL``), not Celery's:
``--loglevel`` and ``--logfile`` have no effect.

Metrics (``docs/metrics.md``): each process that runs tasks counts in its
``WorkerMetrics``; with ``COMMENTGUARD_WORKER_METRICS_PORT`` the worker's main process
serves them over HTTP. With ``PROMETHEUS_MULTIPROC_DIR`` (needed by a pool of processes)
the main process prepares the directory at ``worker_init``, before the pool starts, and
each pool process marks itself dead there as it exits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextvars import Token
from typing import Any

from celery import signals
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service import metrics as service_metrics
from service.db import make_engine, make_sessionmaker
from service.logs import (
    bind_request_id,
    bind_task_id,
    configure_logging,
    request_id_var,
    task_id_var,
)
from service.moderation.active import ClassifierProvider
from service.queue import REQUEST_ID_HEADER, TaskQueue, make_celery
from service.settings import Settings, SettingsError
from workers.tasks import register_tasks

log = logging.getLogger(__name__)


class WorkerProcess:
    """The resources of the current process, rebuilt when the process id changes.

    Satisfies ``workers.tasks.TaskResources``. Thread-safe (``--pool=threads``).
    """

    def __init__(self, settings: Settings, queue: TaskQueue) -> None:
        self._settings = settings
        self._queue = queue
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._classifier: ClassifierProvider | None = None
        self._metrics: tuple[int, service_metrics.WorkerMetrics] | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    def metrics(self) -> service_metrics.WorkerMetrics:
        """This process's metrics, made on first use in each process (so that a pool
        process counts as itself, never as its parent)."""
        with self._lock:
            if self._metrics is None or self._metrics[0] != os.getpid():
                self._metrics = (os.getpid(), service_metrics.WorkerMetrics(self._settings))
            return self._metrics[1]

    def sessions(self) -> sessionmaker[Session]:
        sessions, _ = self._current()
        return sessions

    def classifier(self) -> ClassifierProvider:
        _, provider = self._current()
        return provider

    def queue(self) -> TaskQueue:
        return self._queue

    def start(self) -> None:
        """Build this process's resources and load the classifier now, so the first task
        does not pay for it. A classifier that fails to load is logged, not fatal: tasks
        fail until it loads, and their outbox rows wait for the sweeper."""
        _, provider = self._current()
        self.metrics()
        ready, detail = provider.ready()
        if ready:
            log.info("worker process %d ready: classifier %s", os.getpid(), detail)
        else:
            log.error("worker process %d: classifier unavailable: %s", os.getpid(), detail)

    def close(self) -> None:
        """Release this process's database connections."""
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = self._sessions = self._classifier = None
            self._pid = None

    def _current(self) -> tuple[sessionmaker[Session], ClassifierProvider]:
        with self._lock:
            if self._pid != os.getpid() or self._sessions is None or self._classifier is None:
                if self._engine is not None:
                    # Inherited from the parent: drop the pool without closing the parent's
                    # sockets.
                    self._engine.dispose(close=False)
                # No ping on each checkout: it was a round trip per task, a tenth of a
                # task's CPU. A connection that died since its last use fails its task
                # with an OperationalError, which is retried (see workers/tasks.py).
                self._engine = make_engine(self._settings, pool_pre_ping=False)
                self._sessions = make_sessionmaker(self._engine)
                self._classifier = ClassifierProvider(
                    self._settings.classifier_path,
                    sessions=self._sessions,
                    poll_seconds=self._settings.classifier_poll_seconds,
                )
                self._pid = os.getpid()
            return self._sessions, self._classifier


settings = Settings()
configure_logging(settings)
app = make_celery(settings)
# A pool process reports itself up only after worker_process_init, which loads the
# classifier; Celery's default of 4 s would kill one that is merely loading a large artifact.
app.conf.worker_proc_alive_timeout = 60.0
process = WorkerProcess(settings, TaskQueue(app))
register_tasks(app, process)

# Tokens of the ids bound for the task running in this thread, keyed by task id.
_bound: dict[str, tuple[Token[str | None], Token[str | None]]] = {}
# When each task running in this process started (perf_counter), keyed by task id.
_started: dict[str, float] = {}
# The main process's metrics directory lock and exporter, once the worker starts.
_exposition: dict[str, Any] = {}


def _keep_service_logging(**_: Any) -> None:
    # Connecting to setup_logging stops Celery from configuring logging itself; the
    # service's one-line-per-event format (with task ids) stays in force.
    configure_logging(settings)


def _start_metrics(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before its pool starts: prepare the metrics
    directory, and serve the metrics when a port is configured. A configuration that
    cannot work stops the worker (Celery only logs what a signal handler raises)."""
    try:
        _prepare_metrics(sender)
    except (SettingsError, OSError) as exc:
        log.critical("worker metrics: %s", exc)
        raise SystemExit(f"worker metrics: {exc}") from exc


def _prepare_metrics(sender: Any) -> None:
    _exposition["lock"] = service_metrics.prepare_directory(settings)
    if not settings.worker_metrics_port:
        return
    if settings.prometheus_multiproc_dir is not None:
        exposed: service_metrics.Exposition = service_metrics.Exposition(settings)
    elif _runs_tasks_itself(getattr(sender, "pool_cls", None)):
        exposed = process.metrics()
    else:
        raise SettingsError(
            "COMMENTGUARD_WORKER_METRICS_PORT with a pool of processes needs "
            "PROMETHEUS_MULTIPROC_DIR: the pool's processes count in files there, which "
            "the main process serves"
        )
    _exposition["server"] = service_metrics.start_exporter(settings, exposed)


def _runs_tasks_itself(pool: object) -> bool:
    """Whether Celery's ``pool`` (a class or an alias) runs tasks in the main process."""
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    return isinstance(name, str) and name.rsplit(".", 1)[-1] in {"solo", "threads", "thread"}


def _start_process(**_: Any) -> None:
    process.start()


def _stop_process(pid: int | None = None, **_: Any) -> None:
    process.close()
    service_metrics.mark_dead(settings, pid or os.getpid())


def _task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is not None:
        _started[task_id] = time.perf_counter()
    process.metrics().task_started(_task_name(task))


def _task_ended(task_id: str | None = None, task: Any = None, state: Any = None, **_: Any) -> None:
    started = _started.pop(task_id, None) if task_id is not None else None
    seconds = None if started is None else time.perf_counter() - started
    process.metrics().task_ended(_task_name(task), str(state or "unknown"), seconds)


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", None) or "unknown")


def _bind_ids(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request_id = task.request.get(REQUEST_ID_HEADER) if task is not None else None
    request_token = bind_request_id(request_id) if request_id else request_id_var.set(None)
    task_token = bind_task_id(task_id)
    if task_id is not None:
        _bound[task_id] = (request_token, task_token)


def _unbind_ids(task_id: str | None = None, **_: Any) -> None:
    tokens = _bound.pop(task_id, None) if task_id is not None else None
    if tokens is None:
        request_id_var.set(None)
        task_id_var.set(None)
        return
    request_token, task_token = tokens
    request_id_var.reset(request_token)
    task_id_var.reset(task_token)


signals.setup_logging.connect(_keep_service_logging, weak=False)
signals.worker_init.connect(_start_metrics, weak=False)
signals.worker_process_init.connect(_start_process, weak=False)
signals.worker_process_shutdown.connect(_stop_process, weak=False)
signals.task_prerun.connect(_bind_ids, weak=False)
signals.task_postrun.connect(_unbind_ids, weak=False)
signals.task_prerun.connect(_task_started, weak=False)
signals.task_postrun.connect(_task_ended, weak=False)
