"""What the API's metrics cost a comment, measured in one process.

    .venv/bin/python -m bench.metrics_overhead [--comments 500 --alternations 6]

Runs twice, each time in a child process of its own: once in Prometheus multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set, as production and the pipeline bench run the API: each
count is a write to a memory-mapped file) and once in single-process mode. Each child:

1. **the metrics' own work**: what a ``POST /v1/comments`` adds, called directly
   (two clock reads, the request duration histogram's observation, the outcome counter),
   timed over ``--calls`` calls: microseconds per request.
2. **whole requests**: ``POST /v1/comments`` through Flask's test client against a
   scratch PostgreSQL database (the real app, its tokens already verified once, no
   worker), alternating an app with the metrics hooks and the same app with them removed
   (the ceiling: the request without metrics), ``--comments`` comments each way,
   ``--alternations`` times. CPU per request (``time.process_time``) each way; the
   overhead is the median of the alternations' differences, and its share of the ceiling.

The database is created and dropped here; the broker is Redis database ``--redis-db``
(must be empty, flushed after): the comments' classifications are sent there and never
run. Bounded in count; prints its figures and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pipeline import HOST, ROOT, cli, empty_redis_db, fresh_database, sqlalchemy_url

SITE = "overhead"
AUTHORS = 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--comments", type=int, default=500)
    parser.add_argument("--alternations", type=int, default=6)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--admin-dsn", default=f"postgresql://postgres@{HOST}:5432/postgres")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--redis-db", type=int, default=3, help="must be empty; flushed after")
    parser.add_argument("--child", choices=["multiprocess", "single"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return 0

    broker_url = f"redis://{HOST}:{args.redis_port}/{args.redis_db}"
    results: dict[str, dict[str, Any]] = {}
    # The metrics directory on a tmpfs where there is one, as docker-compose.yml mounts it.
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(prefix="cg-metrics-bench-") as work,
        tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as metrics_base,
        fresh_database(args.admin_dsn) as dsn,
        empty_redis_db(broker_url),
    ):
        env = {
            **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
            "DATABASE_URL": sqlalchemy_url(dsn),
            "BROKER_URL": broker_url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "COMMENTGUARD_ENVIRONMENT": "development",
            "COMMENTGUARD_DEV_ISSUER": "true",
            "COMMENTGUARD_DEV_KEY_PATH": str(Path(work) / "dev-key.pem"),
            "COMMENTGUARD_LOG_LEVEL": "WARNING",
        }  # fmt: skip
        cli(env, "db", "upgrade")
        cli(
            env, "site", "create", "--slug", SITE, "--name", "Overhead", "--url", "http://o.invalid"
        )
        cli(env, "site", "policy", SITE, "--flood-limit", "0")
        for mode in ("multiprocess", "single"):
            child_env = dict(env)
            if mode == "multiprocess":
                child_env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(metrics_base) / "metrics")
            command = [sys.executable, "-m", "bench.metrics_overhead", "--child", mode,
                       "--comments", str(args.comments), "--alternations",
                       str(args.alternations), "--calls", str(args.calls)]  # fmt: skip
            done = subprocess.run(
                command, env=child_env, cwd=ROOT, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
                return 2
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    _print(args, results)
    return 0


def _child(args: argparse.Namespace) -> dict[str, Any]:
    from service.api.metrics import SUBMIT_ENDPOINT
    from service.app import create_app
    from service.auth.dev_issuer import mint_dev_token
    from service.metrics import ApiMetrics
    from service.settings import Settings

    settings = Settings()
    metrics = ApiMetrics(settings)

    # 1. The metrics' own work for one comment, as the hooks do it.
    started = time.perf_counter()
    for _ in range(args.calls):
        begin = time.perf_counter()
        metrics.request("/v1/comments", "POST", 202, time.perf_counter() - begin)
        metrics.submission(202, replayed=False)
    hooks_us = (time.perf_counter() - started) / args.calls * 1e6

    # 2. Whole requests, with and without the hooks.
    with_metrics = create_app(settings)
    without_metrics = create_app(settings)
    for table in (without_metrics.before_request_funcs, without_metrics.after_request_funcs):
        hooks: list[Any] = table[None]
        hooks[:] = [f for f in hooks if "install_request_metrics" not in f.__qualname__]
    tokens = [
        mint_dev_token(settings, subject=f"overhead-{n}", site=SITE, ttl_seconds=3600)
        for n in range(AUTHORS)
    ]
    clients = {"on": with_metrics.test_client(), "off": without_metrics.test_client()}
    sequence = 0

    def post_many(which: str, count: int) -> float:
        nonlocal sequence
        client = clients[which]
        cpu = time.process_time()
        for _ in range(count):
            sequence += 1
            content = f"Comment {sequence} ({args.child}): thanks for the post."
            response = client.post(
                "/v1/comments",
                json={"site": SITE, "thread": f"/p/{sequence % 7}", "content": content},
                headers={"Authorization": f"Bearer {tokens[sequence % AUTHORS]}"},
            )
            if response.status_code != 202:
                raise SystemExit(
                    f"{which}: {response.status_code} {response.get_data(as_text=True)}"
                )
        return (time.process_time() - cpu) / count * 1e6

    # Warm-up: every token verified and every author known, in both apps.
    for which in ("on", "off"):
        post_many(which, AUTHORS * 2)
    on: list[float] = []
    off: list[float] = []
    for alternation in range(args.alternations):
        order = ("on", "off") if alternation % 2 == 0 else ("off", "on")
        for which in order:
            (on if which == "on" else off).append(post_many(which, args.comments))
    assert SUBMIT_ENDPOINT in with_metrics.view_functions
    return {
        "multiprocess": settings.prometheus_multiproc_dir is not None,
        "hooks_us": hooks_us,
        "on_us": on,
        "off_us": off,
    }


def _print(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    print(
        f"\nCommentguard metrics overhead (one process, Flask test client, PostgreSQL; "
        f"{args.comments} comments x {args.alternations} alternations each way)\n"
    )
    header = (
        f"{'mode':<14}{'metrics work':>14}{'request, off':>15}{'request, on':>14}"
        f"{'overhead':>11}{'share':>8}"
    )
    print(header)
    print("-" * len(header))
    for mode, found in results.items():
        differences = [a - b for a, b in zip(found["on_us"], found["off_us"], strict=True)]
        overhead = statistics.median(differences)
        ceiling = statistics.median(found["off_us"])
        print(
            f"{mode:<14}{found['hooks_us']:>11.1f} us{ceiling:>12.0f} us"
            f"{statistics.median(found['on_us']):>11.0f} us{overhead:>8.1f} us"
            f"{overhead / ceiling:>8.1%}"
        )
        print(
            f"{'':<14}alternations, CPU us per request: on "
            + ", ".join(f"{v:.0f}" for v in found["on_us"])
            + "; off "
            + ", ".join(f"{v:.0f}" for v in found["off_us"])
        )
    print(
        "\n'metrics work': what one POST /v1/comments adds, called directly; 'request, off':"
        " the ceiling (the same app without the metrics hooks); 'overhead': median of the"
        " alternations' differences (CPU per request)."
    )


if __name__ == "__main__":
    sys.exit(main())
