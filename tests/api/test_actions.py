"""Moderators' actions through the API: one comment under If-Match, in bulk, and the
audit trail and labels they leave."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Author, Comment, Label, Site, Status
from service.auth.dev_issuer import DEV_ISSUER
from service.moderation.sites import create_site
from tests.api.conftest import TokenFactory

MODERATOR = ["commentguard:blog:moderator"]


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def make_comment(
    session: Session,
    site: Site,
    *,
    status: Status = Status.held,
    subject: str = "alice",
    content: str = "A comment waiting for a moderator.",
    discard: bool = False,
) -> Comment:
    """A comment as the worker leaves it (its author's counts included)."""
    author = session.scalar(
        select(Author).where(Author.site_id == site.id, Author.subject == subject)
    )
    if author is None:
        author = Author(site_id=site.id, issuer=DEV_ISSUER, subject=subject, display_name=subject)
        session.add(author)
        session.flush()
    comment = Comment(
        site_id=site.id,
        thread="/post/1",
        author_id=author.id,
        author_name=subject.title(),
        author_email=f"{subject}@example.org",
        permalink="https://blog.example/post/1",
        content=content,
        content_hash=uuid.uuid4().hex,
        status=status,
        discard=discard,
        score=0.6,
    )
    session.add(comment)
    author.approved_count += status is Status.approved
    author.spam_count += status is Status.spam
    session.flush()
    return comment


def act(
    client: FlaskClient,
    token: str,
    comment: Comment | uuid.UUID,
    action: str,
    *,
    version: int | None = 1,
    note: str | None = None,
) -> Any:
    cid = comment.id if isinstance(comment, Comment) else comment
    headers = bearer(token) if version is None else bearer(token, **{"If-Match": f'"v{version}"'})
    body: dict[str, Any] = {"action": action}
    if note is not None:
        body["note"] = note
    return client.post(f"/v1/comments/{cid}/actions", json=body, headers=headers)


@pytest.fixture
def moderator(token: TokenFactory) -> str:
    return token("mod", roles=MODERATOR)


def test_approve_moves_the_comment_audits_labels_and_counts(
    client: FlaskClient, site: Site, db_session: Session, moderator: str
) -> None:
    comment = make_comment(db_session, site, discard=True)
    response = act(client, moderator, comment, "approve", note="fine after all")
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == '"v2"'
    body = response.get_json()
    assert body["status"] == "approved"
    assert body["version"] == 2
    assert body["discard"] is False
    assert body["action"]["from"] == "held"
    assert body["action"]["label"] == "ham"
    assert body["content"] == comment.content

    db_session.expire_all()
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.comment_id == comment.id)).one()
    assert (entry.action, entry.from_state, entry.to_state) == ("approve", "held", "approved")
    assert (entry.actor_issuer, entry.actor_subject, entry.note) == (
        DEV_ISSUER,
        "mod",
        "fine after all",
    )
    label = db_session.scalars(select(Label).where(Label.comment_id == comment.id)).one()
    assert (label.label.value, label.source.value, label.audit_id) == ("ham", "moderator", entry.id)
    assert (label.content, label.author_email, label.permalink) == (
        comment.content,
        "alice@example.org",
        "https://blog.example/post/1",
    )
    assert (label.actor_issuer, label.actor_subject) == (DEV_ISSUER, "mod")
    author = db_session.get_one(Author, comment.author_id)
    assert (author.approved_count, author.spam_count) == (1, 0)
    assert db_session.get_one(Comment, comment.id).version == 2


