"""Webhooks end to end: real PostgreSQL, Redis, Celery worker (with its beat) and an HTTP
receiver on 127.0.0.1, the site allowing private targets. Decisions of the classifier
and of moderators are delivered signed; failures are retried with backoff under the same
event id; what is lost (a receiver down, a task never sent, a worker killed mid-request)
is delivered later; what must not be sent is not."""

from __future__ import annotations

import datetime as dt
import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models import Comment, DeliveryState, Site, Status, WebhookDelivery, WebhookEvent
from service.app import create_app
from service.auth.dev_issuer import DEV_ISSUER, DEV_UI_CLIENT_ID, mint_dev_token
from service.classifier.model import load_classifier
from service.moderation.active import LoadedClassifier
from service.moderation.classify import classify_comment
from service.moderation.policy import SitePolicy
from service.moderation.sites import SiteInfo, UiClient, set_ui_client
from service.moderation.webhooks import allow_private_targets
from service.queue import RESCORE, TaskQueue
from service.settings import Settings
from service.webhooks.signature import verify
from tests.support.comments import make_site, submit_text
from tests.support.receiver import Answer, Received, Receiver, running_receiver
from tests.support.wait import wait_until
from tests.support.webhooks import add_hook, deliveries_of
from tests.support.worker import CeleryWorker
from tests.ui.conftest import script_headers

