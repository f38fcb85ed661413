"""``POST /v1/comments`` on committed PostgreSQL sessions: a comment without an
Idempotency-Key is stored by one statement run without BEGIN and COMMIT, with the same
outcome as in a transaction (all of it written, or none of it); a keyed comment, or one
sent with an API key, runs in a transaction as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, OutboxTask, Status
from service.app import create_app
from service.auth.api_keys import create_api_key
from service.auth.dev_issuer import mint_dev_token
from service.db import autocommit_sessions
from service.settings import Settings
from tests.support.comments import make_site


@pytest.fixture
def real_app(api_settings: Settings, committed: sessionmaker[Session]) -> Flask:
    """The API on the run's real sessionmaker: every request commits for real."""
    return create_app(api_settings, sessions=committed)


@pytest.fixture
def writes(engine: Engine) -> Iterator[list[tuple[str, bool]]]:
    """Each INSERT or UPDATE the engine sends: its first word and whether its connection
    was in autocommit (no BEGIN before it)."""
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH")):
            seen.append((statement.split()[0].upper(), bool(cursor.connection.autocommit)))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _reader(
    app: Flask, settings: Settings, committed: sessionmaker[Session], subject: str
) -> tuple[str, FlaskClient, dict[str, str]]:
    """A new committed site, a client of ``app`` and a reader's bearer header for it."""
    with committed.begin() as session:
        slug = make_site(session).slug
    token = mint_dev_token(settings, subject=subject, site=slug)
    return slug, app.test_client(), {"Authorization": f"Bearer {token}"}


def _body(slug: str, content: str) -> dict[str, str]:
    return {"site": slug, "thread": "/post/1", "content": content}


def _stored(committed: sessionmaker[Session], ids: list[str]) -> tuple[int, int]:
    """How many of these comments, and of their outbox rows, are in the database."""
    with committed() as session:
        comments = session.scalar(
            select(func.count()).where(Comment.id.in_([uuid.UUID(i) for i in ids]))
        )
        outbox = session.scalar(select(func.count()).where(OutboxTask.key.in_(ids)))
    return comments or 0, outbox or 0


def test_autocommit_sessions_only_on_an_engine_of_postgresql(
    committed: sessionmaker[Session], db_session: Session
) -> None:
    made = autocommit_sessions(committed)
    assert made is not None
    with made() as session:
        assert session.connection().connection.dbapi_connection.autocommit  # type: ignore[union-attr]
    with committed() as session:
        assert not session.connection().connection.dbapi_connection.autocommit  # type: ignore[union-attr]
    # Bound to a connection (a test's rolled-back transaction): none.
    assert autocommit_sessions(sessionmaker(bind=db_session.connection())) is None


def test_a_comment_is_one_statement_without_a_transaction_all_or_nothing(
    real_app: Flask,
    api_settings: Settings,
    committed: sessionmaker[Session],
    writes: list[tuple[str, bool]],
) -> None:
    slug, client, bearer = _reader(real_app, api_settings, committed, "ann")
    writes.clear()

    # A new author (a statement that finds no author and writes nothing, then one that
    # writes the author, the comment and its outbox row), then a known one (one statement).
    first = client.post("/v1/comments", json=_body(slug, "First words here."), headers=bearer)
    second = client.post("/v1/comments", json=_body(slug, "Second words here."), headers=bearer)
    assert (first.status_code, second.status_code) == (202, 202)
    assert writes == [("WITH", True)] * 3
    ids = [first.get_json()["id"], second.get_json()["id"]]
    assert _stored(committed, ids) == (2, 2)
    with committed() as session:
        authors = session.scalars(select(Author).join(Comment).where(Comment.id == ids[0]))
        assert [a.subject for a in authors] == ["ann"]
        assert session.get_one(Comment, uuid.UUID(ids[1])).status is Status.pending

    # A refused duplicate writes nothing at all.
    writes.clear()
    again = client.post("/v1/comments", json=_body(slug, "Second words here."), headers=bearer)
    assert again.status_code == 409
    assert writes == [("WITH", True)]
    with committed() as session:
        total = session.scalar(
            select(func.count()).select_from(Comment).join(Author).where(Author.subject == "ann")
        )
        outbox = session.scalar(select(func.count()).select_from(OutboxTask))
    assert total == 2
    assert outbox == 2


def test_a_keyed_comment_and_an_api_key_run_in_a_transaction(
    real_app: Flask,
    api_settings: Settings,
    committed: sessionmaker[Session],
    writes: list[tuple[str, bool]],
) -> None:
    slug, client, bearer = _reader(real_app, api_settings, committed, "bo")
    writes.clear()
    keyed = client.post(
        "/v1/comments",
        json=_body(slug, "Keyed words here."),
        headers={**bearer, "Idempotency-Key": "k-1"},
    )
    assert keyed.status_code == 202
    assert writes
    assert all(not autocommit for _, autocommit in writes)

    with committed.begin() as session:
        _, secret = create_api_key(session, site_slug=slug, name="blog backend")
    writes.clear()
    by_key = client.post(
        "/v1/comments", json=_body(slug, "Words from the backend."), headers={"X-API-Key": secret}
    )
    assert by_key.status_code == 202, by_key.get_json()
    # The key's last use, then the comment (a new author: two statements), in one
    # transaction.
    assert writes == [("UPDATE", False), ("WITH", False), ("WITH", False)]
    assert _stored(committed, [keyed.get_json()["id"], by_key.get_json()["id"]]) == (2, 2)
