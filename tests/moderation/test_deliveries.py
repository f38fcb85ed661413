"""Webhook deliveries in the domain, on PostgreSQL: written in the transaction of each
decision (the worker's single and batched paths, a re-score, moderators' actions),
never without it; claimed, settled, swept, listed, sent again and purged."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from pydantic import SecretStr
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from models import (
    Comment,
    DeliveryState,
    Site,
    Status,
    Verdict,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from service.classifier.model import load_classifier
from service.db import make_engine, make_sessionmaker
from service.moderation.actions import Action, Item, act_on_comments
from service.moderation.active import LoadedClassifier
from service.moderation.classify import classify_comment, classify_comments
from service.moderation.deliveries import (
    DeliveryPolicy,
    claim,
    claim_due,
    list_deliveries,
    purge_finished,
    redeliver,
    settle,
)
from service.moderation.errors import Conflict, InvalidInput, NotFound
from service.moderation.policy import SitePolicy
from service.moderation.rescore import rescore_batch
from service.moderation.sites import SiteInfo
from service.moderation.types import Identity
from service.moderation.webhooks import allow_private_targets, get_webhook, rotate_secret
from service.settings import Settings
from service.webhooks.sender import Outcome, Result
from tests.conftest import alembic_config
from tests.support.comments import make_site, submit_text
from tests.support.webhooks import ADMIN, add_hook, deliveries_of, payload

URL = "http://127.0.0.1:9/hook"
MODERATOR = Identity(issuer="https://issuer.test", subject="mod", roles=frozenset({"moderator"}))
#: Deterministic outcomes, whatever the classifier: every score is held (the spam band
#: starts at 1), a blocked word is spam.
POLICY = SitePolicy(
    flood_limit_per_minute=0,
    hold_threshold=0.0,
    spam_threshold=1.0,
    discard_threshold=1.0,
    blocked_words=["viagra"],
)
POLICY_ = DeliveryPolicy(
    max_attempts=4,
    max_age=dt.timedelta(hours=1),
    backoff_base_seconds=10.0,
    backoff_max_seconds=100.0,
    lease=dt.timedelta(seconds=30),
)


@pytest.fixture(scope="module")
def classifier() -> LoadedClassifier:
    return LoadedClassifier(load_classifier(), None)


def _held(session: Session, site: Any, subject: str = "reader") -> uuid.UUID:
    return submit_text(session, SiteInfo.of(site), subject, f"Nice post, thanks ({uuid.uuid4()})")


class Statements:
    """The SQL statements a block sends on the session's connection."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def inserts_into(self, table: str) -> int:
        return sum(1 for s in self.sent if s.lstrip().startswith(f"INSERT INTO {table} "))


