"""The real PostgreSQL and Redis a test run uses: a fresh database, a Redis database of its
own. Several runs may share one machine (several people, or CI jobs): each claims its own.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

#: The key a run sets in the Redis database it uses, so that a concurrent run picks another.
REDIS_CLAIM_KEY = "commentguard:test-run"
#: Longer than any test run; a run that died without releasing frees its database then.
REDIS_CLAIM_SECONDS = 3600


def unreachable(what: str, url: str, exc: Exception) -> str:
    """The message a run fails with when a service is missing: what, where (without a
    password), and what to do."""
    return (
        f"{what} is not reachable at {_without_password(url)} ({exc.__class__.__name__}: {exc}). "
        "`make services` starts the local ones; or point the tests elsewhere with "
        "COMMENTGUARD_TEST_DATABASE_URL / COMMENTGUARD_TEST_REDIS_URL."
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str, *, prefix: str = "commentguard_test") -> Iterator[URL]:
    """Create an empty database ``<prefix>_<random>`` on the server of ``admin_url``, yield
    its URL, and drop it afterwards (closing any connection left to it)."""
    admin = make_url(admin_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin.set(database=name)
    finally:
        try:
            with engine.connect() as connection:
                # FORCE (PostgreSQL 13+): a killed worker's connections may linger a moment.
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()


@contextlib.contextmanager
def claimed_redis_database(url: str, *, explicit: bool) -> Iterator[str]:
    """A Redis database for this run, emptied, as a URL; emptied and released afterwards.

    ``explicit``: the caller named the database, use it as is. Otherwise the database of
    ``url`` is tried, then the ones below it down to 1, and the first no other live run has
    claimed is taken (database 0 is left to development).
    """
    parts = urlsplit(url)
    first = int(parts.path.strip("/") or 0)
    candidates = [first] if explicit else list(range(first, 0, -1)) or [first]
    token = secrets.token_hex(8)
    for number in candidates:
        candidate = urlunsplit(parts._replace(path=f"/{number}"))
        client = redis.Redis.from_url(candidate, socket_connect_timeout=3, socket_timeout=10)
        claimed = client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS)
        if not claimed and not explicit:
            client.close()
            continue
        client.set(REDIS_CLAIM_KEY, token, ex=REDIS_CLAIM_SECONDS)
        for key in client.scan_iter(count=1000):
            if key != REDIS_CLAIM_KEY.encode():
                client.delete(key)
        try:
            yield candidate
        finally:
            # Leave the database as empty as it was found: a bench that wants an empty
            # broker database must not find this run's queues in it.
            if client.get(REDIS_CLAIM_KEY) == token.encode():
                client.flushdb()
            client.close()
        return
    raise RuntimeError(
        f"every Redis database from {first} down to 1 at {url} is claimed by another test run; "
        f"wait, or delete the stale '{REDIS_CLAIM_KEY}' keys"
    )
