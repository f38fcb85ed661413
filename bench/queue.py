"""The moderation queue and the public thread view on 1,000,000 comments, against the
machine's ceiling.

    .venv/bin/python -m bench.queue [--comments 1000000 --sites 10 --samples 200 ...]

What it does, all on 127.0.0.1, bounded in time (``--max-seconds``):

1. Creates a fresh PostgreSQL database (dropped at the end) and migrates it
   (``commentguard db upgrade``); inserts ``--sites`` sites and 5,000 authors per site.
2. Bulk-loads ``--comments`` comments with ``COPY`` (psycopg), spread evenly over the
   sites and a year: about 80% approved, 8% held, 9% spam, 1% trash, 2% pending (no
   score); scores drawn per status (approved low, held in the hold band, spam high);
   2,000 threads per site; a verdict with reasons for every held and spam comment. Site 1
   also gets one thread of exactly ``--thread-size`` approved comments, a third of them
   replies (nested up to 6 deep). The secondary indexes are dropped for the load and
   built again after it (as a bulk import should); the ``comment_counts`` triggers stay
   on, so the counts the queue shows come from them. Then ``VACUUM ANALYZE``.
3. Starts the API (``service.app:create_app()``) and the ceiling app
   (``bench.queue_ceiling:create_app()``: one primary-key SELECT of a comment) under the
   same gunicorn options, and mints a moderator token per site (development issuer).
4. Walks the queue of ``--walk-sites`` sites page by page (50 per page) for each status
   (held, spam) and sort, keeping the cursors of pages ``--deep-page`` and beyond.
5. Measures over real HTTP, ``--concurrency`` closed-loop clients, ``--samples`` requests
   per case: the ceiling; the first page and the deep pages of each status and sort; the
   search ``q`` and the author filter (held, for information); the thread view of the
   ``--thread-size`` thread (any of its pages). Prints p50/p95/p99 and p50 / ceiling p50.
6. Bars: every queue case p95 <= ``--max-queue-p95-ms`` (50); thread view p95 <=
   ``--max-thread-p95-ms`` (30). Exit status 0 when all are met, 1 when one is missed, 2
   when the run itself failed.

Every process it starts is stopped, and the database dropped, on every exit path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import itertools
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg.types.json import Jsonb

from bench.bars import conclude
from bench.pipeline import (
    HOST,
    BenchError,
    Processes,
    cli,
    cpu_snapshot,
    cpu_used,
    free_port,
    fresh_database,
    gunicorn_argv,
    percentile,
    sqlalchemy_url,
    wait_http,
)

SORTS = ("-score", "score", "-created", "created")
STATUSES = ("held", "spam")
PAGE = 50
AUTHORS_PER_SITE = 5000
THREADS_PER_SITE = 2000
BIG_THREAD = "/posts/the-one-with-1000-comments"
#: (status, share of comments), the rest of the mix is approved.
MIX = (("held", 0.08), ("spam", 0.09), ("trash", 0.01), ("pending", 0.02))
WORDS = [
    "caching",
    "migrations",
    "indexes",
    "queues",
    "testing",
    "logging",
    "python",
    "postgres",
    "latency",
    "replicas",
    "deploy",
    "rollback",
    "schema",
    "vacuum",
    "backup",
    "thread",
    "review",
    "release",
    "docs",
    "tutorial",
    "example",
]
SPAM_WORDS = [
    "cheap",
    "pills",
    "casino",
    "followers",
    "crypto",
    "prize",
    "winner",
    "discount",
    "offer",
]


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- loading -----------------------------------------------------------------------------


def _score(rng: random.Random, status: str) -> float | None:
    if status == "pending":
        return None
    if status == "approved":
        return round(rng.betavariate(1.2, 12), 4)
    if status == "held":
        return round(rng.uniform(0.3, 0.92), 4)
    if status == "spam":
        return round(rng.uniform(0.92, 1.0), 4)
    return round(rng.random(), 4)


def _content(rng: random.Random, status: str, n: int) -> str:
    words = rng.sample(WORDS, 6)
    if status == "spam" or (status == "held" and rng.random() < 0.5):
        words += [*rng.sample(SPAM_WORDS, 2), f"http://spam{n % 97}.example/offer"]
    return f"{' '.join(words).capitalize()}. Comment number {n}."


def load(dsn: str, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Sites, authors, comments and verdicts. Returns the site slugs and a sample of
    comment ids (for the ceiling)."""
    rng = random.Random(args.seed)
    slugs = [f"site-{i + 1}" for i in range(args.sites)]
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=365)
    sample_ids: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        site_ids = []
        for slug in slugs:
            row = conn.execute(
                "INSERT INTO sites (slug, name, url, trusted_issuers, audiences, policy)"
                " VALUES (%s, %s, %s, '[]', '[]', '{}') RETURNING id",
                (slug, f"Bench {slug}", f"https://{slug}.invalid"),
            ).fetchone()
            assert row is not None
            site_ids.append(int(row[0]))
        author_ids: dict[int, list[int]] = {}
        with conn.cursor() as cur:
            with cur.copy("COPY authors (site_id, issuer, subject, display_name) FROM STDIN") as cp:
                for site_id in site_ids:
                    for a in range(AUTHORS_PER_SITE):
                        cp.write_row((site_id, "https://bench.invalid", f"a{a}", f"Reader {a}"))
            for site_id, author_id in conn.execute("SELECT site_id, id FROM authors ORDER BY id"):
                author_ids.setdefault(site_id, []).append(author_id)

        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'comments'"
            " AND indexname <> 'pk_comments' AND indexdef NOT LIKE '%UNIQUE%'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')

        started = time.monotonic()
        per_site = args.comments // args.sites
        columns = (
            "id, site_id, thread, parent_id, author_id, author_name, author_email, content,"
            " user_ip, user_agent, status, discard, score, content_hash, extra, version,"
            " created_at, updated_at"
        )
        verdicts: list[tuple[uuid.UUID, float, str, dt.datetime]] = []
        empty = Jsonb({})
        with conn.cursor() as cur, cur.copy(f"COPY comments ({columns}) FROM STDIN") as cp:
            n = 0
            for s, site_id in enumerate(site_ids):
                authors = author_ids[site_id]
                big: list[tuple[uuid.UUID, int]] = []  # (id, depth) of the big thread
                count = per_site + (args.comments - per_site * args.sites if s == 0 else 0)
                step = (now - start) / max(1, count)
                for i in range(count):
                    n += 1
                    comment_id = uuid.uuid4()
                    created = start + step * i
                    parent = None
                    if s == 0 and i < args.thread_size:
                        status, thread, score = "approved", BIG_THREAD, _score(rng, "approved")
                        depth = 0
                        if big and rng.random() < 1 / 3:
                            parent, depth = rng.choice(big)
                            depth += 1
                        if depth < 6:
                            big.append((comment_id, depth))
                    else:
                        roll, status = rng.random(), "approved"
                        for name, share in MIX:
                            if roll < share:
                                status = name
                                break
                            roll -= share
                        thread = f"/posts/{rng.randrange(THREADS_PER_SITE)}"
                        score = _score(rng, status)
                    content = _content(rng, status, n)
                    author = rng.choice(authors)
                    cp.write_row(
                        (
                            comment_id,
                            site_id,
                            thread,
                            parent,
                            author,
                            f"Reader {author}",
                            f"reader{author}@mail.invalid",
                            content,
                            f"10.{s}.{author % 250}.{rng.randrange(1, 250)}",
                            "bench/1.0",
                            status,
                            status == "spam" and score is not None and score > 0.99,
                            score,
                            hashlib.sha256(content.encode()).hexdigest(),
                            empty,
                            2 if score is not None else 1,
                            created,
                            created,
                        )
                    )
                    if status in ("held", "spam") and score is not None:
                        verdicts.append((comment_id, score, status, created))
                    if len(sample_ids) < 5000 and rng.random() < 0.01:
                        sample_ids.append(str(comment_id))
        _say(f"loaded {args.comments} comments in {time.monotonic() - started:.0f} s")

        started = time.monotonic()
        reasons = Jsonb(
            [
                {"phrase": "links to spam.example", "weight": 2.31, "feature": "link"},
                {"phrase": "'cheap pills'", "weight": 1.12, "feature": "phrase"},
                {"phrase": "new author", "weight": 0.41, "feature": "author"},
                {"phrase": "short text", "weight": 0.2, "feature": "length"},
            ]
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY verdicts (comment_id, classifier_version, score, decision, discard,"
                " reasons, latency_ms, created_at) FROM STDIN"
            ) as cp,
        ):
            for comment_id, score, decision, created in verdicts:
                cp.write_row((comment_id, "bench", score, decision, False, reasons, 8.0, created))
        _say(f"loaded {len(verdicts)} verdicts in {time.monotonic() - started:.0f} s")

        started = time.monotonic()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        _say(f"built {len(indexes)} indexes in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        _say(f"vacuum analyze in {time.monotonic() - started:.0f} s")
        counted: dict[str, int] = dict(
            conn.execute("SELECT status, sum(n) FROM comment_counts GROUP BY status").fetchall()
        )
        actual: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM comments GROUP BY status")
        )
        if {k: int(v) for k, v in counted.items() if v} != {k: int(v) for k, v in actual.items()}:
            raise BenchError(f"comment_counts {counted} disagree with the table {actual}")
        _say(f"counts by status (from the triggers, checked): {actual}")
    return slugs, sample_ids


