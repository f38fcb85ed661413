"""The Akismet API's comment-check under an open loop, on the embedded default (SQLite)
and on PostgreSQL, beside the bare endpoint under the same load in the same run.

    .venv/bin/python -m bench.akismet [--rate 200 --seconds 20 --rounds 2 ...]

What it does, for each backend (``--backends``, default both), all on 127.0.0.1,
bounded in count and in time (``--max-seconds``):

1. A fresh database: on ``sqlite`` a file in a temporary folder with the kombu
   SQLAlchemy broker beside it (``make run``'s embedded default); on ``postgresql`` a new
   database (dropped at the end) and Redis database ``--redis-db`` as the broker (must
   be empty; flushed at the end). Migrates it, creates the site ``bench``
   (``http://bench.invalid``, flood control off) and an API key with the CLI.
2. Starts the API (``service.app:create_app()``) and the bare endpoint
   (``bench.ceiling:create_app()``, ``POST /ceiling/check``: parse the same form, one
   INSERT in one transaction, ``false``; nothing else) under the same gunicorn options;
   no Celery worker (a check is decided in the API process, and enqueues nothing).
   Warms both up (every gunicorn worker loads the classifier).
3. ``--rounds`` alternating rounds (bare, check; then check, bare; ...) of an open loop:
   ``--rate`` requests/s for ``--seconds`` / ``--rounds`` s each, each request sent at
   its scheduled time whatever the others did, its latency counted from that time (so a
   stalled server cannot hide its queueing). Each comment-check is a distinct comment
   (its own author e-mail, one in four spam-like), form-encoded as Akismet clients send.
4. Checks that every ``200`` stored exactly one comment (the comments table's count),
   and prints, per backend and phase, p50/p99/max latency, the CPU the machine spent
   and how much of it went to processes other than the bench's (other users).
5. Target: comment-check p99 <= ``--max-p99-ms`` (20) on each backend, printed beside
   the bare endpoint's p99 (and their ratio). Exit status 0 when every target passes,
   1 when one fails, 2 when the run itself failed.

Every process it starts is stopped, and the databases removed, on every exit path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.pipeline import (
    HOST,
    ROOT,
    TOPICS,
    BenchError,
    LoadResult,
    Processes,
    Request,
    cli,
    closed_loop,
    cpu_snapshot,
    cpu_used,
    empty_redis_db,
    free_port,
    fresh_database,
    gunicorn_argv,
    merged,
    open_loop,
    percentile,
    sqlalchemy_url,
    wait_http,
)

SITE = "bench"
BLOG = "http://bench.invalid"
CHECK_PATH = "/1.1/comment-check"
BARE_PATH = "/ceiling/check"
FORM = "application/x-www-form-urlencoded"
BACKENDS = ("sqlite", "postgresql")
PHASES = ("bare endpoint", "comment-check")

HAM = [
    "Thanks for the write-up on {topic}, the second example finally made it click.",
    "I tried your approach to {topic} at work and it cut our build time in half.",
    "Could you expand on {topic}? I am not sure how it behaves under load.",
    "Small typo in the third paragraph, otherwise a very clear post about {topic}.",
]
SPAM = [
    "CHEAP {topic} pills!!! Buy now at http://cheap-deals.example/{n} best price",
    "Make $5000 a week from home with {topic}, click http://earn.example/{n} now",
]


@dataclass(slots=True)
class Phase:
    """One phase of one backend: its open-loop requests over all rounds, and the CPU
    seconds of the machine and of the other users' processes meanwhile."""

    result: LoadResult | None = None
    busy: float = 0.0
    others: float = 0.0
    #: CPU seconds of the phase's server (its gunicorn processes) and of PostgreSQL.
    server: float = 0.0
    database: float = 0.0
    wall: float = 0.0

    def ok(self, status: int) -> list[float]:
        """Latencies in ms of the answers with ``status``."""
        samples = self.result.samples if self.result else []
        return [s.latency * 1000 for s in samples if s.status == status]


