"""The test run's composition root: real PostgreSQL, real Redis, real workers.

A run creates a fresh PostgreSQL database (``commentguard_test_<random>``) on the server of
``COMMENTGUARD_TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
postgres``, used only to create and drop it), migrates it with ``alembic upgrade head``, and
drops it at the end. It uses the Redis database of ``COMMENTGUARD_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``, emptied first); without that variable a run that finds the
database claimed by another live run takes the next one down. Nothing is built until a
test asks for it, so tests that need no service run without one.

Fixtures:

* ``settings``: the one Settings of the run (``environment="test"``, short outbox timeouts).
* ``engine``, ``sessions``: the migrated database's engine and sessionmaker.
* ``db_session``: a Session whose work is rolled back after the test, even if it commits.
* ``committed``: the sessionmaker, for tests whose data another process (a worker) must see;
  every table is emptied after the test.
* ``task_queue``: a ``TaskQueue`` on the run's broker.
* ``celery_worker_process``: a running ``CeleryWorker`` (prefork, 2 processes, beat embedded).
* ``fresh_database``: Settings for another empty database, dropped after the test.
* ``oidc_provider``: a real OpenID Connect provider on 127.0.0.1 (``tests/support/oidc.py``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import models
from service.db import make_engine, make_sessionmaker
from service.queue import TaskQueue, make_celery
from service.settings import Settings
from tests.support.env import settings_env
from tests.support.oidc import OidcProvider, running_provider, why_unavailable
from tests.support.services import claimed_redis_database, fresh_postgres_database, unreachable
from tests.support.worker import CeleryWorker

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = ROOT / "migrations" / "alembic.ini"

DEFAULT_ADMIN_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

#: The sweeper re-enqueues an unfinished classification after this many seconds, and looks
#: every ``SWEEP_INTERVAL_SECONDS``: short, so that crash recovery shows within a test.
OUTBOX_TIMEOUT_SECONDS = 2
SWEEP_INTERVAL_SECONDS = 1.0
#: Webhooks: short attempts, quick retries, few of them, swept often, so that retries,
#: giving up and the recovery of a lost delivery show within a test.
WEBHOOK_TIMEOUT_SECONDS = 3.0
WEBHOOK_MAX_ATTEMPTS = 4
WEBHOOK_BACKOFF_BASE_SECONDS = 0.5
WEBHOOK_BACKOFF_MAX_SECONDS = 2.0
WEBHOOK_SWEEP_INTERVAL_SECONDS = 0.5
#: The quality gate's allowed false-positive rise: the tests' retrains hold out 40 labels,
#: about 20 ham, and the gate promotes only when its held-out ham can show the rise it
#: allows (1 / rise of them: 200 at the service's 0.005; 10 here).
GATE_MAX_FPR_RISE = 0.1


def alembic_config(settings: Settings) -> Config:
    """The project's Alembic configuration, run against ``settings`` (not the environment),
    leaving pytest's logging alone."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["settings"] = settings
    config.attributes["configure_logging"] = False
    return config


def make_test_settings(database_url: str, broker_url: str) -> Settings:
    """The Settings of a test run against ``database_url`` and ``broker_url``."""
    return Settings(
        environment="test",
        database_url=database_url,
        broker_url=broker_url,
        secret_key=SecretStr(secrets.token_urlsafe(36)),
        outbox_timeout_seconds=OUTBOX_TIMEOUT_SECONDS,
        sweep_interval_seconds=SWEEP_INTERVAL_SECONDS,
        log_level="INFO",
        webhook_timeout_seconds=WEBHOOK_TIMEOUT_SECONDS,
        webhook_max_attempts=WEBHOOK_MAX_ATTEMPTS,
        webhook_backoff_base_seconds=WEBHOOK_BACKOFF_BASE_SECONDS,
        webhook_backoff_max_seconds=WEBHOOK_BACKOFF_MAX_SECONDS,
        webhook_sweep_interval_seconds=WEBHOOK_SWEEP_INTERVAL_SECONDS,
        gate_max_fpr_rise=GATE_MAX_FPR_RISE,
    )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    admin_url = os.environ.get("COMMENTGUARD_TEST_DATABASE_URL", DEFAULT_ADMIN_DATABASE_URL)
    try:
        with fresh_postgres_database(admin_url) as url:
            yield url.render_as_string(hide_password=False)
    except OperationalError as exc:
        pytest.fail(unreachable("PostgreSQL", admin_url, exc), pytrace=False)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    explicit = os.environ.get("COMMENTGUARD_TEST_REDIS_URL")
    url = explicit or DEFAULT_REDIS_URL
    try:
        with claimed_redis_database(url, explicit=explicit is not None) as claimed:
            yield claimed
    except RedisConnectionError as exc:
        pytest.fail(unreachable("Redis", url, exc), pytrace=False)


@pytest.fixture(scope="session")
def settings(database_url: str, broker_url: str) -> Settings:
    return make_test_settings(database_url, broker_url)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The run's database, migrated to head."""
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A Session in a transaction that is rolled back after the test.

    The session's own ``commit()`` only releases a savepoint, so code under test may commit
    as it would in production and still leave nothing behind.
    """
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def committed(engine: Engine, sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """The sessionmaker, for data that must really be committed (a worker reads it);
    every table is emptied after the test."""
    yield sessions
    empty_tables(engine)


def empty_tables(engine: Engine) -> None:
    """Delete every row of every table (what ``committed`` does after its test)."""
    tables = ", ".join(f'"{table.name}"' for table in models.Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # A worker may still be sweeping: wait for its locks briefly rather than forever.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        # Identities go on counting: an id is never reused within a run, so no per-process
        # cache (in a worker, in an app) can mistake a new row for an old one.
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(scope="session")
def task_queue(settings: Settings) -> TaskQueue:
    return TaskQueue(make_celery(settings))


@pytest.fixture(scope="session")
def celery_worker_process(
    settings: Settings, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    """A real worker on the run's database and broker; stopped at the end of the run.

    A test may ``kill()`` it, ``start()`` it again or ``restart()`` it; whatever state it
    leaves, the next test that asks for this fixture gets a running worker.
    """
    worker = CeleryWorker(
        {**os.environ, **settings_env(settings)}, tmp_path_factory.mktemp("worker")
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def running_worker(celery_worker_process: CeleryWorker) -> CeleryWorker:
    """``celery_worker_process``, started again if an earlier test left it dead."""
    if not celery_worker_process.alive:
        celery_worker_process.start()
    return celery_worker_process


@pytest.fixture
def fresh_database(settings: Settings) -> Iterator[Callable[[], Settings]]:
    """A factory of Settings for new, empty databases, each dropped after the test."""
    admin_url = os.environ.get("COMMENTGUARD_TEST_DATABASE_URL", DEFAULT_ADMIN_DATABASE_URL)
    with contextlib.ExitStack() as stack:

        def make() -> Settings:
            url = stack.enter_context(fresh_postgres_database(admin_url, prefix="cg_scratch"))
            return make_test_settings(
                url.render_as_string(hide_password=False), settings.broker_url
            )

        yield make


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """A real OpenID Connect provider (``tests/oidc/provider.mjs``) on 127.0.0.1 for the
    whole run; the tests that use it skip when Node.js is not installed."""
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    log_path = tmp_path_factory.mktemp("oidc") / "provider.log"
    try:
        with running_provider(log_path) as provider:
            yield provider
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