# --- HTTP --------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection for GETs."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self._port, timeout=60)
            try:
                self._conn.request("GET", path, headers=headers)
                response = self._conn.getresponse()
                body = response.read()
                if response.will_close:
                    self.close()
                return response.status, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    headers: dict[str, str]


@dataclass(slots=True)
class Case:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    bar_ms: float | None = None


def measure(port: int, name: str, calls: Sequence[Call], args: argparse.Namespace) -> Case:
    """``args.samples`` requests cycling over ``calls``, ``args.concurrency`` clients."""
    case = Case(name)
    counter = itertools.count()
    lock = threading.Lock()

    def worker() -> None:
        client = Client(port)
        while (i := next(counter)) < args.samples:
            call = calls[i % len(calls)]
            started = time.perf_counter()
            status, _ = client.get(call.path, call.headers)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if status == 200:
                    case.latencies_ms.append(elapsed)
                else:
                    case.errors[status] = case.errors.get(status, 0) + 1
        client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return case


def queue_path(slug: str, **params: str) -> str:
    return f"/v1/sites/{slug}/queue?{urlencode(params)}"


def walk_cursors(
    port: int, slug: str, headers: dict[str, str], status: str, sort: str, deep: int, pages: int
) -> list[str]:
    """Cursors of pages ``deep`` .. ``deep + pages - 1`` of one queue."""
    client = Client(port)
    cursors: list[str] = []
    cursor: str | None = None
    page = 1
    try:
        while page < deep + pages:
            params = {"status": status, "sort": sort, "limit": str(PAGE)}
            if cursor:
                params["cursor"] = cursor
            code, body = client.get(queue_path(slug, **params), headers)
            if code != 200:
                raise BenchError(f"queue walk: {code} {body[:300]!r}")
            cursor = json.loads(body)["next_cursor"]
            page += 1
            if cursor is None:
                break
            if page >= deep:
                cursors.append(cursor)
    finally:
        client.close()
    return cursors


