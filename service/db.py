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
    timeout so the API and the embedded worker can share one file, and synchronous=NORMAL
    (a commit is not an fsync; see ``_sqlite_pragmas``).
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
    # In WAL mode NORMAL (SQLite's advice for WAL) syncs at checkpoints, not at each
    # commit: a commit survives the process's crash, and only an OS crash or power loss
    # may undo the latest ones (whole transactions: a comment with its outbox row). FULL
    # waited for an fsync per commit, 5 ms on the development VM, with writers serialised:
    # it capped the embedded default at about 190 commits a second.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that never expire on commit: views serialise objects after committing."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def autocommit_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session] | None:
    """Sessions like ``sessions``, over the same pool, whose every statement commits as it
    runs (no BEGIN, and a COMMIT that sends nothing): two round trips fewer for a block
    whose writes are one statement, which PostgreSQL makes atomic on its own.

    None where that cannot be had: a database other than PostgreSQL, or sessions bound to
    a connection rather than an engine (a test's rolled-back transaction); callers then
    use ``sessions``.
    """
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return None
    return sessionmaker(
        class_=sessions.class_,
        **{**sessions.kw, "bind": bind.execution_options(isolation_level="AUTOCOMMIT")},
    )
