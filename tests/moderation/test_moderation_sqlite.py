"""The embedded default (``make run``, SQLite) runs the same moderation code: actions in
bulk (row values, RETURNING), restore from the audit trail, labels, the audit pages and
rules changes write the same rows as on PostgreSQL."""

from __future__ import annotations

import secrets
from pathlib import Path

from alembic import command
from pydantic import SecretStr
from sqlalchemy import select

from models import Author, Comment, Label, Status
from service.db import make_engine, make_sessionmaker
from service.moderation.actions import Action, Item, Outcome, act_on_comments
from service.moderation.audit import list_audit
from service.moderation.rules import change_rules, read_rules
from service.moderation.sites import create_site
from service.moderation.types import Identity
from service.settings import Settings
from tests.conftest import alembic_config

MODERATOR = Identity(issuer="https://issuer.test", subject="mod", roles=frozenset({"moderator"}))


def test_actions_audit_and_rules_on_sqlite(tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'cg.db'}",
        secret_key=SecretStr(secrets.token_urlsafe(36)),
    )
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        site = create_site(session, slug="demo", name="Demo", url="https://demo.test")
        author = Author(site_id=site.id, issuer="https://issuer.test", subject="alice")
        session.add(author)
        session.flush()
        comments = [
            Comment(
                site_id=site.id,
                thread="/p/1",
                author_id=author.id,
                content=f"Comment {n}",
                content_hash=f"{n:064x}",
                status=status,
            )
            for n, status in enumerate((Status.held, Status.spam, Status.approved))
        ]
        session.add_all(comments)
        session.flush()
        site_id, author_id = site.id, author.id
        ids = [c.id for c in comments]

    def act(action: Action, items: list[Item]) -> list[Outcome]:
        with sessions.begin() as session:
            results = act_on_comments(
                session, site_id=site_id, items=items, actor=MODERATOR, action=action, note="n"
            )
        return [r.outcome for r in results]

    assert act(Action.approve, [Item(ids[0], 1), Item(ids[1], 2), Item(ids[2])]) == [
        Outcome.ok,
        Outcome.conflict,
        Outcome.invalid_transition,
    ]
    assert act(Action.trash, [Item(i) for i in ids]) == [Outcome.ok] * 3
    assert act(Action.restore, [Item(i) for i in ids]) == [Outcome.ok] * 3
    with sessions() as session:
        statuses = [session.get_one(Comment, i).status for i in ids]
        labels = session.scalars(select(Label.label)).all()
        counted = session.get_one(Author, author_id)
        first = list_audit(session, site_id=site_id, limit=4)
        assert first.next_cursor is not None
        rest = list_audit(session, site_id=site_id, limit=4, cursor=first.next_cursor)
    assert statuses == [Status.approved, Status.spam, Status.approved]
    assert [label.value for label in labels] == ["ham"]
    assert (counted.approved_count, counted.spam_count) == (2, 1)
    assert [e.action for e in first.entries + rest.entries] == ["restore"] * 3 + ["trash"] * 3 + [
        "approve"
    ]
    assert rest.next_cursor is None

    with sessions.begin() as session:
        etag = read_rules(session, site_id=site_id).etag
        changed = change_rules(
            session,
            site_id=site_id,
            changes={"moderation_patterns": [r"bit\.ly/\w+"]},
            replace=False,
            actor=MODERATOR,
            expected_etags=frozenset({etag}),
        )
    assert changed.policy.moderation_patterns == [r"bit\.ly/\w+"]
    assert changed.etag != etag
