"""Webhooks: what they cost the classification transaction, and how fast deliveries go
against the machine's ceiling.

    .venv/bin/python -m bench.webhooks [--batches 60 --batch 100 --deliveries 1000]

What it does, all on 127.0.0.1:

1. Creates a fresh PostgreSQL database (dropped at the end), migrates it, and makes two
   sites: ``plain`` (no webhooks) and ``hooked`` (one enabled webhook subscribed to
   ``comment.classified``), each with ``--batches`` / 2 * ``--batch`` pending comments
   and their outbox rows, and a third, ``before``, like ``plain``.
2. The decision transaction: batches of ``--batch`` comments classified by the worker's
   batched path (``classify_comments``, one transaction each, from BEGIN to COMMIT,
   with the bundled classifier), in turns: ``before`` runs the path as it was before
   webhooks (its lock statement reads a constant ``false`` where it now asks whether
   the site has hooks: the ceiling of this path), ``plain`` the path as it is for a
   site without hooks, ``hooked`` the path writing a delivery for each verdict.
3. Deliveries: a receiver in a child process (``http.server``, answering 204), then
   ``--deliveries`` requests each way, one at a time: the ceiling (``http.client``
   POSTs of the same body on a new connection each, nothing else), the sender
   (``service.webhooks.sender.send``: resolve, check the address, sign, connect, POST,
   judge), and the delivery task's body (``workers.tasks.deliver``: claim in a
   transaction, send, settle in another) on rows of the ``hooked`` site.
4. Prints p50/p95 of each and the ratios. Bars (machine-independent): a batch of a site
   without hooks writes no delivery statement; a batch of a site with hooks writes its
   deliveries with one statement. Exit status 0 when they hold.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import http.server
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import URL, Engine, event, false, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.bars import conclude
from bench.pipeline import ROOT, fresh_database, percentile
from models import Author, Comment, OutboxTask, Status, WebhookDelivery, WebhookEvent
from service.classifier.model import load_classifier
from service.db import make_engine, make_sessionmaker
from service.metrics import WorkerMetrics
from service.moderation import classify
from service.moderation.active import LoadedClassifier
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.moderation.submit import CLASSIFY_TASK
from service.moderation.types import Identity
from service.moderation.webhooks import allow_private_targets, create_webhook
from service.queue import TaskQueue, make_celery
from service.settings import Settings
from service.webhooks.sender import Outcome, send
from workers.tasks import deliver

BODY = json.dumps(
    {
        "id": str(uuid.uuid4()),
        "type": "comment.classified",
        "occurred_at": "2026-12-05T12:00:00+00:00",
        "site": "hooked",
        "data": {"comment": {"id": str(uuid.uuid4()), "status": "held"}, "verdict": {}},
    }
).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(port_file: str) -> None:
    """The receiver (in a child process): 204 to every POST, until killed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    written = Path(port_file + ".tmp")
    written.write_text(str(server.server_address[1]))
    written.rename(port_file)
    server.serve_forever()


@contextmanager
def _receiver(tmp: str) -> Iterator[int]:
    """The receiver in a child process (so that it takes no CPU time from this one's
    interpreter); its port."""
    port_file = Path(tmp) / "port"
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.webhooks", "--serve", str(port_file)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.05)
        yield int(port_file.read_text())
    finally:
        child.kill()
        child.wait()


def _settings(dsn: str) -> Settings:
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    url = URL.create(
        "postgresql+psycopg",
        username=str(parts.get("user", "postgres")),
        password=str(parts["password"]) if parts.get("password") else None,
        host=str(parts.get("host", "127.0.0.1")),
        port=int(str(parts.get("port", 5432))),
        database=str(parts["dbname"]),
    )
    return Settings(
        environment="test",
        database_url=url.render_as_string(hide_password=False),
        broker_url="redis://127.0.0.1:6379/14",
        secret_key=SecretStr(secrets.token_urlsafe(36)),
        log_level="WARNING",
        webhook_timeout_seconds=5.0,
    )


