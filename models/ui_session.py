"""A moderator's web UI session, kept on the server: the browser holds only a random
cookie, and this row is found by that cookie's SHA-256 (so a copy of the table gives no
usable cookie).

A row starts as a pending login (``login`` holds the OpenID Connect ``state``, ``nonce``
and PKCE ``code_verifier`` until the issuer redirects back), and is replaced by a new
row, under a new cookie, once the login succeeds (the session id is rotated at login).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class UiSession(Timestamped, Base):
    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_expires_at", "expires_at"),)

    #: SHA-256 (hex) of the cookie's value.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    #: Who logged in (empty while the login is pending): the ID token's issuer and subject.
    issuer: Mapped[str | None] = mapped_column(String(512))
    subject: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    #: The roles the login's claims granted at the site (``moderator``, ``admin``, ...).
    roles: Mapped[list[str]] = mapped_column(default=list)
    #: The synchroniser token every state-changing request must carry.
    csrf_token: Mapped[str] = mapped_column(String(64))
    #: A pending login: ``state``, ``nonce``, ``code_verifier``, ``next``.
    login: Mapped[dict[str, Any] | None]
    #: The ID token, kept as ``id_token_hint`` for the issuer's logout.
    id_token: Mapped[str | None] = mapped_column(Text)
    #: What the moderator did last, so that it can be undone.
    last_action: Mapped[dict[str, Any] | None]
    last_seen_at: Mapped[dt.datetime]
    #: The session ends here whatever its activity (the idle limit may end it sooner).
    expires_at: Mapped[dt.datetime]
