"""The UI on ``make run``'s embedded SQLite, set up with the CLI as ``make run`` does: a
site's UI client (validated), a login at the development issuer, the queue, an action and
its undo. And the settings the UI adds."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner
from pydantic import ValidationError
from sqlalchemy import select

from models import Site, Status
from service.app import create_app
from service.auth.dev_issuer import DEV_ISSUER, DEV_UI_CLIENT_ID
from service.cli import main
from service.db import make_engine, make_sessionmaker
from service.moderation.errors import InvalidInput
from service.moderation.sites import UiClient, set_ui_client
from service.settings import Settings
from tests.api.test_actions import make_comment
from tests.conftest import alembic_config
from tests.support.env import settings_env
from tests.ui.conftest import csrf_of, dev_login


def test_the_ui_on_the_embedded_sqlite_default(settings: Settings, tmp_path: Path) -> None:
    embedded = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'cg.db'}",
            "dev_issuer": True,
            "dev_key_path": tmp_path / "key.pem",
            "environment": "development",
        }
    )
    command.upgrade(alembic_config(embedded), "head")
    runner = CliRunner()
    env = {**os.environ, **settings_env(embedded)}

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert (
        run("site", "create", "--slug", "demo", "--name", "D", "--url", "http://x").exit_code == 0
    )
    bad = runner.invoke(
        main,
        ["site", "ui-client", "demo", "--issuer", "http://idp.example", "--client-id", "c"],
        env=env,
        input="the-secret\n",
    )
    assert bad.exit_code == 1
    assert "issuer: an https URL" in bad.output
    assert run("site", "ui-client", "demo", "--issuer", DEV_ISSUER).exit_code == 2
    done = run(
        "site",
        "ui-client",
        "demo",
        "--issuer",
        DEV_ISSUER,
        "--client-id",
        DEV_UI_CLIENT_ID,
        "--public",
    )
    assert done.exit_code == 0, done.output
    assert "public client commentguard-ui" in done.output
    listed = run("site", "list", "--json")
    assert '"client_id": "commentguard-ui"' in listed.output
    assert "secret" not in listed.output

    sessions = make_sessionmaker(make_engine(embedded))
    with sessions.begin() as session:
        site = session.scalars(select(Site)).one()
        comment = make_comment(session, site, content="crypto <b>tips</b>")
        comment_id = comment.id
    app = create_app(embedded, sessions=sessions)
    with app.test_client() as client:
        dev_login(client, slug="demo")
        page = client.get("/ui/demo/queue")
        assert page.status_code == 200
        assert "crypto &lt;b&gt;tips&lt;/b&gt;" in page.text
        headers = {"Accept": "application/json", "X-CSRF-Token": csrf_of(page.text)}
        acted = client.post(
            f"/ui/demo/comments/{comment_id}/actions?version=1",
            data={"action": "trash"},
            headers=headers,
        )
        assert acted.get_json()["results"][0]["result"] == "ok"
        assert client.post("/ui/demo/undo", headers=headers).get_json()["undone"] == 1
    with sessions() as session:
        assert session.get_one(type(comment), comment_id).status is Status.held

    removed = run("site", "ui-client", "demo", "--remove")
    assert removed.exit_code == 0
    assert run("site", "ui-client", "demo", "--remove", "--public").exit_code == 2


@pytest.mark.parametrize(
    ("client", "fields"),
    [
        (UiClient("ftp://idp.example", "c"), ["issuer"]),
        (UiClient("http://idp.example", "c"), ["issuer"]),
        (UiClient("https://idp.example?x=1", "c"), ["issuer"]),
        (UiClient("https://idp.example", ""), ["client_id"]),
        (UiClient("https://idp.example", "c", ""), ["client_secret"]),
        (UiClient("not a url", "c\n"), ["issuer", "client_id"]),
    ],
)
def test_a_ui_client_is_validated(
    db_session: Any, site: Site, client: UiClient, fields: list[str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        set_ui_client(db_session, slug="blog", client=client)
    assert [e.field for e in refused.value.errors] == fields


def test_a_loopback_issuer_may_be_plain_http(db_session: Any, site: Site) -> None:
    set_ui_client(db_session, slug="blog", client=UiClient("http://127.0.0.1:9000", "c", "s"))
    assert site.ui_issuer == "http://127.0.0.1:9000"
    assert site.ui_client_secret == "s"


def test_the_ui_settings_are_checked(settings: Settings) -> None:
    base = settings.model_dump()
    with pytest.raises(ValidationError, match="no path, query or fragment"):
        Settings(**{**base, "ui_public_url": "https://m.example/prefix"})
    with pytest.raises(ValidationError, match="http"):
        Settings(**{**base, "ui_public_url": "moderate.example"})
    assert Settings(**{**base, "ui_public_url": "https://m.example/"}).ui_public_url == (
        "https://m.example"
    )
    production = {**base, "environment": "production", "secret_key": "k" * 40}
    with pytest.raises(ValidationError, match="must be https in production"):
        Settings(**{**production, "ui_public_url": "http://m.example"})
    with pytest.raises(ValidationError):
        Settings(**{**base, "ui_session_idle_seconds": 10})


def test_make_run_names_the_development_issuer_as_the_service_does() -> None:
    path = Path(__file__).resolve().parents[2] / "scripts" / "dev_run.py"
    spec = importlib.util.spec_from_file_location("dev_run", path)
    assert spec is not None
    assert spec.loader is not None
    dev_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev_run)
    assert dev_run.DEV_ISSUER == DEV_ISSUER
    assert dev_run.DEV_UI_CLIENT_ID == DEV_UI_CLIENT_ID