@pytest.fixture
def statements(db_session: Session) -> Iterator[Statements]:
    seen = Statements()
    connection = db_session.connection()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.sent.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def test_a_verdict_writes_a_delivery_to_each_enabled_subscribed_hook_of_its_site(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    site = make_site(db_session, policy=POLICY)
    wanted = add_hook(db_session, site, URL + "/a", events=[WebhookEvent.classified])
    also = add_hook(db_session, site, URL + "/b")
    moderated_only = add_hook(db_session, site, URL + "/c", events=[WebhookEvent.moderated])
    disabled = add_hook(db_session, site, URL + "/d", enabled=False)
    other_site = make_site(db_session, policy=POLICY)
    elsewhere = add_hook(db_session, other_site, URL + "/e")
    comment_id = _held(db_session, site)
    now = dt.datetime.now(dt.UTC)

    decided = classify_comment(
        db_session,
        comment_id=comment_id,
        classifier=classifier,
        now=now,
        webhook_lease=dt.timedelta(seconds=30),
    )

    assert decided is not None
    assert decided.decision is Status.held
    [first] = deliveries_of(db_session, wanted.webhook.id)
    [second] = deliveries_of(db_session, also.webhook.id)
    for hook in (moderated_only, disabled, elsewhere):
        assert deliveries_of(db_session, hook.webhook.id) == []
    assert sorted(decided.deliveries) == sorted([first.id, second.id])
    # One event, the same id and body for each hook.
    assert first.event_id == second.event_id
    assert first.body == second.body
    assert first.state is DeliveryState.pending
    assert first.attempts == 0
    assert first.next_attempt_at == now + dt.timedelta(seconds=30)
    body = payload(first)
    assert body == {
        "id": str(first.event_id),
        "type": "comment.classified",
        "occurred_at": now.isoformat(),
        "site": site.slug,
        "data": {
            "comment": {
                "id": str(comment_id),
                "thread": "/post/1",
                "status": "held",
                "previous_status": "pending",
                "discard": False,
                "version": 2,
            },
            "verdict": {
                "decision": "held",
                "score": decided.score,
                "discard": False,
                "reasons": decided.reasons,
                "classifier_version": decided.classifier_version,
                "rescore": False,
            },
        },
    }
    assert db_session.get_one(Comment, comment_id).version == 2


def test_a_site_without_hooks_costs_its_verdicts_no_statement(
    db_session: Session, classifier: LoadedClassifier, statements: Statements
) -> None:
    site = make_site(db_session, policy=POLICY)
    ids = [_held(db_session, site, f"r{n}") for n in range(3)]
    statements.sent.clear()

    decided = classify_comments(db_session, comment_ids=ids, classifier=classifier)
    single = classify_comment(db_session, comment_id=_held(db_session, site), classifier=classifier)

    assert len(decided) == 3
    assert single is not None
    assert all(d.deliveries == () for d in [*decided, single])
    assert statements.inserts_into("webhook_deliveries") == 0


def test_a_batch_writes_the_deliveries_of_all_its_verdicts_in_one_statement(
    db_session: Session, classifier: LoadedClassifier, statements: Statements
) -> None:
    hooked = make_site(db_session, policy=POLICY)
    one = add_hook(db_session, hooked, URL + "/1")
    two = add_hook(db_session, hooked, URL + "/2")
    plain = make_site(db_session, policy=POLICY)
    ids = [_held(db_session, hooked, f"a{n}") for n in range(4)]
    ids.insert(2, _held(db_session, plain, "b"))
    ids.append(submit_text(db_session, SiteInfo.of(hooked), "a0", f"buy viagra {uuid.uuid4()}"))
    statements.sent.clear()

    decided = classify_comments(db_session, comment_ids=ids, classifier=classifier)

    assert statements.inserts_into("webhook_deliveries") == 1
    by_comment = {d.comment_id: d for d in decided}
    assert by_comment[ids[2]].deliveries == ()
    firsts, seconds = (
        deliveries_of(db_session, one.webhook.id),
        deliveries_of(db_session, two.webhook.id),
    )
    assert len(firsts) == len(seconds) == 5
    for first, second in zip(firsts, seconds, strict=True):
        assert first.event_id == second.event_id
        comment_id = uuid.UUID(payload(first)["data"]["comment"]["id"])
        assert sorted(by_comment[comment_id].deliveries) == sorted([first.id, second.id])
        assert payload(first)["data"]["comment"]["status"] == by_comment[comment_id].decision.value
    assert len({d.event_id for d in firsts}) == 5
    statuses = {
        payload(d)["data"]["comment"]["id"]: payload(d)["data"]["comment"]["status"] for d in firsts
    }
    assert statuses[str(ids[-1])] == "spam"


def test_a_rescore_reports_its_new_verdicts(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    site = make_site(db_session, policy=POLICY)
    hook = add_hook(db_session, site, URL)
    comment_id = _held(db_session, site)
    db_session.execute(update(Comment).where(Comment.id == comment_id).values(status=Status.held))

    batch = rescore_batch(db_session, classifier=classifier, site_id=site.id, after=None, size=10)

    assert batch.rescored == 1
    [delivery] = deliveries_of(db_session, hook.webhook.id)
    assert batch.deliveries == (delivery.id,)
    data = payload(delivery)["data"]
    assert data["verdict"]["rescore"] is True
    assert data["comment"]["previous_status"] == "held"


def test_moderators_actions_write_one_delivery_per_comment_moved(
    db_session: Session, classifier: LoadedClassifier, statements: Statements
) -> None:
    site = make_site(db_session, policy=POLICY)
    hook = add_hook(db_session, site, URL, events=[WebhookEvent.moderated])
    ids = [_held(db_session, site, f"r{n}") for n in range(3)]
    classify_comments(db_session, comment_ids=ids, classifier=classifier)
    assert deliveries_of(db_session, hook.webhook.id) == []
    statements.sent.clear()

    results = act_on_comments(
        db_session,
        site_id=site.id,
        items=[Item(ids[0]), Item(ids[1], version=1), Item(ids[2]), Item(uuid.uuid4())],
        actor=MODERATOR,
        action=Action.spam,
        note="a wave",
    )

    assert statements.inserts_into("webhook_deliveries") == 1
    moved = [r for r in results if r.outcome.value == "ok"]
    assert [r.comment_id for r in moved] == [ids[0], ids[2]]
    assert all(r.deliveries == () for r in results if r.outcome.value != "ok")
    written = deliveries_of(db_session, hook.webhook.id)
    assert sorted(d for r in moved for d in r.deliveries) == [d.id for d in written]
    body = next(payload(d) for d in written if payload(d)["data"]["comment"]["id"] == str(ids[0]))
    assert body["type"] == "comment.moderated"
    assert body["site"] == site.slug
    assert body["data"] == {
        "comment": {
            "id": str(ids[0]),
            "thread": "/post/1",
            "status": "spam",
            "previous_status": "held",
            "discard": False,
            "version": 3,
        },
        "action": {
            "action": "spam",
            "from": "held",
            "to": "spam",
            "note": "a wave",
            "label": "spam",
            "audit_id": moved[0].audit_id,
            "actor": {"issuer": MODERATOR.issuer, "subject": MODERATOR.subject},
        },
    }


def test_a_decision_and_its_deliveries_commit_together_or_not_at_all(
    committed: sessionmaker[Session], classifier: LoadedClassifier
) -> None:
    with committed.begin() as session:
        site = make_site(session, policy=POLICY)
        hook = add_hook(session, site, URL)
        comment_id = _held(session, site)
        hook_id = hook.webhook.id

    def fail_after_writing(session: Session) -> None:
        decided = classify_comment(session, comment_id=comment_id, classifier=classifier)
        assert decided is not None
        assert decided.deliveries
        raise RuntimeError("the transaction fails after the delivery was written")

    # A failure after the verdict and its delivery were written undoes both.
    with pytest.raises(RuntimeError, match="fails after"), committed.begin() as session:
        fail_after_writing(session)
    # A delivery that cannot be written undoes the verdict (a trigger refuses it).
    with committed.begin() as session:
        session.execute(
            text(
                "CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'no deliveries today'; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER refuse_delivery BEFORE INSERT ON webhook_deliveries"
                " FOR EACH ROW EXECUTE FUNCTION refuse_delivery()"
            )
        )
    try:
        for run in (
            lambda s: classify_comment(s, comment_id=comment_id, classifier=classifier),
            lambda s: classify_comments(s, comment_ids=[comment_id], classifier=classifier),
        ):
            with pytest.raises(Exception, match="no deliveries today"), committed.begin() as s:
                run(s)
    finally:
        with committed.begin() as session:
            session.execute(text("DROP TRIGGER refuse_delivery ON webhook_deliveries"))
            session.execute(text("DROP FUNCTION refuse_delivery()"))

    with committed() as session:
        assert session.get_one(Comment, comment_id).status is Status.pending
        assert session.scalars(select(Verdict).where(Verdict.comment_id == comment_id)).all() == []
        assert deliveries_of(session, hook_id) == []
    # And once it can commit, both are there.
    with committed.begin() as session:
        decided = classify_comment(session, comment_id=comment_id, classifier=classifier)
    with committed() as session:
        assert decided is not None
        assert [d.id for d in deliveries_of(session, hook_id)] == list(decided.deliveries)
        assert session.get_one(Comment, comment_id).status is Status.held


def _delivery(session: Session, classifier: LoadedClassifier, **hook: Any) -> WebhookDelivery:
    site = make_site(session, policy=POLICY)
    made = add_hook(session, site, URL, **hook)
    decided = classify_comment(session, comment_id=_held(session, site), classifier=classifier)
    assert decided is not None
    [delivery] = deliveries_of(session, made.webhook.id)
    return delivery


def test_a_claim_counts_the_attempt_and_leases_the_delivery_once(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    delivery = _delivery(db_session, classifier)
    now = dt.datetime.now(dt.UTC)

    claimed = claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_)

    assert claimed is not None
    assert claimed.attempt == 1
    assert claimed.url == URL
    assert claimed.allow_private is True
    assert claimed.body == delivery.body
    assert len(claimed.secrets) == 1
    db_session.refresh(delivery)
    assert (delivery.attempts, delivery.last_attempt_at) == (1, now)
    assert delivery.next_attempt_at == now + POLICY_.lease
    # A duplicate of the task (sent for attempt 0) finds attempt 1 under way: nothing.
    assert claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_) is None
    assert claim(db_session, delivery_id=10**15, attempts=0, now=now, policy=POLICY_) is None


def test_settling_delivered_failed_and_retried(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    now = dt.datetime.now(dt.UTC)
    outcomes = {
        "delivered": Result(Outcome.delivered, status_code=204),
        "failed": Result(Outcome.failed, status_code=404, error="HTTP 404 (not retried)"),
        "retry": Result(Outcome.retry, status_code=500, error="HTTP 500"),
    }
    settled: dict[str, WebhookDelivery] = {}
    for name, result in outcomes.items():
        delivery = _delivery(db_session, classifier)
        claimed = claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_)
        assert claimed is not None
        done = settle(db_session, claimed=claimed, result=result, now=now, policy=POLICY_)
        assert done is not None
        settled[name] = done

    delivered, failed, retry = settled["delivered"], settled["failed"], settled["retry"]
    assert (delivered.state, delivered.delivered_at, delivered.next_attempt_at) == (
        DeliveryState.delivered,
        now,
        None,
    )
    assert delivered.last_status_code == 204
    assert (failed.state, failed.last_error, failed.finished_at) == (
        DeliveryState.failed,
        "HTTP 404 (not retried)",
        now,
    )
    assert retry.state is DeliveryState.pending
    assert retry.last_error == "HTTP 500"
    assert retry.next_attempt_at is not None
    # The first retry waits base * 2^0 = 10 s, times 50-100 %.
    assert now + dt.timedelta(seconds=5) <= retry.next_attempt_at <= now + dt.timedelta(seconds=10)


def test_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    for attempt in range(1, 12):
        step = min(10.0 * 2 ** (attempt - 1), 100.0)
        for _ in range(20):
            assert step / 2 <= POLICY_.backoff(attempt) <= step


def test_a_retry_after_longer_than_the_backoff_is_respected(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    delivery = _delivery(db_session, classifier)
    now = dt.datetime.now(dt.UTC)
    claimed = claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_)
    assert claimed is not None
    result = Result(Outcome.retry, status_code=429, error="HTTP 429", retry_after=300.0)

    done = settle(db_session, claimed=claimed, result=result, now=now, policy=POLICY_)

    assert done is not None
    assert done.next_attempt_at == now + dt.timedelta(seconds=300)


def test_the_last_attempt_or_the_age_limit_fails_a_delivery(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    retry = Result(Outcome.retry, error="connecting to 127.0.0.1 port 9: Connection refused")
    now = dt.datetime.now(dt.UTC)
    delivery = _delivery(db_session, classifier)
    states = []
    for attempt in range(POLICY_.max_attempts):
        claimed = claim(
            db_session, delivery_id=delivery.id, attempts=attempt, now=now, policy=POLICY_
        )
        assert claimed is not None
        done = settle(db_session, claimed=claimed, result=retry, now=now, policy=POLICY_)
        assert done is not None
        states.append(done.state)
    assert states == [DeliveryState.pending] * 3 + [DeliveryState.failed]
    db_session.refresh(delivery)
    done = delivery
    assert done.state is DeliveryState.failed
    assert done.attempts == POLICY_.max_attempts
    assert done.last_error == f"{retry.error}; gave up after 4 attempts"

    # A retry that would come after the age limit is not scheduled.
    young = _delivery(db_session, classifier)
    db_session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == young.id).values(created_at=now)
    )
    short = DeliveryPolicy(4, dt.timedelta(seconds=4), 10.0, 100.0, dt.timedelta(seconds=30))
    claimed = claim(db_session, delivery_id=young.id, attempts=0, now=now, policy=short)
    assert claimed is not None
    # The first retry would wait 5 to 10 s: after the 4 s a delivery is tried for.
    done = settle(db_session, claimed=claimed, result=retry, now=now, policy=short)
    assert done is not None
    assert done.state is DeliveryState.failed
    assert "gave up: a retry in" in (done.last_error or "")

    # One older than the limit when its turn comes is failed without a request.
    old = _delivery(db_session, classifier)
    later = now + dt.timedelta(hours=2)
    assert claim(db_session, delivery_id=old.id, attempts=0, now=later, policy=POLICY_) is None
    db_session.refresh(old)
    assert old.state is DeliveryState.failed
    assert old.last_error == "gave up: older than 1 h"


