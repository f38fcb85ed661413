"""``POST /v1/comments`` and ``GET /v1/comments/{id}``: acceptance, reading back, and every
way a request can be wrong — each a problem+json with the right status and nothing written."""

from __future__ import annotations

import json
import uuid
from typing import Any

import flask
import pytest
from flask import Flask
from flask.sessions import NullSession
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from models import Author, Comment, OutboxTask, Site, Status, Trust
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import TokenFactory

PROBLEM = "application/problem+json"


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "site": "blog",
        "thread": "/2026/11/pools",
        "author_name": "Alice",
        "author_email": "alice@example.org",
        "content": "Thanks, the part about connection pools was what I needed.",
        "user_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "permalink": "https://blog.example/2026/11/pools",
        "lang": "en",
    }
    base.update(overrides)
    return base


def post(
    client: FlaskClient, token: str | None, payload: Any = None, **headers: str
) -> TestResponse:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(
        "/v1/comments", json=payload if payload is not None else body(), headers=headers
    )


def counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count(Comment.id))) or 0,
        session.scalar(select(func.count(OutboxTask.id))) or 0,
    )


def assert_problem(response: TestResponse, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    problem = response.get_json(force=True)
    assert problem["type"] == f"urn:commentguard:problem:{slug}"
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem  # type: ignore[no-any-return]


def test_accepts_a_comment_with_202_location_and_one_outbox_row(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    response = post(client, token())
    assert response.status_code == 202
    out = response.get_json()
    assert out["status"] == "pending"
    assert out["site"] == "blog"
    assert response.headers["Location"] == f"/v1/comments/{out['id']}"

    comment = db_session.get_one(Comment, uuid.UUID(out["id"]))
    assert comment.status is Status.pending
    assert comment.content == body()["content"]
    outbox = db_session.scalars(select(OutboxTask).where(OutboxTask.key == out["id"])).all()
    assert [row.task for row in outbox] == ["commentguard.classify_comment"]


def test_the_author_reads_the_comment_back_and_nobody_else_does(
    client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    location = post(client, token("alice")).headers["Location"]
    mine = client.get(location, headers={"Authorization": f"Bearer {token('alice')}"})
    assert mine.status_code == 200
    assert mine.get_json()["status"] == "pending"
    assert mine.get_json()["verdict"] is None

    theirs = client.get(location, headers={"Authorization": f"Bearer {token('mallory')}"})
    assert_problem(theirs, 404, "not-found")
    assert_problem(client.get(location), 401, "unauthorized")
    assert_problem(
        client.get("/v1/comments/not-a-uuid", headers={"Authorization": f"Bearer {token()}"}),
        404,
        "not-found",
    )


def test_name_and_email_come_from_the_token_when_the_comment_has_none(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    payload = body()
    del payload["author_name"], payload["author_email"]
    out = post(client, token("bob", name="Bob B", email="bob@example.org"), payload).get_json()
    comment = db_session.get_one(Comment, uuid.UUID(out["id"]))
    assert (comment.author_name, comment.author_email) == ("Bob B", "bob@example.org")


@pytest.mark.parametrize("subject", ["s" * 256, "nul\x00", "lone \ud800"])
def test_a_token_subject_no_author_row_can_hold_is_401_and_nothing_is_written(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session, subject: str
) -> None:
    response = post(client, token(subject))
    assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "subject" in response.get_json()["detail"]
    assert counts(db_session) == (0, 0)
    assert db_session.scalar(select(func.count()).select_from(Author)) == 0


def test_a_token_name_or_email_too_long_to_store_is_cut_or_dropped(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    payload = body()
    del payload["author_name"], payload["author_email"]
    long_name = post(client, token("bob", name="n" * 500, email="e" * 400 + "@x.example"), payload)
    assert long_name.status_code == 202, long_name.get_json()
    comment = db_session.get_one(Comment, uuid.UUID(long_name.get_json()["id"]))
    assert (comment.author_name, comment.author_email) == ("n" * 200, None)
    author = db_session.get_one(Author, comment.author_id)
    assert (author.display_name, author.email) == ("n" * 200, None)

    payload["content"] = "A second comment, from a reader whose name holds a NUL."
    nul_name = post(client, token("carol", name="nul\x00"), payload)
    assert nul_name.status_code == 202, nul_name.get_json()
    comment = db_session.get_one(Comment, uuid.UUID(nul_name.get_json()["id"]))
    assert comment.author_name is None


@pytest.mark.parametrize(
    ("headers", "raw", "status", "slug"),
    [
        ({"Content-Type": "application/json"}, b"{not json", 400, "malformed-request"),
        ({"Content-Type": "application/json"}, b"[1, 2]", 400, "malformed-request"),
        ({"Content-Type": "application/json"}, b"\xff\xfe{}", 400, "malformed-request"),
        ({"Content-Type": "text/plain"}, b"{}", 415, "unsupported-media-type"),
        ({}, b"site=blog", 415, "unsupported-media-type"),
    ],
)
def test_unparsable_bodies(
    client: FlaskClient,
    site: Site,
    token: TokenFactory,
    db_session: Session,
    headers: dict[str, str],
    raw: bytes,
    status: int,
    slug: str,
) -> None:
    before = counts(db_session)
    response = client.post(
        "/v1/comments", data=raw, headers={**headers, "Authorization": f"Bearer {token()}"}
    )
    assert_problem(response, status, slug)
    assert counts(db_session) == before


def test_missing_and_bad_tokens_get_401_with_a_bearer_challenge(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    missing = post(client, None)
    assert_problem(missing, 401, "unauthorized")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="commentguard"'

    forged = token()[:-4] + "AAAA"
    bad = post(client, forged)
    assert_problem(bad, 401, "unauthorized")
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert forged not in bad.get_data(as_text=True)

    other_site = post(client, token(site="elsewhere"))
    assert_problem(other_site, 401, "unauthorized")
    assert counts(db_session) == (0, 0)


def test_unknown_site_is_404(client: FlaskClient, site: Site, token: TokenFactory) -> None:
    assert_problem(post(client, token(), body(site="nope")), 404, "not-found")


def test_invalid_fields_are_422_naming_each_field(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    payload = body(
        content="   ",
        user_ip="999.1.1.1",
        author_email="not-an-email",
        author_url="javascript:alert(1)",
        lang="english please",
        parent="nope",
        colour="blue",
    )
    del payload["thread"]
    problem = assert_problem(post(client, token(), payload), 422, "invalid-input")
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {
        "content",
        "user_ip",
        "author_email",
        "author_url",
        "lang",
        "parent",
        "colour",
        "thread",
    }
    assert counts(db_session) == (0, 0)


@pytest.mark.parametrize("text", ["nul \x00 inside", "lone \ud800 surrogate"])
def test_text_a_database_cannot_store_is_422_not_500(
    client: FlaskClient, site: Site, token: TokenFactory, text: str
) -> None:
    raw = json.dumps(body(content=text))  # json.dumps escapes both, as a client would
    response = client.post(
        "/v1/comments",
        data=raw,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token()}"},
    )
    problem = assert_problem(response, 422, "invalid-input")
    assert [e["field"] for e in problem["errors"]] == ["content"]


def test_content_over_64_kb_is_413_and_a_huge_body_too(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    assert post(client, token(), body(content="a" * 65_536)).status_code == 202
    assert_problem(post(client, token("b"), body(content="é" * 32_769)), 413, "payload-too-large")
    assert_problem(
        post(client, token("c"), body(content="x", user_agent="y" * 300_000)),
        413,
        "payload-too-large",
    )
    assert counts(db_session) == (1, 1)


def test_parent_must_be_a_comment_of_the_same_thread(
    client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    parent = post(client, token()).get_json()["id"]
    reply = post(client, token("bob"), body(parent=parent, content="Agreed, and thanks."))
    assert reply.status_code == 202
    assert reply.get_json()["parent"] == parent
    elsewhere = post(client, token("bob"), body(parent=parent, thread="/other", content="Hm"))
    problem = assert_problem(elsewhere, 422, "invalid-input")
    assert problem["errors"][0]["field"] == "parent"


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    first = post(client, token(), body(), **{"Idempotency-Key": "k-1"})
    again = post(client, token(), body(), **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert counts(db_session) == (1, 1)

    changed = post(client, token(), body(content="Something else"), **{"Idempotency-Key": "k-1"})
    assert_problem(changed, 422, "invalid-input")
    # Keys belong to their author: another reader's k-1 is a new comment.
    assert post(client, token("bob"), body(), **{"Idempotency-Key": "k-1"}).status_code == 202
    assert counts(db_session) == (2, 2)
    assert_problem(
        post(client, token(), body(), **{"Idempotency-Key": "x" * 300}), 422, "invalid-input"
    )


def test_a_duplicate_is_409_and_a_flood_is_429(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    assert post(client, token()).status_code == 202
    duplicate = post(client, token(), body(content=body()["content"].upper() + "  "))
    assert_problem(duplicate, 409, "conflict")
    assert post(client, token(), body(content="second")).status_code == 202
    assert post(client, token(), body(content="third")).status_code == 202
    flood = post(client, token(), body(content="fourth"))
    assert_problem(flood, 429, "rate-limited")
    assert int(flood.headers["Retry-After"]) > 0
    assert counts(db_session) == (3, 3)


def test_a_trusted_author_has_no_flood_limit_and_a_duplicate_elsewhere_is_no_duplicate(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    assert post(client, token()).status_code == 202
    # The same words in another thread are another comment.
    assert post(client, token(), body(thread="/2026/12/queues")).status_code == 202
    db_session.execute(update(Author).where(Author.subject == "alice").values(trust=Trust.trusted))
    for n in range(4):
        assert post(client, token(), body(content=f"more {n}")).status_code == 202
    # Trust lifts the flood limit, not the duplicate check.
    assert_problem(post(client, token(), body(content="more 3")), 409, "conflict")
    assert counts(db_session) == (6, 6)


def test_a_site_without_a_flood_limit_takes_every_comment(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    site.policy = {**site.policy, "flood_limit_per_minute": 0}
    db_session.flush()
    for n in range(5):
        assert post(client, token(), body(content=f"comment {n}")).status_code == 202
    assert counts(db_session) == (5, 5)


def test_with_an_idempotency_key_duplicates_and_floods_are_refused_too(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    def keyed(key: str, content: str) -> TestResponse:
        return post(client, token(), body(content=content), **{"Idempotency-Key": key})

    assert keyed("k-1", "first").status_code == 202
    assert_problem(keyed("k-2", "FIRST"), 409, "conflict")
    assert keyed("k-3", "second").status_code == 202
    assert keyed("k-4", "third").status_code == 202
    assert_problem(keyed("k-5", "fourth"), 429, "rate-limited")
    assert counts(db_session) == (3, 3)


def test_broker_down_is_503_with_retry_after_and_nothing_written(
    api_settings: Settings,
    rolled_back_sessions: Any,
    site: Site,
    token: TokenFactory,
    db_session: Session,
) -> None:
    down = api_settings.model_copy(update={"broker_url": "redis://127.0.0.1:9/0"})
    app = create_app(down, sessions=rolled_back_sessions)
    with app.test_client() as client:
        problem = assert_problem(post(client, token()), 503, "unavailable")
        assert "broker" in problem["detail"]
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["broker"] == "unavailable"
    assert counts(db_session) == (0, 0)


def test_database_down_is_503_with_retry_after(api_settings: Settings, token: TokenFactory) -> None:
    down = api_settings.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:9/none"}
    )
    with create_app(down).test_client() as client:
        response = post(client, token())
        problem = assert_problem(response, 503, "unavailable")
        assert "database" in problem["detail"]
        assert response.headers["Retry-After"]
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] == "unavailable"


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"]["database"] == "ok"
    assert ready.get_json()["checks"]["broker"] == "ok"
    assert ready.get_json()["checks"]["classifier"].startswith("ok")


def test_unknown_routes_and_methods_are_problems_too(client: FlaskClient) -> None:
    assert_problem(client.get("/nope"), 404, "not-found")
    not_allowed = client.delete("/v1/comments")
    assert_problem(not_allowed, 405, "method-not-allowed")
    assert "POST" in not_allowed.headers["Allow"]


def test_the_api_keeps_no_cookie_session(
    app: Flask, client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    # A cookie a browser might send along is neither read nor answered with Set-Cookie.
    client.set_cookie("session", "eyJ4IjoxfQ.forged.signature")
    response = post(client, token())
    assert response.status_code == 202
    assert "Set-Cookie" not in response.headers
    with app.test_request_context("/v1/comments"):
        assert isinstance(flask.session, NullSession)
        with pytest.raises(RuntimeError):
            flask.session["user"] = "alice"
