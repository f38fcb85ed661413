"""``make run``: the whole service on one machine with nothing but Python installed.

Contract:

* Configuration is the development one unless the caller's environment already says
  otherwise (an exported variable wins, so ``DATABASE_URL=postgresql://... make run``
  works): ``COMMENTGUARD_ENVIRONMENT=development``, SQLite in ``var/commentguard.db``, the
  kombu SQLAlchemy transport on ``var/broker.sqlite`` as the broker (no server), a random
  ``SECRET_KEY`` generated once and kept in ``var/secret-key``, and the development token
  issuer on. The values are also written to ``var/dev.env`` for other shells.
* Before serving: ``commentguard db upgrade``, then the ``demo`` site if it is missing.
* Then two child processes: the API (gunicorn on ``--host``:``--port``) and one Celery
  worker with an embedded beat (``-B``) for the outbox sweep. When the API answers
  ``/readyz`` a token is minted and a curl session to try is printed.
* Metrics (``docs/metrics.md``): each child counts in Prometheus multiprocess mode in a
  directory of its own, ``api`` and ``worker`` under ``var/metrics`` (or under an
  exported ``PROMETHEUS_MULTIPROC_DIR``); the API answers ``/metrics``, the worker serves
  its own on ``--host``:``--worker-metrics-port`` (9808; 0: off).
* Ctrl-C or SIGTERM stops both children gracefully (SIGTERM: gunicorn's graceful stop,
  Celery's warm shutdown), killing them after ``STOP_GRACE_SECONDS``. If either child
  exits on its own, the other is stopped and the exit status is 1. A clean stop is 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
SECRET_FILE = VAR / "secret-key"
DEV_ENV_FILE = VAR / "dev.env"
DEMO_SLUG = "demo"
# service.auth.dev_issuer's DEV_ISSUER and DEV_UI_CLIENT_ID (this script imports nothing
# of the service, so that it runs before the service is installed).
DEV_ISSUER = "https://dev.commentguard.invalid"
DEV_UI_CLIENT_ID = "commentguard-ui"
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0


def development_env(base: dict[str, str]) -> dict[str, str]:
    """The environment for every child: ``base`` plus development defaults it lacks."""
    env = dict(base)
    defaults = {
        "COMMENTGUARD_ENVIRONMENT": "development",
        "DATABASE_URL": f"sqlite:///{VAR / 'commentguard.db'}",
        # The kombu SQLAlchemy transport keeps the queue in a SQLite file: a real broker
        # shared by the API and the worker processes, with no server to install.
        "BROKER_URL": f"sqla+sqlite:///{VAR / 'broker.sqlite'}",
        "SECRET_KEY": _secret_key(),
        "COMMENTGUARD_DEV_ISSUER": "true",
        # Absolute, so that the key does not depend on the directory a child starts in.
        "COMMENTGUARD_DEV_KEY_PATH": str(VAR / "dev-issuer-key.pem"),
    }
    for name, value in defaults.items():
        env.setdefault(name, value)
    # The children import the project from the work tree even if it was not installed
    # in editable mode.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _secret_key() -> str:
    """The persisted development secret, generated on first use (mode 0600)."""
    if SECRET_FILE.exists():
        key = SECRET_FILE.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(48)
    fd = os.open(SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _write_dev_env(env: dict[str, str]) -> None:
    names = [
        "COMMENTGUARD_ENVIRONMENT",
        "DATABASE_URL",
        "BROKER_URL",
        "SECRET_KEY",
        "COMMENTGUARD_DEV_ISSUER",
        "COMMENTGUARD_DEV_KEY_PATH",
    ]
    lines = [f"{name}={env[name]}" for name in names]
    fd = os.open(DEV_ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by scripts/dev_run.py; `set -a; . var/dev.env; set +a` to use it.\n")
        f.write("\n".join(lines) + "\n")


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``commentguard ARGS`` with ``env``; its stdout, or exit with its message."""
    command = [sys.executable, "-c", "from service.cli import main; main()", *args]
    # The command is this interpreter and fixed arguments: no untrusted input.
    done = subprocess.run(  # noqa: S603
        command, env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"dev_run: `commentguard {' '.join(args)}` failed ({done.returncode})")
    return done.stdout


def ensure_demo_site(env: dict[str, str], *, port: int) -> None:
    """Create the ``demo`` site unless it exists (so that re-runs keep its data), and let
    its moderators log in to the web UI at the development issuer unless the site names
    another UI client."""
    sites = json.loads(cli(env, "site", "list", "--json"))
    demo = next((s for s in sites if s["slug"] == DEMO_SLUG), None)
    if demo is None:
        _create_demo_site(env, port=port)
    if demo is None or not demo.get("ui_client"):
        cli(
            env,
            "site",
            "ui-client",
            DEMO_SLUG,
            "--issuer",
            DEV_ISSUER,
            "--client-id",
            DEV_UI_CLIENT_ID,
            "--public",
        )


def _create_demo_site(env: dict[str, str], *, port: int) -> None:
    cli(
        env,
        "site",
        "create",
        "--slug",
        DEMO_SLUG,
        "--name",
        "Demo",
        "--url",
        f"http://localhost:{port}",
    )


