"""Two Akismet checks of one new author at once, from two transactions: the second's
single statement (author, comment, verdict) inserts nothing while the first's author is
uncommitted, then finds the author and writes its comment with the count moved."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, Status, Verdict
from service.classifier.model import load_classifier
from service.moderation.active import LoadedClassifier
from service.moderation.akismet import AkismetComment, Check, check_comment
from service.moderation.policy import SitePolicy
from service.moderation.sites import SiteInfo, create_site
from tests.support.akismet import BLOG, NEVER_BY_SCORE
from tests.support.wait import wait_until


def test_two_first_checks_of_a_new_author_make_one_author_counted_twice(
    committed: sessionmaker[Session],
) -> None:
    with committed.begin() as session:
        site = SiteInfo.of(
            create_site(
                session, slug="blog", name="B", url=BLOG, policy=SitePolicy(**NEVER_BY_SCORE)
            )
        )
    classifier = LoadedClassifier(load_classifier(None), None)
    email = f"new-{uuid.uuid4().hex}@example.org"

    def check(session: Session, content: str) -> Check:
        data = AkismetComment(
            user_ip="203.0.113.9", comment_content=content, comment_author_email=email
        )
        return check_comment(
            session, site=site, data=data, classifier=classifier, now=dt.datetime.now(dt.UTC)
        )

    second: dict[str, Check | BaseException] = {}

    def check_second() -> None:
        try:
            with committed.begin() as session:
                second["check"] = check(session, "the second comment")
        except BaseException as exc:  # reported by the assertion below
            second["error"] = exc

    def waiting_on_a_lock() -> bool:
        with committed() as watcher:
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%first_author%'"
                )
            )
        return bool(waiting)

    with committed() as first_session:
        with first_session.begin():
            first = check(first_session, "the first comment")
            thread = threading.Thread(target=check_second)
            thread.start()
            wait_until(
                waiting_on_a_lock,
                timeout=10,
                message="the second check to wait on the first's author",
            )
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert "error" not in second, second.get("error")
    later = second["check"]
    assert isinstance(later, Check)

    with committed() as session:
        (author,) = session.scalars(select(Author).where(Author.subject == f"email:{email}"))
        comments = session.execute(
            select(Comment.id, Comment.author_id, Comment.status).where(
                Comment.id.in_([first.guid, later.guid])
            )
        ).all()
        verdicts = session.scalars(select(Verdict.comment_id)).all()
    assert {(c.author_id, c.status) for c in comments} == {(author.id, Status.approved)}
    assert len(comments) == 2
    assert sorted(verdicts) == sorted([first.guid, later.guid])
    assert (author.approved_count, author.spam_count) == (2, 0)