def test_a_disabled_hook_fails_its_pending_deliveries_without_a_request(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    delivery = _delivery(db_session, classifier)
    db_session.execute(
        update(Webhook).where(Webhook.id == delivery.webhook_id).values(enabled=False)
    )
    now = dt.datetime.now(dt.UTC)
    assert claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_) is None
    db_session.refresh(delivery)
    assert (delivery.state, delivery.last_error) == (
        DeliveryState.failed,
        "the webhook is disabled",
    )


def test_a_stale_run_does_not_overwrite_a_newer_one(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    delivery = _delivery(db_session, classifier)
    now = dt.datetime.now(dt.UTC)
    first = claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_)
    assert first is not None
    # The first run was presumed lost; the sweeper's copy claimed attempt 2.
    second = claim(db_session, delivery_id=delivery.id, attempts=1, now=now, policy=POLICY_)
    assert second is not None
    late = settle(
        db_session, claimed=first, result=Result(Outcome.delivered, 200), now=now, policy=POLICY_
    )
    assert late is None
    db_session.refresh(delivery)
    assert delivery.state is DeliveryState.pending


def test_a_rotation_that_keeps_the_old_secret_signs_with_both_until_it_expires(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    delivery = _delivery(db_session, classifier)
    now = dt.datetime.now(dt.UTC)
    site_id = db_session.get_one(Webhook, delivery.webhook_id).site_id
    old = db_session.get_one(Webhook, delivery.webhook_id).secret
    rotated = rotate_secret(
        db_session,
        site_id=site_id,
        webhook_id=delivery.webhook_id,
        keep_previous=dt.timedelta(minutes=10),
        actor=ADMIN,
        now=now,
    )
    claimed = claim(db_session, delivery_id=delivery.id, attempts=0, now=now, policy=POLICY_)
    assert claimed is not None
    assert claimed.secrets == (rotated.secret, old)
    # Past the 10 minutes, the new secret alone.
    later = now + dt.timedelta(minutes=11)
    again = claim(db_session, delivery_id=delivery.id, attempts=1, now=later, policy=POLICY_)
    assert again is not None
    assert again.secrets == (rotated.secret,)
    with pytest.raises(InvalidInput):
        rotate_secret(
            db_session,
            site_id=site_id,
            webhook_id=delivery.webhook_id,
            keep_previous=dt.timedelta(days=8),
            actor=ADMIN,
            now=now,
        )


def test_the_sweeper_claims_what_is_due_and_leases_it(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    due = _delivery(db_session, classifier)
    later = _delivery(db_session, classifier)
    done = _delivery(db_session, classifier)
    now = dt.datetime.now(dt.UTC)
    far = now + dt.timedelta(days=3650)  # after any other test's rows too
    db_session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == due.id).values(next_attempt_at=far)
    )
    db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == later.id)
        .values(next_attempt_at=far + dt.timedelta(seconds=1))
    )
    db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == done.id)
        .values(state=DeliveryState.delivered, next_attempt_at=far - dt.timedelta(days=1))
    )

    claimed = claim_due(db_session, now=far, limit=10_000, lease=dt.timedelta(seconds=30))

    assert [due.id, 0] in claimed
    assert all(pair[0] not in (later.id, done.id) for pair in claimed)
    db_session.refresh(due)
    assert due.next_attempt_at == far + dt.timedelta(seconds=30)
    # Leased: the next sweep leaves it alone.
    assert [due.id, 0] not in claim_due(
        db_session, now=far, limit=10_000, lease=dt.timedelta(seconds=30)
    )


