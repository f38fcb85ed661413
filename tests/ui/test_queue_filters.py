"""The queue's thread filter (the UI's and the API's, one domain function), and what the
UI's queue page pages and filters."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models import Site
from service.moderation.errors import InvalidInput
from service.moderation.queue import MAX_THREAD_LENGTH, queue_query
from tests.api.conftest import TokenFactory
from tests.support.queue import add_comment
from tests.ui.conftest import dev_login


def test_the_api_filters_by_thread_and_pages_within_it(
    client: FlaskClient, db_session: Session, site: Site, token: TokenFactory
) -> None:
    here = [add_comment(db_session, site, thread="/posts/a b", minutes=i) for i in range(3)]
    add_comment(db_session, site, thread="/posts/other")
    headers = {"Authorization": f"Bearer {token('mod', roles=['commentguard:blog:moderator'])}"}
    first = client.get(
        "/v1/sites/blog/queue",
        query_string={"thread": "/posts/a b", "limit": 2, "sort": "created"},
        headers=headers,
    ).get_json()
    assert [i["id"] for i in first["items"]] == [str(c.id) for c in here[:2]]
    assert "thread=%2Fposts%2Fa+b" in first["links"]["next"]
    second = client.get(first["links"]["next"], headers=headers).get_json()
    assert [i["id"] for i in second["items"]] == [str(here[2].id)]
    # A cursor belongs to its thread.
    crossed = client.get(
        "/v1/sites/blog/queue",
        query_string={"thread": "/posts/other", "cursor": first["next_cursor"], "sort": "created"},
        headers=headers,
    )
    assert crossed.status_code == 422
    # Without the filter, cursors made before it existed still hold (the scope is unchanged).
    plain = client.get(
        "/v1/sites/blog/queue", query_string={"limit": 1}, headers=headers
    ).get_json()
    again = client.get(plain["links"]["next"], headers=headers)
    assert again.status_code == 200


def test_a_thread_filter_is_validated() -> None:
    for bad in ("x" * (MAX_THREAD_LENGTH + 1), "a\x00b"):
        with pytest.raises(InvalidInput) as refused:
            queue_query(
                status=None, sort=None, q=None, author=None, limit=None, cursor=None, thread=bad
            )
        assert [e.field for e in refused.value.errors] == ["thread"]
    blank = queue_query(
        status=None, sort=None, q=None, author=None, limit=None, cursor=None, thread=""
    )
    assert blank.thread is None


def test_the_queue_page_filters_by_thread_and_author_and_pages(
    client: FlaskClient, db_session: Session, site: Site
) -> None:
    bobs = [
        add_comment(db_session, site, subject="bob", thread="/t/1", minutes=i) for i in range(30)
    ]
    carol = add_comment(db_session, site, subject="carol", thread="/t/2", minutes=40)
    dev_login(client)

    def ids(page: str) -> list[str]:
        return re.findall(r'<li class="comment" id="c-([0-9a-f-]+)"', page)

    newest = client.get("/ui/blog/queue").text
    assert ids(newest)[0] == str(carol.id)
    assert len(ids(newest)) == 25
    following = re.search(r'href="([^"]+)" rel="next"', newest)
    assert following is not None
    rest = client.get(following.group(1).replace("&amp;", "&")).text
    assert len(ids(rest)) == 6
    assert set(ids(newest)).isdisjoint(ids(rest))

    by_thread = client.get("/ui/blog/queue", query_string={"thread": "/t/2"}).text
    assert ids(by_thread) == [str(carol.id)]
    by_author = client.get("/ui/blog/queue", query_string={"author": bobs[0].author_id}).text
    assert str(carol.id) not in ids(by_author)
    assert len(ids(by_author)) == 25
    oldest = client.get("/ui/blog/queue", query_string={"sort": "created"}).text
    assert ids(oldest)[0] == str(bobs[0].id)
    bad = client.get("/ui/blog/queue", query_string={"author": "x", "status": "nope"})
    assert bad.status_code == 422
    assert "author" in bad.text
    assert "status" in bad.text