def _site_with_comments(session: Session, slug: str, count: int) -> tuple[int, list[uuid.UUID]]:
    # Every score held (the spam band starts at 1): the same work for every batch.
    policy = SitePolicy(
        flood_limit_per_minute=0, hold_threshold=0.0, spam_threshold=1.0, discard_threshold=1.0
    )
    site = create_site(session, slug=slug, name=slug, url=f"https://{slug}.example", policy=policy)
    authors = list(
        session.scalars(
            insert(Author).returning(Author.id),
            [{"site_id": site.id, "issuer": "bench", "subject": f"r{n}"} for n in range(200)],
        )
    )
    ids = [uuid.uuid4() for _ in range(count)]
    session.execute(
        insert(Comment),
        [
            {
                "id": cid,
                "site_id": site.id,
                "thread": f"/post/{n % 50}",
                "author_id": authors[n % len(authors)],
                "content": f"Thanks for the write-up, it helped with part {n} of my project.",
                "content_hash": f"{n:064x}",
                "status": Status.pending,
            }
            for n, cid in enumerate(ids)
        ],
    )
    now = dt.datetime.now(dt.UTC)
    session.execute(
        insert(OutboxTask),
        [
            {
                "task": CLASSIFY_TASK,
                "key": str(cid),
                "payload": {"comment_id": str(cid)},
                "next_attempt_at": now + dt.timedelta(hours=1),
            }
            for cid in ids
        ],
    )
    return site.id, ids


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def _as_before_webhooks() -> Iterator[None]:
    """The batched path's lock statement as it was before webhooks: ``false`` where it
    now probes the site's hooks."""
    saved = classify._LOCK_COMMENTS
    columns = [c for c in saved.selected_columns if c.name != "has_hooks"]
    classify._LOCK_COMMENTS = saved.with_only_columns(
        *columns, false().label("has_hooks"), maintain_column_froms=True
    )
    try:
        yield
    finally:
        classify._LOCK_COMMENTS = saved


@dataclasses.dataclass
class _Resources:
    settings: Settings
    session_factory: sessionmaker[Session]

    def sessions(self) -> sessionmaker[Session]:
        return self.session_factory

    def classifier(self) -> Any:
        raise AssertionError("not used")

    def queue(self) -> TaskQueue:
        return TaskQueue(make_celery(self.settings))

    def metrics(self) -> WorkerMetrics:
        return WorkerMetrics(self.settings)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000.0


def run(args: argparse.Namespace) -> int:
    import tempfile

    with fresh_database(args.admin_dsn) as dsn, tempfile.TemporaryDirectory() as tmp:
        settings = _settings(dsn)
        config = Config(str(ROOT / "migrations" / "alembic.ini"))
        config.attributes["settings"] = settings
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        engine = make_engine(settings)
        try:
            with _receiver(tmp) as port:
                return _measure(args, settings, engine, port)
        finally:
            engine.dispose()


