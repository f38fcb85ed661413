"""Metrics in multiprocess mode, as production runs: a real gunicorn with two workers and
a real Celery worker with two pool processes (and its exporter), each tree with its own
``PROMETHEUS_MULTIPROC_DIR``, on a database and a Redis database of their own.

What it shows: the API's ``/metrics`` adds up what both gunicorn workers counted, the
outbox and broker gauges move while nothing classifies and settle once a worker does,
token failures are counted by reason, the worker's exporter counts every verdict in the
latency histogram and its tasks by state; a process that dies leaves the live gauges
while its counts stay; a previous run's files are wiped at start; and a second tree is
refused the directory another one holds.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from alembic import command
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models import Verdict
from service.auth.dev_issuer import mint_dev_token
from service.db import make_engine, make_sessionmaker
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.queue import CLASSIFY_COMMENTS, SWEEP_OUTBOX
from service.settings import Settings
from tests.conftest import DEFAULT_ADMIN_DATABASE_URL, alembic_config
from tests.support.env import settings_env
from tests.support.metrics import Samples, parse, total, value
from tests.support.services import claimed_redis_database, fresh_postgres_database
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker

ROOT = Path(__file__).resolve().parent.parent
SITE = "metrics"
SUBMISSIONS = "commentguard_comment_submissions_total"
LATENCY_COUNT = "commentguard_verdict_latency_seconds_count"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    settings: Settings
    sessions: sessionmaker[Session]
    env: dict[str, str]
    api_dir: Path
    worker_dir: Path
    api_url: str
    gunicorn: subprocess.Popen[bytes]
    gunicorn_log: Path
    worker: CeleryWorker
    worker_url: str

    def scrape_api(self) -> Samples:
        response = requests.get(f"{self.api_url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return parse(response.text)

    def scrape_worker(self) -> Samples:
        response = requests.get(f"{self.worker_url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return parse(response.text)

    def post(self, token: str, content: str) -> requests.Response:
        # A connection per request: gunicorn hands each to whichever worker accepts it.
        return requests.post(
            f"{self.api_url}/v1/comments",
            json={"site": SITE, "thread": "/t", "content": content},
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
            timeout=30,
        )


def _gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:service.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--no-control-socket",
        "service.app:create_app()",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _seed_stale_count(directory: Path) -> None:
    """A counter file as a previous run's dead worker would have left it: 1000 accepted."""
    stale = MmapedDict(str(directory / "counter_999999.db"))  # type: ignore[no-untyped-call]
    stale.write_value(  # type: ignore[no-untyped-call]
        mmap_key(
            "commentguard_comment_submissions",
            SUBMISSIONS,
            ["outcome"],
            ["accepted"],
            "left over from a previous run",
        ),
        1000.0,
        0.0,
    )
    stale.close()  # type: ignore[no-untyped-call]


def _counted_by_process(directory: Path, sample: str, **labels: str) -> dict[int, float]:
    """What each process's counter file holds for ``sample`` with ``labels``."""
    found: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, number, _timestamp, _pos in values:
            _metric, name, key_labels, _help = json.loads(key)
            if name == sample and key_labels == labels:
                found[pid] = found.get(pid, 0.0) + number
    return found


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("metrics-mp")
    admin_url = os.environ.get("COMMENTGUARD_TEST_DATABASE_URL", DEFAULT_ADMIN_DATABASE_URL)
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(fresh_postgres_database(admin_url, prefix="cg_metrics"))
        # A Redis database of its own: no other worker of the run takes these tasks.
        broker = stack.enter_context(claimed_redis_database(settings.broker_url, explicit=False))
        scratch = settings.model_copy(
            update={
                "database_url": database.render_as_string(hide_password=False),
                "broker_url": broker,
                "dev_issuer": True,
                "dev_key_path": workdir / "dev-key.pem",
                "metrics_cache_seconds": 0.2,
            }
        )
        command.upgrade(alembic_config(scratch), "head")
        engine = make_engine(scratch)
        stack.callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            create_site(
                session,
                slug=SITE,
                name="Metrics",
                url="https://metrics.example",
                policy=SitePolicy(flood_limit_per_minute=0),
            )
        mint_dev_token(scratch, subject="warm-up", site=SITE)  # creates the shared key

        base = {
            name: variable
            for name, variable in os.environ.items()
            if name != "PROMETHEUS_MULTIPROC_DIR"
        }
        env = {
            **base,
            **settings_env(scratch),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH")) if p),
            "PYTHONUNBUFFERED": "1",
        }
        api_dir, worker_dir = workdir / "api", workdir / "worker"
        api_dir.mkdir()
        _seed_stale_count(api_dir)

        port = _free_port()
        log = workdir / "gunicorn.log"
        gunicorn = _gunicorn({**env, "PROMETHEUS_MULTIPROC_DIR": str(api_dir)}, port, log)
        stack.callback(_stop, gunicorn)
        api_url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if gunicorn.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{api_url}/healthz", timeout=2).status_code == 200
            return False

        wait_until(answers, timeout=60, interval=0.2, message="gunicorn to answer")

        def both_loaded() -> bool:
            # Each worker counts itself once its app is loaded.
            response = requests.get(f"{api_url}/metrics", timeout=10)
            return value(parse(response.text), "commentguard_api_processes") == 2

        wait_until(both_loaded, timeout=60, interval=0.2, message="both gunicorn workers")

        worker_port = _free_port()
        worker = CeleryWorker(
            {
                **env,
                "PROMETHEUS_MULTIPROC_DIR": str(worker_dir),
                "COMMENTGUARD_WORKER_METRICS_PORT": str(worker_port),
                "COMMENTGUARD_WORKER_METRICS_HOST": "127.0.0.1",
            },
            workdir,
            pool="prefork",
            concurrency=2,
            beat=True,
        )
        stack.callback(worker.stop)
        yield Stack(
            settings=scratch,
            sessions=sessions,
            env=env,
            api_dir=api_dir,
            worker_dir=worker_dir,
            api_url=api_url,
            gunicorn=gunicorn,
            gunicorn_log=log,
            worker=worker,
            worker_url=f"http://127.0.0.1:{worker_port}",
        )