def test_a_purge_deletes_only_deliveries_settled_before_the_cutoff(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    now = dt.datetime.now(dt.UTC)
    long_ago = now - dt.timedelta(days=1000)
    rows = [_delivery(db_session, classifier) for _ in range(3)]
    db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([rows[0].id, rows[1].id]))
        .values(state=DeliveryState.delivered, finished_at=long_ago)
    )
    db_session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == rows[1].id).values(finished_at=now)
    )
    purged = purge_finished(
        db_session, finished_before=long_ago + dt.timedelta(seconds=1), limit=10**9
    )
    assert purged == 1
    left = set(
        db_session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.id.in_([r.id for r in rows]))
        )
    )
    assert left == {rows[1].id, rows[2].id}


def test_the_log_pages_newest_first_and_filters_by_state(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    site = make_site(db_session, policy=POLICY)
    hook = add_hook(db_session, site, URL)
    ids = [_held(db_session, site, f"r{n}") for n in range(5)]
    classify_comments(db_session, comment_ids=ids, classifier=classifier)
    written = [d.id for d in deliveries_of(db_session, hook.webhook.id)]
    db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == written[1])
        .values(state=DeliveryState.failed)
    )

    first = list_deliveries(db_session, webhook_id=hook.webhook.id, limit=2)
    assert [d.id for d in first.deliveries] == written[::-1][:2]
    assert first.next_cursor is not None
    second = list_deliveries(
        db_session, webhook_id=hook.webhook.id, limit=2, cursor=first.next_cursor
    )
    third = list_deliveries(
        db_session, webhook_id=hook.webhook.id, limit=2, cursor=second.next_cursor
    )
    assert [d.id for d in second.deliveries + third.deliveries] == written[::-1][2:]
    assert third.next_cursor is None
    failed = list_deliveries(db_session, webhook_id=hook.webhook.id, state=DeliveryState.failed)
    assert [d.id for d in failed.deliveries] == [written[1]]
    for bad in ("nope", "ZHg", "ZC0x", "ZDk5OTk5OTk5OTk5OTk5OTk5OTk5", "é"):
        with pytest.raises(InvalidInput):
            list_deliveries(db_session, webhook_id=hook.webhook.id, cursor=bad)
    with pytest.raises(InvalidInput):
        list_deliveries(db_session, webhook_id=hook.webhook.id, limit=0)


