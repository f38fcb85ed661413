"""The embedded default (``make run``) runs the same domain code on SQLite: accepting and
classifying a comment there writes the same rows as on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, OutboxTask, Status, Verdict
from service.db import make_engine, make_sessionmaker
from service.moderation.active import ClassifierProvider
from service.moderation.classify import classify_comment, classify_comments
from service.moderation.errors import Conflict
from service.moderation.policy import SitePolicy
from service.moderation.sites import SiteInfo, create_site
from service.moderation.submit import Accepted, CommentInput, submit_comment
from service.moderation.types import Identity
from service.settings import Settings
from tests.conftest import alembic_config


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions of a fresh, migrated SQLite database, as ``make run`` makes it."""
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'cg.db'}",
        secret_key=SecretStr(secrets.token_urlsafe(36)),
    )
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_submit_and_classify_on_sqlite(sqlite_sessions: sessionmaker[Session]) -> None:
    now = dt.datetime.now(dt.UTC)
    reader = Identity(issuer="https://issuer.test", subject="alice", name="Alice")

    with sqlite_sessions.begin() as session:
        site = SiteInfo.of(
            create_site(
                session,
                slug="demo",
                name="Demo",
                url="https://demo.test",
                policy=SitePolicy(hold_threshold=0.3, spam_threshold=0.9, moderation_words=["tea"]),
            )
        )

    def submit(content: str, key: str | None, request_hash: str) -> Accepted:
        with sqlite_sessions.begin() as session:
            return submit_comment(
                session,
                site=site,
                identity=reader,
                data=CommentInput(thread="/p/1", content=content),
                idempotency_key=key,
                request_hash=request_hash,
                now=now,
                outbox_timeout=dt.timedelta(seconds=60),
            )

    accepted = submit("I had tea while reading this. Thanks!", "k1", "h1")
    assert accepted.author_name == "Alice"
    again = submit("I had tea while reading this. Thanks!", "k1", "h1")
    assert again.replayed
    assert again.id == accepted.id
    with pytest.raises(Conflict):
        submit("i had TEA while reading this.  thanks!", None, "h2")

    classifier = ClassifierProvider(None).get()
    with sqlite_sessions.begin() as session:
        decided = classify_comment(session, comment_id=accepted.id, classifier=classifier)
    assert decided is not None
    assert decided.decision is Status.held  # the moderation word
    with sqlite_sessions.begin() as session:
        assert classify_comment(session, comment_id=accepted.id, classifier=classifier) is None

    with sqlite_sessions() as session:
        comment = session.get_one(Comment, accepted.id)
        assert comment.status is Status.held
        assert comment.version == 2
        assert comment.score == decided.score
        verdicts = session.scalars(select(Verdict).where(Verdict.comment_id == accepted.id)).all()
        assert [v.decision for v in verdicts] == ["held"]
        assert verdicts[0].reasons[-1]["feature"] == "rule:moderation:tea"
        assert session.scalar(select(func.count()).where(OutboxTask.done_at.is_(None))) == 0
        author = session.scalars(select(Author)).one()
        assert (author.approved_count, author.spam_count) == (0, 0)


def test_a_batch_is_classified_on_sqlite_as_one_at_a_time(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    now = dt.datetime.now(dt.UTC)
    texts = [
        "Thanks, this explained connection pooling better than the docs did.",
        "Could you cover retries and visibility timeouts in the next post?",
        "BUY CHEAP FOLLOWERS NOW!!! http://cheap-followers.example/promo best prices",
    ]
    with sqlite_sessions.begin() as session:
        site = SiteInfo.of(
            create_site(
                session,
                slug="demo",
                name="Demo",
                url="https://demo.test",
                policy=SitePolicy(flood_limit_per_minute=0, approve_known_authors=True),
            )
        )
        ids = [
            submit_comment(
                session,
                site=site,
                identity=Identity(issuer="https://issuer.test", subject="alice"),
                data=CommentInput(thread="/p/1", content=text),
                idempotency_key=None,
                request_hash=None,
                now=now,
                outbox_timeout=dt.timedelta(seconds=60),
            ).id
            for text in texts
        ]
    classifier = ClassifierProvider(None).get()

    with sqlite_sessions.begin() as session:
        decided = classify_comments(
            session, comment_ids=[*ids, uuid.uuid4(), ids[0]], classifier=classifier
        )

    assert [d.comment_id for d in decided] == ids
    with sqlite_sessions() as session:
        for verdict in decided:
            assert session.get_one(Comment, verdict.comment_id).status is verdict.decision
        assert session.scalar(select(func.count()).select_from(Verdict)) == len(ids)
        assert session.scalar(select(func.count()).where(OutboxTask.done_at.is_(None))) == 0
        author = session.scalars(select(Author)).one()
        assert author.approved_count == sum(d.decision is Status.approved for d in decided)
        assert author.spam_count == sum(d.decision is Status.spam for d in decided)
    with sqlite_sessions.begin() as session:
        assert classify_comments(session, comment_ids=ids, classifier=classifier) == []
