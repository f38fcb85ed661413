"""The development token issuer: mints access tokens locally so that ``make run`` needs no
identity provider.

Its tokens are ordinary RFC 9068 JWT access tokens (``typ: at+jwt``) signed with Ed25519
(``EdDSA``) by a key kept at ``settings.dev_key_path``. The verifier checks them on the
same code path as any issuer's, with this module's public key standing in for a JWKS,
and only while ``settings.dev_issuer`` is on (which ``Settings`` refuses in production).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.auth.roles import Role
from service.settings import Settings

log = logging.getLogger(__name__)

#: The development issuer's identifier. ``.invalid`` is reserved (RFC 2606): it can
#: never resolve, so no real issuer can share it and nothing ever fetches from it.
DEV_ISSUER = "https://dev.commentguard.invalid"

DEV_ALGORITHM = "EdDSA"

#: The ``client_id`` claim RFC 9068 requires; names the CLI that minted the token.
DEV_CLIENT_ID = "commentguard-dev-cli"

#: Longest lifetime a development token may be given: a day.
MAX_TTL_SECONDS = 24 * 3600


class DevIssuerDisabled(RuntimeError):
    """The development issuer was used while ``settings.dev_issuer`` is off."""


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key stored at ``path``, created (mode 0600, parent directories
    as needed) when absent.

    Two processes creating it at once end up with the same key: the key is written to a
    private temporary file which is then hard-linked into place, and linking fails for
    the loser, who reads the winner's key.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> Ed25519PrivateKey:
    data = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); it signs dev tokens", path, mode)
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    """The public half of ``key`` as a JWK, with its RFC 7638 thumbprint as ``kid``."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    # RFC 7638: the required members, sorted, no whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    kid = _b64url(hashlib.sha256(canonical).digest())
    return {**members, "kid": kid, "alg": DEV_ALGORITHM, "use": "sig"}


def dev_jwks(settings: Settings) -> dict[str, Any]:
    """The development issuer's JWK Set (its key is created if absent)."""
    _require_enabled(settings)
    return {"keys": [public_jwk(load_or_create_key(settings.dev_key_path))]}


def mint_dev_token(
    settings: Settings,
    *,
    subject: str,
    site: str,
    name: str | None = None,
    email: str | None = None,
    ttl_seconds: int = 3600,
    roles: Sequence[str] = (),
) -> str:
    """A signed access token from :data:`DEV_ISSUER` for ``subject`` at site ``site``.

    The token's ``aud`` is the site's slug (the verifier accepts the slug as an audience
    for development tokens only), ``exp`` is ``ttl_seconds`` from now, and ``name``,
    ``email`` and ``roles`` are included when given. ``roles`` go into the claim the
    service reads roles from (``settings.roles_claim``; a space-separated string for
    ``scope``); a bare role name (``moderator``, ``operator``, ``admin``) is written as
    the full value granting it at ``site`` (``commentguard:<site>:moderator``), any other
    value as given. Raises :class:`DevIssuerDisabled`
    when ``settings.dev_issuer`` is off and ``ValueError`` for an empty subject or site
    or a lifetime outside 1 s to :data:`MAX_TTL_SECONDS`.
    """
    _require_enabled(settings)
    if not subject.strip():
        raise ValueError("the subject must not be empty")
    if not site.strip():
        raise ValueError("the site must not be empty")
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"the lifetime must be between 1 and {MAX_TTL_SECONDS} seconds")
    key = load_or_create_key(settings.dev_key_path)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "sub": subject,
        "aud": site,
        "client_id": DEV_CLIENT_ID,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    }
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
    if roles:
        values = [
            f"{settings.roles_prefix}:{site}:{role}" if role in _ROLE_NAMES else role
            for role in roles
        ]
        claims[settings.roles_claim] = (
            " ".join(values) if settings.roles_claim == "scope" else values
        )
    headers = {"typ": "at+jwt", "kid": public_jwk(key)["kid"]}
    return jwt.encode(claims, key, algorithm=DEV_ALGORITHM, headers=headers)


_ROLE_NAMES = frozenset(role.value for role in Role)


def _require_enabled(settings: Settings) -> None:
    if not settings.dev_issuer:
        raise DevIssuerDisabled(
            "the development issuer is off; set COMMENTGUARD_DEV_ISSUER=true (never in production)"
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
