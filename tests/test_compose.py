"""docker-compose.yml and .env.example say what the deployment needs, and nothing else.

The compose file is checked as Compose itself reads it (``docker-compose config`` with
.env.example as the .env), so that a typo, a wrong condition or a service that starts
before its dependencies fails here rather than at a first deployment. Skipped, saying so,
only where no Compose binary is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, ValidationError

from service.queue import COMMENTS_QUEUE, TRAINING_QUEUE, WEBHOOKS_QUEUE
from service.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ("migrate", "api", "worker", "trainer", "webhooks", "beat")


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as Compose resolves it, with .env.example standing in for .env."""
    command = _compose_command()
    if command is None:
        pytest.skip("no docker-compose binary (apt-get install docker-compose) to validate with")
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE_FILE, project / "docker-compose.yml")
    shutil.copy(ENV_EXAMPLE, project / ".env")
    done = subprocess.run(
        [*command, "--project-directory", str(project), "-f", "docker-compose.yml", "config"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    loaded = yaml.safe_load(done.stdout)
    assert isinstance(loaded, dict)
    return loaded


def _service(config: dict[str, Any], name: str) -> dict[str, Any]:
    service = config["services"][name]
    assert isinstance(service, dict)
    return service


def _conditions(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "depends_on must name conditions, not a bare list"
    return {name: spec["condition"] for name, spec in depends.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return command if isinstance(command, list) else str(command or "").split()


def test_services_are_exactly_the_deployment(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"postgres", "redis", *APP_SERVICES}


def test_datastores_have_healthchecks(config: dict[str, Any]) -> None:
    postgres = " ".join(_service(config, "postgres")["healthcheck"]["test"])
    redis = " ".join(_service(config, "redis")["healthcheck"]["test"])
    assert "pg_isready" in postgres
    assert "redis-cli ping" in redis


def test_migrate_is_one_shot_after_postgres(config: dict[str, Any]) -> None:
    migrate = _service(config, "migrate")
    assert _command(migrate) == ["commentguard", "db", "upgrade"]
    assert _conditions(migrate) == {"postgres": "service_healthy"}
    # A restarting one-shot would never be "completed": the API would never start.
    assert migrate.get("restart", "no") == "no"


def test_api_waits_for_migrations_and_datastores(config: dict[str, Any]) -> None:
    api = _service(config, "api")
    assert _conditions(api) == {
        "migrate": "service_completed_successfully",
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    # The default command (the image's) is gunicorn; compose must not replace it.
    assert "command" not in api


def test_worker_and_beat_run_the_celery_app(config: dict[str, Any]) -> None:
    worker = _command(_service(config, "worker"))
    beat = _command(_service(config, "beat"))
    assert worker[:4] == ["celery", "-A", "workers.celery_app", "worker"]
    assert beat[:4] == ["celery", "-A", "workers.celery_app", "beat"]
    # Beat runs its own service: a worker with -B too would schedule every sweep twice.
    assert "-B" not in worker
    assert "--beat" not in worker
    for name in ("worker", "trainer", "webhooks", "beat"):
        conditions = _conditions(_service(config, name))
        assert conditions["migrate"] == "service_completed_successfully"
        assert conditions["redis"] == "service_healthy"


def test_classification_and_training_have_their_own_workers(config: dict[str, Any]) -> None:
    worker = _command(_service(config, "worker"))
    trainer = _command(_service(config, "trainer"))
    assert trainer[:4] == ["celery", "-A", "workers.celery_app", "worker"]
    assert worker[worker.index("-Q") + 1] == COMMENTS_QUEUE
    # One process per replica runs the comment path's tasks, several replicas by default.
    assert worker[worker.index("--pool") + 1] == "solo"
    assert _service(config, "worker")["scale"] >= 2
    assert trainer[trainer.index("-Q") + 1] == TRAINING_QUEUE
    assert trainer[trainer.index("--concurrency") + 1] == "1"


def test_webhook_deliveries_have_their_own_worker(config: dict[str, Any]) -> None:
    webhooks = _command(_service(config, "webhooks"))
    assert webhooks[:4] == ["celery", "-A", "workers.celery_app", "worker"]
    assert webhooks[webhooks.index("-Q") + 1] == WEBHOOKS_QUEUE
    # Deliveries wait on other servers: several at once, in threads.
    assert webhooks[webhooks.index("--pool") + 1] == "threads"
    assert int(webhooks[webhooks.index("--concurrency") + 1]) > 1
    # ... and never on the comment path's workers.
    worker = _command(_service(config, "worker"))
    assert WEBHOOKS_QUEUE not in worker[worker.index("-Q") + 1].split(",")


def test_app_services_share_one_image_and_the_env_file(config: dict[str, Any]) -> None:
    images = {_service(config, name)["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        environment = _service(config, name)["environment"]
        assert {"DATABASE_URL", "BROKER_URL", "SECRET_KEY"} <= set(environment)


def _env_names(settings_field_alias: object, field: str) -> list[str]:
    if isinstance(settings_field_alias, AliasChoices):
        return [str(choice) for choice in settings_field_alias.choices]
    return [f"COMMENTGUARD_{field.upper()}"]


def _example_lines() -> dict[str, str]:
    """Each variable named in .env.example (set, or commented out at its default)."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_env_example_lists_every_setting() -> None:
    listed = _example_lines()
    missing = []
    for field, info in Settings.model_fields.items():
        names = _env_names(info.validation_alias, field)
        if not any(name in listed for name in names):
            missing.append(names[0])
    assert not missing, f".env.example does not list {missing}"


def _set_in_example() -> dict[str, str]:
    return {
        name: value
        for line in ENV_EXAMPLE.read_text().splitlines()
        if (match := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line))
        for name, value in [match.groups()]
    }


def test_env_example_secret_is_a_placeholder_the_service_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every_name = {
        name
        for field, info in Settings.model_fields.items()
        for name in _env_names(info.validation_alias, field)
    }
    for name in every_name | set(_example_lines()):
        monkeypatch.delenv(name, raising=False)
    example = _set_in_example()
    for name, value in example.items():
        monkeypatch.setenv(name, value)
    with pytest.raises((ValidationError, SettingsError), match="SECRET_KEY"):
        Settings()

    # ... and with a real secret in its place the example is a working production config.
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.broker_url.startswith("redis://redis:")


def test_each_metrics_tree_counts_in_a_directory_of_its_own(config: dict[str, Any]) -> None:
    # gunicorn's workers and each Celery worker's processes count in their container's
    # own tmpfs, which the tree's parent empties at start: no two trees share one.
    for name in ("api", "worker", "trainer", "webhooks"):
        service = _service(config, name)
        directory = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert directory in service.get("tmpfs", []), name
    # A Celery worker serves its own metrics, inside the project's network only.
    for name in ("worker", "trainer", "webhooks"):
        service = _service(config, name)
        environment = service["environment"]
        port = environment["COMMENTGUARD_WORKER_METRICS_PORT"]
        assert int(port) > 0
        assert environment["COMMENTGUARD_WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
        assert port in [str(exposed) for exposed in service.get("expose", [])]
        assert "ports" not in service
    # The API's /metrics is on its own port, published on loopback only.
    ports = _service(config, "api")["ports"]
    assert [str(p).split(":")[0] if isinstance(p, str) else p["host_ip"] for p in ports] == [
        "127.0.0.1"
    ]


def test_the_image_counts_metrics_in_multiprocess_mode() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PROMETHEUS_MULTIPROC_DIR=" in dockerfile
