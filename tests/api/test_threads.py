"""``GET /v1/sites/{site}/threads/{thread}/comments``: public, approved only, threaded,
paged by top-level comment, with a strong ETag and 304, and no private field."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from models import Comment, Site, Status
from service.moderation.threads import MAX_DEPTH
from tests.support.queue import add_comment

THREAD = "/posts/2026/hello world?ref=home"
URL = f"/v1/sites/blog/threads/{quote(THREAD, safe='')}/comments"


def approved(session: Session, site: Site, minutes: float, **kw: Any) -> Comment:
    return add_comment(
        session, site, status=Status.approved, score=0.01, minutes=minutes, thread=THREAD, **kw
    )


def test_approved_comments_nested_under_their_parents_oldest_first(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    first = approved(db_session, site, 1, content="first")
    second = approved(db_session, site, 2, content="second")
    reply = approved(db_session, site, 3, parent=first.id, content="reply")
    reply_to_reply = approved(db_session, site, 4, parent=reply.id, content="reply to reply")
    early_reply = approved(db_session, site, 2.5, parent=first.id, content="earlier reply")
    add_comment(db_session, site, status=Status.held, minutes=5, thread=THREAD)
    add_comment(db_session, site, status=Status.spam, minutes=6, thread=THREAD)
    add_comment(db_session, site, status=Status.approved, minutes=8, thread="/another")

    response = client.get(URL)  # no token
    assert response.status_code == 200
    body = response.get_json()
    assert body["thread"] == THREAD
    assert body["total"] == 5
    assert body["next_cursor"] is None

    def shape(nodes: list[dict[str, Any]]) -> list[Any]:
        return [(n["content"], shape(n["replies"])) for n in nodes]

    assert shape(body["comments"]) == [
        ("first", [("earlier reply", []), ("reply", [("reply to reply", [])])]),
        ("second", []),
    ]
    top = body["comments"][0]
    assert top["parent"] is None
    assert top["replies"][1]["parent"] == str(first.id)
    assert top["replies"][1]["replies"][0]["id"] == str(reply_to_reply.id)
    assert {str(early_reply.id), str(second.id)} <= {
        c["id"] for c in [*body["comments"], *top["replies"]]
    }


def test_no_private_field_leaves(client: FlaskClient, db_session: Session, site: Site) -> None:
    approved(db_session, site, 1, content="hello")
    response = client.get(URL)
    text = response.get_data(as_text=True)
    comment = response.get_json()["comments"][0]
    assert set(comment) == {
        "id",
        "parent",
        "author_name",
        "author_url",
        "content",
        "created_at",
        "replies",
    }
    for private in ("alice@mail.test", "192.0.2.1", "test-agent", "blog.example/ref", "score"):
        assert private not in text


def test_a_reply_whose_parent_is_not_approved_is_shown_at_the_top_level(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    held = add_comment(db_session, site, status=Status.held, minutes=1, thread=THREAD)
    orphan = approved(db_session, site, 2, parent=held.id, content="orphan")
    under_orphan = approved(db_session, site, 3, parent=orphan.id, content="under orphan")
    body = client.get(URL).get_json()
    assert [(c["id"], c["parent"]) for c in body["comments"]] == [(str(orphan.id), None)]
    assert body["comments"][0]["replies"][0]["id"] == str(under_orphan.id)
    assert str(held.id) not in json.dumps(body)


def test_nesting_stops_at_the_last_level_depth_first(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    chain = [approved(db_session, site, 0, content="level 1")]
    for level in range(2, MAX_DEPTH + 4):
        chain.append(
            approved(db_session, site, level, parent=chain[-1].id, content=f"level {level}")
        )
    node = client.get(URL).get_json()["comments"][0]
    for _ in range(MAX_DEPTH - 2):
        node = node["replies"][0]
    # ``node`` is at level MAX_DEPTH - 1: its replies are the last level, and hold the
    # rest of the chain in order, each still naming its real parent.
    last_level = node["replies"]
    assert [r["content"] for r in last_level] == [
        f"level {n}" for n in range(MAX_DEPTH, MAX_DEPTH + 4)
    ]
    assert all(r["replies"] == [] for r in last_level)
    assert [r["parent"] for r in last_level] == [str(c.id) for c in chain[MAX_DEPTH - 2 : -1]]


def test_pages_of_top_level_comments_hold_still_as_comments_arrive(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    tops = [approved(db_session, site, i, content=f"top {i}") for i in range(7)]
    first = client.get(URL, query_string={"limit": 3}).get_json()
    assert [c["content"] for c in first["comments"]] == ["top 0", "top 1", "top 2"]
    # Newer comments arrive, including a reply to a comment of the first page.
    approved(db_session, site, 10, content="top 10")
    approved(db_session, site, 11, parent=tops[0].id, content="late reply")
    seen = [c["content"] for c in first["comments"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(URL, query_string={"limit": 3, "cursor": cursor}).get_json()
        seen += [c["content"] for c in page["comments"]]
        cursor = page["next_cursor"]
    assert seen == [f"top {i}" for i in (0, 1, 2, 3, 4, 5, 6, 10)]
    assert first["links"]["next"].startswith(URL + "?")
    follow = client.get(first["links"]["next"])
    assert [c["content"] for c in follow.get_json()["comments"]] == ["top 3", "top 4", "top 5"]


def test_strong_etag_and_304_until_the_page_changes(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    comment = approved(db_session, site, 1, content="cached")
    first = client.get(URL)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=15"
    assert first.headers["Access-Control-Allow-Origin"] == "*"

    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert client.get(URL, headers={"If-None-Match": '"other", ' + etag}).status_code == 304

    db_session.execute(update(Comment).where(Comment.id == comment.id).values(status=Status.trash))
    changed = client.get(URL, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["comments"] == []
    assert changed.headers["ETag"] != etag


def test_the_thread_key_may_be_sent_encoded_or_with_raw_slashes(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    add_comment(db_session, site, status=Status.approved, thread="/a/b/", content="slashes")
    add_comment(db_session, site, status=Status.approved, thread="x/comments", content="tricky")
    for url in (
        "/v1/sites/blog/threads/%2Fa%2Fb%2F/comments",
        "/v1/sites/blog/threads//a/b//comments",
    ):
        body = client.get(url).get_json()
        assert body["thread"] == "/a/b/"
        assert [c["content"] for c in body["comments"]] == ["slashes"]
    body = client.get("/v1/sites/blog/threads/x/comments/comments").get_json()
    assert [c["content"] for c in body["comments"]] == ["tricky"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"cursor": "abc.def"}, "cursor")],
)
def test_bad_queries_are_422(
    client: FlaskClient, site: Site, query: dict[str, str], field: str
) -> None:
    response = client.get(URL, query_string=query)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == field


def test_a_cursor_of_another_thread_is_refused(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    for i in range(3):
        approved(db_session, site, i)
    cursor = client.get(URL, query_string={"limit": 1}).get_json()["next_cursor"]
    other = client.get("/v1/sites/blog/threads/other/comments", query_string={"cursor": cursor})
    assert other.status_code == 422


def test_unknown_site_is_404_and_unknown_thread_is_empty(client: FlaskClient, site: Site) -> None:
    missing = client.get("/v1/sites/nowhere/threads/x/comments")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"
    empty = client.get("/v1/sites/blog/threads/never-commented/comments").get_json()
    assert (empty["comments"], empty["total"], empty["next_cursor"]) == ([], 0, None)