@dataclass(slots=True)
class Backend:
    name: str
    phases: dict[str, Phase] = field(default_factory=lambda: {p: Phase() for p in PHASES})
    #: Comments in the database at the end, and the 200 answers that should have made them.
    stored: int = 0
    answered: int = 0
    notes: list[str] = field(default_factory=list)


#: The status each phase answers with.
EXPECTED = {"bare endpoint": 200, "comment-check": 200}


def check_requests(count: int, key: str, *, salt: str) -> list[Request]:
    """``count`` distinct comment-checks (no two alike, each its own author), about one
    in four spam-like, as an Akismet client form-encodes them."""
    requests = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        template = SPAM[i % len(SPAM)] if i % 4 == 3 else HAM[i % len(HAM)]
        body = urllib.parse.urlencode(
            {
                "api_key": key,
                "blog": BLOG,
                "user_ip": f"10.1.{(i // 250) % 250}.{i % 250 + 1}",
                "user_agent": "Mozilla/5.0 (bench)",
                "referrer": f"{BLOG}/",
                "permalink": f"{BLOG}/posts/{i % 50}",
                "comment_type": "comment",
                "comment_author": f"Reader {i}",
                "comment_author_email": f"reader-{salt}-{i}@example.org",
                "comment_content": f"{template.format(topic=topic, n=i)} [{salt}-{i}]",
                "blog_lang": "en_US",
                "blog_charset": "UTF-8",
            }
        ).encode("ascii")
        requests.append(Request(CHECK_PATH, body, {"Content-Type": FORM}))
    return requests


def bare_requests(count: int, key: str, *, salt: str) -> list[Request]:
    """The same requests, to the bare endpoint."""
    return [
        Request(BARE_PATH, request.body, request.headers)
        for request in check_requests(count, key, salt=salt)
    ]


# --- one backend -------------------------------------------------------------------------


def run_backend(name: str, args: argparse.Namespace, deadline: float) -> Backend:
    figures = Backend(name)
    work = Path(tempfile.mkdtemp(prefix=f"cg-bench-akismet-{name}-"))
    try:
        with contextlib.ExitStack() as stack:
            dsn: str | None = None
            if name == "sqlite":
                database_url = f"sqlite:///{work / 'commentguard.db'}"
                broker_url = f"sqla+sqlite:///{work / 'broker.sqlite'}"
            else:
                dsn = stack.enter_context(fresh_database(args.admin_dsn))
                database_url = sqlalchemy_url(dsn)
                broker_url = f"redis://{HOST}:{args.redis_port}/{args.redis_db}"
                stack.enter_context(empty_redis_db(broker_url))
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
                ),
                "DATABASE_URL": database_url,
                "BROKER_URL": broker_url,
                "SECRET_KEY": secrets.token_urlsafe(48),
                "COMMENTGUARD_ENVIRONMENT": "development",
                "COMMENTGUARD_LOG_LEVEL": args.log_level,
            }
            key = _setup(env, work, dsn)
            procs = Processes(work, env)
            try:
                _measure(args, figures, procs, key, deadline)
            finally:
                procs.stop_all()
            figures.stored = _stored(work, dsn)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def _setup(env: dict[str, str], work: Path, dsn: str | None) -> str:
    """Migrate, create the site and its key (returned), and the bare endpoint's table."""
    from bench.ceiling import SCRATCH_DDL, SCRATCH_DDL_SQLITE

    cli(env, "db", "upgrade")
    cli(env, "site", "create", "--slug", SITE, "--name", "Bench", "--url", BLOG)
    cli(env, "site", "policy", SITE, "--flood-limit", "0")
    key = cli(env, "site", "key", "create", SITE, "--name", "bench").strip().splitlines()[-1]
    if dsn is None:
        with contextlib.closing(sqlite3.connect(work / "commentguard.db")) as conn:
            conn.execute(SCRATCH_DDL_SQLITE)
            conn.commit()
    else:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCRATCH_DDL)
    return key


