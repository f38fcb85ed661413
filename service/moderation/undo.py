"""Undoing a moderator's last action: the comments it moved go back where they were, and
an author whose trust it changed gets the trust they had.

Undo is itself a moderation action, never a deletion of history: it acts with the
action that leads back (``restore`` after ``trash``, ``trash`` after ``restore``, else the
action whose target is the status the comment came from: ``approve``, ``hold`` or
``spam``; ``hold`` for a comment that came from ``pending``, which nothing returns to)
at the version the undone action left, so that it is refused as stale when someone has
acted on the comment since. It is audited like any action (with the note ``undo``), and
the training label the undone action wrote is deleted: the moderator took that judgement
back, and retraining must not learn from it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Author, Label, Status, Trust
from service.moderation.actions import Action, Item, ItemResult, Outcome, act_on_comments
from service.moderation.authors import set_trust
from service.moderation.deliveries import DEFAULT_LEASE
from service.moderation.errors import NotFound, PreconditionFailed
from service.moderation.types import Identity

UNDO_NOTE = "undo"


@dataclass(frozen=True, slots=True)
class Done:
    """One comment an action moved: from ``from_status``, by ``action``, to ``version``;
    ``audit_id`` is the audit row it left (which names its label, if any)."""

    comment_id: uuid.UUID
    action: Action
    from_status: Status
    version: int
    audit_id: int


def inverse_action(done: Done) -> Action:
    """The action that takes a comment back to where ``done`` found it."""
    if done.action is Action.trash:
        return Action.restore
    if done.action is Action.restore:
        return Action.trash
    return {
        Status.approved: Action.approve,
        Status.held: Action.hold,
        Status.spam: Action.spam,
        Status.pending: Action.hold,
        Status.trash: Action.trash,
    }[done.from_status]


def undo_comment_actions(
    session: Session,
    *,
    site_id: int,
    done: Sequence[Done],
    actor: Identity,
    webhook_lease: dt.timedelta = DEFAULT_LEASE,
) -> list[ItemResult]:
    """Undo ``done`` (one action's comments); one result per comment, in order, as
    ``act_on_comments`` gives them: ``conflict`` when the comment has moved on since. The
    undoing actions write their webhook deliveries as any action does (``deliveries`` of
    each result; the caller sends them after the commit)."""
    groups: dict[Action, list[Done]] = defaultdict(list)
    for item in done:
        groups[inverse_action(item)].append(item)
    results: dict[uuid.UUID, ItemResult] = {}
    undone_audits: list[int] = []
    for action, items in groups.items():
        outcome = act_on_comments(
            session,
            site_id=site_id,
            items=[Item(i.comment_id, i.version) for i in items],
            actor=actor,
            action=action,
            note=UNDO_NOTE,
            webhook_lease=webhook_lease,
        )
        for item, result in zip(items, outcome, strict=True):
            results[item.comment_id] = result
            if result.outcome is Outcome.ok:
                undone_audits.append(item.audit_id)
    if undone_audits:
        session.execute(
            delete(Label)
            .where(Label.site_id == site_id, Label.audit_id.in_(undone_audits))
            .execution_options(synchronize_session=False)
        )
    return [results[item.comment_id] for item in done]


def undo_trust(
    session: Session,
    *,
    site_id: int,
    author_id: int,
    before: Trust,
    before_until: dt.datetime | None,
    after: Trust,
    after_until: dt.datetime | None,
    actor: Identity,
    now: dt.datetime,
) -> Author:
    """Give the author back ``before`` (and its ban end), if they are still at ``after``
    (and its ban end): else ``PreconditionFailed`` (someone changed it since). A ban whose
    end has passed meanwhile comes back as ``normal``, which is what it counts as."""
    current = session.execute(
        select(Author.trust, Author.banned_until)
        .where(Author.id == author_id, Author.site_id == site_id)
        .with_for_update()
    ).one_or_none()
    if current is None:
        raise NotFound(f"no author {author_id}")
    if (Trust(current.trust), _utc(current.banned_until)) != (after, _utc(after_until)):
        raise PreconditionFailed(
            f"the author's trust was changed since (now {Trust(current.trust).value})"
        )
    until = before_until if before is Trust.banned else None
    if until is not None and until <= now:
        before, until = Trust.normal, None
    return set_trust(
        session,
        site_id=site_id,
        author_id=author_id,
        trust=before,
        until=until,
        note=UNDO_NOTE,
        actor=actor,
        now=now,
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
