"""The first comments of one new author, submitted at once from two transactions: both
are accepted, under one author row (``INSERT ... ON CONFLICT DO NOTHING`` waits for the
other transaction's uncommitted author, then finds it)."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment
from service.moderation.sites import SiteInfo
from tests.support.comments import make_site, submit_text
from tests.support.wait import wait_until


def test_two_first_comments_of_a_new_author_make_one_author(
    committed: sessionmaker[Session],
) -> None:
    with committed.begin() as session:
        site = SiteInfo.of(make_site(session))
    subject = f"new-{uuid.uuid4().hex}"
    second: dict[str, uuid.UUID | BaseException] = {}

    def submit_second() -> None:
        try:
            with committed.begin() as session:
                second["id"] = submit_text(session, site, subject, "the second comment")
        except BaseException as exc:  # reported by the assertion below
            second["error"] = exc

    def waiting_on_a_lock() -> bool:
        # A new transaction each time: pg_stat_activity is read once per transaction.
        with committed() as watcher:
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO authors%'"
                )
            )
        return bool(waiting)

    with committed() as first:
        with first.begin():
            first_id = submit_text(first, site, subject, "the first comment")
            thread = threading.Thread(target=submit_second)
            thread.start()
            # The second transaction sees no author yet, inserts one, and waits on the
            # first's uncommitted row for the same (site, issuer, subject).
            wait_until(
                waiting_on_a_lock,
                timeout=10,
                message="the second submission to wait on the first's author",
            )
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert "error" not in second, second.get("error")

    with committed() as session:
        authors = session.scalars(
            select(Author.id).where(Author.site_id == site.id, Author.subject == subject)
        ).all()
        assert len(authors) == 1
        owners = session.execute(
            select(Comment.id, Comment.author_id).where(Comment.id.in_([first_id, second["id"]]))
        ).all()
        assert {author for _, author in owners} == {authors[0]}
        assert len(owners) == 2
