"""API keys: stored hashed, shown once, revocable, with a last-used time; accepted as
``Authorization: Bearer cg_...`` or ``X-API-Key``; managed by ``commentguard site key``."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import ApiKey, Site
from service.auth.api_keys import API_KEY_ISSUER, check_api_key, create_api_key, revoke_api_key
from service.cli import main
from service.moderation.errors import Unauthorized
from service.moderation.sites import create_site
from service.settings import Settings
from tests.api.conftest import TokenFactory
from tests.support.env import settings_env


def post(client: FlaskClient, headers: dict[str, str], content: str = "From the backend.") -> int:
    response = client.post(
        "/v1/comments", json={"site": "blog", "thread": "/t", "content": content}, headers=headers
    )
    return response.status_code


@pytest.fixture
def key(db_session: Session, site: Site) -> str:
    return create_api_key(db_session, site_slug="blog", name="WordPress backend")[1]


def test_a_key_is_stored_only_as_a_salted_hash(db_session: Session, site: Site) -> None:
    info, key = create_api_key(db_session, site_slug="blog", name="backend")
    assert key.startswith(f"cg_{info.prefix}_")
    row = db_session.scalars(select(ApiKey).where(ApiKey.prefix == info.prefix)).one()
    secret = key.rsplit("_", 1)[1]
    stored = (row.prefix, row.name, row.salt, row.digest)
    assert not any(secret in value or key in value for value in stored)
    # Two keys never share a salt, so equal secrets would still hash apart.
    other = create_api_key(db_session, site_slug="blog", name="backend 2")[0]
    assert db_session.scalars(select(ApiKey.salt).where(ApiKey.prefix == other.prefix)).one() != (
        row.salt
    )


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_a_key_is_accepted_in_either_header(client: FlaskClient, key: str, header: str) -> None:
    value = f"Bearer {key}" if header == "Authorization" else key
    response = client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/t", "content": "Posted with a key."},
        headers={header: value},
    )
    assert response.status_code == 202, response.get_json()
    # The caller the key proves is the key: it reads back what it posted.
    again = client.get(response.headers["Location"], headers={header: value})
    assert again.status_code == 200


def test_a_key_records_its_last_use_at_most_once_a_minute(
    db_session: Session, site: Site, key: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    identity = check_api_key(db_session, site_id=site.id, key=key, now=now)
    assert identity.issuer == API_KEY_ISSUER
    assert identity.roles == frozenset()
    row = db_session.scalars(select(ApiKey)).one()
    db_session.refresh(row)
    assert row.last_used_at == now

    check_api_key(db_session, site_id=site.id, key=key, now=now + dt.timedelta(seconds=30))
    db_session.refresh(row)
    assert row.last_used_at == now
    later = now + dt.timedelta(minutes=2)
    check_api_key(db_session, site_id=site.id, key=key, now=later)
    db_session.refresh(row)
    assert row.last_used_at == later


def test_refused_keys(client: FlaskClient, db_session: Session, site: Site, key: str) -> None:
    other = create_site(db_session, slug="other", name="Other", url="https://other.example")
    other_key = create_api_key(db_session, site_slug=other.slug, name="other backend")[1]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown = "cg_0123456789abcdef_" + "x" * 43
    for bad in (other_key, tampered, unknown, "cg_nonsense"):
        assert post(client, {"X-API-Key": bad}) == 401
        assert post(client, {"Authorization": f"Bearer {bad}"}) == 401
    response = client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/t", "content": "x"},
        headers={"X-API-Key": "not-a-key"},
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "not-a-key" not in response.get_data(as_text=True)

    revoke_api_key(db_session, site_slug="blog", prefix=key[3:19], now=dt.datetime.now(dt.UTC))
    assert post(client, {"X-API-Key": key}) == 401
    with pytest.raises(Unauthorized):
        check_api_key(db_session, site_id=site.id, key=key, now=dt.datetime.now(dt.UTC))


def test_a_key_reads_no_one_elses_comment(
    client: FlaskClient, site: Site, key: str, token: TokenFactory
) -> None:
    response = client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/t", "content": "Alice writes."},
        headers={"Authorization": f"Bearer {token('alice')}"},
    )
    assert response.status_code == 202
    assert client.get(response.headers["Location"], headers={"X-API-Key": key}).status_code == 404


def test_site_key_create_list_revoke(settings: Settings, committed: sessionmaker[Session]) -> None:
    runner = CliRunner()
    env = {**os.environ, **settings_env(settings)}

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run("site", "create", "--slug", "keyed", "--name", "Keyed", "--url", "https://k.example")
    created = run("site", "key", "create", "keyed", "--name", "WordPress backend")
    key = created.strip().splitlines()[-1]
    prefix = key[3:19]
    assert key.startswith(f"cg_{prefix}_")

    listed = run("site", "key", "list", "keyed")
    assert prefix in listed
    assert "WordPress backend" in listed
    assert "last used never" in listed
    assert key not in listed
    with committed.begin() as session:
        site_id = session.scalars(select(Site.id).where(Site.slug == "keyed")).one()
        check_api_key(session, site_id=site_id, key=key, now=dt.datetime.now(dt.UTC))
    assert "last used never" not in run("site", "key", "list", "keyed")

    assert prefix in run("site", "key", "revoke", "keyed", prefix)
    assert "revoked" in run("site", "key", "list", "keyed")
    with committed.begin() as session, pytest.raises(Unauthorized):
        check_api_key(session, site_id=site_id, key=key, now=dt.datetime.now(dt.UTC))

    missing = runner.invoke(main, ["site", "key", "revoke", "keyed", "0000000000000000"], env=env)
    assert missing.exit_code == 1
    assert "has no key" in missing.output