@pytest.mark.parametrize(
    ("start", "action", "end", "label"),
    [
        (Status.held, "ham", Status.approved, "ham"),
        (Status.spam, "ham", Status.approved, "ham"),
        (Status.held, "spam", Status.spam, "spam"),
        (Status.approved, "spam", Status.spam, "spam"),
        (Status.approved, "hold", Status.held, None),
        (Status.spam, "trash", Status.trash, None),
        (Status.pending, "approve", Status.approved, "ham"),
    ],
)
def test_each_action_and_the_label_it_writes(
    client: FlaskClient,
    site: Site,
    db_session: Session,
    moderator: str,
    start: Status,
    action: str,
    end: Status,
    label: str | None,
) -> None:
    comment = make_comment(db_session, site, status=start)
    response = act(client, moderator, comment, action)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == end.value
    db_session.expire_all()
    labels = db_session.scalars(select(Label.label).where(Label.comment_id == comment.id)).all()
    assert [value.value for value in labels] == ([label] if label else [])
    assert db_session.scalars(select(AuditEntry).where(AuditEntry.comment_id == comment.id)).one()
    author = db_session.get_one(Author, comment.author_id)
    # The counts say how many of the author's comments are approved and spam now.
    assert author.approved_count == (end is Status.approved)
    assert author.spam_count == (end is Status.spam)


@pytest.mark.parametrize("start", [Status.approved, Status.spam, Status.held, Status.pending])
def test_restore_goes_back_to_the_status_before_trash(
    client: FlaskClient, site: Site, db_session: Session, moderator: str, start: Status
) -> None:
    comment = make_comment(db_session, site, status=start)
    assert act(client, moderator, comment, "trash").status_code == 200
    restored = act(client, moderator, comment, "restore", version=2)
    assert restored.status_code == 200
    # A pending comment would never be classified again: it comes back held.
    expected = Status.held if start is Status.pending else start
    assert restored.get_json()["status"] == expected.value
    assert restored.headers["ETag"] == '"v3"'
    db_session.expire_all()
    author = db_session.get_one(Author, comment.author_id)
    assert author.approved_count == (expected is Status.approved)
    assert author.spam_count == (expected is Status.spam)
    # Trash and restore judge nothing: no label.
    assert db_session.scalars(select(Label).where(Label.comment_id == comment.id)).all() == []


def test_restore_without_an_audit_trail_comes_back_held(
    client: FlaskClient, site: Site, db_session: Session, moderator: str
) -> None:
    comment = make_comment(db_session, site, status=Status.trash)
    assert act(client, moderator, comment, "restore").get_json()["status"] == "held"


@pytest.mark.parametrize(
    ("start", "action"),
    [
        (Status.held, "restore"),
        (Status.approved, "approve"),
        (Status.approved, "ham"),
        (Status.spam, "spam"),
        (Status.held, "hold"),
        (Status.trash, "trash"),
        (Status.trash, "approve"),
    ],
)
def test_an_action_not_allowed_from_the_status_is_409_and_writes_nothing(
    client: FlaskClient,
    site: Site,
    db_session: Session,
    moderator: str,
    start: Status,
    action: str,
) -> None:
    comment = make_comment(db_session, site, status=start)
    response = act(client, moderator, comment, action)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "urn:commentguard:problem:conflict"
    db_session.expire_all()
    assert db_session.get_one(Comment, comment.id).version == 1
    assert db_session.scalars(select(AuditEntry)).all() == []


def test_if_match_is_required_and_a_stale_one_is_412_with_the_current_etag(
    client: FlaskClient, site: Site, db_session: Session, moderator: str
) -> None:
    comment = make_comment(db_session, site)
    missing = act(client, moderator, comment, "approve", version=None)
    assert missing.status_code == 428
    assert missing.get_json()["type"] == "urn:commentguard:problem:precondition-required"

    assert act(client, moderator, comment, "spam").status_code == 200
    stale = act(client, moderator, comment, "approve", version=1)
    assert stale.status_code == 412
    assert stale.mimetype == "application/problem+json"
    assert stale.headers["ETag"] == '"v2"'
    # RFC 9110: a weak ETag never matches; a list matches only through a current member.
    for value in ('W/"v2"', '"v1", "v3"', 'W/"v2", "v1"', "v2", '"r1"', '"v2" "v3"'):
        odd = client.post(
            f"/v1/comments/{comment.id}/actions",
            json={"action": "approve"},
            headers=bearer(moderator, **{"If-Match": value}),
        )
        assert odd.status_code == 412, value
        assert odd.headers["ETag"] == '"v2"', value
    db_session.expire_all()
    assert db_session.get_one(Comment, comment.id).status is Status.spam
    assert len(db_session.scalars(select(AuditEntry)).all()) == 1


