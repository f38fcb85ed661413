"""Classifying one comment on PostgreSQL: what the verdict's transaction promises."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from models import Status
from service.classifier.model import load_classifier
from service.moderation.active import LoadedClassifier
from service.moderation.classify import classify_comment
from tests.support.comments import make_site, submit_comments


def test_a_verdict_commits_without_waiting_for_the_disk_and_nothing_else_does(
    committed: sessionmaker[Session],
) -> None:
    # A verdict lost in a crash is scored again (its comment stays pending, its outbox row
    # open), so its transaction need not wait for the WAL flush; the acceptance, which a
    # 202 promised, must.
    with committed.begin() as session:
        site = make_site(session)
        [comment_id] = submit_comments(session, site, 1, outbox_timeout=dt.timedelta(seconds=60))
        assert session.scalar(text("SHOW synchronous_commit")) == "on"
    with committed.begin() as session:
        decided = classify_comment(
            session, comment_id=comment_id, classifier=LoadedClassifier(load_classifier(), None)
        )
        assert decided is not None
        assert decided.decision in {Status.approved, Status.held, Status.spam}
        assert session.scalar(text("SHOW synchronous_commit")) == "off"
    # SET LOCAL: whatever runs next on the connection is durable again.
    with committed.begin() as session:
        assert session.scalar(text("SHOW synchronous_commit")) == "on"