def thread_calls(port: int, slug: str) -> list[Call]:
    """Every page of the big thread (20 top-level comments each)."""
    client = Client(port)
    base = f"/v1/sites/{slug}/threads/{quote(BIG_THREAD, safe='')}/comments"
    calls = [Call(base, {})]
    try:
        while True:
            code, body = client.get(calls[-1].path, {})
            if code != 200:
                raise BenchError(f"thread walk: {code} {body[:300]!r}")
            data = json.loads(body)
            if data["next_cursor"] is None:
                if data["total"] != 0 and len(calls) == 1 and not data["comments"]:
                    raise BenchError("the big thread is empty")
                return calls
            calls.append(Call(f"{base}?{urlencode({'cursor': data['next_cursor']})}", {}))
    finally:
        client.close()


# --- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> list[Case]:
    work = Path(tempfile.mkdtemp(prefix="cg-bench-queue-"))
    deadline = time.monotonic() + args.max_seconds
    try:
        with fresh_database(args.admin_dsn) as dsn:
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    p
                    for p in (
                        str(Path(__file__).resolve().parent.parent),
                        os.environ.get("PYTHONPATH"),
                    )
                    if p
                ),
                "DATABASE_URL": sqlalchemy_url(dsn),
                "BROKER_URL": f"redis://{HOST}:{args.redis_port}/{args.redis_db}",
                "SECRET_KEY": secrets.token_urlsafe(48),
                "COMMENTGUARD_ENVIRONMENT": "development",
                "COMMENTGUARD_DEV_ISSUER": "true",
                "COMMENTGUARD_DEV_KEY_PATH": str(work / "dev-key.pem"),
                "COMMENTGUARD_LOG_LEVEL": args.log_level,
            }
            cli(env, "db", "upgrade")
            started = time.monotonic()
            slugs, sample_ids = load(dsn, args)
            _say(f"database ready in {time.monotonic() - started:.0f} s")
            if time.monotonic() > deadline:
                raise BenchError("--max-seconds ran out while loading")
            procs = Processes(work, env)
            try:
                return _measure(args, env, slugs, sample_ids, procs, deadline)
            finally:
                procs.stop_all()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _tokens(env: dict[str, str], slugs: list[str]) -> dict[str, dict[str, str]]:
    from service.auth.dev_issuer import mint_dev_token
    from service.settings import Settings

    settings = Settings(
        environment="development",
        database_url=env["DATABASE_URL"],
        secret_key=env["SECRET_KEY"],
        dev_issuer=True,
        dev_key_path=Path(env["COMMENTGUARD_DEV_KEY_PATH"]),
    )
    return {
        slug: {
            "Authorization": "Bearer "
            + mint_dev_token(
                settings,
                subject="bench-moderator",
                site=slug,
                roles=[f"commentguard:{slug}:moderator"],
                ttl_seconds=3 * 3600,
            )
        }
        for slug in slugs
    }