#: Every score is held (the spam band starts at 1): outcomes that do not depend on the
#: bundled classifier.
POLICY = SitePolicy(
    flood_limit_per_minute=0, hold_threshold=0.0, spam_threshold=1.0, discard_threshold=1.0
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def _site_with_hook(
    committed: sessionmaker[Session], url: str, **hook: Any
) -> tuple[int, str, uuid.UUID, str]:
    """A site (allowing private targets) with a webhook at ``url``: the site's id and
    slug, the hook's id and its secret."""
    with committed.begin() as session:
        site = make_site(session, policy=POLICY)
        made = add_hook(session, site, url, **hook)
        return site.id, site.slug, made.webhook.id, made.secret


def _comments(committed: sessionmaker[Session], site_id: int, count: int) -> list[uuid.UUID]:
    with committed.begin() as session:
        site = SiteInfo.of(session.get_one(Site, site_id))
        # Their outbox rows are due in 5 minutes: only the test's messages classify them.
        return [
            submit_text(session, site, f"reader-{n}", f"Thanks for this ({uuid.uuid4()})")
            for n in range(count)
        ]


def _delivery_state(
    committed: sessionmaker[Session], webhook_id: uuid.UUID
) -> list[WebhookDelivery]:
    with committed() as session:
        return deliveries_of(session, webhook_id)


def _settled(
    committed: sessionmaker[Session], webhook_id: uuid.UUID, count: int, worker: CeleryWorker
) -> list[WebhookDelivery]:
    def done() -> list[WebhookDelivery] | None:
        rows = _delivery_state(committed, webhook_id)
        settled = [r for r in rows if r.state is not DeliveryState.pending]
        return rows if len(rows) >= count and len(settled) == len(rows) else None

    return wait_until(
        done, timeout=60, interval=0.1, message=lambda: f"settled deliveries:\n{worker.log_tail()}"
    )


def _sweeps(worker: CeleryWorker) -> int:
    """How many webhook sweeps the worker has finished (Celery logs each task's end)."""
    return sum(
        1
        for line in worker.log().splitlines()
        if "commentguard.sweep_webhooks[" in line and " succeeded in " in line
    )


def _body(received: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


def test_verdicts_are_delivered_signed_from_the_batched_and_the_single_path(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
) -> None:
    site_id, slug, hook_id, secret = _site_with_hook(committed, receiver.url("/in"))
    batched, single = _comments(committed, site_id, 2)

    task_queue.enqueue_classifications([str(batched)], [None])
    task_queue.enqueue_classification(single)

    got = receiver.wait_for(2)
    rows = _settled(committed, hook_id, 2, running_worker)
    assert {_body(r)["data"]["comment"]["id"] for r in got} == {str(batched), str(single)}
    for request in got:
        body = _body(request)
        verify(request.body, request.headers["Commentguard-Signature"], secret)
        assert request.headers["Commentguard-Event"] == "comment.classified" == body["type"]
        assert request.headers["Commentguard-Event-Id"] == body["id"]
        assert request.headers["User-Agent"].startswith("Commentguard-Webhooks/")
        assert request.headers["Content-Type"] == "application/json"
        assert body["site"] == slug
        assert body["data"]["comment"]["status"] == "held"
        assert body["data"]["verdict"]["decision"] == "held"
    assert all(
        (r.state, r.attempts, r.last_status_code) == (DeliveryState.delivered, 1, 200) for r in rows
    )
    assert {r.headers["Commentguard-Delivery"] for r in got} == {str(r.id) for r in rows}


@pytest.fixture
def app_client(
    settings: Settings, committed: sessionmaker[Session], tmp_path: Path
) -> Iterator[tuple[FlaskClient, Settings]]:
    """The API on the run's committed database and broker, with the development issuer."""
    api = settings.model_copy(update={"dev_issuer": True, "dev_key_path": tmp_path / "key.pem"})
    with create_app(api, sessions=committed).test_client() as client:
        yield client, api


def test_moderators_single_and_bulk_actions_are_delivered(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    receiver: Receiver,
    app_client: tuple[FlaskClient, Settings],
) -> None:
    client, api = app_client
    site_id, slug, hook_id, secret = _site_with_hook(
        committed, receiver.url(), events=[WebhookEvent.moderated]
    )
    ids = _comments(committed, site_id, 3)
    with committed.begin() as session:
        session.execute(update(Comment).where(Comment.id.in_(ids)).values(status=Status.held))
    moderator = mint_dev_token(api, subject="mia", site=slug, roles=["moderator"])
    auth = {"Authorization": f"Bearer {moderator}"}

    single = client.post(
        f"/v1/comments/{ids[0]}/actions",
        json={"action": "approve"},
        headers={**auth, "If-Match": '"v1"'},
    )
    bulk = client.post(
        f"/v1/sites/{slug}/actions",
        json={"action": "spam", "note": "a wave", "ids": [str(i) for i in ids[1:]]},
        headers=auth,
    )

    assert single.status_code == 200, single.get_json()
    assert bulk.status_code == 200, bulk.get_json()
    got = receiver.wait_for(3)
    for request in got:
        verify(request.body, request.headers["Commentguard-Signature"], secret)
    actions = {
        _body(r)["data"]["comment"]["id"]: (
            _body(r)["type"],
            _body(r)["data"]["action"]["action"],
            _body(r)["data"]["comment"]["status"],
            _body(r)["data"]["action"]["actor"]["subject"],
        )
        for r in got
    }
    assert actions == {
        str(ids[0]): ("comment.moderated", "approve", "approved", "mia"),
        str(ids[1]): ("comment.moderated", "spam", "spam", "mia"),
        str(ids[2]): ("comment.moderated", "spam", "spam", "mia"),
    }
    rows = _settled(committed, hook_id, 3, running_worker)
    assert {r.state for r in rows} == {DeliveryState.delivered}

    # The log, and a redelivery: the same event (id and body) again, as a new delivery.
    admin = mint_dev_token(api, subject="root", site=slug, roles=["admin"])
    log = client.get(
        f"/v1/sites/{slug}/webhooks/{hook_id}/deliveries",
        headers={"Authorization": f"Bearer {admin}"},
    ).get_json()
    assert [d["state"] for d in log["deliveries"]] == ["delivered"] * 3
    first = log["deliveries"][-1]
    again = client.post(first["links"]["redeliver"], headers={"Authorization": f"Bearer {admin}"})
    assert again.status_code == 202, again.get_json()
    [fourth] = receiver.wait_for(4)[3:]
    assert fourth.headers["Commentguard-Event-Id"] == first["event_id"]
    assert _body(fourth) == first["payload"]


def test_5xx_is_retried_with_backoff_under_the_same_event_id_until_delivered(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
    settings: Settings,
) -> None:
    site_id, _, hook_id, secret = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    receiver.answer(Answer(500, body=b"oops"), Answer(503))

    task_queue.enqueue_classification(comment_id)

    got = receiver.wait_for(3)
    [row] = _settled(committed, hook_id, 1, running_worker)
    assert [r.status for r in got] == [500, 503, 200]
    assert len({r.headers["Commentguard-Event-Id"] for r in got}) == 1
    assert len({r.body for r in got}) == 1
    for request in got:
        verify(request.body, request.headers["Commentguard-Signature"], secret)
    # Each wait at least half its step: base * 2^(n-1) * 50 %.
    base = settings.webhook_backoff_base_seconds
    assert got[1].at - got[0].at >= base * 0.5 * 0.9
    assert got[2].at - got[1].at >= base * 1.0 * 0.9
    assert (row.state, row.attempts, row.last_status_code) == (DeliveryState.delivered, 3, 200)
    assert row.last_error is None


def test_a_retry_after_is_waited_for(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    receiver.answer(Answer(429, headers={"Retry-After": "2"}))

    task_queue.enqueue_classification(comment_id)

    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 1.9
    assert second.headers["Commentguard-Event-Id"] == first.headers["Commentguard-Event-Id"]
    [row] = _settled(committed, hook_id, 1, running_worker)
    assert (row.state, row.attempts) == (DeliveryState.delivered, 2)


def test_a_4xx_fails_the_delivery_without_a_retry(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
    settings: Settings,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    receiver.default = Answer(410, body=b"this hook is gone")

    task_queue.enqueue_classification(comment_id)

    [row] = _settled(committed, hook_id, 1, running_worker)
    assert (row.state, row.attempts, row.last_status_code) == (DeliveryState.failed, 1, 410)
    assert row.last_error == "HTTP 410: this hook is gone (not retried)"
    # Settled, it is nothing the sweeper will look at again: after a few more sweeps the
    # receiver still has the one request.
    assert row.next_attempt_at is None
    sweeps = _sweeps(running_worker)
    wait_until(
        lambda: _sweeps(running_worker) >= sweeps + 3,
        timeout=30,
        message=lambda: f"three more webhook sweeps:\n{running_worker.log_tail()}",
    )
    assert len(receiver.received) == 1


def test_a_delivery_that_keeps_failing_gives_up_after_the_last_attempt(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
    settings: Settings,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    receiver.default = Answer(502)

    task_queue.enqueue_classification(comment_id)

    [row] = _settled(committed, hook_id, 1, running_worker)
    assert (row.state, row.attempts) == (DeliveryState.failed, settings.webhook_max_attempts)
    assert row.last_error == f"HTTP 502: ok; gave up after {settings.webhook_max_attempts} attempts"
    assert len(receiver.received) == settings.webhook_max_attempts


def test_a_receiver_that_is_down_gets_the_delivery_once_it_is_back(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    receiver.stop()

    task_queue.enqueue_classification(comment_id)

    def refused_twice() -> bool:
        rows = _delivery_state(committed, hook_id)
        return bool(rows) and rows[0].attempts >= 2 and "refused" in (rows[0].last_error or "")

    wait_until(refused_twice, timeout=30, message=lambda: running_worker.log_tail())
    receiver.start()  # the same port
    [row] = _settled(committed, hook_id, 1, running_worker)
    assert row.state is DeliveryState.delivered
    assert row.attempts >= 3
    [request] = receiver.received
    assert _body(request)["data"]["comment"]["id"] == str(comment_id)


def test_the_web_uis_actions_and_undo_send_their_deliveries_after_the_commit(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    receiver: Receiver,
    settings: Settings,
    tmp_path: Path,
) -> None:
    # A lease far longer than the wait below: the sweeper cannot be what delivers them.
    api = settings.model_copy(
        update={
            "dev_issuer": True,
            "dev_key_path": tmp_path / "key.pem",
            "outbox_timeout_seconds": 600,
        }
    )
    site_id, slug, _, secret = _site_with_hook(
        committed, receiver.url(), events=[WebhookEvent.moderated]
    )
    [comment_id] = _comments(committed, site_id, 1)
    with committed.begin() as session:
        session.execute(update(Comment).where(Comment.id == comment_id).values(status=Status.held))
        set_ui_client(session, slug=slug, client=UiClient(DEV_ISSUER, DEV_UI_CLIENT_ID))

    with create_app(api, sessions=committed).test_client() as client:
        headers = script_headers(client, slug)
        acted = client.post(
            f"/ui/{slug}/comments/{comment_id}/actions?version=1",
            data={"action": "spam"},
            headers=headers,
        )
        assert acted.get_json()["results"][0]["result"] == "ok"
        [first] = receiver.wait_for(1, timeout=20)
        undone = client.post(f"/ui/{slug}/undo", headers=headers)
        assert undone.get_json()["undone"] == 1
        second = receiver.wait_for(2, timeout=20)[1]

    for request in (first, second):
        verify(request.body, request.headers["Commentguard-Signature"], secret)
    assert [_body(r)["data"]["action"]["action"] for r in (first, second)] == ["spam", "hold"]


def test_a_delivery_whose_task_was_never_sent_is_sent_by_the_sweeper(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    receiver: Receiver,
    settings: Settings,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    # The verdict and its delivery commit, and the process dies before it enqueues.
    with committed.begin() as session:
        decided = classify_comment(
            session,
            comment_id=comment_id,
            classifier=LoadedClassifier(load_classifier(), None),
            webhook_lease=dt.timedelta(seconds=settings.webhook_lease_seconds),
        )
        assert decided is not None
        assert len(decided.deliveries) == 1

    [request] = receiver.wait_for(1, timeout=60)
    assert _body(request)["data"]["comment"]["id"] == str(comment_id)
    [row] = _settled(committed, hook_id, 1, running_worker)
    assert (row.state, row.attempts) == (DeliveryState.delivered, 1)


def test_a_worker_killed_mid_request_loses_no_delivery(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    [comment_id] = _comments(committed, site_id, 1)
    receiver.answer(Answer(200, delay=2.5))  # the first request hangs; the worker dies

    task_queue.enqueue_classification(comment_id)
    # The request is at the receiver, which is slow to answer: the worker dies waiting.
    wait_until(lambda: receiver.arrived >= 1, timeout=30, message=running_worker.log_tail)
    running_worker.kill(signal.SIGKILL)
    running_worker.start()

    [row] = _settled(committed, hook_id, 1, running_worker)
    assert row.state is DeliveryState.delivered
    assert row.attempts == 2
    got = receiver.wait_for(2)
    # At least once: the receiver may see the event twice, under one event id.
    assert len({r.headers["Commentguard-Event-Id"] for r in got}) == 1


def test_a_target_that_became_private_is_refused_at_delivery(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
) -> None:
    # Registered while the site allowed private targets; then the operator took that
    # back. "localhost" resolves to loopback: the delivery refuses to connect.
    site_id, _, hook_id, _ = _site_with_hook(
        committed, receiver.url(host="localhost").replace("http://", "https://")
    )
    with committed.begin() as session:
        allow_private_targets(session, site_id=site_id, allow=False)
    [comment_id] = _comments(committed, site_id, 1)

    task_queue.enqueue_classification(comment_id)

    [row] = _settled(committed, hook_id, 1, running_worker)
    assert (row.state, row.attempts, row.last_status_code) == (DeliveryState.failed, 1, None)
    assert row.last_error == (
        "refused: localhost resolves to 127.0.0.1, which is loopback; "
        "this site does not allow private targets"
    )
    assert receiver.received == []


def test_a_rescore_is_delivered(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    receiver: Receiver,
) -> None:
    site_id, _, hook_id, _ = _site_with_hook(committed, receiver.url())
    ids = _comments(committed, site_id, 2)
    with committed.begin() as session:
        session.execute(update(Comment).where(Comment.id.in_(ids)).values(status=Status.held))

    task_queue.enqueue(RESCORE, {"site_id": site_id})

    got = receiver.wait_for(2)
    assert {_body(r)["data"]["comment"]["id"] for r in got} == {str(i) for i in ids}
    assert all(_body(r)["data"]["verdict"]["rescore"] is True for r in got)
    assert all(_body(r)["data"]["comment"]["previous_status"] == "held" for r in got)
    _settled(committed, hook_id, 2, running_worker)
    # The task logs its count after its last batch has committed: wait for it too.
    wait_until(
        lambda: "rescore: 2 comments got a new verdict" in running_worker.log(),
        timeout=30,
        message=lambda: f"the re-score's count:\n{running_worker.log_tail()}",
    )
