"""Moderators' actions on comments: one comment or up to 500 at once, each conditional
on the version the moderator saw, each leaving an audit row and (when it judges the
comment) a training label, in the caller's transaction.

The rules:

* Transitions. ``approve`` and ``ham`` -> approved, ``hold`` -> held, ``spam`` -> spam,
  ``trash`` -> trash, each from any other status except trash; ``restore`` (from trash
  only) -> the status the comment had before it was trashed, read from the audit trail
  (held when unknown, or when it was pending: the worker never classifies a comment that
  has left pending, so it would stay pending for ever). Anything else, including an
  action to the status the comment already has, is an invalid transition (409).
* Versions. The caller names the version it acted on (``If-Match``); the comment rows
  are locked in id order and the update is ``... WHERE id = ? AND version = ?`` with
  ``version + 1``: of two moderators acting on one version exactly one wins, the other
  gets a conflict (412), and only the winner leaves an audit row.
* Labels: ``approve`` and ``ham`` write a ``ham`` label, ``spam`` a ``spam`` label.
  ``hold``, ``trash`` and ``restore`` write none: they say nothing about whether the text
  is spam (a held comment awaits a judgement, a trashed one is unwanted for any reason,
  a restored one gets back the judgement it had), and a label must mean spam or ham.
  Every action writes an audit row.
* The discard flag is cleared by ``approve``, ``ham`` and ``hold`` (a comment shown or
  queued for a person must not be dropped unseen); the others leave it.
* Author counts: ``authors.approved_count`` and ``spam_count`` count the author's
  comments that are approved (or spam) now. The worker adds one for each verdict; an
  action takes one from the count of the status the comment leaves and adds one to the
  count of the status it enters, in SQL, so concurrent writers lose nothing.
* Webhooks: where the site has hooks subscribed to ``comment.moderated``, each comment
  moved gets its delivery rows in the same transaction (one statement for all of them);
  the caller sends ``ItemResult.deliveries`` after its commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, false, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Author,
    Comment,
    Label,
    LabelSource,
    LabelValue,
    Site,
    Status,
    WebhookEvent,
)
from service.moderation.comments import MODERATOR, comment_etag
from service.moderation.deliveries import DEFAULT_LEASE, Event, hooks_exist, new_event
from service.moderation.deliveries import record as record_deliveries
from service.moderation.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from service.moderation.types import Identity

#: The most comments one bulk action may name.
MAX_BULK = 500


class Action(enum.StrEnum):
    approve = "approve"
    hold = "hold"
    spam = "spam"
    ham = "ham"
    trash = "trash"
    restore = "restore"


class Outcome(enum.StrEnum):
    ok = "ok"
    not_found = "not_found"
    conflict = "conflict"
    invalid_transition = "invalid_transition"


_JUDGED = (Status.pending, Status.approved, Status.held, Status.spam)
#: Where each action (but restore) takes a comment, and from which statuses it may.
TARGET: dict[Action, Status] = {
    Action.approve: Status.approved,
    Action.ham: Status.approved,
    Action.hold: Status.held,
    Action.spam: Status.spam,
    Action.trash: Status.trash,
}
ALLOWED_FROM: dict[Action, frozenset[Status]] = {
    **{action: frozenset(_JUDGED) - {target} for action, target in TARGET.items()},
    Action.restore: frozenset({Status.trash}),
}
#: The training label each action writes; actions not listed write none.
LABELS: dict[Action, LabelValue] = {
    Action.approve: LabelValue.ham,
    Action.ham: LabelValue.ham,
    Action.spam: LabelValue.spam,
}
CLEARS_DISCARD = frozenset({Action.approve, Action.ham, Action.hold})
#: What a restore goes back to when the audit trail does not say, or says ``pending``.
RESTORE_DEFAULT = Status.held


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What an action did to one comment.

    ``ok``: ``status`` and ``version`` are the new ones, ``audit_id`` the audit row,
    ``label`` the label written (or None). ``conflict``: ``version`` is the current one.
    ``invalid_transition``: ``status`` is the current one. ``not_found``: nothing else.
    """

    comment_id: uuid.UUID
    outcome: Outcome
    status: Status | None = None
    from_status: Status | None = None
    version: int | None = None
    discard: bool | None = None
    audit_id: int | None = None
    label: LabelValue | None = None
    detail: str | None = None
    #: ``ok``: the webhook deliveries written for it, to send after the commit.
    deliveries: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """One comment to act on, and the version the moderator saw (None: whatever it is)."""

    comment_id: uuid.UUID
    version: int | None = None


