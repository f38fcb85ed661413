"""Webhook deliveries as data: written with the decision they report, claimed and settled
by the delivery task around its request, swept when lost, listed, sent again, purged.

The life of a delivery:

1. **Recorded** (:func:`record`) in the transaction of its decision (the worker's
   verdict, a re-score, a moderator's action): one INSERT ... SELECT writes a
   ``pending`` row for every enabled hook of the site subscribed to the event, for all
   the decisions of a batch at once. The JSON body is fixed then; the event id in it is
   the idempotency id every attempt (and a redelivery) carries. The row is due at
   ``now + lease``: the caller enqueues the delivery task after its commit, and should
   that task be lost (a crash, a broker outage) the sweeper sends it once due.
2. **Claimed** (:func:`claim`) by the task, in a short transaction of its own: the
   attempt is counted and the row held off for a lease, so that the sweeper leaves it
   alone while the request is under way. Each task carries the attempt count it was
   sent for; a copy that finds another count (a duplicate, or a stale one) does nothing.
3. **Sent** outside any transaction (``service.webhooks.sender.post``).
4. **Settled** (:func:`settle`): delivered, failed, or due again after a backoff with
   jitter (``policy.backoff``), or a ``Retry-After`` when longer; failed once the
   attempts or the age run out.

A delivery is therefore sent at least once per decision (a receiver drops repeats by
event id), and a request is never made inside a decision's transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Exists,
    FunctionElement,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

from models import DeliveryState, Site, Webhook, WebhookDelivery, WebhookEvent
from service.moderation.cursors import decode_id_cursor, encode_id_cursor
from service.moderation.errors import Conflict, FieldError, InvalidInput, NotFound
from service.moderation.outbox import delete_oldest
from service.webhooks.sender import Outcome, Result

log = logging.getLogger(__name__)

#: The due time of a new delivery, after its decision: its task runs well before, unless
#: lost. Callers pass the setting-derived one (``outbox_timeout_seconds`` plus
#: ``webhook_timeout_seconds``); this is that sum at the defaults.
DEFAULT_LEASE = dt.timedelta(seconds=70)
#: The rows one page of the delivery log holds by default, and at most.
DEFAULT_PAGE = 20
MAX_PAGE = 100
_CURSOR_KIND = "d"
"""The letter of the delivery log's page cursors (see :func:`encode_id_cursor`)."""


class subscribed(FunctionElement[bool]):  # noqa: N801  (a SQL function, named as one)
    """``subscribed(webhooks.events, 'comment.classified')``: whether a hook's ``events``
    (a JSON list) holds the event. JSONB containment on PostgreSQL, ``json_each``
    elsewhere (SQLite)."""

    type = Boolean()
    name = "subscribed"
    inherit_cache = True


@compiles(subscribed, "postgresql")
def _subscribed_postgresql(element: subscribed, compiler: SQLCompiler, **kw: Any) -> str:
    events, event = list(element.clauses)
    return (
        f"({compiler.process(events, **kw)} @> "
        f"jsonb_build_array(CAST({compiler.process(event, **kw)} AS TEXT)))"
    )


@compiles(subscribed)
def _subscribed_default(element: subscribed, compiler: SQLCompiler, **kw: Any) -> str:
    events, event = list(element.clauses)
    # Both parts are compiled SQL (a column and a bound parameter), never input.
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(events, **kw)}) "  # noqa: S608
        f"WHERE json_each.value = {compiler.process(event, **kw)})"
    )


def _wants(event: WebhookEvent) -> ColumnElement[bool]:
    """An enabled hook subscribed to ``event``."""
    return and_(Webhook.enabled == true(), subscribed(Webhook.events, literal(event.value)))


def hooks_exist(site_id: ColumnElement[int] | Mapped[int] | int, event: WebhookEvent) -> Exists:
    """``EXISTS`` an enabled hook of ``site_id`` subscribed to ``event``: a column for
    the statement that reads a decision's rows, so that a site without hooks costs its
    decisions no statement and no body (one probe of the hooks' ``site_id`` index)."""
    return exists().where(Webhook.site_id == site_id, _wants(event))


@dataclass(frozen=True, slots=True)
class Event:
    """A decision to report to the hooks of ``site_id``: its id and its JSON body."""

    site_id: int
    event_id: uuid.UUID
    body: str


