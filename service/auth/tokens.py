"""Bearer tokens: reading them from the ``Authorization`` header and verifying them.

A token is accepted when it is a JWT signed (with one of :data:`ALGORITHMS`) by a key its
issuer publishes, the issuer is one the site trusts, its audience is one the site
accepts, and it is within its lifetime. The result is an :class:`Identity`; every
refusal is an :class:`Unauthorized` whose detail says why in words and never quotes the
token.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.types import Options

from service.auth import dev_issuer
from service.auth.claims import claimed_identity
from service.auth.dev_issuer import DEV_ISSUER
from service.auth.jwks import (
    ALGORITHMS,
    IssuerKeys,
    KeyAlgorithmMismatch,
    KeySet,
    KeysUnavailable,
    UnknownKey,
    parse_jwks,
    remote_loader,
)
from service.moderation.errors import ServiceUnavailable, Unauthorized, UnauthorizedReason
from service.moderation.types import Identity
from service.settings import Settings

log = logging.getLogger(__name__)

#: Clock skew tolerated between the issuer and this service for ``exp``, ``nbf``, ``iat``.
LEEWAY_SECONDS = 30

#: Claims every accepted token carries.
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud")

#: Longer than any token a real issuer sends; refused before any parsing.
MAX_TOKEN_LENGTH = 16 * 1024

#: Distinct verified tokens remembered per process; the least recently used go first.
TOKEN_CACHE_ENTRIES = 10_000

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(authorization_header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive).

    Following RFC 6750 §3.1, a request without credentials (no header, an empty one, or
    another scheme such as ``Basic``) raises ``Unauthorized`` with ``error=None``; a
    Bearer header without exactly one well-formed token raises it with
    ``error="invalid_request"``.
    """
    header = (authorization_header or "").strip()
    if not header:
        raise Unauthorized(
            "send an access token: Authorization: Bearer <token>", error=None, reason="missing"
        )
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized(
            "only the Bearer scheme is accepted: Authorization: Bearer <token>",
            error=None,
            reason="missing",
        )
    parts = rest.split()
    if len(parts) != 1 or not _B64TOKEN.fullmatch(parts[0]):
        raise Unauthorized(
            "the Authorization header must be 'Bearer' and one token", error="invalid_request"
        )
    return parts[0]