def require_moderator(session: Session, *, comment: Comment, actor: Identity) -> None:
    """Pass a moderator of the comment's site (``actor`` authenticated there). The
    comment's author, who may read it, gets ``Forbidden``; anyone else ``NotFound``, as
    for reading, so that ids cannot be probed."""
    if MODERATOR in actor.roles:
        return
    author = session.get_one(Author, comment.author_id)
    if (author.issuer, author.subject) == (actor.issuer, actor.subject):
        raise Forbidden("acting on comments needs the moderator role")
    raise NotFound(f"no comment {comment.id}")


def act_on_comment(
    session: Session,
    *,
    site_id: int,
    comment_id: uuid.UUID,
    versions: frozenset[int] | None,
    actor: Identity,
    action: Action,
    note: str | None,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> ItemResult:
    """Act on one comment of the site if it is at one of ``versions`` (None: at whatever
    version it is, as ``If-Match: *``): the result on success; else ``NotFound``,
    ``PreconditionFailed`` (another version, with the current ETag) or ``Conflict`` (not
    allowed from the current status). See the module's rules."""
    if versions is not None and len(versions) == 1:
        (version,) = versions
    else:
        # Several versions, none or any: lock the row and read the one it is at, so that
        # the conditional update below acts on that version only.
        current = session.scalar(
            select(Comment.version)
            .where(Comment.site_id == site_id, Comment.id == comment_id)
            .with_for_update()
        )
        if current is None:
            raise NotFound(f"no comment {comment_id}")
        if versions is not None and current not in versions:
            raise PreconditionFailed(
                f"the comment is at version {current}, which If-Match does not name; read it again",
                etag=comment_etag(current),
            )
        version = current
    (result,) = act_on_comments(
        session,
        site_id=site_id,
        items=[Item(comment_id, version)],
        actor=actor,
        action=action,
        note=note,
        webhook_lease=webhook_lease,
    )
    if result.outcome is Outcome.not_found:
        raise NotFound(f"no comment {comment_id}")
    if result.outcome is Outcome.conflict:
        assert result.version is not None
        raise PreconditionFailed(
            f"the comment is at version {result.version}, not {version}; read it again",
            etag=comment_etag(result.version),
        )
    if result.outcome is Outcome.invalid_transition:
        raise Conflict(result.detail or "not allowed from the comment's status")
    return result


def act_on_comments(
    session: Session,
    *,
    site_id: int,
    items: Sequence[Item],
    actor: Identity,
    action: Action,
    note: str | None,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> list[ItemResult]:
    """Act on up to :data:`MAX_BULK` comments of the site (the caller has checked that
    ``actor`` moderates it); one result per item, in order. Comments of other sites are
    ``not_found``. A handful of statements whatever the number of items: one locking
    read, one read of the audit trail for a restore, one update per target status, one
    update per author touched, and one insert each for the audit rows and the labels
    (and the webhook deliveries, when the site has hooks, due ``webhook_lease`` from
    now). Executes statements; the caller commits once."""
    ids = [item.comment_id for item in items]
    if len(ids) > MAX_BULK:
        raise InvalidInput("too many comments", [FieldError("ids", f"at most {MAX_BULK}")])
    if len(set(ids)) != len(ids):
        raise InvalidInput("a comment is named twice", [FieldError("ids", "must be distinct")])

    rows = {
        row.id: row
        for row in session.execute(
            select(
                Comment.id,
                Comment.status,
                Comment.version,
                Comment.discard,
                Comment.author_id,
                Comment.content,
                Comment.author_name,
                Comment.author_email,
                Comment.author_url,
                Comment.permalink,
                Comment.thread,
                # For the webhooks' events: evaluated once, not per row.
                select(Site.slug).where(Site.id == site_id).scalar_subquery().label("site_slug"),
                hooks_exist(site_id, WebhookEvent.moderated).label("has_hooks"),
            )
            .where(Comment.site_id == site_id, Comment.id.in_(ids))
            # Locked in one order, so that two bulk actions cannot deadlock each other.
            .order_by(Comment.id)
            .with_for_update()
        )
    }
    restored = (
        _before_trash(session, [i for i in ids if i in rows]) if action is Action.restore else {}
    )

    results: dict[uuid.UUID, ItemResult] = {}
    chosen: dict[Status, list[tuple[uuid.UUID, int]]] = defaultdict(list)
    for item in items:
        row = rows.get(item.comment_id)
        if row is None:
            results[item.comment_id] = ItemResult(item.comment_id, Outcome.not_found)
            continue
        current = Status(row.status)
        if item.version is not None and item.version != row.version:
            results[item.comment_id] = ItemResult(
                item.comment_id, Outcome.conflict, status=current, version=row.version
            )
            continue
        if current not in ALLOWED_FROM[action]:
            results[item.comment_id] = ItemResult(
                item.comment_id,
                Outcome.invalid_transition,
                status=current,
                version=row.version,
                detail=f"cannot {action.value} a comment that is {current.value}",
            )
            continue
        target = TARGET.get(action) or restored.get(item.comment_id, RESTORE_DEFAULT)
        chosen[target].append((item.comment_id, row.version))

    moved: dict[uuid.UUID, tuple[Status, int, bool]] = {}
    for target, pairs in chosen.items():
        statement = (
            update(Comment)
            .where(Comment.site_id == site_id, tuple_(Comment.id, Comment.version).in_(pairs))
            .values(
                status=target,
                discard=false() if action in CLEARS_DISCARD else Comment.discard,
                version=Comment.version + 1,
                updated_at=func.now(),
            )
            .returning(Comment.id, Comment.version, Comment.discard)
            .execution_options(synchronize_session=False)
        )
        for cid, new_version, discard in session.execute(statement):
            moved[cid] = (target, new_version, discard)
        for cid, version in pairs:
            if cid not in moved:
                # Unreachable while the rows are locked above; kept so that a change of
                # locking can never turn a lost race into a silent double action.
                results[cid] = ItemResult(cid, Outcome.conflict, version=version)

    if moved:
        _count_on_authors(session, rows=rows, moved=moved)
        done = _audit_and_label(session, site_id, rows, moved, actor, action, note)
        if next(iter(rows.values())).has_hooks:
            done = _with_deliveries(
                session, site_id, rows, done, actor, action, note, webhook_lease
            )
        results.update(done)
    for entity in list(session.identity_map.values()):
        if isinstance(entity, Comment) and entity.id in moved:
            session.expire(entity)
    return [results[i] for i in ids]


def _with_deliveries(
    session: Session,
    site_id: int,
    rows: dict[uuid.UUID, Any],
    done: dict[uuid.UUID, ItemResult],
    actor: Identity,
    action: Action,
    note: str | None,
    lease: dt.timedelta,
) -> dict[uuid.UUID, ItemResult]:
    """``done`` with the ``comment.moderated`` deliveries of each comment, written in
    one statement."""
    now = dt.datetime.now(dt.UTC)
    events: dict[uuid.UUID, Event] = {}
    for cid, result in done.items():
        row = rows[cid]
        assert result.status is not None
        assert result.from_status is not None
        events[cid] = new_event(
            site_id=site_id,
            site=row.site_slug,
            event_type=WebhookEvent.moderated,
            occurred_at=now,
            data={
                "comment": {
                    "id": str(cid),
                    "thread": row.thread,
                    "status": result.status.value,
                    "previous_status": result.from_status.value,
                    "discard": result.discard,
                    "version": result.version,
                },
                "action": {
                    "action": action.value,
                    "from": result.from_status.value,
                    "to": result.status.value,
                    "note": note,
                    "label": result.label.value if result.label else None,
                    "audit_id": result.audit_id,
                    "actor": {"issuer": actor.issuer, "subject": actor.subject},
                },
            },
        )
    written = record_deliveries(
        session, event_type=WebhookEvent.moderated, events=list(events.values()), due=now + lease
    )
    return {
        cid: dataclasses.replace(result, deliveries=tuple(written.get(events[cid].event_id, ())))
        for cid, result in done.items()
    }


def _before_trash(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, Status]:
    """For each comment, the status it had before its latest trashing, where the audit
    trail knows one other than pending."""
    if not ids:
        return {}
    latest = (
        select(func.max(AuditEntry.id))
        .where(AuditEntry.comment_id.in_(ids), AuditEntry.to_state == Status.trash.value)
        .group_by(AuditEntry.comment_id)
    )
    found: dict[uuid.UUID, Status] = {}
    for cid, before in session.execute(
        select(AuditEntry.comment_id, AuditEntry.from_state).where(AuditEntry.id.in_(latest))
    ):
        known = before is not None and before in Status.__members__
        if cid is not None and known and before != Status.pending.value:
            found[cid] = Status(str(before))
    return found


def _count_on_authors(
    session: Session,
    *,
    rows: dict[uuid.UUID, Any],
    moved: dict[uuid.UUID, tuple[Status, int, bool]],
) -> None:
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for cid, (target, _, _) in moved.items():
        row = rows[cid]
        before = Status(row.status)
        delta = deltas[row.author_id]
        delta[0] += (target is Status.approved) - (before is Status.approved)
        delta[1] += (target is Status.spam) - (before is Status.spam)
    params = [
        {"a_id": author_id, "a_approved": approved, "a_spam": spam}
        for author_id, (approved, spam) in sorted(deltas.items())
        if approved or spam
    ]
    if not params:
        return
    approved_count = Author.approved_count + bindparam("a_approved")
    spam_count = Author.spam_count + bindparam("a_spam")
    session.connection().execute(
        update(Author)
        .where(Author.id == bindparam("a_id"))
        .values(
            # Never below zero: counts from before this rule (or a manual fix) may be short.
            approved_count=case((approved_count < 0, 0), else_=approved_count),
            spam_count=case((spam_count < 0, 0), else_=spam_count),
        ),
        params,
    )


def _audit_and_label(
    session: Session,
    site_id: int,
    rows: dict[uuid.UUID, Any],
    moved: dict[uuid.UUID, tuple[Status, int, bool]],
    actor: Identity,
    action: Action,
    note: str | None,
) -> dict[uuid.UUID, ItemResult]:
    order = list(moved)
    audit_rows = [
        {
            "site_id": site_id,
            "actor_issuer": actor.issuer,
            "actor_subject": actor.subject,
            "action": action.value,
            "target_type": "comment",
            "target_id": str(cid),
            "comment_id": cid,
            "from_state": rows[cid].status,
            "to_state": moved[cid][0].value,
            "note": note,
            "details": {"version": moved[cid][1]},
        }
        for cid in order
    ]
    audit_ids = list(
        session.scalars(
            insert(AuditEntry).returning(AuditEntry.id, sort_by_parameter_order=True),
            audit_rows,
        )
    )
    label = LABELS.get(action)
    if label is not None:
        session.execute(
            insert(Label),
            [
                {
                    "site_id": site_id,
                    "comment_id": cid,
                    "source": LabelSource.moderator,
                    "label": label,
                    "content": rows[cid].content,
                    "author_name": rows[cid].author_name,
                    "author_email": rows[cid].author_email,
                    "author_url": rows[cid].author_url,
                    "permalink": rows[cid].permalink,
                    "actor_issuer": actor.issuer,
                    "actor_subject": actor.subject,
                    "audit_id": audit_id,
                }
                for cid, audit_id in zip(order, audit_ids, strict=True)
            ],
        )
    return {
        cid: ItemResult(
            cid,
            Outcome.ok,
            status=moved[cid][0],
            from_status=Status(rows[cid].status),
            version=moved[cid][1],
            discard=moved[cid][2],
            audit_id=audit_id,
            label=label,
        )
        for cid, audit_id in zip(order, audit_ids, strict=True)
    }
