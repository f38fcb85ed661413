"""The development token issuer: mints access tokens locally so that ``make run`` needs no
identity provider.

Its tokens are ordinary RFC 9068 JWT access tokens (``typ: at+jwt``) signed with Ed25519
(``EdDSA``) by a key kept at ``settings.dev_key_path``. The verifier checks them on the
same code path as any issuer's, with this module's public key standing in for a JWKS,
and only while ``settings.dev_issuer`` is on (which ``Settings`` refuses in production).

It also logs moderators in to the web UI by OpenID Connect authorization code + PKCE:
:func:`check_authorization_request` validates what the UI sends to its authorization
endpoint (``/dev-issuer/authorize``, a login page that asks for a subject and a role and
no password), :func:`issue_code` makes the code that page redirects back with, and
:func:`redeem_code` exchanges it, with the PKCE verifier, for an ID token. The one client
is :data:`DEV_UI_CLIENT_ID`, a public client (PKCE, no secret) whose redirect URI the
endpoint holds to the app's own ``/ui/callback``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Mapping, Sequence
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


# --- the web UI's login: authorization code + PKCE ------------------------------------------

#: The web UI's client id at the development issuer: a public client (PKCE, no secret).
DEV_UI_CLIENT_ID = "commentguard-ui"
#: An authorization code is redeemable this long after it was issued.
CODE_SECONDS = 60
#: ID tokens live this long (the UI reads them once, at login).
ID_TOKEN_SECONDS = 300
#: The JOSE ``typ`` of a code: no verifier takes it for an access or ID token (it lacks
#: ``sub`` and ``aud`` too).
CODE_TYPE = "cg-dev-code+jwt"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


class AuthorizationError(ValueError):
    """An authorization or token request the development issuer refuses; ``error`` is
    the OAuth 2.0 error code (RFC 6749 4.1.2.1 and 5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def check_authorization_request(
    settings: Settings, params: Mapping[str, str], *, redirect_uri_allowed: Callable[[str], bool]
) -> dict[str, str]:
    """The parameters of an authorization request (``response_type=code``, ``client_id``
    :data:`DEV_UI_CLIENT_ID`, a ``redirect_uri`` that ``redirect_uri_allowed`` accepts,
    ``scope`` with ``openid``, ``state``, ``nonce``, an S256 ``code_challenge``), or
    :class:`AuthorizationError`. :class:`DevIssuerDisabled` while the issuer is off."""
    _require_enabled(settings)
    client_id = params.get("client_id", "")
    if client_id != DEV_UI_CLIENT_ID:
        raise AuthorizationError(
            "unauthorized_client", f"the only client here is '{DEV_UI_CLIENT_ID}'"
        )
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri_allowed(redirect_uri):
        raise AuthorizationError("invalid_request", "the redirect_uri is not this UI's callback")
    if params.get("response_type") != "code":
        raise AuthorizationError("unsupported_response_type", "only response_type=code")
    if "openid" not in params.get("scope", "").split():
        raise AuthorizationError("invalid_scope", "the scope must include openid")
    if params.get("code_challenge_method") != "S256" or not _CHALLENGE.fullmatch(
        params.get("code_challenge", "")
    ):
        raise AuthorizationError("invalid_request", "PKCE is required: an S256 code_challenge")
    for name in ("state", "nonce"):
        value = params.get(name, "")
        if not 1 <= len(value) <= 200:
            raise AuthorizationError("invalid_request", f"{name} is required")
    keys = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce")
    return {
        **{k: params[k] for k in keys},
        "code_challenge": params["code_challenge"],
        "code_challenge_method": "S256",
    }


def issue_code(
    settings: Settings,
    request: Mapping[str, str],
    *,
    subject: str,
    name: str | None = None,
    email: str | None = None,
    roles: Sequence[str] = (),
) -> str:
    """The authorization code for ``request`` (as :func:`check_authorization_request`
    returned it) once ``subject`` has logged in, granting ``roles`` (full claim values,
    ``commentguard:<site>:<role>``). A signed JWT holding what the ID token will say, bound
    to the client, the redirect URI and the PKCE challenge, valid :data:`CODE_SECONDS`."""
    _require_enabled(settings)
    if not subject.strip() or len(subject) > 255:
        raise AuthorizationError("invalid_request", "the subject must be 1 to 255 characters")
    key = load_or_create_key(settings.dev_key_path)
    now = int(time.time())
    user: dict[str, Any] = {"sub": subject, "roles": list(roles)}
    if name:
        user["name"] = name
    if email:
        user["email"] = email
    claims = {
        "iss": DEV_ISSUER,
        "client_id": request["client_id"],
        "redirect_uri": request["redirect_uri"],
        "code_challenge": request["code_challenge"],
        "nonce": request["nonce"],
        "scope": request["scope"],
        "iat": now,
        "exp": now + CODE_SECONDS,
        "jti": secrets.token_urlsafe(16),
        "user": user,
    }
    headers = {"typ": CODE_TYPE, "kid": public_jwk(key)["kid"]}
    return jwt.encode(claims, key, algorithm=DEV_ALGORITHM, headers=headers)


def redeem_code(
    settings: Settings, *, code: str, client_id: str, redirect_uri: str, code_verifier: str
) -> dict[str, Any]:
    """The token response (RFC 6749 5.1 with OpenID Connect's ``id_token``) for a code of
    :func:`issue_code`: refused (``invalid_grant``) when the code is not one of ours, has
    expired, or was issued to another client or redirect URI, or when ``code_verifier``
    does not hash to its challenge (RFC 7636 4.6).

    The ID token is signed like the access tokens (so the verifier checks it the same
    way), for ``aud`` = ``client_id``, with the login's ``nonce``, name, e-mail and roles
    (in ``settings.roles_claim``)."""
    _require_enabled(settings)
    key = load_or_create_key(settings.dev_key_path)
    try:
        header = jwt.get_unverified_header(code)
        claims = jwt.decode(
            code,
            key.public_key(),
            algorithms=[DEV_ALGORITHM],
            issuer=DEV_ISSUER,
            options={"require": ["exp", "iat", "iss"], "verify_aud": False},
        )
    except jwt.PyJWTError:
        raise AuthorizationError("invalid_grant", "the code is invalid or has expired") from None
    if header.get("typ") != CODE_TYPE:
        raise AuthorizationError("invalid_grant", "that is not an authorization code")
    if claims.get("client_id") != client_id or claims.get("redirect_uri") != redirect_uri:
        raise AuthorizationError("invalid_grant", "the code was issued to another client")
    if not _VERIFIER.fullmatch(code_verifier):
        raise AuthorizationError("invalid_grant", "the code_verifier is malformed")
    challenge = _b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())
    if not hmac.compare_digest(challenge, str(claims.get("code_challenge", ""))):
        raise AuthorizationError("invalid_grant", "the code_verifier does not match")
    user = claims["user"]
    now = int(time.time())
    id_claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "sub": user["sub"],
        "aud": client_id,
        "iat": now,
        "exp": now + ID_TOKEN_SECONDS,
        "auth_time": claims["iat"],
        "nonce": claims["nonce"],
    }
    for claim in ("name", "email"):
        if claim in user:
            id_claims[claim] = user[claim]
    if "email" in user:
        # The development login takes the address on trust; so does everything downstream.
        id_claims["email_verified"] = False
    if user.get("roles"):
        roles = list(user["roles"])
        id_claims[settings.roles_claim] = (
            " ".join(roles) if settings.roles_claim == "scope" else roles
        )
    id_token = jwt.encode(
        id_claims,
        key,
        algorithm=DEV_ALGORITHM,
        headers={"typ": "JWT", "kid": public_jwk(key)["kid"]},
    )
    return {
        "token_type": "Bearer",
        "id_token": id_token,
        "expires_in": ID_TOKEN_SECONDS,
        "scope": claims["scope"],
    }
