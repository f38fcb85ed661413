"""``GET /v1/sites/{site}/queue``: keyset pages that hold still while comments arrive, every
sort (unscored comments last), text and author filters, counts, and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from models import Comment, Site, Status
from service.moderation.queue import MAX_LIMIT
from tests.api.conftest import TokenFactory
from tests.support.queue import add_comment

MODERATOR = ["commentguard:blog:moderator"]


@pytest.fixture
def moderator(token: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('mod', roles=MODERATOR)}"}


def get(client: FlaskClient, headers: dict[str, str], **params: Any) -> Any:
    return client.get("/v1/sites/blog/queue", query_string=params, headers=headers)


def walk(client: FlaskClient, headers: dict[str, str], **params: Any) -> list[str]:
    """Every id of the query, page by page, following ``next_cursor``."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = get(client, headers, **query)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("no last page")


def test_default_is_held_newest_first_with_counts_and_what_a_moderator_acts_on(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str]
) -> None:
    older = add_comment(db_session, site, minutes=1, content="older held")
    newer = add_comment(db_session, site, minutes=2, content="newer held", score=0.7)
    add_comment(db_session, site, status=Status.spam, score=0.99)
    add_comment(db_session, site, status=Status.approved, score=0.01)
    add_comment(db_session, site, status=Status.pending, score=None)

    response = get(client, moderator)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    body = response.get_json()
    assert (body["status"], body["sort"]) == ("held", "-created")
    assert body["counts"] == {"pending": 1, "approved": 1, "held": 2, "spam": 1, "trash": 0}
    assert [i["id"] for i in body["items"]] == [str(newer.id), str(older.id)]
    assert body["next_cursor"] is None
    item = body["items"][0]
    assert item["score"] == 0.7
    assert item["status"] == "held"
    assert item["version"] == newer.version
    assert item["etag"] == f'"v{newer.version}"'
    assert item["author"]["subject"] == "alice"
    assert item["author"]["trust"] == "normal"
    assert item["created_at"].startswith("2026-11-01T12:02:00")
    assert item["links"]["self"] == f"/v1/comments/{newer.id}"


@pytest.mark.parametrize("sort", ["score", "-score", "created", "-created"])
def test_each_sort_pages_through_everything_in_order_unscored_last(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str], sort: str
) -> None:
    # Ties on score and on time, and comments without a score (moved here by hand).
    scores = [0.9, 0.3, None, 0.3, 0.6, None, 0.9, 0.45, None, 0.3, 0.75]
    comments = [
        add_comment(db_session, site, score=s, minutes=i // 2) for i, s in enumerate(scores)
    ]

    def key(c: Comment) -> Any:
        if sort.endswith("created"):
            return (c.created_at, c.id)
        return (c.score is None, c.score or 0.0, c.id)

    expected = sorted(comments, key=key)
    if sort.startswith("-"):
        scored = [c for c in expected if sort == "-created" or c.score is not None]
        expected = list(reversed(scored)) + [c for c in reversed(expected) if c not in scored]
    paged = walk(client, moderator, sort=sort, limit=3)
    assert paged == [str(c.id) for c in expected]
    # One page of everything agrees with the pages.
    assert [i["id"] for i in get(client, moderator, sort=sort).get_json()["items"]] == paged


@pytest.mark.parametrize("sort", ["score", "-score", "created", "-created"])
def test_pages_hold_still_while_comments_arrive_and_leave(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str], sort: str
) -> None:
    before = [
        add_comment(db_session, site, score=round(0.05 * i, 2) if i % 5 else None, minutes=i)
        for i in range(1, 20)
    ]
    first = get(client, moderator, sort=sort, limit=5).get_json()
    seen = [i["id"] for i in first["items"]]

    # New comments everywhere in the order (before, among and after the page served),
    # and one comment of a later page leaves the status.
    arrived = [
        add_comment(db_session, site, score=s, minutes=m)
        for s, m in [(0.0, 0), (0.33, 7.5), (None, 30), (0.99, 40), (0.5, 9.5)]
    ]
    leaving = next(c for c in before if str(c.id) not in seen)
    db_session.execute(update(Comment).where(Comment.id == leaving.id).values(status="spam"))

    rest = walk(client, moderator, sort=sort, limit=5)  # from the start, for the shape
    assert len(rest) == len(before) + len(arrived) - 1
    cursor = first["next_cursor"]
    while cursor:
        page = get(client, moderator, sort=sort, limit=5, cursor=cursor).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]

    assert len(seen) == len(set(seen)), "an item was served twice"
    # No gap: every comment there from the start and still held was served.
    assert {str(c.id) for c in before if c is not leaving} <= set(seen)
    assert str(leaving.id) not in seen[5:]


