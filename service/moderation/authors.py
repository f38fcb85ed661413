"""Authors as moderators see them, and their trust: trusted, normal, or banned (for ever
or until a time). Every change of trust is audited."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Author, Trust
from service.moderation import audit
from service.moderation.errors import FieldError, InvalidInput, NotFound
from service.moderation.types import Identity

#: Bans may end before this; a ban without an end lasts for ever.
LATEST_BAN_END = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def get_author(session: Session, *, site_id: int, author_id: int) -> Author:
    """The site's author with this id, or ``NotFound`` (another site's author too)."""
    author = session.scalar(select(Author).where(Author.id == author_id, Author.site_id == site_id))
    if author is None:
        raise NotFound(f"no author {author_id}")
    return author


def set_trust(
    session: Session,
    *,
    site_id: int,
    author_id: int,
    trust: Trust,
    until: dt.datetime | None,
    note: str | None,
    actor: Identity,
    now: dt.datetime,
) -> Author:
    """Make the author ``trust``; a ban may end at ``until`` (which must be in the future,
    before :data:`LATEST_BAN_END`, and is only for bans). Audited as ``ban`` (to banned,
    a ban's end changed included), ``unban`` (from banned to anything else) or ``trust``
    (between trusted and normal).
    The author's later comments are judged with the new trust by the worker at once; an
    expired ban counts as normal (``policy.effective_trust``)."""
    if until is not None:
        if trust is not Trust.banned:
            raise InvalidInput("invalid trust", [FieldError("until", "only a ban may have an end")])
        if until.tzinfo is None:
            raise InvalidInput(
                "invalid trust", [FieldError("until", "must carry a time zone (Z or +hh:mm)")]
            )
        if until <= now:
            raise InvalidInput("invalid trust", [FieldError("until", "must be in the future")])
        if until >= LATEST_BAN_END:
            # Stored in UTC, a later time could pass year 9999, which Python cannot read
            # back: every later read of the author (the worker's too) would fail.
            raise InvalidInput(
                "invalid trust",
                [FieldError("until", "must be before 9000-01-01 (leave it out to ban for ever)")],
            )
    author = session.scalar(
        select(Author).where(Author.id == author_id, Author.site_id == site_id).with_for_update()
    )
    if author is None:
        raise NotFound(f"no author {author_id}")
    before, before_until = author.trust, author.banned_until
    if trust is Trust.banned:
        action = "ban"
    elif before is Trust.banned:
        action = "unban"
    else:
        action = "trust"
    author.trust = trust
    # Stored in UTC: SQLite keeps the wall time and drops the offset, and its naive times
    # are read back as UTC, so a ban given with +02:00 would end two hours late there.
    author.banned_until = until.astimezone(dt.UTC) if until is not None else None
    session.flush()
    audit.record(
        session,
        site_id=site_id,
        actor=actor,
        action=action,
        target_type="author",
        target_id=str(author.id),
        from_state=before.value,
        to_state=trust.value,
        note=note,
        details={
            "until": author.banned_until.isoformat() if author.banned_until else None,
            "until_before": _utc(before_until).isoformat() if before_until else None,
        },
    )
    return author


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
