"""The first comments of one new author, submitted at once from two transactions: both
are accepted, under one author row (``INSERT ... ON CONFLICT DO NOTHING`` waits for the
other transaction's uncommitted author, then finds it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment
from service.moderation.sites import SiteInfo
from service.moderation.submit import CommentInput, submit_comment
from service.moderation.types import Identity
from tests.support.comments import ISSUER, make_site
from tests.support.wait import wait_until


def _submit(session: Session, site: SiteInfo, identity: Identity, content: str) -> uuid.UUID:
    return submit_comment(
        session,
        site=site,
        identity=identity,
        data=CommentInput(thread="/post/1", content=content),
        idempotency_key=None,
        request_hash=hashlib.sha256(content.encode()).hexdigest(),
        now=dt.datetime.now(dt.UTC),
        outbox_timeout=dt.timedelta(minutes=5),
    ).id


def test_two_first_comments_of_a_new_author_make_one_author(
    committed: sessionmaker[Session],
) -> None:
    with committed.begin() as session:
        site = SiteInfo.of(make_site(session))
    identity = Identity(issuer=ISSUER, subject=f"new-{uuid.uuid4().hex}")
    second: dict[str, uuid.UUID | BaseException] = {}

    def submit_second() -> None:
        try:
            with committed.begin() as session:
                second["id"] = _submit(session, site, identity, "the second comment")
        except BaseException as exc:  # reported by the assertion below
            second["error"] = exc

    def waiting_on_a_lock() -> bool:
        # A new transaction each time: pg_stat_activity is read once per transaction.
        with committed() as watcher:
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO authors%'"
                )
            )
        return bool(waiting)

    with committed() as first:
        with first.begin():
            first_id = _submit(first, site, identity, "the first comment")
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
            select(Author.id).where(Author.site_id == site.id, Author.subject == identity.subject)
        ).all()
        assert len(authors) == 1
        owners = session.execute(
            select(Comment.id, Comment.author_id).where(Comment.id.in_([first_id, second["id"]]))
        ).all()
        assert {author for _, author in owners} == {authors[0]}
        assert len(owners) == 2
