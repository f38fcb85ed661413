"""The moderators' web UI sessions, kept on the server (``models/ui_session.py``).

The browser holds a random token (256 bits) in a cookie; the row is found by the token's
SHA-256. A session has two lives: a pending login (the OpenID Connect ``state``, ``nonce``
and PKCE verifier, for :data:`LOGIN_SECONDS`), then, once the issuer has vouched for the
moderator, a logged-in session under a new token (rotated at login, so that a token
planted before the login is worth nothing after it). A session ends
``idle_seconds`` after its last request, ``max_seconds`` after its login, or at logout.
Functions take ``(session, *, ...)`` and never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models import UiSession
from service.moderation.types import Identity

#: How long a login may take at the issuer before its pending state is dropped.
LOGIN_SECONDS = 600
#: ``last_seen_at`` is written at most this often, so that reading pages is not a write
#: per request.
TOUCH_SECONDS = 60


@dataclass(frozen=True, slots=True)
class UiSessionInfo:
    """One session as the UI uses it, detached from the database session."""

    id: str
    site_id: int
    csrf_token: str
    issuer: str | None
    subject: str | None
    name: str | None
    email: str | None
    roles: frozenset[str]
    login: dict[str, Any] | None
    id_token: str | None = field(repr=False)
    last_action: dict[str, Any] | None
    last_seen_at: dt.datetime
    expires_at: dt.datetime

    @property
    def logged_in(self) -> bool:
        return self.subject is not None and self.issuer is not None

    def identity(self) -> Identity:
        """The moderator, as the domain's actions take an actor."""
        assert self.issuer is not None
        assert self.subject is not None
        return Identity(
            issuer=self.issuer,
            subject=self.subject,
            name=self.name,
            email=self.email,
            roles=self.roles,
        )


def session_id(token: str) -> str:
    """The row id of a cookie token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_login(session: Session, *, site_id: int, login: dict[str, Any], now: dt.datetime) -> str:
    """A pending login for the site holding ``login``; its cookie token. Expired rows of
    every session are deleted on the way (a login is rare enough to pay for it)."""
    purge_expired(session, now=now)
    token = secrets.token_urlsafe(32)
    session.add(
        UiSession(
            id=session_id(token),
            site_id=site_id,
            csrf_token=secrets.token_urlsafe(32),
            login=login,
            roles=[],
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=LOGIN_SECONDS),
        )
    )
    session.flush()
    return token


def find_ui_session(
    session: Session, *, token: str, now: dt.datetime, idle_seconds: int
) -> UiSessionInfo | None:
    """The live session of a cookie token, or None (unknown, expired, idle too long).
    Refreshes its ``last_seen_at`` (at most once per :data:`TOUCH_SECONDS`)."""
    if not token or len(token) > 100:
        return None
    row = session.get(UiSession, session_id(token))
    if row is None:
        return None
    info = _info(row)
    idle_limit = info.last_seen_at + dt.timedelta(seconds=idle_seconds)
    if now >= info.expires_at or (info.logged_in and now >= idle_limit):
        return None
    if info.logged_in and now - info.last_seen_at >= dt.timedelta(seconds=TOUCH_SECONDS):
        row.last_seen_at = now
        session.flush()
    return info


def complete_login(
    session: Session,
    *,
    pending_id: str,
    identity: Identity,
    roles: frozenset[str],
    id_token: str | None,
    now: dt.datetime,
    max_seconds: int,
) -> str:
    """Replace the pending login ``pending_id`` by a logged-in session of ``identity``
    with ``roles`` at the same site, under a new token (returned) and a new CSRF token."""
    pending = session.get_one(UiSession, pending_id)
    site_id = pending.site_id
    session.delete(pending)
    token = secrets.token_urlsafe(32)
    session.add(
        UiSession(
            id=session_id(token),
            site_id=site_id,
            issuer=identity.issuer,
            subject=identity.subject,
            name=identity.name,
            email=identity.email,
            roles=sorted(roles),
            csrf_token=secrets.token_urlsafe(32),
            login=None,
            id_token=id_token,
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=max_seconds),
        )
    )
    session.flush()
    return token


def end_ui_session(session: Session, *, id: str) -> None:
    """Delete the session (logout, or a pending login that failed)."""
    session.execute(delete(UiSession).where(UiSession.id == id))


def remember_action(session: Session, *, id: str, action: dict[str, Any] | None) -> None:
    """Keep ``action`` as the session's last action (None forgets it), for undo."""
    session.execute(update(UiSession).where(UiSession.id == id).values(last_action=action))


def purge_expired(session: Session, *, now: dt.datetime) -> int:
    """Delete the sessions past their absolute end; how many. (Idle ones are refused when
    presented and go with their absolute end.)"""
    result = session.execute(
        delete(UiSession).where(UiSession.expires_at <= now).returning(UiSession.id)
    )
    return len(result.all())


def count_sessions(session: Session, *, site_id: int) -> int:
    """The site's rows (pending logins included); for tests and operators."""
    return len(session.scalars(select(UiSession.id).where(UiSession.site_id == site_id)).all())


def _info(row: UiSession) -> UiSessionInfo:
    return UiSessionInfo(
        id=row.id,
        site_id=row.site_id,
        csrf_token=row.csrf_token,
        issuer=row.issuer,
        subject=row.subject,
        name=row.name,
        email=row.email,
        roles=frozenset(row.roles or ()),
        login=row.login,
        id_token=row.id_token,
        last_action=row.last_action,
        last_seen_at=_utc(row.last_seen_at),
        expires_at=_utc(row.expires_at),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
