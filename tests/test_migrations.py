"""The migrations build exactly the tables ``models`` declares, and every one runs both ways
on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from service.db import make_engine
from service.settings import Settings
from tests.conftest import alembic_config


def test_models_and_migrations_agree(settings: Settings, engine: Engine) -> None:
    # `alembic check`: autogenerate against the migrated database finds nothing to do.
    command.check(alembic_config(settings))


def test_every_migration_upgrades_downgrades_and_upgrades_again(
    fresh_database: Callable[[], Settings],
) -> None:
    scratch = fresh_database()
    config = alembic_config(scratch)
    revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    assert revisions, "no migrations found"

    # The stairway: each step up must be undone by its step down, and redone.
    for revision in revisions:
        command.upgrade(config, revision.revision)
        command.downgrade(config, "-1")
        command.upgrade(config, revision.revision)

    command.downgrade(config, "base")
    engine = make_engine(scratch)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()

    command.upgrade(config, "head")
    command.check(config)
