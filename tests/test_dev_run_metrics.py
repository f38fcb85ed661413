"""``make run`` (scripts/dev_run.py) gives its API and its worker a metrics directory each,
so that neither empties or locks the other's, and has the worker serve its metrics."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _dev_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_run", ROOT / "scripts" / "dev_run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_and_the_worker_count_in_directories_of_their_own() -> None:
    dev_run = _dev_run()
    api, worker = dev_run.metrics_envs({}, host="127.0.0.1", worker_metrics_port=9808)
    assert api["PROMETHEUS_MULTIPROC_DIR"] == str(dev_run.VAR / "metrics" / "api")
    assert worker["PROMETHEUS_MULTIPROC_DIR"] == str(dev_run.VAR / "metrics" / "worker")
    assert worker["COMMENTGUARD_WORKER_METRICS_PORT"] == "9808"
    assert worker["COMMENTGUARD_WORKER_METRICS_HOST"] == "127.0.0.1"
    assert "COMMENTGUARD_WORKER_METRICS_PORT" not in api


def test_an_exported_directory_is_the_parent_of_both() -> None:
    dev_run = _dev_run()
    exported = {"PROMETHEUS_MULTIPROC_DIR": "/srv/metrics", "COMMENTGUARD_WORKER_METRICS_PORT": "0"}
    api, worker = dev_run.metrics_envs(exported, host="127.0.0.1", worker_metrics_port=9808)
    assert api["PROMETHEUS_MULTIPROC_DIR"] == "/srv/metrics/api"
    assert worker["PROMETHEUS_MULTIPROC_DIR"] == "/srv/metrics/worker"
    # An exported port wins, as every exported variable does.
    assert worker["COMMENTGUARD_WORKER_METRICS_PORT"] == "0"