def new_event(
    *,
    site_id: int,
    site: str,
    event_type: WebhookEvent,
    occurred_at: dt.datetime,
    data: dict[str, Any],
) -> Event:
    """An event with a new id and its body: ``{"id", "type", "occurred_at", "site",
    "data"}``, compact JSON in ASCII (what the receiver gets, byte for byte)."""
    event_id = uuid.uuid4()
    body = json.dumps(
        {
            "id": str(event_id),
            "type": event_type.value,
            "occurred_at": _utc(occurred_at).isoformat(),
            "site": site,
            "data": data,
        },
        separators=(",", ":"),
    )
    return Event(site_id, event_id, body)


# PostgreSQL: the deliveries of any number of events in one statement, one row per event
# and subscribed hook of its site. The bodies travel as one JSON array of strings: as a
# text[] parameter, psycopg would escape every quote of every body with a regular
# expression, which cost more than the rest of the statement (0.7 ms a body).
_RECORD_MANY = text(
    "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, body, next_attempt_at)"
    " SELECT w.id, e.event_id, CAST(:event_type AS text), b.body, :due"
    " FROM unnest(CAST(:site_ids AS integer[]), CAST(:event_ids AS uuid[]))"
    " WITH ORDINALITY AS e (site_id, event_id, n)"
    " JOIN json_array_elements_text(CAST(:bodies AS json)) WITH ORDINALITY AS b (body, n)"
    " ON b.n = e.n"
    " JOIN webhooks w ON w.site_id = e.site_id AND w.enabled"
    " AND w.events @> jsonb_build_array(CAST(:event_type AS text))"
    " RETURNING id, event_id"
)


def record(
    session: Session,
    *,
    event_type: WebhookEvent,
    events: Sequence[Event],
    due: dt.datetime,
) -> dict[uuid.UUID, list[int]]:
    """Write, in the caller's transaction, a ``pending`` delivery of each event to every
    enabled hook of its site subscribed to ``event_type``, due at ``due``; the deliveries'
    ids by event id (events whose site has no such hook are absent). One statement on
    PostgreSQL whatever the number of events; one per event elsewhere. Executes; the
    caller commits, then sends the deliveries (:func:`due_pairs`)."""
    if not events:
        return {}
    connection = session.connection()
    found: dict[uuid.UUID, list[int]] = {}
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            _RECORD_MANY,
            {
                "event_type": event_type.value,
                "due": due,
                "site_ids": [e.site_id for e in events],
                "event_ids": [e.event_id for e in events],
                "bodies": json.dumps([e.body for e in events]),
            },
        )
        for delivery_id, event_id in rows:
            found.setdefault(event_id, []).append(delivery_id)
        return found
    for event in events:
        statement = (
            insert(WebhookDelivery)
            .from_select(
                ["webhook_id", "event_id", "event_type", "body", "next_attempt_at"],
                select(
                    Webhook.id,
                    bindparam("event_id", event.event_id, type_=WebhookDelivery.event_id.type),
                    literal(event_type.value),
                    bindparam("body", event.body, type_=WebhookDelivery.body.type),
                    bindparam("due", due, type_=WebhookDelivery.next_attempt_at.type),
                ).where(Webhook.site_id == event.site_id, _wants(event_type)),
            )
            .returning(WebhookDelivery.id)
        )
        ids = list(session.scalars(statement))
        if ids:
            found[event.event_id] = ids
    return found


