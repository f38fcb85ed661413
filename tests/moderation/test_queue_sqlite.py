"""The queue and the thread view on the embedded SQLite database (``make run``): the same
pages, orders, counts (kept by SQLite triggers) and search (LIKE) as on PostgreSQL,
including comments timed by the database's own clock (text without a fraction)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from pydantic import SecretStr
from sqlalchemy import delete, text, update
from sqlalchemy.orm import Session

from models import Comment, Site, Status
from service.db import make_engine, make_sessionmaker
from service.moderation.cursors import cursor_key
from service.moderation.errors import InvalidInput
from service.moderation.queue import QueueQuery, QueueSort, queue_page
from service.moderation.sites import create_site
from service.moderation.threads import thread_page
from service.settings import Settings
from tests.conftest import alembic_config
from tests.support.queue import add_comment

KEY = cursor_key("sqlite-test-secret")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'cg.db'}",
        secret_key=SecretStr(secrets.token_urlsafe(36)),
    )
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def site(session: Session) -> Site:
    return create_site(session, slug="demo", name="Demo", url="https://demo.test")


def walk(session: Session, site: Site, **query: object) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = queue_page(
            session,
            site_id=site.id,
            query=QueueQuery(limit=2, cursor=cursor, **query),  # type: ignore[arg-type]
            cursor_key=KEY,
        )
        ids += [str(i.id) for i in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", list(QueueSort))
def test_every_sort_pages_through_in_order(session: Session, site: Site, sort: QueueSort) -> None:
    scores = [0.9, None, 0.2, 0.2, 0.6, None, 0.9]
    comments = [add_comment(session, site, score=s, minutes=i // 2) for i, s in enumerate(scores)]
    # Two more timed by SQLite's CURRENT_TIMESTAMP ("YYYY-MM-DD HH:MM:SS", no fraction),
    # in the same second, as the API's inserts are.
    for _ in range(2):
        session.execute(
            text(
                "INSERT INTO comments (id, site_id, thread, author_id, content, content_hash,"
                " status, score, extra) VALUES (:id, :site, '/t', :author, 'db clock', 'h',"
                " 'held', 0.5, '{}')"
            ),
            {"id": secrets.token_hex(16), "site": site.id, "author": comments[0].author_id},
        )
    everything = walk(session, site, sort=sort)
    assert len(everything) == len(set(everything)) == len(scores) + 2
    one_page = queue_page(
        session, site_id=site.id, query=QueueQuery(sort=sort, limit=50), cursor_key=KEY
    )
    assert [str(i.id) for i in one_page.items] == everything
    if sort in (QueueSort.score, QueueSort.score_desc):
        assert [i.score for i in one_page.items][-2:] == [None, None]


def test_search_counts_and_thread_view(session: Session, site: Site) -> None:
    pills = add_comment(session, site, content="Cheap PILLS here")
    add_comment(session, site, content="100% sure_thing", minutes=1)
    add_comment(session, site, content="nothing to see", minutes=2)
    assert walk(session, site, q="pills cheap") == [str(pills.id)]
    # LIKE wildcards in the search are literal characters.
    assert len(walk(session, site, q="100%")) == 1
    assert walk(session, site, q="_") == walk(session, site, q="sure_")

    session.execute(update(Comment).where(Comment.id == pills.id).values(status=Status.spam))
    session.execute(delete(Comment).where(Comment.content == "nothing to see"))
    counts = queue_page(session, site_id=site.id, query=QueueQuery(), cursor_key=KEY).counts
    assert counts == {"pending": 0, "approved": 0, "held": 1, "spam": 1, "trash": 0}

    top = add_comment(session, site, status=Status.approved, thread="/p", minutes=5)
    add_comment(session, site, status=Status.approved, thread="/p", minutes=6, parent=top.id)
    add_comment(session, site, status=Status.approved, thread="/p", minutes=7)
    first = thread_page(session, site_id=site.id, thread="/p", limit=1, cursor=None, cursor_key=KEY)
    assert [len(c.replies) for c in first.comments] == [1]
    second = thread_page(
        session, site_id=site.id, thread="/p", limit=1, cursor=first.next_cursor, cursor_key=KEY
    )
    assert second.next_cursor is None
    assert [c.id for c in second.comments] != [top.id]
    with pytest.raises(InvalidInput):
        thread_page(
            session, site_id=site.id, thread="/q", limit=1, cursor=first.next_cursor, cursor_key=KEY
        )