def _measure(
    args: argparse.Namespace,
    env: dict[str, str],
    slugs: list[str],
    sample_ids: list[str],
    procs: Processes,
    deadline: float,
) -> list[Case]:
    api_port, ceiling_port = free_port(), free_port()
    procs.start("api", gunicorn_argv("service.app:create_app()", api_port, args))
    procs.start("ceiling", gunicorn_argv("bench.queue_ceiling:create_app()", ceiling_port, args))
    start_deadline = min(deadline, time.monotonic() + 60)
    wait_http(api_port, "/healthz", procs, start_deadline)
    wait_http(ceiling_port, "/healthz", procs, start_deadline)
    tokens = _tokens(env, slugs)

    walked = slugs[: args.walk_sites]
    deep: dict[tuple[str, str], list[Call]] = {}
    started = time.monotonic()
    for status in STATUSES:
        for sort in SORTS:
            calls = []
            for slug in walked:
                for cursor in walk_cursors(
                    api_port, slug, tokens[slug], status, sort, args.deep_page, 10
                ):
                    path = queue_path(
                        slug, status=status, sort=sort, limit=str(PAGE), cursor=cursor
                    )
                    calls.append(Call(path, tokens[slug]))
            if not calls:
                raise BenchError(f"no page {args.deep_page} in the {status} queue; load more")
            deep[(status, sort)] = calls
    _say(f"walked the queues for deep cursors in {time.monotonic() - started:.0f} s")
    threads = thread_calls(api_port, slugs[0])

    # Warm-up: every gunicorn worker connects, caches its keys and its sites.
    warm = [Call(queue_path(s, status="held"), tokens[s]) for s in slugs]
    measure(api_port, "warm", warm, argparse.Namespace(**{**vars(args), "samples": 100}))
    ceiling_calls = [Call(f"/ceiling/{i}", {}) for i in sample_ids]
    measure(
        ceiling_port, "warm", ceiling_calls, argparse.Namespace(**{**vars(args), "samples": 100})
    )

    before = cpu_snapshot(procs)
    cases = [measure(ceiling_port, "ceiling: one primary-key SELECT", ceiling_calls, args)]
    for status in STATUSES:
        for sort in SORTS:
            first = [
                Call(queue_path(s, status=status, sort=sort, limit=str(PAGE)), tokens[s])
                for s in slugs
            ]
            case = measure(api_port, f"queue {status} {sort}: first page", first, args)
            case.bar_ms = args.max_queue_p95_ms
            cases.append(case)
            case = measure(
                api_port,
                f"queue {status} {sort}: page >= {args.deep_page}",
                deep[(status, sort)],
                args,
            )
            case.bar_ms = args.max_queue_p95_ms
            cases.append(case)
            if time.monotonic() > deadline:
                raise BenchError("--max-seconds ran out")
    for label, params in (
        ("queue held q=cheap (common word)", {"q": "cheap"}),
        ("queue held q=rollback vacuum (2 words)", {"q": "rollback vacuum"}),
    ):
        calls = [
            Call(queue_path(s, status="held", sort="-score", limit=str(PAGE), **params), tokens[s])
            for s in slugs
        ]
        cases.append(measure(api_port, label, calls, args))
    authors = [
        Call(
            queue_path(
                s, status="approved", author=str(1 + i * AUTHORS_PER_SITE + 17), limit=str(PAGE)
            ),
            tokens[s],
        )
        for i, s in enumerate(slugs)
    ]
    cases.append(measure(api_port, "queue approved author=ID", authors, args))
    case = measure(api_port, f"thread view, {args.thread_size} comments, any page", threads, args)
    case.bar_ms = args.max_thread_p95_ms
    cases.append(case)
    used = cpu_used(before, cpu_snapshot(procs))
    if used:
        busy = sum(v for k, v in used.items() if k != "wall")
        cores = os.cpu_count() or 1
        args.machine_note = (
            f"machine busy {busy / (used['wall'] * cores):.0%} of {cores} CPUs during the"
            f" measurements, {used['others'] / (used['wall'] * cores):.0%} by other users"
        )
    return cases