def _stored(work: Path, dsn: str | None) -> int:
    query = "SELECT count(*) FROM comments"
    if dsn is None:
        with contextlib.closing(sqlite3.connect(work / "commentguard.db")) as conn:
            return int(conn.execute(query).fetchone()[0])
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def _measure(
    args: argparse.Namespace, figures: Backend, procs: Processes, key: str, deadline: float
) -> None:
    api_port, bare_port = free_port(), free_port()
    procs.start("api", gunicorn_argv("service.app:create_app()", api_port, args))
    procs.start("ceiling", gunicorn_argv("bench.ceiling:create_app()", bare_port, args))
    start_deadline = min(deadline, time.monotonic() + 60)
    wait_http(api_port, "/readyz", procs, start_deadline)
    wait_http(bare_port, "/healthz", procs, start_deadline)

    # Warm-up: every gunicorn worker imports, connects and loads the classifier.
    warm = closed_loop(api_port, check_requests(args.warm, key, salt="warm"), 8)
    warm_ok = [s for s in warm.samples if s.status == 200]
    if not warm_ok:
        raise BenchError(f"warm-up: no check answered 200 ({warm.errors}):\n{procs.tail('api')}")
    figures.answered += len(warm_ok)
    closed_loop(bare_port, bare_requests(args.warm, key, salt="warm"), 8)
    _say(f"{figures.name}: warmed up")

    per_round = int(args.rate * args.seconds / args.rounds)
    clients = max(16, int(args.rate * 0.25))
    for number in range(args.rounds):
        order = list(PHASES) if number % 2 == 0 else list(reversed(PHASES))
        for phase in order:
            if phase == "comment-check":
                port, requests = api_port, check_requests(per_round, key, salt=f"r{number}")
            else:
                port, requests = bare_port, bare_requests(per_round, key, salt=f"b{number}")
            time.sleep(1.0)  # let the previous phase's writes settle
            before = cpu_snapshot(procs)
            result = open_loop(port, requests, args.rate, clients)
            used = cpu_used(before, cpu_snapshot(procs))
            found = figures.phases[phase]
            found.result = merged(found.result, result)
            found.busy += sum(v for k, v in used.items() if k != "wall")
            found.others += used.get("others", 0.0)
            found.server += used.get("api" if phase == "comment-check" else "ceiling", 0.0)
            found.database += used.get("postgres", 0.0)
            found.wall += used.get("wall", 0.0)
            if phase == "comment-check":
                figures.answered += sum(1 for s in result.samples if s.status == 200)
            procs.check()
            if time.monotonic() > deadline:
                raise BenchError("--max-seconds ran out")
        _say(f"{figures.name}: round {number + 1} of {args.rounds} done")


# --- the report --------------------------------------------------------------------------


