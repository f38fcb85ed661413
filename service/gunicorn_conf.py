"""Gunicorn hooks for the API: ``gunicorn --config python:service.gunicorn_conf ...``.

The command line says everything else (bind, workers, threads); this module holds only
what it cannot, so that the Dockerfile, ``make run`` and the benches run the API alike.
Its hooks: the master prepares the Prometheus multiprocess directory before it starts a
worker and marks each worker that exits (``service.metrics``); a worker freezes its heap
once its app is loaded.
"""

from __future__ import annotations

import gc
from typing import Any

from service import metrics
from service.settings import MetricsSettings

# The master's: its settings and its hold on the metrics directory, for as long as it runs.
_master: dict[str, Any] = {}


def on_starting(server: Any) -> None:
    """In the master, before any worker: empty and lock the metrics directory (when
    ``PROMETHEUS_MULTIPROC_DIR`` is set), so that a previous run's counters are not added
    to this one's, and a second gunicorn cannot share it."""
    settings = MetricsSettings()
    _master["settings"] = settings
    _master["lock"] = metrics.prepare_directory(settings)


def child_exit(server: Any, worker: Any) -> None:
    """In the master, for a worker that exited (or was killed): its live gauges stop
    counting; its counters and histograms stay in the totals."""
    settings = _master.get("settings")
    if isinstance(settings, MetricsSettings):
        metrics.mark_dead(settings, worker.pid)


def post_worker_init(worker: Any) -> None:
    """Once a worker process has loaded the app, collect, then freeze what it holds.

    The modules, the app and its caches are about 250,000 objects that live as long as
    the process. Python's full collections walk every tracked object, stopping every
    thread of the process meanwhile: 130-350 ms each on the development machine, a few
    times a run of the pipeline bench, every request in flight waiting. Frozen objects are
    left out of every collection (``gc.freeze``), so a full collection walks only what was
    made since (1-15 ms measured). Collecting first keeps garbage from being frozen; what
    is frozen is still freed by reference counting, only a cycle among frozen objects
    would stay.
    """
    gc.collect()
    gc.freeze()