def due_pairs(deliveries: Sequence[int]) -> list[list[int]]:
    """The ``[delivery id, attempts]`` pairs the delivery task takes, for new deliveries."""
    return [[delivery_id, 0] for delivery_id in deliveries]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard a delivery is tried (built from the settings by its callers)."""

    max_attempts: int
    max_age: dt.timedelta
    backoff_base_seconds: float
    backoff_max_seconds: float
    #: How long a claimed (queued or running) attempt holds its delivery off the
    #: sweeper: longer than a task waits and runs, shorter than anyone minds.
    lease: dt.timedelta

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): ``base *
        2^(attempt-1)`` up to ``max``, times a random 50-100 % so that the retries of a
        receiver's many deliveries spread out instead of arriving together."""
        step = min(
            self.backoff_base_seconds * 2.0 ** min(attempt - 1, 60), self.backoff_max_seconds
        )
        return step * random.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for one attempt: everything the request needs."""

    delivery_id: int
    #: This attempt's number (the row's ``attempts`` once claimed).
    attempt: int
    webhook_id: uuid.UUID
    url: str
    #: Sign with each (the current secret, and a rotated one still honoured).
    secrets: tuple[str, ...]
    allow_private: bool
    event_id: uuid.UUID
    event_type: str
    body: str
    created_at: dt.datetime


#: PostgreSQL: the transaction commits without waiting for its WAL to reach the disk (for
#: this transaction only). Losing a claim or a result in a crash of the database means
#: one more request, which at-least-once allows; it saves a disk flush a transaction.
_ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True)


def claim(
    session: Session,
    *,
    delivery_id: int,
    attempts: int,
    now: dt.datetime,
    policy: DeliveryPolicy,
) -> Claimed | None:
    """Claim ``delivery_id`` for its next attempt if it is still ``pending`` at
    ``attempts`` (the count it was sent for): the attempt is counted and the row held
    off until ``now + policy.lease``. None, changing nothing, when it is gone, settled,
    at another count, or locked by another claim (duplicates of a task do nothing). A
    delivery whose hook was disabled, or older than ``policy.max_age``, is failed here
    without a request (None too). Executes; the caller commits before sending (an
    asynchronous commit on PostgreSQL)."""
    query = select(
        WebhookDelivery,
        Webhook.url,
        Webhook.enabled,
        Webhook.secret,
        Webhook.previous_secret,
        Webhook.previous_secret_expires_at,
        Site.webhooks_allow_private,
    )
    if session.connection().dialect.name == "postgresql":
        query = query.add_columns(_ASYNC_COMMIT)  # in the same round trip
    row = session.execute(
        query.join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .join(Site, Site.id == Webhook.site_id)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    ).one_or_none()
    if row is None:
        log.info("delivery %s is gone or being sent; nothing to do", delivery_id)
        return None
    delivery: WebhookDelivery = row.WebhookDelivery
    if delivery.state is not DeliveryState.pending or delivery.attempts != attempts:
        log.info(
            "delivery %s is %s at attempt %d, not pending at %d; nothing to do",
            delivery_id,
            delivery.state.value,
            delivery.attempts,
            attempts,
        )
        return None
    if not row.enabled:
        _settle(delivery, DeliveryState.failed, now, error="the webhook is disabled")
        session.flush()
        return None
    if _utc(delivery.created_at) + policy.max_age <= now:
        _settle(
            delivery,
            DeliveryState.failed,
            now,
            error=f"gave up: older than {_age(policy.max_age)}"
            + (f"; last error: {delivery.last_error}" if delivery.last_error else ""),
        )
        session.flush()
        return None
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.next_attempt_at = now + policy.lease
    session.flush()
    keys = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and _utc(expires) > now:
        keys.append(row.previous_secret)
    return Claimed(
        delivery_id=delivery.id,
        attempt=delivery.attempts,
        webhook_id=delivery.webhook_id,
        url=row.url,
        secrets=tuple(keys),
        allow_private=row.webhooks_allow_private,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        body=delivery.body,
        created_at=_utc(delivery.created_at),
    )


def settle(
    session: Session,
    *,
    claimed: Claimed,
    result: Result,
    now: dt.datetime,
    policy: DeliveryPolicy,
) -> WebhookDelivery | None:
    """Record the attempt's ``result``: delivered; failed; or due again after
    ``policy.backoff(attempt)`` (or the answer's ``Retry-After`` when longer), unless
    that was the last attempt or the next would come after ``policy.max_age``, which
    fail it. The row as settled; None when another run has claimed it since (its result
    stands). One conditional UPDATE; the caller commits (an asynchronous commit on
    PostgreSQL)."""
    values: dict[str, Any] = {"last_status_code": result.status_code}
    if result.outcome is Outcome.delivered:
        values.update(_settled(DeliveryState.delivered, now, error=None))
    elif result.outcome is Outcome.failed:
        values.update(_settled(DeliveryState.failed, now, error=result.error))
    elif claimed.attempt >= policy.max_attempts:
        error = f"{result.error}; gave up after {claimed.attempt} attempts"
        values.update(_settled(DeliveryState.failed, now, error=error))
    else:
        wait = max(policy.backoff(claimed.attempt), result.retry_after or 0.0)
        due = now + dt.timedelta(seconds=wait)
        if due > claimed.created_at + policy.max_age:
            error = (
                f"{result.error}; gave up: a retry in {wait:.0f} s would come after "
                f"the {_age(policy.max_age)} a delivery is tried for"
            )
            values.update(_settled(DeliveryState.failed, now, error=error))
        else:
            values.update(next_attempt_at=due, last_error=result.error)
    if session.connection().dialect.name == "postgresql":
        session.execute(select(_ASYNC_COMMIT))
    return session.scalars(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == claimed.delivery_id,
            WebhookDelivery.state == DeliveryState.pending,
            WebhookDelivery.attempts == claimed.attempt,
        )
        .values(**values)
        .returning(WebhookDelivery)
        .execution_options(populate_existing=True)
    ).one_or_none()


def _settled(state: DeliveryState, now: dt.datetime, *, error: str | None) -> dict[str, Any]:
    """The columns of a delivery that ends in ``state``."""
    values: dict[str, Any] = {
        "state": state,
        "last_error": error,
        "next_attempt_at": None,
        "finished_at": now,
    }
    if state is DeliveryState.delivered:
        values["delivered_at"] = now
    return values


def _settle(
    delivery: WebhookDelivery, state: DeliveryState, now: dt.datetime, *, error: str | None
) -> None:
    for name, value in _settled(state, now, error=error).items():
        setattr(delivery, name, value)


def claim_due(
    session: Session, *, now: dt.datetime, limit: int, lease: dt.timedelta
) -> list[list[int]]:
    """The sweeper's claim: up to ``limit`` pending deliveries due by ``now`` (retries,
    and deliveries whose task never ran or never finished), each held off until
    ``now + lease``; their ``[id, attempts]`` pairs for the delivery task. Rows locked
    by another sweeper are skipped. Executes; the caller commits, then sends them."""
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(
            WebhookDelivery.state == DeliveryState.pending,
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([row.id for row in rows]))
            .values(next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
    return [[row.id, row.attempts] for row in rows]


def purge_finished(session: Session, *, finished_before: dt.datetime, limit: int) -> int:
    """Of the ``limit`` oldest deliveries (lowest ids), delete those delivered or failed
    before ``finished_before``; how many. A pending one is never deleted. A bounded read
    whatever the table's size, as the outbox's ``purge_done``. Executes; the caller
    commits."""
    return delete_oldest(
        session,
        WebhookDelivery.id,
        WebhookDelivery.finished_at,
        before=finished_before,
        limit=limit,
    )


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: list[WebhookDelivery]
    #: The cursor of the next (older) page, or None on the last page.
    next_cursor: str | None


def list_deliveries(
    session: Session,
    *,
    webhook_id: uuid.UUID,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
    state: DeliveryState | None = None,
) -> DeliveryPage:
    """One page of a hook's deliveries, newest first, keyset-paginated on the id (which
    grows with time): pages neither repeat nor skip rows while new ones arrive.
    ``InvalidInput`` for a bad limit or cursor."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid page", [FieldError("limit", f"1 to {MAX_PAGE}")])
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    if cursor is not None:
        query = query.where(WebhookDelivery.id < decode_id_cursor(_CURSOR_KIND, cursor))
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        rows, encode_id_cursor(_CURSOR_KIND, rows[-1].id) if more and rows else None
    )


def redeliver(
    session: Session,
    *,
    webhook_id: uuid.UUID,
    delivery_id: int,
    now: dt.datetime,
    lease: dt.timedelta,
) -> WebhookDelivery:
    """A new delivery of the same event (same event id, same body) to the same hook,
    pending, with attempts of its own (``redelivery_of`` names the original, whose
    record stays as it is). ``NotFound`` unless the delivery is the hook's;
    ``Conflict`` when the hook is disabled. Flushes; the caller commits, then sends it."""
    original = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id
        )
    )
    if original is None:
        raise NotFound(f"no delivery {delivery_id} of webhook {webhook_id}")
    enabled = session.scalar(select(Webhook.enabled).where(Webhook.id == webhook_id))
    if not enabled:
        raise Conflict("the webhook is disabled; enable it to deliver again")
    again = WebhookDelivery(
        webhook_id=webhook_id,
        event_id=original.event_id,
        event_type=original.event_type,
        body=original.body,
        state=DeliveryState.pending,
        attempts=0,
        next_attempt_at=now + lease,
        redelivery_of=original.id,
    )
    session.add(again)
    session.flush()
    return again


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; the database clock is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _age(age: dt.timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"
