"""The Akismet API's decisions reach the site's webhooks, as the worker's and moderators'
do: a comment-check is a ``comment.classified`` event, a submit-spam or submit-ham that
moves a comment a ``comment.moderated`` one, each written in the transaction of what it
reports and sent after its commit. Real PostgreSQL, Redis, Celery worker (with its beat)
and an HTTP receiver on 127.0.0.1, the site allowing private targets; the embedded
default (SQLite, the kombu SQLAlchemy broker) with a worker of its own.

The API's lease is 600 s (its outbox timeout) in the delivery tests, so the sweeper
cannot be what delivers within their waits: the request's own send is."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, DeliveryState, Site, Verdict, WebhookDelivery, WebhookEvent
from service.app import create_app
from service.auth.api_keys import API_KEY_ISSUER, create_api_key
from service.db import make_engine, make_sessionmaker
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.settings import Settings
from service.webhooks.signature import verify
from tests.conftest import alembic_config
from tests.support.akismet import BLOG, NEVER_BY_SCORE
from tests.support.env import settings_env
from tests.support.receiver import Received, Receiver, running_receiver
from tests.support.wait import wait_until
from tests.support.webhooks import add_hook, deliveries_of
from tests.support.worker import CeleryWorker

CHECK = "/1.1/comment-check"
#: The API's outbox timeout in these tests: its deliveries are due for the sweeper
#: 600 s (plus the attempt's timeout) after they are written.
LONG_LEASE = {"outbox_timeout_seconds": 600}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def app(api_settings: Settings, committed: sessionmaker[Session]) -> Flask:
    """The API on the run's committed database (its requests run as in production:
    without BEGIN where they may) and broker, with a lease the sweeper cannot beat."""
    return create_app(api_settings.model_copy(update=LONG_LEASE), sessions=committed)


def _site(session: Session, slug: str) -> tuple[Site, str]:
    """A site at ``BLOG`` (a blocked word is spam, a moderation word held, nothing by
    score) and an API key of it."""
    site = create_site(
        session,
        slug=slug,
        name="A blog",
        url=BLOG,
        policy=SitePolicy(
            **NEVER_BY_SCORE,
            blocked_words=["casino"],
            moderation_words=["crypto"],
            flood_limit_per_minute=0,
        ),
    )
    return site, create_api_key(session, site_slug=slug, name="WordPress")[1]


def _hooked(
    session: Session,
    slug: str,
    url: str,
    *,
    events: tuple[WebhookEvent, ...] = tuple(WebhookEvent),
) -> tuple[str, uuid.UUID, str]:
    """A site as :func:`_site` with a webhook at ``url``: the key, the hook's id and its
    secret."""
    site, key = _site(session, slug)
    made = add_hook(session, site, url, events=events)
    return key, made.webhook.id, made.secret


def _form(key: str, **fields: str) -> dict[str, str]:
    return {
        "api_key": key,
        "blog": BLOG,
        "user_ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "comment_type": "comment",
        "comment_author": "Dana",
        "comment_author_email": "dana@example.org",
        "comment_content": "Thanks, this helped me a lot.",
        "permalink": f"{BLOG}/posts/1",
        **fields,
    }


def _body(received: Received | WebhookDelivery) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


def _deliveries(committed: sessionmaker[Session], hook_id: uuid.UUID) -> list[WebhookDelivery]:
    with committed() as session:
        return deliveries_of(session, hook_id)


def _settled(committed: sessionmaker[Session], hook_id: uuid.UUID) -> list[WebhookDelivery]:
    def done() -> list[WebhookDelivery] | None:
        rows = _deliveries(committed, hook_id)
        return rows if rows and all(r.state is not DeliveryState.pending for r in rows) else None

    return wait_until(done, timeout=30, interval=0.1, message="the deliveries to settle")


def _count(committed: sessionmaker[Session], model: Any) -> int:
    with committed() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def writes(engine: Engine) -> Iterator[list[tuple[str, str, bool]]]:
    """Each write the engine sends: its first word, the table it names first, and
    whether its connection was in autocommit (no BEGIN before it)."""
    seen: list[tuple[str, str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        first = words[0].upper() if words else ""
        if first in ("INSERT", "UPDATE", "WITH"):
            # INSERT INTO <table>; UPDATE <table>; WITH <first CTE>.
            named = words[2] if first == "INSERT" else words[1]
            seen.append((first, named, bool(cursor.connection.autocommit)))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_check_is_delivered_signed_at_once_as_the_workers_verdicts_are(
    app: Flask,
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    receiver: Receiver,
) -> None:
    with committed.begin() as session:
        key, hook_id, secret = _hooked(session, "hooked", receiver.url("/in"))

    answer = app.test_client().post(CHECK, data=_form(key, comment_content="Best casino bonus"))

    assert answer.text == "true"
    guid = answer.headers["X-akismet-guid"]
    [request] = receiver.wait_for(1, timeout=20)
    verify(request.body, request.headers["Commentguard-Signature"], secret)
    body = _body(request)
    assert request.headers["Commentguard-Event"] == "comment.classified" == body["type"]
    assert request.headers["Commentguard-Event-Id"] == body["id"]
    assert body["site"] == "hooked"
    with committed() as session:
        verdict = session.scalars(
            select(Verdict).where(Verdict.comment_id == uuid.UUID(guid))
        ).one()
        comment = session.get_one(Comment, uuid.UUID(guid))
    # The worker's shape, field for field; the verdict as stored; where it was decided.
    assert body["data"] == {
        "comment": {
            "id": guid,
            "thread": f"{BLOG}/posts/1",
            "status": "spam",
            "previous_status": "pending",
            "discard": False,
            "version": comment.version,
        },
        "verdict": {
            "decision": "spam",
            "score": verdict.score,
            "discard": False,
            "reasons": verdict.reasons,
            "classifier_version": verdict.classifier_version,
            "rescore": False,
            "source": "akismet",
        },
    }
    assert comment.version == 1
    assert verdict.reasons[-1]["feature"] == "rule:blocked:casino"
    [row] = _settled(committed, hook_id)
    assert (row.state, row.attempts, row.last_status_code) == (DeliveryState.delivered, 1, 200)
    assert request.headers["Commentguard-Delivery"] == str(row.id)


def test_a_test_check_and_a_duplicate_deliver_nothing(
    app: Flask,
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    receiver: Receiver,
) -> None:
    with committed.begin() as session:
        key, hook_id, _ = _hooked(session, "hooked", receiver.url())
    client = app.test_client()

    first = client.post(CHECK, data=_form(key, comment_content="I liked the crypto part"))
    again = client.post(CHECK, data=_form(key, comment_content="I liked the crypto part"))
    test = client.post(CHECK, data=_form(key, comment_content="Another text", is_test="1"))

    assert first.headers["X-Commentguard-Status"] == "held"
    assert again.headers["X-akismet-guid"] == first.headers["X-akismet-guid"]
    assert test.text == "false"
    # The deliveries are written with what they report: none for the last two.
    [row] = _deliveries(committed, hook_id)
    assert _body(row)["data"]["comment"]["id"] == first.headers["X-akismet-guid"]
    _settled(committed, hook_id)
    assert [_body(r)["id"] for r in receiver.received] == [_body(row)["id"]]
    assert _count(committed, Comment) == 1


def test_submit_spam_and_ham_deliver_the_moves_at_once(
    app: Flask,
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    receiver: Receiver,
) -> None:
    with committed.begin() as session:
        key, hook_id, secret = _hooked(
            session, "hooked", receiver.url(), events=(WebhookEvent.moderated,)
        )
    prefix = key.split("_")[1]
    client = app.test_client()
    checked = client.post(CHECK, data=_form(key, comment_content="I sell cheap watches"))
    guid = checked.headers["X-akismet-guid"]
    assert checked.headers["X-Commentguard-Status"] == "approved"
    # The hook takes moderators' actions only: the check itself wrote no delivery.
    assert _deliveries(committed, hook_id) == []

    spam = client.post("/1.1/submit-spam", data=_form(key, guid=guid))
    [first] = receiver.wait_for(1, timeout=20)
    ham = client.post("/1.1/submit-ham", data=_form(key, guid=guid))
    second = receiver.wait_for(2, timeout=20)[1]

    assert spam.text == ham.text == "Thanks for making the web a better place."
    for request in (first, second):
        verify(request.body, request.headers["Commentguard-Signature"], secret)
        assert request.headers["Commentguard-Event"] == "comment.moderated"
    moves = [
        (
            _body(r)["data"]["comment"]["id"],
            _body(r)["data"]["action"]["action"],
            _body(r)["data"]["action"]["from"],
            _body(r)["data"]["action"]["to"],
            _body(r)["data"]["action"]["label"],
            _body(r)["data"]["action"]["note"],
            _body(r)["data"]["action"]["actor"],
        )
        for r in (first, second)
    ]
    actor = {"issuer": API_KEY_ISSUER, "subject": prefix}
    assert moves == [
        (guid, "spam", "approved", "spam", "spam", "Akismet submit-spam", actor),
        (guid, "ham", "spam", "approved", "ham", "Akismet submit-ham", actor),
    ]
    # A report on a comment that has that status already moves nothing: no event.
    client.post("/1.1/submit-ham", data=_form(key, guid=guid))
    assert len(_deliveries(committed, hook_id)) == 2


def test_a_site_without_hooks_keeps_its_one_autocommitted_statement(
    app: Flask,
    committed: sessionmaker[Session],
    receiver: Receiver,
    writes: list[tuple[str, str, bool]],
) -> None:
    with committed.begin() as session:
        hooked_key = _hooked(session, "hooked", receiver.url())[0]
        # Hooks, but none that takes this event: no delivery to write.
        other, other_key = _site(session, "other")
        add_hook(session, other, receiver.url("/moderated"), events=[WebhookEvent.moderated])
        add_hook(session, other, receiver.url("/off"), enabled=False)
        plain_key = _site(session, "plain")[1]
    client = app.test_client()
    for key in (hooked_key, other_key, plain_key):
        # The key's last use, written now, is no write of the checks below.
        assert client.post("/1.1/verify-key", data={"key": key, "blog": BLOG}).text == "valid"
    writes.clear()

    for key in (plain_key, other_key):
        # A new author's first comment, then a known author's.
        client.post(CHECK, data=_form(key, comment_content="First words"))
        client.post(CHECK, data=_form(key, comment_content="Second words"))
    fast = list(writes)
    writes.clear()
    client.post(CHECK, data=_form(hooked_key, comment_content="First words"))
    client.post(CHECK, data=_form(hooked_key, comment_content="Second words"))

    assert fast == [("WITH", "first_author", True), ("WITH", "new_comment", True)] * 2
    # With a hook: the same statement, then the delivery's, in one transaction.
    assert writes == [
        ("WITH", "first_author", False),
        ("INSERT", "webhook_deliveries", False),
        ("WITH", "new_comment", False),
        ("INSERT", "webhook_deliveries", False),
    ]
    assert _count(committed, Verdict) == 6
    assert _count(committed, WebhookDelivery) == 2


def test_the_check_its_verdict_and_its_delivery_commit_together_or_not_at_all(
    app: Flask,
    committed: sessionmaker[Session],
    engine: Engine,
    running_worker: CeleryWorker,
    receiver: Receiver,
) -> None:
    with committed.begin() as session:
        key, hook_id, _ = _hooked(session, "hooked", receiver.url())
    answers: dict[str, Any] = {}

    def check() -> None:
        answers["first"] = app.test_client().post(CHECK, data=_form(key, comment_content="Hi"))

    # The delivery's INSERT must lock the hook's row (its foreign key): holding the row
    # stops the check after its comment, verdict and count are written, before its
    # delivery is. Then its connection is cut, as a crash of the API would cut it.
    with engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT id FROM webhooks WHERE id = :id FOR UPDATE"), {"id": hook_id})
        thread = threading.Thread(target=check)
        thread.start()

        def waiting() -> int | None:
            # Another connection: a transaction sees pg_stat_activity as it first read it.
            with engine.connect() as watcher:
                pid = watcher.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                        " AND query LIKE 'INSERT INTO webhook_deliveries%'"
                    )
                ).scalar()
            return int(pid) if pid is not None else None

        pid = wait_until(waiting, timeout=20, message="the delivery's insert to wait on the hook")
        # Written, but not committed: nobody else sees the comment.
        assert _count(committed, Comment) == 0
        with engine.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        thread.join(timeout=20)
    assert not thread.is_alive()

    assert answers["first"].status_code == 503
    assert answers["first"].mimetype == "application/problem+json"
    for model in (Comment, Verdict, Author, WebhookDelivery):
        assert _count(committed, model) == 0, model
    # The same check again, undisturbed: all of it, delivered.
    again = app.test_client().post(CHECK, data=_form(key, comment_content="Hi"))
    assert again.text == "false"
    for model in (Comment, Verdict, Author, WebhookDelivery):
        assert _count(committed, model) == 1, model
    [request] = receiver.wait_for(1, timeout=20)
    assert _body(request)["data"]["comment"]["id"] == again.headers["X-akismet-guid"]


def test_the_embedded_default_delivers_a_check_and_a_report_of_a_site_with_a_hook(
    api_settings: Settings, tmp_path: Path, receiver: Receiver
) -> None:
    settings = api_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'cg.db'}",
            "broker_url": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
            **LONG_LEASE,
        }
    )
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    (tmp_path / "worker").mkdir()
    worker = CeleryWorker({**os.environ, **settings_env(settings)}, tmp_path / "worker")
    try:
        with sessions.begin() as session:
            key, hook_id, secret = _hooked(session, "blog", receiver.url())
        worker.start()
        client = create_app(settings, sessions=sessions).test_client()

        checked = client.post(CHECK, data=_form(key, comment_content="casino"))
        guid = checked.headers["X-akismet-guid"]
        duplicate = client.post(CHECK, data=_form(key, comment_content="casino"))
        client.post("/1.1/submit-ham", data=_form(key, guid=guid))
        got = receiver.wait_for(2, timeout=30)

        assert checked.text == "true"
        assert duplicate.headers["X-akismet-guid"] == guid
        for request in got:
            verify(request.body, request.headers["Commentguard-Signature"], secret)
        by_type = {_body(r)["type"]: _body(r)["data"] for r in got}
        assert by_type["comment.classified"]["comment"]["status"] == "spam"
        assert by_type["comment.classified"]["verdict"]["source"] == "akismet"
        assert by_type["comment.moderated"]["comment"]["status"] == "approved"
        assert {d["comment"]["id"] for d in by_type.values()} == {guid}

        def delivered() -> bool:
            with sessions() as session:
                rows = deliveries_of(session, hook_id)
            return len(rows) == 2 and all(r.state is DeliveryState.delivered for r in rows)

        wait_until(delivered, timeout=20, message=worker.log_tail)
    finally:
        worker.stop()
        engine.dispose()
