"""Settings as environment variables, for the processes a test starts (a worker, the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, SecretStr

from service.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Variables from which ``Settings()`` in a child process rebuilds ``settings``.

    Each field is written under the first name ``Settings`` reads it by (``DATABASE_URL``
    rather than ``COMMENTGUARD_DATABASE_URL``), so it wins over anything inherited under
    a later alias. Fields that are ``None`` are left out; lists and mappings are JSON, as
    pydantic-settings expects.
    """
    prefix = str(Settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            variable = alias.choices[0]
        elif isinstance(alias, str):
            variable = alias
        else:
            variable = (prefix + name).upper()
        env[variable] = _text(value)
    return env


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    return json.dumps(value, default=str)
