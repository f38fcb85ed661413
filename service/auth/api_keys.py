"""API keys: per-site credentials for server-to-server calls (a blog's backend, later the
Akismet-compatible API).

A key reads ``cg_<prefix>_<secret>``: ``prefix`` (16 hex digits) names the key and finds
its row, ``secret`` (32 random bytes, base64url) proves it. Only HMAC-SHA256 of the whole
key under a random per-key salt is stored, so a leaked table gives no usable key, and
keys do not depend on ``SECRET_KEY`` (rotating it leaves them valid). A key is shown
once, when made; it can be revoked; its last use is recorded to the minute.

It is sent as ``Authorization: Bearer cg_...`` or ``X-API-Key: cg_...``. The caller it
proves is the key itself: :data:`API_KEY_ISSUER` with the key's prefix as subject, no
roles, valid only at its own site.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from models import ApiKey, Site
from service.moderation.errors import FieldError, InvalidInput, NotFound, Unauthorized
from service.moderation.sites import get_site
from service.moderation.types import Identity

log = logging.getLogger(__name__)

KEY_PREFIX = "cg_"

#: The ``issuer`` of identities proven by an API key (never a URL an issuer could have).
API_KEY_ISSUER = "urn:commentguard:api-key"

#: ``last_used_at`` is written at most this often per key.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

_KEY = re.compile(r"^cg_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: never its secret."""

    prefix: str
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(row.prefix, row.name, row.created_at, row.last_used_at, row.revoked_at)


def is_api_key(credential: str) -> bool:
    """Whether ``credential`` is meant as an API key (it starts with ``cg_``)."""
    return credential.startswith(KEY_PREFIX)


def _digest(salt: str, key: str) -> str:
    return hmac.new(bytes.fromhex(salt), key.encode("ascii"), hashlib.sha256).hexdigest()


def create_api_key(session: Session, *, site_slug: str, name: str) -> tuple[KeyInfo, str]:
    """Make a key for the site: its listing and the key itself, which is not stored and
    cannot be shown again. ``NotFound`` for an unknown site, ``InvalidInput`` for an
    empty or over-long name."""
    if not name.strip() or len(name) > 200:
        raise InvalidInput("invalid key", [FieldError("name", "1 to 200 characters")])
    site = get_site(session, slug=site_slug)
    prefix = secrets.token_hex(8)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    row = ApiKey(site_id=site.id, prefix=prefix, name=name, salt=salt, digest=_digest(salt, key))
    session.add(row)
    session.flush()
    session.refresh(row)
    return KeyInfo.of(row), key


def list_api_keys(session: Session, *, site_slug: str) -> list[KeyInfo]:
    """The site's keys, revoked ones included, oldest first."""
    site = get_site(session, slug=site_slug)
    rows = session.scalars(
        select(ApiKey).where(ApiKey.site_id == site.id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [KeyInfo.of(row) for row in rows]


def revoke_api_key(session: Session, *, site_slug: str, prefix: str, now: dt.datetime) -> KeyInfo:
    """Revoke the site's key ``prefix`` (from then on it is refused); revoking a revoked
    key changes nothing. ``NotFound`` when the site has no such key."""
    site = get_site(session, slug=site_slug)
    row = session.scalar(
        select(ApiKey).where(ApiKey.site_id == site.id, ApiKey.prefix == prefix.strip())
    )
    if row is None:
        raise NotFound(f"site '{site_slug}' has no key {prefix}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return KeyInfo.of(row)


def check_api_key(session: Session, *, site_id: int, key: str, now: dt.datetime) -> Identity:
    """The identity ``key`` proves at site ``site_id``, recording its use.

    Raises ``Unauthorized`` (``invalid_token``) when the key is malformed, unknown,
    revoked, belongs to another site, or does not match; the reasons a caller is told
    are the same for all but the malformed, so keys cannot be probed.
    """
    row = _matching_key(session, key)
    if row is None or row.site_id != site_id:
        log.info("API key %s refused at site %s", _prefix_of(key), site_id)
        raise Unauthorized("the API key is not valid for this site", reason="invalid_api_key")
    _record_use(session, row.id, row.last_used_at, now)
    return _identity(row.prefix)


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """What a key proves when the key alone names the site (the Akismet API)."""

    site_id: int
    site_slug: str
    identity: Identity
    key_id: int
    last_used_at: dt.datetime | None


def site_of_api_key(
    session: Session, *, key: str, now: dt.datetime, record_use: bool = True
) -> KeyOwner:
    """The site ``key`` belongs to and the identity it proves there, recording its use
    unless ``record_use`` is false. ``Unauthorized`` as :func:`check_api_key` for a
    malformed, unknown, revoked or non-matching key."""
    row = _matching_key(session, key)
    if row is None:
        log.info("API key %s refused", _prefix_of(key))
        raise Unauthorized("the API key is not valid", reason="invalid_api_key")
    owner = KeyOwner(row.site_id, row.site_slug, _identity(row.prefix), row.id, row.last_used_at)
    if record_use:
        record_key_use(session, owner, now=now)
    return owner


def record_key_use(session: Session, owner: KeyOwner, *, now: dt.datetime) -> None:
    """Record that the key of ``owner`` (from :func:`site_of_api_key` with
    ``record_use=False``) was used at ``now``, for a caller that writes it after its own
    work."""
    _record_use(session, owner.key_id, owner.last_used_at, now)


# Built once: checking a key is on every keyed request's path.
_KEY_ROW = (
    select(
        ApiKey.id,
        ApiKey.site_id,
        ApiKey.prefix,
        ApiKey.salt,
        ApiKey.digest,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        Site.slug.label("site_slug"),
    )
    .join(Site, Site.id == ApiKey.site_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)
_RECORD_USE = (
    update(ApiKey)
    .where(
        ApiKey.id == bindparam("key_id"),
        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("used_before")),
    )
    .values(last_used_at=bindparam("now"))
)


def _matching_key(session: Session, key: str) -> Any:
    """The key's row (the columns of :data:`_KEY_ROW`) when ``key`` is well formed,
    known, matches its digest and is not revoked; else None. ``Unauthorized`` for a
    malformed key."""
    found = _KEY.match(key)
    if found is None:
        raise Unauthorized("the API key is malformed")
    row = session.connection().execute(_KEY_ROW, {"prefix": found.group(1)}).one_or_none()
    # Computed even for an unknown prefix, so that timing does not tell which exist.
    salt = row.salt if row is not None else "00" * 16
    matches = hmac.compare_digest(_digest(salt, key), row.digest if row is not None else "")
    if row is None or not matches or row.revoked_at is not None:
        return None
    return row


def _prefix_of(key: str) -> str:
    found = _KEY.match(key)
    return found.group(1) if found else "(malformed)"


def _record_use(session: Session, key_id: int, used: dt.datetime | None, now: dt.datetime) -> None:
    """Write the key's last use, unless the last use read (``used``) is less than
    :data:`LAST_USED_RESOLUTION` old (no round trip then); the UPDATE says so again, for
    a concurrent request."""
    if used is not None and used.tzinfo is None:
        used = used.replace(tzinfo=dt.UTC)  # SQLite hands timestamps back without a zone
    if used is not None and used >= now - LAST_USED_RESOLUTION:
        return
    session.connection().execute(
        _RECORD_USE, {"key_id": key_id, "used_before": now - LAST_USED_RESOLUTION, "now": now}
    )


def _identity(prefix: str) -> Identity:
    return Identity(issuer=API_KEY_ISSUER, subject=prefix, claims={"api_key": prefix})
