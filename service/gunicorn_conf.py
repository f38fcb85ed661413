"""Gunicorn hooks for the API: ``gunicorn --config python:service.gunicorn_conf ...``.

The command line says everything else (bind, workers, threads); this module holds only
what it cannot, so that the Dockerfile, ``make run`` and the benches run the API alike.
"""

from __future__ import annotations

import gc
from typing import Any


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