def _verdicts_by_decision(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        counted = func.count().label("n")
        rows = session.execute(select(Verdict.decision, counted).group_by(Verdict.decision))
        return {row.decision: row.n for row in rows}


def test_counts_add_up_across_processes_and_the_worker_counts_every_verdict(
    stack: Stack,
) -> None:
    # The previous run's file was wiped by gunicorn's master before its workers started.
    first = stack.scrape_api()
    assert value(first, SUBMISSIONS, outcome="accepted") == 0
    assert value(first, "commentguard_api_processes") == 2
    assert not (stack.api_dir / "counter_999999.db").exists()

    # No worker yet: comments are accepted by both gunicorn workers and wait.
    tokens = [mint_dev_token(stack.settings, subject=f"r{n}", site=SITE) for n in range(12)]
    posted = 0

    def post_round(round_: int) -> None:
        nonlocal posted
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda n: stack.post(tokens[n % 12], f"Round {round_}, comment {n}: hello."),
                    range(12),
                )
            )
        assert [a.status_code for a in answers] == [202] * 12, [a.text for a in answers]
        posted += 12

    for round_ in range(10):
        post_round(round_)
        by_process = _counted_by_process(stack.api_dir, SUBMISSIONS, outcome="accepted")
        if len([n for n in by_process.values() if n > 0]) >= 2:
            break
    by_process = _counted_by_process(stack.api_dir, SUBMISSIONS, outcome="accepted")
    assert len([n for n in by_process.values() if n > 0]) == 2, by_process
    assert sum(by_process.values()) == posted

    def backlog_seen() -> Samples | None:
        samples = stack.scrape_api()
        queued = value(samples, "commentguard_broker_queue_messages", queue="celery") or 0
        return samples if queued >= 1 else None

    waiting = wait_until(backlog_seen, timeout=10, message="the batches to reach the broker")
    assert value(waiting, SUBMISSIONS, outcome="accepted") == posted
    assert value(waiting, "commentguard_outbox_pending_rows") == posted
    age = value(waiting, "commentguard_outbox_oldest_pending_age_seconds")
    assert age is not None
    assert age > 0
    time.sleep(0.5)
    older = value(stack.scrape_api(), "commentguard_outbox_oldest_pending_age_seconds")
    assert older is not None
    assert older > age

    # Token failures, counted by reason whichever worker refused them.
    elsewhere = mint_dev_token(stack.settings, subject="x", site="elsewhere")
    refused: dict[str, dict[str, str]] = {
        "missing": {},
        "malformed": {"Authorization": "Bearer not-a-jwt"},
        "wrong_audience": {"Authorization": f"Bearer {elsewhere}"},
    }
    for _ in range(3):
        for headers in refused.values():
            response = requests.post(
                f"{stack.api_url}/v1/comments",
                json={"site": SITE, "thread": "/t", "content": "Refused."},
                headers={**headers, "Connection": "close"},
                timeout=30,
            )
            assert response.status_code == 401
    failures = stack.scrape_api()
    for reason in refused:
        assert value(failures, "commentguard_token_failures_total", reason=reason) == 3
    assert value(failures, SUBMISSIONS, outcome="unauthorized") == 9

    # A worker classifies everything; the gauges settle.
    stack.worker.start()
    wait_until(
        lambda: sum(_verdicts_by_decision(stack.sessions).values()) == posted,
        timeout=90,
        interval=0.2,
        message=lambda: f"every verdict; worker log:\n{stack.worker.log_tail()}",
    )

    def settled() -> Samples | None:
        samples = stack.scrape_api()
        done = (
            value(samples, "commentguard_outbox_pending_rows") == 0
            and value(samples, "commentguard_outbox_oldest_pending_age_seconds") == 0
            and value(samples, "commentguard_broker_queue_messages", queue="celery") == 0
        )
        return samples if done else None

    wait_until(settled, timeout=30, interval=0.2, message="the backlog gauges to settle")

    decided = _verdicts_by_decision(stack.sessions)

    def counted() -> Samples | None:
        samples = stack.scrape_worker()
        return samples if total(samples, LATENCY_COUNT) == posted else None

    worker = wait_until(counted, timeout=10, message="the worker's histogram to count them")
    for decision, count in decided.items():
        assert value(worker, LATENCY_COUNT, decision=decision) == count
    # What it observed is each verdict's stored latency.
    with stack.sessions() as session:
        stored = session.scalar(select(func.sum(Verdict.latency_ms))) or 0.0
    observed = total(worker, "commentguard_verdict_latency_seconds_sum")
    assert observed == pytest.approx(stored / 1000.0, rel=1e-6)
    assert value(worker, "commentguard_worker_processes") == 2
    assert (
        value(worker, "commentguard_worker_tasks_total", task=CLASSIFY_COMMENTS, state="success")
        or 0
    ) >= 1
    assert (
        value(worker, "commentguard_worker_task_duration_seconds_count", task=CLASSIFY_COMMENTS)
        or 0
    ) >= 1
    # Beat's sweeps run in the pool too.
    wait_until(
        lambda: (
            value(stack.scrape_worker(), "commentguard_worker_tasks_total",
                  task=SWEEP_OUTBOX, state="success") or 0
        ) >= 1,
        timeout=15,
        message="a sweep to be counted",
    )  # fmt: skip
    # The worker's metrics are its own: the API's scrape has none of them, and the reverse.
    assert total(stack.scrape_api(), LATENCY_COUNT) == 0
    assert total(worker, SUBMISSIONS) == 0


