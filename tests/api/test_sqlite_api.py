"""The moderators' and operators' API on the embedded SQLite default (``make run``), where
timestamps come back without a zone and a zone given to SQLite is dropped: every time the
API answers carries its zone, and a ban's end is the instant the moderator gave."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, Status
from service.app import create_app
from service.auth.dev_issuer import DEV_ISSUER, mint_dev_token
from service.db import make_engine, make_sessionmaker
from service.moderation.registry import create_job
from service.moderation.sites import create_site
from service.settings import Settings
from tests.conftest import alembic_config

ROLES = ["commentguard:blog:moderator", "commentguard:blog:operator"]


@pytest.fixture
def embedded(
    api_settings: Settings, tmp_path: Path
) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    settings = api_settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'cg.db'}"})
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    yield settings, make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def client(embedded: tuple[Settings, sessionmaker[Session]]) -> Iterator[FlaskClient]:
    settings, sessions = embedded
    with create_app(settings, sessions=sessions).test_client() as client:
        yield client


def _zoned(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def test_times_carry_their_zone_and_a_ban_ends_when_it_was_told(
    embedded: tuple[Settings, sessionmaker[Session]], client: FlaskClient
) -> None:
    settings, sessions = embedded
    with sessions.begin() as session:
        site = create_site(session, slug="blog", name="B", url="https://blog.example")
        author = Author(site_id=site.id, issuer=DEV_ISSUER, subject="alice")
        session.add(author)
        session.flush()
        comment = Comment(
            site_id=site.id,
            thread="/p",
            author_id=author.id,
            content="held for a look",
            content_hash=uuid.uuid4().hex,
            status=Status.held,
            score=0.6,
        )
        session.add(comment)
        session.flush()
        job = create_job(session, site_id=site.id, requested_by="test")
        comment_id, author_id, job_id = comment.id, author.id, job.id
    headers = {
        "Authorization": "Bearer "
        + mint_dev_token(settings, subject="mod", site="blog", roles=ROLES)
    }

    acted = client.post(
        f"/v1/comments/{comment_id}/actions",
        json={"action": "approve"},
        headers={**headers, "If-Match": '"v1"'},
    )
    assert acted.status_code == 200, acted.get_json()
    _zoned(acted.get_json()["created_at"])

    job_body = client.get(f"/v1/classifier/jobs/{job_id}", headers=headers).get_json()
    _zoned(job_body["created_at"])

    until = "2030-01-01T00:00:00+02:00"
    banned = client.post(
        f"/v1/sites/blog/authors/{author_id}/trust",
        json={"trust": "banned", "until": until},
        headers=headers,
    )
    assert banned.status_code == 200, banned.get_json()
    read = client.get(f"/v1/sites/blog/authors/{author_id}", headers=headers).get_json()
    assert _zoned(read["banned_until"]) == dt.datetime.fromisoformat(until)
    audit = client.get("/v1/sites/blog/audit?action=ban", headers=headers).get_json()
    assert _zoned(audit["entries"][0]["details"]["until"]) == dt.datetime.fromisoformat(until)
