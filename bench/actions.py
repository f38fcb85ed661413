"""Moderators' actions against the machine's ceiling.

    .venv/bin/python -m bench.actions [--comments 50000 --singles 300 --bulks 10]

What it does, all on 127.0.0.1:

1. Creates a fresh PostgreSQL database (dropped at the end), migrates it, creates the
   site ``bench`` and ``--comments`` held comments over ``--authors`` authors.
2. Through the API in-process (``create_app()`` and Flask's test client, so that no HTTP
   server's cost is in the figures; a development-issuer moderator token, checked on
   every request): ``--singles`` single actions (``POST /v1/comments/{id}/actions``, each
   on its own comment, with ``If-Match``), then ``--bulks`` bulk actions of 500 comments
   each (``POST /v1/sites/bench/actions`` with versions).
3. The ceiling, on the same engine: the least each can do, one transaction with one
   conditional ``UPDATE ... WHERE id = ? AND version = ?`` (single), and one ``UPDATE``
   of 500 rows by id plus one 500-row INSERT (bulk); no HTTP, no auth, no audit.
4. Prints p50/p95 of each and the ratios, and counts the SQL statements one bulk action
   of 500 runs. Bar (machine-independent): a bulk action of 500 runs at most
   ``--max-statements`` statements (not one per comment). Exit status 0 when it holds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
import tempfile
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
from sqlalchemy import URL, Engine, event, insert, text

from bench.bars import conclude
from bench.pipeline import fresh_database, percentile
from models import Author, Comment, Status
from service.app import create_app
from service.auth.dev_issuer import DEV_ISSUER, mint_dev_token
from service.db import make_engine, make_sessionmaker
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BULK = 500


def _settings(dsn: str, key_dir: Path) -> Settings:
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
        dev_issuer=True,
        dev_key_path=key_dir / "key.pem",
        log_level="WARNING",
    )


def _fill(engine: Engine, *, comments: int, authors: int) -> list[uuid.UUID]:
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        site = create_site(
            session,
            slug="bench",
            name="Bench",
            url="https://bench.example",
            policy=SitePolicy(flood_limit_per_minute=0),
        )
        author_ids = list(
            session.scalars(
                insert(Author).returning(Author.id),
                [
                    {"site_id": site.id, "issuer": DEV_ISSUER, "subject": f"reader-{n}"}
                    for n in range(authors)
                ],
            )
        )
        ids = [uuid.uuid4() for _ in range(comments)]
        for start in range(0, comments, 5000):
            session.execute(
                insert(Comment),
                [
                    {
                        "id": cid,
                        "site_id": site.id,
                        "thread": f"/post/{n % 100}",
                        "author_id": author_ids[n % authors],
                        "content": f"A comment waiting for a moderator, number {n}.",
                        "content_hash": f"{n:064x}",
                        "status": Status.held,
                        "score": 0.6,
                        "version": 1,
                    }
                    for n, cid in enumerate(ids[start : start + 5000], start=start)
                ],
            )
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return ids


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000.0


@contextmanager
def _counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def run(args: argparse.Namespace) -> int:
    with fresh_database(args.admin_dsn) as dsn, tempfile.TemporaryDirectory() as keys:
        settings = _settings(dsn, Path(keys))
        config = Config(str(ROOT / "migrations" / "alembic.ini"))
        config.attributes["settings"] = settings
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        engine = make_engine(settings)
        try:
            return _measure(args, settings, engine)
        finally:
            engine.dispose()


def _measure(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    needed = args.singles * 2 + args.bulks * BULK * 2
    if args.comments < needed:
        raise SystemExit(f"--comments must be at least {needed} for these rounds")
    ids = _fill(engine, comments=args.comments, authors=args.authors)
    sessions = make_sessionmaker(engine)
    client = create_app(settings, sessions=sessions).test_client()
    token = mint_dev_token(
        settings, subject="mod", site="bench", roles=["commentguard:bench:moderator"]
    )
    auth = {"Authorization": f"Bearer {token}"}
    pool = iter(ids)

    def single() -> None:
        response = client.post(
            f"/v1/comments/{next(pool)}/actions",
            json={"action": "spam"},
            headers={**auth, "If-Match": '"v1"'},
        )
        assert response.status_code == 200, response.get_json()

    def bulk() -> None:
        items = [{"id": str(next(pool)), "version": 1} for _ in range(BULK)]
        response = client.post(
            "/v1/sites/bench/actions", json={"action": "spam", "items": items}, headers=auth
        )
        assert response.status_code == 200
        assert response.get_json()["counts"] == {"ok": BULK}

    def ceiling_single() -> None:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE comments SET status = 'spam', version = version + 1 "
                    "WHERE id = :id AND version = 1"
                ),
                {"id": next(pool)},
            )

    def ceiling_bulk() -> None:
        chunk = [next(pool) for _ in range(BULK)]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE comments SET status = 'spam', version = version + 1 "
                    "WHERE id = ANY(:ids) AND version = 1"
                ),
                {"ids": chunk},
            )
            connection.execute(
                text(
                    "INSERT INTO audit_log (site_id, actor_issuer, actor_subject, action, "
                    "target_type, target_id, details) SELECT NULL, 'bench', 'bench', 'spam', "
                    "'comment', x::text, '{}' FROM unnest(CAST(:ids AS uuid[])) AS x"
                ),
                {"ids": chunk},
            )

    single()  # warm-up: first token check, first statements
    with _counting(engine) as statements:
        bulk()
    single_ms = [_timed(single) for _ in range(args.singles)]
    bulk_ms = [_timed(bulk) for _ in range(args.bulks)]
    ceiling_single_ms = [_timed(ceiling_single) for _ in range(args.singles)]
    ceiling_bulk_ms = [_timed(ceiling_bulk) for _ in range(args.bulks)]

    def row(name: str, values: list[float], ceiling: list[float]) -> None:
        p50, p95 = percentile(values, 50), percentile(values, 95)
        c50, c95 = percentile(ceiling, 50), percentile(ceiling, 95)
        print(
            f"{name:<28} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms   ceiling p50 {c50:6.2f} ms "
            f"p95 {c95:6.2f} ms   ratio (p50) {p50 / c50:5.1f}x"
        )

    print(
        f"{args.comments} held comments, {args.authors} authors; "
        f"{dt.datetime.now(dt.UTC):%F %T} UTC"
    )
    row(f"single action (x{args.singles})", single_ms, ceiling_single_ms)
    row(f"bulk of {BULK} (x{args.bulks})", bulk_ms, ceiling_bulk_ms)
    per_item = percentile(bulk_ms, 50) / BULK
    print(
        f"bulk per comment (p50): {per_item:.3f} ms; "
        f"statements per bulk of {BULK}: {len(statements)}"
    )
    missed = []
    if len(statements) > args.max_statements:
        missed.append(
            f"a bulk action of {BULK} ran {len(statements)} statements (bar {args.max_statements})"
        )
    return conclude(missed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comments", type=int, default=50_000)
    parser.add_argument("--authors", type=int, default=500)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--bulks", type=int, default=10)
    parser.add_argument("--max-statements", type=int, default=12)
    parser.add_argument(
        "--admin-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create (and drop) the bench database",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
