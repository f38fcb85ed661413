"""The audit trail: writing the rows every person's action leaves, and reading them back
newest first with keyset pagination."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from models import AuditEntry
from service.moderation.cursors import decode_id_cursor, encode_id_cursor
from service.moderation.errors import FieldError, InvalidInput
from service.moderation.types import Identity

#: The most rows one page of the audit trail holds.
MAX_PAGE = 200
_CURSOR_KIND = "a"
"""The letter of the audit trail's page cursors (see :func:`encode_id_cursor`)."""


def record(
    session: Session,
    *,
    site_id: int | None,
    actor: Identity,
    action: str,
    target_type: str,
    target_id: str,
    from_state: str | None,
    to_state: str | None,
    note: str | None,
    details: dict[str, Any] | None = None,
    comment_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Insert one audit row (in the caller's transaction) and return it, id and time set."""
    return session.scalars(
        insert(AuditEntry)
        .values(
            site_id=site_id,
            actor_issuer=actor.issuer,
            actor_subject=actor.subject,
            action=action,
            target_type=target_type,
            target_id=target_id,
            comment_id=comment_id,
            from_state=from_state,
            to_state=to_state,
            note=note,
            details=details or {},
        )
        .returning(AuditEntry)
    ).one()


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    #: The cursor of the next (older) page, or None on the last page.
    next_cursor: str | None


def list_audit(
    session: Session,
    *,
    site_id: int,
    limit: int = 50,
    cursor: str | None = None,
    action: str | None = None,
    actor_subject: str | None = None,
    comment_id: uuid.UUID | None = None,
) -> AuditPage:
    """One page of the site's audit trail, newest first, keyset-paginated on
    ``(created_at, id)`` (the index ``ix_audit_log_site_created``): a page never repeats
    or skips a row when new rows arrive meanwhile. ``InvalidInput`` for a bad cursor or
    limit."""
    errors: list[FieldError] = []
    if not 1 <= limit <= MAX_PAGE:
        errors.append(FieldError("limit", f"1 to {MAX_PAGE}"))
    for name, value in (("action", action), ("actor", actor_subject)):
        if value is not None and "\x00" in value:
            errors.append(FieldError(name, "must not contain NUL characters"))
    if errors:
        raise InvalidInput("invalid page", errors)
    query = select(AuditEntry).where(AuditEntry.site_id == site_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if actor_subject is not None:
        query = query.where(AuditEntry.actor_subject == actor_subject)
    if comment_id is not None:
        query = query.where(AuditEntry.comment_id == comment_id)
    if cursor is not None:
        last_id = decode_id_cursor(_CURSOR_KIND, cursor)
        # The database compares its own timestamp of the last row seen: no round trip of a
        # timestamp through text (SQLite keeps them as text, at whole seconds).
        last_at = select(AuditEntry.created_at).where(AuditEntry.id == last_id).scalar_subquery()
        query = query.where(
            or_(
                AuditEntry.created_at < last_at,
                and_(AuditEntry.created_at == last_at, AuditEntry.id < last_id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, encode_id_cursor(_CURSOR_KIND, rows[-1].id) if more and rows else None)