@pytest.mark.parametrize("value", ['"v1", "v2"', 'W/"v1", "v2"', "*"])
def test_if_match_with_a_list_naming_the_current_etag_or_a_star_acts(
    client: FlaskClient, site: Site, db_session: Session, moderator: str, value: str
) -> None:
    comment = make_comment(db_session, site)
    assert act(client, moderator, comment, "spam").status_code == 200
    response = client.post(
        f"/v1/comments/{comment.id}/actions",
        json={"action": "approve"},
        headers=bearer(moderator, **{"If-Match": value}),
    )
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == '"v3"'
    db_session.expire_all()
    assert db_session.get_one(Comment, comment.id).status is Status.approved
    entries = db_session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.details["version"]) for e in entries] == [("spam", 2), ("approve", 3)]


@pytest.mark.parametrize(
    "body",
    [{"action": "delete"}, {}, {"action": "approve", "extra": 1}, {"action": "approve", "note": 5}],
)
def test_an_invalid_body_is_422(
    client: FlaskClient, site: Site, db_session: Session, moderator: str, body: dict[str, Any]
) -> None:
    comment = make_comment(db_session, site)
    response = client.post(
        f"/v1/comments/{comment.id}/actions",
        json=body,
        headers=bearer(moderator, **{"If-Match": '"v1"'}),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_who_may_act_on_a_comment(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    create_site(db_session, slug="other", name="Other", url="https://other.example")
    comment = make_comment(db_session, site)
    assert act(client, token("alice"), comment, "approve").status_code == 403  # its author
    assert act(client, token("bob"), comment, "approve").status_code == 404
    operator = token("op", roles=["commentguard:blog:operator"])
    assert act(client, operator, comment, "approve").status_code == 404
    elsewhere = token("mod-b", roles=["commentguard:other:moderator"])
    assert act(client, elsewhere, comment, "approve").status_code == 404
    assert act(client, token("mod"), uuid.uuid4(), "approve").status_code == 404
    moderator = token("mod", roles=MODERATOR)
    assert act(client, moderator, uuid.uuid4(), "approve").status_code == 404
    response = client.post(
        f"/v1/comments/{comment.id}/actions",
        json={"action": "approve"},
        headers={"If-Match": '"v1"'},
    )
    assert response.status_code == 401


# --- bulk ----------------------------------------------------------------------------------


def bulk(client: FlaskClient, token: str, body: dict[str, Any], site: str = "blog") -> Any:
    return client.post(f"/v1/sites/{site}/actions", json=body, headers=bearer(token))


def test_bulk_gives_one_result_per_comment(
    client: FlaskClient, site: Site, db_session: Session, moderator: str
) -> None:
    other = create_site(db_session, slug="other", name="Other", url="https://other.example")
    fine = [make_comment(db_session, site, subject=f"s{n}") for n in range(3)]
    already = make_comment(db_session, site, status=Status.spam)
    foreign = make_comment(db_session, other)
    unknown = uuid.uuid4()
    ids = [c.id for c in (*fine, already, foreign)] + [unknown]
    response = bulk(client, moderator, {"action": "spam", "note": "a wave", "ids": ids})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    results = {uuid.UUID(r["id"]): r for r in body["results"]}
    assert [uuid.UUID(r["id"]) for r in body["results"]] == ids
    for comment in fine:
        assert results[comment.id]["result"] == "ok"
        assert results[comment.id]["etag"] == '"v2"'
        assert results[comment.id]["label"] == "spam"
    assert results[already.id]["result"] == "invalid_transition"
    assert results[foreign.id]["result"] == "not_found"
    assert results[unknown]["result"] == "not_found"
    assert body["counts"] == {"ok": 3, "invalid_transition": 1, "not_found": 2}
    db_session.expire_all()
    entries = db_session.scalars(select(AuditEntry)).all()
    assert sorted(e.comment_id for e in entries) == sorted(c.id for c in fine)  # type: ignore[type-var]
    assert {e.note for e in entries} == {"a wave"}
    assert len(db_session.scalars(select(Label)).all()) == 3
    for comment in fine:
        assert db_session.get_one(Author, comment.author_id).spam_count == 1


def test_bulk_items_carry_versions_and_a_stale_one_is_a_conflict(
    client: FlaskClient, site: Site, db_session: Session, moderator: str
) -> None:
    first, second = make_comment(db_session, site), make_comment(db_session, site)
    assert act(client, moderator, second, "spam").status_code == 200
    items = [{"id": str(first.id), "version": 1}, {"id": str(second.id), "version": 1}]
    body = bulk(client, moderator, {"action": "approve", "items": items}).get_json()
    assert [r["result"] for r in body["results"]] == ["ok", "conflict"]
    assert body["results"][1]["etag"] == '"v2"'


def test_restore_in_bulk_returns_each_to_its_own_status(
    client: FlaskClient, site: Site, db_session: Session, moderator: str
) -> None:
    comments = [make_comment(db_session, site, status=s) for s in (Status.approved, Status.spam)]
    ids = [str(c.id) for c in comments]
    assert bulk(client, moderator, {"action": "trash", "ids": ids}).status_code == 200
    body = bulk(client, moderator, {"action": "restore", "ids": ids}).get_json()
    assert [r["status"] for r in body["results"]] == ["approved", "spam"]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "approve", "ids": [str(uuid.uuid4()) for _ in range(501)]},
        {"action": "approve"},
        {"action": "approve", "ids": []},
        {"action": "approve", "ids": ["x"]},
        {"action": "approve", "ids": [str(uuid.uuid4())], "items": [{"id": str(uuid.uuid4())}]},
        {"action": "nuke", "ids": [str(uuid.uuid4())]},
        {"action": "approve", "ids": [str(uuid.UUID(int=1))] * 2},
    ],
)
def test_an_invalid_bulk_request_is_422(
    client: FlaskClient, site: Site, moderator: str, body: dict[str, Any]
) -> None:
    response = bulk(client, moderator, body)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_bulk_needs_the_moderator_role(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    comment = make_comment(db_session, site)
    response = bulk(client, token("bob"), {"action": "approve", "ids": [str(comment.id)]})
    assert response.status_code == 403
    unknown_site = bulk(client, token("mod"), {"action": "approve", "ids": [str(comment.id)]}, "x")
    assert unknown_site.status_code == 404


# --- the audit trail -------------------------------------------------------------------------


def test_the_audit_trail_is_paginated_newest_first_and_filtered(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    comments = [make_comment(db_session, site, subject=f"s{n}") for n in range(3)]
    mod, other_mod = token("mod", roles=MODERATOR), token("mod2", roles=MODERATOR)
    for comment in comments:
        assert act(client, mod, comment, "approve").status_code == 200
    assert act(client, other_mod, comments[0], "spam", version=2).status_code == 200

    seen: list[dict[str, Any]] = []
    url: str | None = "/v1/sites/blog/audit?limit=3"
    while url:
        page = client.get(url, headers=bearer(mod))
        assert page.status_code == 200
        seen.extend(page.get_json()["entries"])
        url = page.get_json()["links"].get("next")
    assert [e["action"] for e in seen] == ["spam", "approve", "approve", "approve"]
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
    assert seen[0]["actor"] == {"issuer": DEV_ISSUER, "subject": "mod2"}

    def ids(query: str) -> list[int]:
        response = client.get(f"/v1/sites/blog/audit?{query}", headers=bearer(mod))
        assert response.status_code == 200
        return [e["id"] for e in response.get_json()["entries"]]

    assert ids("action=spam") == [seen[0]["id"]]
    assert ids("actor=mod2") == [seen[0]["id"]]
    assert ids(f"comment={comments[0].id}") == [seen[0]["id"], seen[-1]["id"]]
    for bad in ("limit=0", "limit=201", "limit=x", "cursor=@@", "comment=nope"):
        assert client.get(f"/v1/sites/blog/audit?{bad}", headers=bearer(mod)).status_code == 422
    assert client.get("/v1/sites/blog/audit", headers=bearer(token("bob"))).status_code == 403
