"""``service/gunicorn_conf.py`` under a real gunicorn: a worker that has loaded its app has
frozen what it holds, so that full collections leave it out; without the config, nothing
is frozen."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _frozen_in_worker(*config: str) -> int:
    """Start gunicorn (one sync worker) on the probe app with ``config``; what its worker
    reports of ``gc.get_freeze_count()``."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *config,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--no-control-socket",
        "tests.support.gc_app:app",
    ]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    answers: list[int] = []

    def answered() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            answers.append(int(connection.getresponse().read()))
        except OSError:
            return False
        finally:
            connection.close()
        return True

    try:
        wait_until(answered, timeout=30, message="gunicorn to answer")
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output.decode(errors="replace")
    return answers[0]


def test_a_worker_freezes_what_it_holds_once_its_app_is_loaded() -> None:
    assert _frozen_in_worker("--config", "python:service.gunicorn_conf") > 10_000
    assert _frozen_in_worker() == 0


def test_the_image_runs_gunicorn_with_the_config() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert '"--config", "python:service.gunicorn_conf"' in cmd