def _pids_with_live_gauges(directory: Path) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("gauge_livesum_*.db")}


def test_a_process_that_dies_leaves_the_live_gauges_and_its_counts_stay(stack: Stack) -> None:
    if not stack.worker.alive:
        stack.worker.start()
    before_api = stack.scrape_api()
    accepted = value(before_api, SUBMISSIONS, outcome="accepted")

    # A gunicorn worker killed outright: the master's child_exit marks it dead.
    victim = sorted(_pids_with_live_gauges(stack.api_dir))[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> Samples | None:
        pids = _pids_with_live_gauges(stack.api_dir)
        if victim in pids or len(pids) != 2:
            return None
        samples = stack.scrape_api()
        return samples if value(samples, "commentguard_api_processes") == 2 else None

    after_api = wait_until(replaced, timeout=60, interval=0.2, message="a new gunicorn worker")
    assert value(after_api, SUBMISSIONS, outcome="accepted") == accepted

    # A pool process killed outright: its replacement counts, it no longer does, and the
    # verdicts it counted are still counted.
    before_worker = stack.scrape_worker()
    verdicts = total(before_worker, LATENCY_COUNT)
    pool = _pids_with_live_gauges(stack.worker_dir)
    assert len(pool) == 2
    os.kill(sorted(pool)[0], signal.SIGKILL)

    def respawned() -> Samples | None:
        samples = stack.scrape_worker()
        pids = _pids_with_live_gauges(stack.worker_dir)
        alive = value(samples, "commentguard_worker_processes") == 2
        return samples if alive and sorted(pool)[0] not in pids and len(pids) == 2 else None

    after_worker = wait_until(
        respawned,
        timeout=60,
        interval=0.2,
        message=lambda: f"a new pool process; worker log:\n{stack.worker.log_tail()}",
    )
    assert total(after_worker, LATENCY_COUNT) == verdicts


def test_a_second_gunicorn_is_refused_the_directory_the_first_holds(
    stack: Stack, tmp_path: Path
) -> None:
    log = tmp_path / "second.log"
    second = _gunicorn(
        {**stack.env, "PROMETHEUS_MULTIPROC_DIR": str(stack.api_dir)}, _free_port(), log
    )
    try:
        second.wait(timeout=60)
    finally:
        _stop(second)
    assert second.returncode != 0
    assert "is in use by another running process tree" in log.read_text(errors="replace")
    # The first one is untouched.
    assert value(stack.scrape_api(), "commentguard_api_processes") == 2


def _celery_worker_exit(env: dict[str, str], *pool: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", *pool,
         "--without-mingle", "--without-gossip"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_a_worker_whose_metrics_cannot_work_refuses_to_start(stack: Stack) -> None:
    # An exporter over a pool of processes needs their files.
    code, output = _celery_worker_exit(
        {**stack.env, "COMMENTGUARD_WORKER_METRICS_PORT": str(_free_port())},
        "--pool=prefork",
        "--concurrency=1",
    )
    assert code != 0
    assert "needs PROMETHEUS_MULTIPROC_DIR" in output
    # A directory another running worker holds.
    if not stack.worker.alive:
        stack.worker.start()
    code, output = _celery_worker_exit(
        {**stack.env, "PROMETHEUS_MULTIPROC_DIR": str(stack.worker_dir)}, "--pool=solo"
    )
    assert code != 0
    assert "is in use by another running process tree" in output
    assert stack.worker.alive