def test_a_redelivery_is_a_new_delivery_of_the_same_event(
    db_session: Session, classifier: LoadedClassifier
) -> None:
    delivery = _delivery(db_session, classifier)
    now = dt.datetime.now(dt.UTC)
    db_session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id)
        .values(state=DeliveryState.failed, attempts=4)
    )

    again = redeliver(
        db_session,
        webhook_id=delivery.webhook_id,
        delivery_id=delivery.id,
        now=now,
        lease=POLICY_.lease,
    )

    assert again.id != delivery.id
    assert (again.event_id, again.body, again.redelivery_of) == (
        delivery.event_id,
        delivery.body,
        delivery.id,
    )
    assert (again.state, again.attempts, again.next_attempt_at) == (
        DeliveryState.pending,
        0,
        now + POLICY_.lease,
    )
    db_session.refresh(delivery)
    assert delivery.state is DeliveryState.failed
    with pytest.raises(NotFound):
        redeliver(
            db_session,
            webhook_id=uuid.uuid4(),
            delivery_id=delivery.id,
            now=now,
            lease=POLICY_.lease,
        )
    db_session.execute(
        update(Webhook).where(Webhook.id == delivery.webhook_id).values(enabled=False)
    )
    with pytest.raises(Conflict, match="disabled"):
        redeliver(
            db_session,
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            now=now,
            lease=POLICY_.lease,
        )