class TokenVerifier:
    """Verifies bearer tokens against the keys their issuers publish.

    Built once per process from ``settings`` and shared (it is thread-safe): it keeps
    each trusted issuer's keys, found by OpenID Connect discovery
    (``{iss}/.well-known/openid-configuration`` → ``jwks_uri``), fetched over https (or
    plain http to a loopback address) within ``http_timeout`` seconds (default
    ``settings.dependency_timeout_seconds``), reloaded after ``jwks_max_age`` seconds
    (default ``settings.jwks_max_age_seconds``), and never fetched more than once per
    ``jwks_min_refresh`` seconds (default ``settings.jwks_min_refresh_seconds``) per issuer.
    ``clock`` (monotonic seconds) drives only that cache; token lifetimes are checked
    against the wall clock.

    A token it accepted is accepted again, without parsing or checking its signature,
    until its ``exp`` or ``token_cache_seconds`` (default ``settings.token_cache_seconds``;
    0 turns this off) after it was checked, whichever comes first, when presented with
    the same trusted issuers, audiences, site and required type; with any other, it is
    checked afresh. At most ``token_cache_entries`` tokens are remembered (the least
    recently used go first), under their SHA-256, never as themselves. A refused token is
    never remembered. JWTs cannot be revoked one by one; what this changes is that a
    signing key its issuer withdraws stops being accepted within ``jwks_max_age`` plus
    ``token_cache_seconds`` rather than ``jwks_max_age``. ``wall_clock`` (seconds since
    the epoch) drives this cache.

    With ``settings.dev_issuer`` on, :data:`~service.auth.dev_issuer.DEV_ISSUER` is
    trusted by every site, with the development key as its key set (no network).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http_timeout: float | None = None,
        jwks_max_age: float | None = None,
        jwks_min_refresh: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_cache_seconds: float | None = None,
        token_cache_entries: int = TOKEN_CACHE_ENTRIES,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._timeout = (
            settings.dependency_timeout_seconds if http_timeout is None else http_timeout
        )
        self._max_age = settings.jwks_max_age_seconds if jwks_max_age is None else jwks_max_age
        self._min_refresh = (
            settings.jwks_min_refresh_seconds if jwks_min_refresh is None else jwks_min_refresh
        )
        self._clock = clock
        self._issuers: dict[str, IssuerKeys] = {}
        self._lock = threading.Lock()
        self._cache_seconds = (
            settings.token_cache_seconds if token_cache_seconds is None else token_cache_seconds
        )
        self._cache_entries = token_cache_entries
        self._wall_clock = wall_clock
        self._verified: OrderedDict[tuple[Any, ...], _Verified] = OrderedDict()
        self._cache_lock = threading.Lock()

    def verify(
        self,
        token: str,
        *,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
        site_slug: str | None = None,
        token_type: str | None = None,
    ) -> Identity:
        """The identity ``token`` proves, for a site trusting ``trusted_issuers`` (exact
        ``iss`` strings) and accepting ``audiences`` (any one ``aud`` must match).

        ``site_slug`` matters only for development tokens: when the development issuer
        is on, its tokens are accepted for ``audiences`` plus ``site_slug`` (they carry
        the slug as ``aud``); other issuers' tokens are never accepted for the slug.
        ``token_type``, when given, is the JOSE ``typ`` the token must have (``at+jwt``
        for RFC 9068 access tokens); by default any ``typ`` is accepted, since OpenID
        Connect ID tokens (what most blogs hold for a logged-in reader) carry ``JWT``.

        Raises ``Unauthorized`` (``error="invalid_token"``) for every fault of the token:
        malformed, an algorithm outside :data:`ALGORITHMS` (so ``none`` and every HMAC),
        no ``kid``, an untrusted issuer (refused before any network request), a ``kid``
        the issuer does not publish (after at most one rate-limited refetch), a bad
        signature, a missing ``exp``/``iat``/``sub``/``iss``/``aud``, expired or not
        yet valid beyond :data:`LEEWAY_SECONDS`, or the wrong audience.

        Raises ``ServiceUnavailable`` when the issuer's keys cannot be fetched (network
        error, timeout, bad discovery document or key set) and none are cached. That is
        not the token's fault: a 401 would send the client for a new token that fails
        the same way, while a 503 with ``Retry-After`` says what happened and that
        retrying later helps. The failure is logged at warning and remembered for
        ``jwks_min_refresh`` seconds, so an issuer's outage costs one timeout, not one
        per request.

        Every refusal is logged at info with its reason and the site, never with the
        token (a refused token may still be someone's valid credential elsewhere).
        """
        if self._cache_seconds <= 0 or not isinstance(token, str):
            return self._checked(token, trusted_issuers, audiences, site_slug, token_type)
        # The context is part of the key: a token accepted for one site's issuers and
        # audiences proves nothing about another's.
        key = (
            hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest(),
            tuple(trusted_issuers),
            tuple(audiences),
            site_slug,
            token_type,
        )
        now = self._wall_clock()
        with self._cache_lock:
            hit = self._verified.get(key)
            if hit is not None:
                if now < hit.until:
                    self._verified.move_to_end(key)
                    return hit.identity
                del self._verified[key]
        identity = self._checked(token, trusted_issuers, audiences, site_slug, token_type)
        until = min(float(identity.claims["exp"]), now + self._cache_seconds)
        if until > now:
            with self._cache_lock:
                self._verified[key] = _Verified(until, identity)
                self._verified.move_to_end(key)
                while len(self._verified) > self._cache_entries:
                    self._verified.popitem(last=False)
        return identity

    def _checked(
        self,
        token: str,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
        site_slug: str | None,
        token_type: str | None,
    ) -> Identity:
        try:
            return self._verify(token, trusted_issuers, audiences, site_slug, token_type)
        except Unauthorized as exc:
            log.info("token refused (site %s): %s", site_slug or "-", exc.detail)
            raise

    def _verify(
        self,
        token: str,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
        site_slug: str | None,
        token_type: str | None,
    ) -> Identity:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("the token is not a well-formed JWT")
        try:
            unverified = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthorized("the token is not a well-formed JWT") from None
        header: dict[str, Any] = unverified["header"]
        payload: dict[str, Any] = unverified["payload"]

        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise Unauthorized(
                f"the token's algorithm {_shown(algorithm)} is not accepted; "
                f"use one of {', '.join(ALGORITHMS)}",
                reason="algorithm",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token's header names no signing key (kid)")
        if token_type is not None and not _same_type(header.get("typ"), token_type):
            raise Unauthorized(
                f"the token's type is {_shown(header.get('typ'))}, not '{token_type}'"
            )
        issuer = payload.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Unauthorized("the token names no issuer (iss)")
        accepted_audiences = self._audiences(issuer, trusted_issuers, audiences, site_slug)

        key = self._key(issuer, kid, algorithm)
        claims = self._decode(token, key, algorithm, issuer, accepted_audiences)
        if not claims["sub"]:
            raise Unauthorized("the token's sub claim is empty")
        return _identity(claims)

    def _audiences(
        self,
        issuer: str,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
        site_slug: str | None,
    ) -> list[str]:
        if issuer == DEV_ISSUER:
            if not self._settings.dev_issuer:
                raise Unauthorized(
                    "development tokens are not accepted: the dev issuer is off",
                    reason="untrusted_issuer",
                )
            accepted = [*audiences, *([site_slug] if site_slug else [])]
        elif issuer in trusted_issuers:
            accepted = list(audiences)
        else:
            raise Unauthorized(
                f"the token's issuer {_shown(issuer)} is not trusted by this site",
                reason="untrusted_issuer",
            )
        if not accepted:
            # PyJWT would otherwise accept a token without ``aud`` for "no audience".
            raise Unauthorized(
                "this site accepts no token audience; its audiences are unset",
                reason="wrong_audience",
            )
        return accepted

    def _key(self, issuer: str, kid: str, algorithm: str) -> PyJWK:
        try:
            return self._issuer_keys(issuer).key(kid, algorithm)
        except UnknownKey:
            raise Unauthorized(
                f"the token's signing key {_shown(kid)} is not one its issuer publishes",
                reason="unknown_kid",
            ) from None
        except KeyAlgorithmMismatch:
            raise Unauthorized(
                f"the token's signing key {_shown(kid)} is not a key for {algorithm}",
                reason="unusable_key",
            ) from None
        except KeysUnavailable:
            raise ServiceUnavailable(
                f"the signing keys of issuer {issuer} could not be fetched; try again shortly",
                retry_after=max(1, int(self._min_refresh)),
            ) from None

    def _issuer_keys(self, issuer: str) -> IssuerKeys:
        # Only issuers that passed the trust check get here, so this map stays as small
        # as the set of configured issuers.
        found = self._issuers.get(issuer)
        if found is not None:
            return found
        with self._lock:
            found = self._issuers.get(issuer)
            if found is None:
                load = (
                    self._dev_keys
                    if issuer == DEV_ISSUER
                    else remote_loader(issuer, timeout=self._timeout)
                )
                found = IssuerKeys(
                    issuer,
                    load,
                    max_age=self._max_age,
                    min_refresh_interval=self._min_refresh,
                    clock=self._clock,
                )
                self._issuers[issuer] = found
            return found

    def _dev_keys(self) -> KeySet:
        source = str(self._settings.dev_key_path)
        try:
            return parse_jwks(dev_issuer.dev_jwks(self._settings), source=source)
        except (OSError, ValueError) as exc:
            raise KeysUnavailable(f"the development key {source} is unusable: {exc}") from None

    def _decode(
        self, token: str, key: PyJWK, algorithm: str, issuer: str, audiences: list[str]
    ) -> dict[str, Any]:
        options: Options = {
            "require": list(REQUIRED_CLAIMS),
            "verify_signature": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_iss": True,
            "verify_aud": True,
            "verify_sub": True,
            "verify_jti": True,
            "enforce_minimum_key_length": True,
        }
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audiences,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options=options,
            )
        except jwt.PyJWTError as exc:
            # Not only InvalidTokenError: a weak key raises InvalidKeyError, a sibling.
            detail, reason = _refusal(exc)
            raise Unauthorized(detail, reason=reason) from None
        return claims


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token that passed every check, and until when (wall clock) that stands."""

    until: float
    identity: Identity


def _refusal(exc: jwt.PyJWTError) -> tuple[str, UnauthorizedReason]:
    """The words for a PyJWT refusal (its own messages are terse and vary by version), and
    its reason in a word."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired", "expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (its nbf or iat is in the future)", "not_yet_valid"
    if isinstance(exc, jwt.InvalidAudienceError):
        return (
            "the token is not meant for this site (its aud is not one the site accepts)",
            "wrong_audience",
        )
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token's issuer does not match", "untrusted_issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the required '{exc.claim}' claim", "malformed"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify", "bad_signature"
    if isinstance(exc, jwt.InvalidKeyError):
        return "the token's signing key is too weak or unusable", "unusable_key"
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return "the token's iat claim is not a number", "malformed"
    if isinstance(exc, InvalidSubjectError):
        return "the token's sub claim is not a string", "malformed"
    if isinstance(exc, InvalidJTIError):
        return "the token's jti claim is not a string", "malformed"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "the token's algorithm is not accepted", "algorithm"
    return "the token is malformed", "malformed"


def _identity(claims: Mapping[str, Any]) -> Identity:
    try:
        return claimed_identity(
            claims,
            issuer=claims["iss"],
            subject=claims["sub"],
            name_claims=("name", "preferred_username", "nickname"),
        )
    except ValueError as exc:
        raise Unauthorized(f"the token's subject {exc}") from None


def _same_type(typ: object, expected: str) -> bool:
    # RFC 7515 §4.1.9: media types compare case-insensitively, "application/" optional.
    if not isinstance(typ, str):
        return False
    return typ.lower().removeprefix("application/") == expected.lower().removeprefix("application/")


def _shown(value: object) -> str:
    """A header or claim value, quoted and cut short, fit for a message or a log line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"