def report(args: argparse.Namespace, backends: Sequence[Backend]) -> bool:
    """Prints the table and the targets; True when every target passes."""
    config = (
        f"gunicorn {args.api_workers} x {args.worker_class}"
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        + f", {os.cpu_count()} CPUs, open loop at {args.rate:.0f}/s, {args.rounds} rounds"
        f" of {args.seconds / args.rounds:.0f} s a phase, log level {args.log_level}"
    )
    print(f"\nCommentguard Akismet comment-check benchmark ({config})\n")
    header = (
        f"{'backend':<12}{'phase':<16}{'sent':>7}{'ok':>7}{'err':>6}{'rate/s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'cpu/req':>9}{'pg/req':>8}"
        f"{'busy':>7}{'others':>8}"
    )
    print(header)
    print("-" * len(header))
    cores = os.cpu_count() or 1
    for backend in backends:
        for phase_name, phase in backend.phases.items():
            result = phase.result
            if result is None:
                continue
            lat = phase.ok(EXPECTED[phase_name])
            busy = phase.busy / (phase.wall * cores) if phase.wall else 0.0
            others = phase.others / (phase.wall * cores) if phase.wall else 0.0
            print(
                f"{backend.name:<12}{phase_name:<16}{len(result.samples):>7}{len(lat):>7}"
                f"{len(result.samples) - len(lat):>6}{len(lat) / result.elapsed:>9.1f}"
                f"{percentile(lat, 50):>9.1f}{percentile(lat, 99):>9.1f}"
                f"{max(lat, default=float('nan')):>9.1f}"
                f"{1000 * phase.server / max(1, len(result.samples)):>9.2f}"
                f"{1000 * phase.database / max(1, len(result.samples)):>8.2f}"
                f"{busy:>7.0%}{others:>8.0%}"
            )
            errors = {s.status for s in result.samples if s.status != EXPECTED[phase_name]}
            if errors:
                backend.notes.append(f"{phase_name}: answers other than expected: {errors}")
    print(
        "\n'cpu/req', 'pg/req': CPU ms per request of the endpoint's gunicorn processes, and of "
        "PostgreSQL (every\ndatabase on the server: other users' too).\n"
        "'busy': the machine's CPU in use during the phase (all cores); 'others': the part "
        "used by processes other than\nthe bench's servers, the load generator, PostgreSQL "
        "and Redis: other users of the machine."
    )
    for backend in backends:
        print(
            f"{backend.name}: {backend.stored} comments stored for {backend.answered} "
            "comment-checks answered 200 (warm-up included)"
        )
        for note in backend.notes:
            print(f"note: {backend.name}: {note}")

    print("\ntargets")
    passed = True
    for backend in backends:
        check = backend.phases["comment-check"]
        bare = backend.phases["bare endpoint"]
        p99 = percentile(check.ok(EXPECTED["comment-check"]), 99)
        bare_p99 = percentile(bare.ok(EXPECTED["bare endpoint"]), 99)
        complete = (
            check.result is not None
            and len(check.ok(200)) == len(check.result.samples)
            and backend.stored == backend.answered
        )
        ok = p99 <= args.max_p99_ms and complete
        passed = passed and ok
        print(
            f"  {'PASS' if ok else 'FAIL'}  {backend.name}: comment-check p99 <= "
            f"{args.max_p99_ms:.0f} ms{'':<8}{p99:.1f} ms (bare endpoint {bare_p99:.1f} ms, "
            f"ratio {p99 / (bare_p99 or float('nan')):.2f})"
        )
    return passed


# --- entry -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.akismet",
        description="comment-check under an open loop, beside the bare endpoint.",
    )
    p.add_argument("--backends", default=",".join(BACKENDS), help="sqlite, postgresql or both")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second offered")
    p.add_argument("--seconds", type=float, default=20.0, help="open-loop seconds per phase")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds per backend")
    p.add_argument("--warm", type=int, default=300, help="warm-up requests per endpoint")
    p.add_argument("--api-workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread")
    p.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    p.add_argument("--log-level", default="WARNING", help="COMMENTGUARD_LOG_LEVEL")
    p.add_argument("--max-p99-ms", type=float, default=20.0)
    p.add_argument("--max-seconds", type=float, default=900.0, help="bound on the whole run")
    p.add_argument("--admin-dsn", default=f"postgresql://postgres@{HOST}:5432/postgres")
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument(
        "--redis-db",
        type=int,
        default=3,
        help="must be empty; flushed after (the test suites claim 15 and down)",
    )
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.backends or any(b not in BACKENDS for b in args.backends):
        p.error(f"--backends takes {', '.join(BACKENDS)}")
    if args.rate <= 0 or args.seconds <= 0 or args.rounds < 1 or args.warm < 1:
        p.error("rate, seconds, rounds and warm must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.max_seconds
    try:
        backends = [run_backend(name, args, deadline) for name in args.backends]
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 2
    return 0 if report(args, backends) else 1


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