def test_the_embedded_default_writes_and_settles_deliveries_on_sqlite(
    tmp_path: Path, classifier: LoadedClassifier
) -> None:
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'cg.db'}",
        secret_key=SecretStr(secrets.token_urlsafe(36)),
    )
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    try:
        with sessions.begin() as session:
            site = make_site(session, policy=POLICY)
            hook = add_hook(session, site, URL, events=[WebhookEvent.classified])
            both = add_hook(session, site, URL + "/both")
            ids = [_held(session, site, f"r{n}") for n in range(2)]
            hook_id, both_id, site_id = hook.webhook.id, both.webhook.id, site.id
        with sessions.begin() as session:
            decided = classify_comments(session, comment_ids=ids, classifier=classifier)
            results = act_on_comments(
                session,
                site_id=site_id,
                items=[Item(ids[0])],
                actor=MODERATOR,
                action=Action.approve,
                note=None,
            )
        assert all(len(d.deliveries) == 2 for d in decided)
        assert len(results[0].deliveries) == 1
        now = dt.datetime.now(dt.UTC)
        with sessions.begin() as session:
            assert len(deliveries_of(session, hook_id)) == 2
            kinds = [payload(d)["type"] for d in deliveries_of(session, both_id)]
            assert kinds == ["comment.classified"] * 2 + ["comment.moderated"]
            claimed = claim(
                session, delivery_id=results[0].deliveries[0], attempts=0, now=now, policy=POLICY_
            )
            assert claimed is not None
            done = settle(
                session,
                claimed=claimed,
                result=Result(Outcome.retry, status_code=503, error="HTTP 503"),
                now=now,
                policy=POLICY_,
            )
            assert done is not None
            assert done.state is DeliveryState.pending
        with sessions.begin() as session:
            due = claim_due(
                session, now=now + dt.timedelta(seconds=11), limit=10, lease=POLICY_.lease
            )
        assert due == [[results[0].deliveries[0], 1]]
    finally:
        engine.dispose()


def test_changing_a_hook_or_its_site_holds_up_no_comment_and_no_verdict(
    committed: sessionmaker[Session], classifier: LoadedClassifier
) -> None:
    with committed.begin() as session:
        site = make_site(session, policy=POLICY)
        hook = add_hook(session, site, URL)
        comment_id = _held(session, site)
        site_id, hook_id = site.id, hook.webhook.id

    with committed.begin() as admin:
        # The locks a change, a rotation and a registration hold until they commit.
        get_webhook(admin, site_id=site_id, webhook_id=hook_id, lock=True)
        allow_private_targets(admin, site_id=site_id, allow=True)
        with committed.begin() as worker:
            # Blocked, this would fail after 2 s instead of waiting for the admin.
            worker.execute(text("SET LOCAL lock_timeout = '2s'"))
            decided = classify_comment(worker, comment_id=comment_id, classifier=classifier)
            assert decided is not None
            assert len(decided.deliveries) == 1
            site_info = SiteInfo.of(worker.get_one(Site, site_id))
            submit_text(worker, site_info, "another", "A comment while the admin edits.")
