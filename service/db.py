"""Engine and sessionmaker factories. No Flask, no globals: callers own what they build."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings


def make_engine(settings: Settings, **overrides: Any) -> Engine:
    """An engine for ``settings.database_url``.

    PostgreSQL: a pre-pinged pool and a connect timeout so that a database outage turns
    into a quick error (answered 503) rather than a hung request. SQLite: WAL and a busy
    timeout so the API and the embedded worker can share one file.
    """
    url = settings.database_url
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["connect_args"] = {
            "connect_timeout": max(1, int(settings.dependency_timeout_seconds))
        }
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        kwargs["pool_timeout"] = settings.dependency_timeout_seconds
    kwargs.update(overrides)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that never expire on commit: views serialise objects after committing."""
    return sessionmaker(bind=engine, expire_on_commit=False)