def _measure(args: argparse.Namespace, settings: Settings, engine: Engine, port: int) -> int:
    sessions = make_sessionmaker(engine)
    per_site = args.batches // 2 * args.batch + args.batch
    url = f"http://127.0.0.1:{port}/hook"
    with sessions.begin() as session:
        _, before = _site_with_comments(session, "before", per_site)
        _, plain = _site_with_comments(session, "plain", per_site)
        hooked_id, hooked = _site_with_comments(session, "hooked", per_site)
        allow_private_targets(session, site_id=hooked_id, allow=True)
        hook = create_webhook(
            session,
            site_id=hooked_id,
            url=url,
            events=[WebhookEvent.classified],
            enabled=True,
            description=None,
            actor=Identity(issuer="bench", subject="bench"),
            resolve_timeout=3.0,
        )
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    classifier = LoadedClassifier(load_classifier(), None)
    queues = {"before": iter(before), "plain": iter(plain), "hooked": iter(hooked)}

    def batch(name: str) -> Callable[[], None]:
        ids = [next(queues[name]) for _ in range(args.batch)]

        def run_batch() -> None:
            with sessions.begin() as session:
                decided = classify.classify_comments(
                    session, comment_ids=ids, classifier=classifier
                )
            assert len(decided) == len(ids)

        return run_batch

    # Warm-up: statements prepared, caches filled, on each variant.
    with _as_before_webhooks():
        batch("before")()
    batch("plain")()
    batch("hooked")()
    with _statements(engine) as plain_sent:
        batch("plain")()
    with _statements(engine) as hooked_sent:
        batch("hooked")()

    times: dict[str, list[float]] = {"before": [], "plain": [], "hooked": []}
    for _ in range(args.batches // 2 - 1):
        for name in ("before", "plain", "hooked"):
            if name == "before":
                with _as_before_webhooks():
                    times[name].append(_timed(batch(name)))
            else:
                times[name].append(_timed(batch(name)))

    # Deliveries, one at a time.
    with sessions() as session:
        pending = list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.webhook_id == hook.webhook.id)
                .order_by(WebhookDelivery.id)
            )
        )
    count = min(args.deliveries, len(pending))

    def bare_post() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request(
                "POST", "/hook", body=BODY, headers={"Content-Type": "application/json"}
            )
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 204
        finally:
            connection.close()

    def sender() -> None:
        result = send(
            url,
            BODY,
            event_type="comment.classified",
            event_id="e",
            delivery_id=1,
            secrets=["whsec_bench"],
            allow_private=True,
            timeout=5.0,
        )
        assert result.outcome is Outcome.delivered

    resources = _Resources(settings, sessions)
    todo = iter(pending)

    def task_body() -> None:
        assert deliver(resources, next(todo), 0) == "delivered"

    for warm in (bare_post, sender):
        warm()
    ceiling_ms = [_timed(bare_post) for _ in range(count)]
    sender_ms = [_timed(sender) for _ in range(count)]
    task_ms = [_timed(task_body) for _ in range(count)]

    print(
        f"batches of {args.batch}, {len(times['plain'])} of each kind; "
        f"{count} deliveries each way; {dt.datetime.now(dt.UTC):%F %T} UTC"
    )

    def row(name: str, values: list[float], ceiling: list[float], unit: str = "ms") -> None:
        p50, p95 = percentile(values, 50), percentile(values, 95)
        c50 = percentile(ceiling, 50)
        print(
            f"{name:<44} p50 {p50:7.2f} {unit}  p95 {p95:7.2f} {unit}   "
            f"ceiling p50 {c50:6.2f} {unit}   ratio (p50) {p50 / c50:5.2f}x"
        )

    print("the decision transaction (a batch, BEGIN to COMMIT):")
    row("  site without hooks", times["plain"], times["before"])
    row("  site with a hook (a delivery per verdict)", times["hooked"], times["before"])
    extra = percentile(times["hooked"], 50) - percentile(times["before"], 50)
    print(f"  the deliveries' cost per verdict (p50): {extra / args.batch * 1000:.0f} us")
    print("one delivery, one at a time (a new connection each):")
    row("  sender (resolve, check, sign, POST, judge)", sender_ms, ceiling_ms)
    row("  task body (claim, send, settle)", task_ms, ceiling_ms)
    print(
        f"  deliveries a second, one process: task body {1000 / percentile(task_ms, 50):.0f}, "
        f"ceiling {1000 / percentile(ceiling_ms, 50):.0f}"
    )

    plain_writes = sum(1 for s in plain_sent if "INSERT INTO webhook_deliveries" in s)
    hooked_writes = sum(1 for s in hooked_sent if "INSERT INTO webhook_deliveries" in s)
    print(
        f"statements a batch: {len(plain_sent)} without hooks ({plain_writes} writing "
        f"deliveries), {len(hooked_sent)} with a hook ({hooked_writes} writing deliveries)"
    )
    missed = []
    if plain_writes:
        missed.append(f"a batch of a site without hooks wrote deliveries ({plain_writes})")
    if hooked_writes != 1:
        missed.append(
            f"a batch of a site with a hook wrote deliveries with {hooked_writes} statements"
        )
    return conclude(missed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument(
        "--admin-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create (and drop) the bench database",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