def metrics_envs(
    env: dict[str, str], *, host: str, worker_metrics_port: int
) -> tuple[dict[str, str], dict[str, str]]:
    """The API's and the worker's environments: each process tree counts its metrics in a
    directory of its own (the parent of each empties it at start, and refuses one that
    another running tree holds), under ``PROMETHEUS_MULTIPROC_DIR`` when the caller
    exported one, else under ``var/metrics``; the worker serves its metrics on
    ``host``:``worker_metrics_port`` unless that is 0 or the caller set the port."""
    base = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or VAR / "metrics")
    api = {**env, "PROMETHEUS_MULTIPROC_DIR": str(base / "api")}
    worker = {**env, "PROMETHEUS_MULTIPROC_DIR": str(base / "worker")}
    worker.setdefault("COMMENTGUARD_WORKER_METRICS_PORT", str(worker_metrics_port))
    worker.setdefault("COMMENTGUARD_WORKER_METRICS_HOST", host)
    return api, worker


def start_children(
    env: dict[str, str], *, host: str, port: int, worker_metrics_port: int = 0
) -> dict[str, subprocess.Popen[bytes]]:
    """The API and the worker, each in its own session so that a terminal's Ctrl-C reaches
    only this script, which then stops them once and in order (a second SIGINT would turn
    Celery's warm shutdown into a cold one). Each counts its metrics as
    :func:`metrics_envs` says."""
    api = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:service.gunicorn_conf",
        "--bind",
        f"{host}:{port}",
        "--workers",
        "2",
        "--access-logfile",
        "-",
        # gunicorn's control socket has one default path per user: a second gunicorn on
        # the machine (the bench, another checkout) would take it over.
        "--no-control-socket",
        "service.app:create_app()",
    ]
    worker = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-B",
        "--schedule",
        str(VAR / "celerybeat-schedule"),
        "--concurrency",
        "2",
        "--loglevel",
        env.get("COMMENTGUARD_LOG_LEVEL", "INFO"),
    ]
    api_env, worker_env = metrics_envs(env, host=host, worker_metrics_port=worker_metrics_port)
    return {"api": _spawn(api, api_env), "worker": _spawn(worker, worker_env)}


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # argv is this interpreter and fixed arguments: no untrusted input.
    return subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)  # noqa: S603


def wait_ready(
    url: str, children: dict[str, subprocess.Popen[bytes]], stopping: Callable[[], bool]
) -> bool:
    """True once ``url`` answers 200; False if a child died, a stop was asked for, or the
    timeout passed."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stopping():
        if any(p.poll() is not None for p in children.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  (our URL)
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each live child, then SIGKILL its whole process group after the grace."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            sys.stderr.write(
                f"dev_run: {name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing\n"
            )
            # The child leads its own session, so its pid is its process group's id: this
            # also ends gunicorn's workers or Celery's pool processes left behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def print_session(
    env: dict[str, str], *, host: str, port: int, worker_metrics_port: int = 0
) -> None:
    # A day: the session printed below stays usable while the service runs.
    token = cli(
        env, "dev", "token", "--sub", "alice", "--site", DEMO_SLUG, "--ttl", "86400"
    ).strip()
    base = f"http://{host}:{port}"
    worker_metrics = (
        f", http://{host}:{worker_metrics_port}/metrics (the worker)" if worker_metrics_port else ""
    )
    body = json.dumps(
        {
            "site": DEMO_SLUG,
            "thread": "/hello-world",
            "author_name": "Alice",
            "content": "Great post, thanks for writing it!",
        }
    )
    print(
        f"""
Commentguard is running: API {base}, one worker with beat. Ctrl-C stops both.

Moderators' web UI: {base}/ui/{DEMO_SLUG}/ (the development issuer's login page asks
who to be: keep "moderator" at "{DEMO_SLUG}", or pick "admin" to edit the rules).

Try it (another shell, from {ROOT}):

  TOKEN={token}
  curl -si {base}/v1/comments -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{body}'
  # then, with the Location header it answered:
  curl -s {base}/v1/comments/<id> -H "Authorization: Bearer $TOKEN"

More tokens (another author: change --sub):

  set -a; . var/dev.env; set +a
  .venv/bin/commentguard dev token --sub bob --site {DEMO_SLUG}

Metrics: {base}/metrics (the API){worker_metrics}
""",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--worker-metrics-port", type=int, default=9808, help="the worker's metrics (0: off)"
    )
    args = parser.parse_args(argv)

    VAR.mkdir(exist_ok=True)
    env = development_env(dict(os.environ))
    _write_dev_env(env)
    print(f"dev_run: database {env['DATABASE_URL']}, broker {env['BROKER_URL']}", flush=True)
    cli(env, "db", "upgrade")
    ensure_demo_site(env, port=args.port)

    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    children = start_children(
        env, host=args.host, port=args.port, worker_metrics_port=args.worker_metrics_port
    )
    try:
        ready_url = f"http://{args.host}:{args.port}/readyz"
        if not wait_ready(ready_url, children, lambda: stopping):
            if not stopping:
                sys.stderr.write("dev_run: the API did not become ready; stopping\n")
                return 1
            return 0
        print_session(
            env, host=args.host, port=args.port, worker_metrics_port=args.worker_metrics_port
        )
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    sys.stderr.write(f"dev_run: {name} exited ({proc.returncode}); stopping\n")
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        stop(children)
        print("dev_run: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
