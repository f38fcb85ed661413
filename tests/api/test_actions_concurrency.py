"""Two moderators act on the same comment at the same moment, on real committed
transactions (each request its own connection): exactly one wins, the other gets 412,
and the audit trail shows one action."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import AuditEntry, Author, Comment, Label, Status
from service.app import create_app
from service.auth.dev_issuer import DEV_ISSUER, mint_dev_token
from service.settings import Settings
from tests.support.comments import make_site

ROUNDS = 5


@pytest.fixture
def real_app(api_settings: Settings, committed: sessionmaker[Session]) -> Flask:
    """The API on the run's real sessionmaker: every request commits for real."""
    return create_app(api_settings, sessions=committed)


def _held_comments(
    committed: sessionmaker[Session], text: str, count: int
) -> tuple[str, int, list[uuid.UUID]]:
    """A new site, one author and ``count`` held comments, committed: (slug, author id, ids)."""
    with committed.begin() as session:
        site = make_site(session)
        author = Author(site_id=site.id, issuer=DEV_ISSUER, subject="alice")
        session.add(author)
        session.flush()
        comments = [
            Comment(
                site_id=site.id,
                thread="/t",
                author_id=author.id,
                content=f"{text} {n}",
                content_hash=f"{n:064x}",
                status=Status.held,
            )
            for n in range(count)
        ]
        session.add_all(comments)
        session.flush()
        return site.slug, author.id, [c.id for c in comments]


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        results[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("actions", [("approve", "spam"), ("spam", "spam"), ("trash", "approve")])
def test_two_moderators_at_once_one_wins_the_other_gets_412(
    real_app: Flask,
    committed: sessionmaker[Session],
    api_settings: Settings,
    actions: tuple[str, str],
) -> None:
    slug, author_id, ids = _held_comments(committed, "Held comment", ROUNDS)
    tokens = [
        mint_dev_token(
            api_settings, subject=name, site=slug, roles=[f"commentguard:{slug}:moderator"]
        )
        for name in ("mod-1", "mod-2")
    ]

    def call(token: str, comment_id: object, action: str) -> Callable[[], Any]:
        def post() -> Any:
            # A client per thread: each request runs its own transaction on its own connection.
            with real_app.test_client() as client:
                response = client.post(
                    f"/v1/comments/{comment_id}/actions",
                    json={"action": action},
                    headers={"Authorization": f"Bearer {token}", "If-Match": '"v1"'},
                )
                return response.status_code, response.headers.get("ETag"), response.get_json()

        return post

    for comment_id in ids:
        results = _race([call(tokens[n], comment_id, actions[n]) for n in range(2)])
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [200, 412], results
        winner = next(body for status, _, body in results if status == 200)
        loser_etag = next(etag for status, etag, _ in results if status == 412)
        assert loser_etag == '"v2"'

        with committed() as session:
            comment = session.get_one(Comment, comment_id)
            entries = session.scalars(
                select(AuditEntry).where(AuditEntry.comment_id == comment_id)
            ).all()
            labels = session.scalars(select(Label).where(Label.comment_id == comment_id)).all()
        assert comment.version == 2
        assert comment.status.value == winner["status"]
        assert len(entries) == 1
        assert entries[0].to_state == winner["status"]
        assert len(labels) == (1 if winner["action"]["label"] else 0)

    with committed() as session:
        author_row = session.get_one(Author, author_id)
        final = session.scalars(select(Comment.status).where(Comment.id.in_(ids))).all()
    assert author_row.approved_count == final.count(Status.approved)
    assert author_row.spam_count == final.count(Status.spam)


def test_two_bulk_actions_at_once_act_once_on_each_comment(
    real_app: Flask, committed: sessionmaker[Session], api_settings: Settings
) -> None:
    slug, _, held = _held_comments(committed, "Bulk comment", 200)
    ids = [str(i) for i in held]
    token = mint_dev_token(
        api_settings, subject="mod", site=slug, roles=[f"commentguard:{slug}:moderator"]
    )

    def call(order: list[str], action: str) -> Callable[[], Any]:
        def post() -> Any:
            with real_app.test_client() as client:
                items = [{"id": i, "version": 1} for i in order]
                response = client.post(
                    f"/v1/sites/{slug}/actions",
                    json={"action": action, "items": items},
                    headers={"Authorization": f"Bearer {token}"},
                )
                return response.status_code, response.get_json()

        return post

    # Opposite orders: a naive implementation would deadlock here.
    results = _race([call(ids, "spam"), call(ids[::-1], "approve")])
    assert [status for status, _ in results] == [200, 200]
    oks = [body["counts"].get("ok", 0) for _, body in results]
    conflicts = [body["counts"].get("conflict", 0) for _, body in results]
    assert sum(oks) == len(ids)
    assert sum(conflicts) == len(ids)
    with committed() as session:
        entries = session.scalars(select(AuditEntry.comment_id)).all()
    assert len(entries) == len(set(entries)) == len(ids)