def report(args: argparse.Namespace, cases: list[Case]) -> int:
    ceiling = cases[0]
    base = percentile(ceiling.latencies_ms, 50)
    print(
        f"\nCommentguard queue benchmark ({args.comments:,} comments over {args.sites} sites,"
        f" gunicorn {args.api_workers} x {args.worker_class}"
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        + f", {args.concurrency} client(s), {args.samples} requests per case,"
        f" {os.cpu_count()} CPUs)\n"
    )
    header = (
        f"{'case':<46}{'ok':>6}{'err':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p50/ceil':>10}"
    )
    print(header)
    print("-" * len(header))
    missed = []
    for case in cases:
        lat = case.latencies_ms
        p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
        print(
            f"{case.name:<46}{len(lat):>6}{sum(case.errors.values()):>5}"
            f"{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{p50 / base if base else 0:>10.1f}"
        )
        if case.errors:
            missed.append(f"{case.name}: errors {case.errors}")
        if case.bar_ms is not None and not p95 <= case.bar_ms:
            missed.append(f"{case.name}: p95 {p95:.1f} ms > {case.bar_ms:.0f} ms")
    note = getattr(args, "machine_note", None)
    if note:
        print(f"\n{note}")
    return conclude(missed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.queue",
        description="Queue and thread view latency on a million comments, against a ceiling.",
    )
    p.add_argument("--comments", type=int, default=1_000_000)
    p.add_argument("--sites", type=int, default=10)
    p.add_argument("--thread-size", type=int, default=1000, help="comments in the big thread")
    p.add_argument("--samples", type=int, default=200, help="requests per case")
    p.add_argument("--concurrency", type=int, default=1, help="closed-loop clients")
    p.add_argument("--deep-page", type=int, default=50, help="deep pages start here")
    p.add_argument("--walk-sites", type=int, default=2, help="sites walked for deep cursors")
    p.add_argument("--api-workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--worker-class", choices=["sync", "gthread"], default="gthread")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--max-queue-p95-ms", type=float, default=50.0)
    p.add_argument("--max-thread-p95-ms", type=float, default=30.0)
    p.add_argument("--max-seconds", type=float, default=1800.0, help="bound on the whole run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--admin-dsn", default=f"postgresql://postgres@{HOST}:5432/postgres")
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument("--redis-db", type=int, default=13, help="named in the API's settings only")
    args = p.parse_args(argv)
    if min(args.comments, args.sites, args.samples, args.concurrency, args.walk_sites) < 1:
        p.error("counts must be positive")
    if args.comments // args.sites <= args.thread_size:
        p.error("each site needs more comments than --thread-size")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cases = run(args)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 2
    return report(args, cases)


if __name__ == "__main__":
    sys.exit(main())