def test_text_search_matches_words_in_any_case(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str]
) -> None:
    pills = add_comment(db_session, site, content="Cheap PILLS at http://x.example today")
    both = add_comment(db_session, site, content="pills and casino, both cheap", minutes=1)
    add_comment(db_session, site, content="A thoughtful remark about caching.", minutes=2)
    add_comment(db_session, site, status=Status.spam, content="cheap pills in spam")

    def found(q: str) -> set[str]:
        return {i["id"] for i in get(client, moderator, q=q).get_json()["items"]}

    assert found("pills") == {str(pills.id), str(both.id)}
    assert found("CHEAP pills") == {str(pills.id), str(both.id)}
    assert found("casino cheap") == {str(both.id)}
    assert found("blockchain") == set()
    assert found("  ") == found("")  # blank means no filter
    assert len(found("")) == 3
    # Pages of a search continue the search.
    assert walk(client, moderator, q="cheap", limit=1) == [str(both.id), str(pills.id)]


def test_author_filter(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str]
) -> None:
    mine = [add_comment(db_session, site, subject="bob", minutes=i) for i in range(3)]
    add_comment(db_session, site, subject="carol")
    bob = mine[0].author_id
    ids = walk(client, moderator, author=bob, sort="created", limit=2)
    assert ids == [str(c.id) for c in mine]
    assert get(client, moderator, author=987654).get_json()["items"] == []


def test_counts_follow_inserts_status_changes_and_deletes(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str]
) -> None:
    comments = [add_comment(db_session, site, status=Status.pending, score=None) for _ in range(4)]
    db_session.execute(
        update(Comment)
        .where(Comment.id.in_([c.id for c in comments[:3]]))
        .values(status=Status.held)
    )
    db_session.execute(
        update(Comment).where(Comment.id == comments[0].id).values(status=Status.spam)
    )
    # An update that leaves the status alone changes no count.
    db_session.execute(update(Comment).where(Comment.id == comments[1].id).values(score=0.4))
    db_session.execute(delete(Comment).where(Comment.id == comments[2].id))
    counts = get(client, moderator).get_json()["counts"]
    assert counts == {"pending": 1, "approved": 0, "held": 1, "spam": 1, "trash": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "deleted"}, "status"),
        ({"sort": "age"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_LIMIT + 1)}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"author": "-3"}, "author"),
        ({"q": "x" * 201}, "q"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "e30.AAAA"}, "cursor"),
        ({"cursor": "x" * 2000}, "cursor"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_bad_queries_are_422_naming_the_field(
    client: FlaskClient, site: Site, moderator: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = get(client, moderator, **params)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.get_json()["errors"]] == [field]


def test_a_cursor_is_bound_to_its_query_and_cannot_be_altered(
    client: FlaskClient, db_session: Session, site: Site, moderator: dict[str, str]
) -> None:
    for i in range(3):
        add_comment(db_session, site, minutes=i)
    cursor = get(client, moderator, limit=1).get_json()["next_cursor"]
    assert get(client, moderator, limit=1, cursor=cursor).status_code == 200
    # The same cursor with another sort, status or filter is refused, not misread.
    for other in ({"sort": "score"}, {"status": "spam"}, {"q": "comment"}, {"author": "1"}):
        response = get(client, moderator, limit=1, cursor=cursor, **other)
        assert response.status_code == 422, other
        assert "another query" in response.get_json()["errors"][0]["message"]
    payload, mac = cursor.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert get(client, moderator, cursor=f"{flipped}.{mac}").status_code == 422


def test_who_may_read_the_queue(
    client: FlaskClient, site: Site, token: TokenFactory, moderator: dict[str, str]
) -> None:
    assert client.get("/v1/sites/blog/queue").status_code == 401
    commenter = {"Authorization": f"Bearer {token('bob')}"}
    refused = get(client, commenter)
    assert refused.status_code == 403
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    other_site = {"Authorization": f"Bearer {token('m', roles=['commentguard:other:moderator'])}"}
    assert get(client, other_site).status_code == 403
    missing = client.get("/v1/sites/nowhere/queue", headers=moderator)
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"
