"""Input the database could not take (NUL, lone surrogates, numbers past its range, times
past year 9999) is refused as a problem (4xx) at the moderators' and operators'
endpoints: never a 500, never a row written."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEntry, Author, Comment, Label, Site, Status, Trust
from tests.api.conftest import TokenFactory
from tests.api.test_actions import bearer, make_comment

MODERATOR = ["commentguard:blog:moderator", "commentguard:blog:operator"]


def _audit_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/v1/sites/%00/queue", 404, None),
        ("/v1/sites/%00/threads/x/comments", 404, None),
        ("/v1/sites/%00/audit", 404, None),
        ("/v1/sites/blog/authors/%C2%B2", 404, None),
        ("/v1/sites/blog/audit?action=%00", 422, "action"),
        ("/v1/sites/blog/audit?actor=a%00", 422, "actor"),
        (f"/v1/sites/blog/audit?cursor={_audit_cursor('a' + '9' * 30)}", 422, "cursor"),
        (f"/v1/sites/blog/audit?cursor={_audit_cursor('a-1')}", 422, "cursor"),
        ("/v1/sites/blog/queue?limit=" + "9" * 5000, 422, "limit"),
        ("/v1/sites/blog/queue?author=" + "9" * 5000, 422, "author"),
        ("/v1/sites/blog/threads/x/comments?limit=" + "9" * 5000, 422, "limit"),
        ("/v1/classifier/versions/%00", 404, None),
        ("/v1/classifier/versions/%00/report", 404, None),
        ("/v1/classifier/versions?site=%00", 404, None),
    ],
)
def test_bad_reads_are_problems(
    client: FlaskClient,
    site: Site,
    token: TokenFactory,
    path: str,
    status: int,
    field: str | None,
) -> None:
    response = client.get(path, headers=bearer(token("mod", roles=MODERATOR)))
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    if field is not None:
        assert field in [e["field"] for e in response.get_json()["errors"]]


@pytest.mark.parametrize("note", ["nul \x00", "lone \ud800", "x" * 2001])
def test_a_note_the_database_cannot_store_is_422_and_nothing_is_written(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory, note: str
) -> None:
    moderator = bearer(token("mod", roles=MODERATOR))
    comment = make_comment(db_session, site)
    author_id = comment.author_id
    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (
            f"/v1/comments/{comment.id}/actions",
            {"action": "spam", "note": note},
            {**moderator, "If-Match": '"v1"'},
        ),
        (
            "/v1/sites/blog/actions",
            {"action": "spam", "ids": [str(comment.id)], "note": note},
            moderator,
        ),
        (f"/v1/sites/blog/authors/{author_id}/trust", {"trust": "banned", "note": note}, moderator),
    ]
    for path, body, headers in calls:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 422, (path, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert "note" in [e["field"] for e in response.get_json()["errors"]]
    db_session.expire_all()
    assert db_session.get_one(Comment, comment.id).status is Status.held
    assert db_session.get_one(Author, author_id).trust is Trust.normal
    assert db_session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    assert db_session.scalar(select(func.count()).select_from(Label)) == 0


@pytest.mark.parametrize(
    "until", ["9999-12-31T23:59:59-14:00", "9000-01-01T00:00:00Z", "2030-01-01T00:00:00"]
)
def test_a_ban_end_the_database_cannot_give_back_is_422(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory, until: str
) -> None:
    moderator = bearer(token("mod", roles=MODERATOR))
    author_id = make_comment(db_session, site).author_id
    response = client.post(
        f"/v1/sites/blog/authors/{author_id}/trust",
        json={"trust": "banned", "until": until},
        headers=moderator,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["until"]
    # The author stays readable (a stored year-10000 time could not be read back).
    read = client.get(f"/v1/sites/blog/authors/{author_id}", headers=moderator)
    assert read.status_code == 200
    assert read.get_json()["trust"] == "normal"


def test_the_latest_ban_end_allowed_is_stored_and_read_back(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    moderator = bearer(token("mod", roles=MODERATOR))
    author_id = make_comment(db_session, site).author_id
    response = client.post(
        f"/v1/sites/blog/authors/{author_id}/trust",
        json={"trust": "banned", "until": "8999-12-31T23:59:59+14:00"},
        headers=moderator,
    )
    assert response.status_code == 200
    read = client.get(f"/v1/sites/blog/authors/{author_id}", headers=moderator)
    assert read.get_json()["banned_until"] == "8999-12-31T09:59:59Z"
