"""Opaque access tokens: RFC 7662 token introspection at the endpoint a site configures.

A token that is not a JWT is sent to the site's introspection endpoint, with this
service's client credentials for it (``client_secret_basic``). An answer is kept for the
token's remaining life and at most :data:`MAX_CACHE_SECONDS`, so that a busy reader costs
one introspection a minute rather than one per comment; a revoked token is therefore
refused within that minute, not at once. Tokens are cached under their SHA-256, never as
themselves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.auth.claims import claimed_identity
from service.auth.jwks import MAX_DOCUMENT_BYTES, KeysUnavailable, check_fetchable, is_loopback
from service.moderation.errors import ServiceUnavailable, Unauthorized, UnauthorizedReason
from service.moderation.sites import IntrospectionClient
from service.moderation.types import Identity

log = logging.getLogger(__name__)

#: No answer is reused for longer than this, whatever the token's ``exp``.
MAX_CACHE_SECONDS = 60.0

#: Distinct tokens whose answers are kept; the oldest go first.
MAX_CACHE_ENTRIES = 10_000

#: How long an outage of the endpoint is answered 503 without asking it again.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class _Answer:
    """A cached introspection result: an identity, or the reason the token was refused."""

    until: float
    identity: Identity | None
    refusal: str = ""
    reason: UnauthorizedReason = "malformed"


class Introspector:
    """Checks opaque tokens by RFC 7662 introspection, caching the answers.

    Thread-safe; built once per process. ``clock`` is the wall clock (seconds since the
    epoch) against which both ``exp`` and the cache lifetimes are measured.
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_cache_seconds: float = MAX_CACHE_SECONDS,
        max_entries: int = MAX_CACHE_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._timeout = timeout
        self._max_cache = max_cache_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._answers: OrderedDict[str, _Answer] = OrderedDict()
        self._lock = threading.Lock()

    def introspect(
        self,
        token: str,
        *,
        client: IntrospectionClient,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
    ) -> Identity:
        """The identity an opaque ``token`` stands for, as ``client.endpoint`` says.

        Accepted when the endpoint answers ``active: true`` with an ``exp`` in the future,
        an ``aud`` containing one of ``audiences`` (required: a token for another resource
        server must not be usable here), and an ``iss`` among ``trusted_issuers`` (when
        ``iss`` is absent, the site must trust exactly one issuer, which is taken as it).
        The subject is ``sub``, or ``client_id`` for a token issued to a client itself.

        Raises ``Unauthorized`` (``invalid_token``) for an inactive or unacceptable token,
        and ``ServiceUnavailable`` when the endpoint cannot be reached or refuses this
        service's credentials (a configuration fault, logged at error). Both kinds of
        answers from the endpoint are cached (refusals too, so that a stream of bogus
        tokens cannot be turned into a stream of introspection requests); failures to
        reach it are not.
        """
        key = hashlib.sha256(f"{client.endpoint}\n{token}".encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._answers.get(key)
        if cached is None or now >= cached.until:
            answer = self._ask(token, client)
            cached = self._judge(answer, now, trusted_issuers=trusted_issuers, audiences=audiences)
            with self._lock:
                self._answers[key] = cached
                self._answers.move_to_end(key)
                while len(self._answers) > self._max_entries:
                    self._answers.popitem(last=False)
        if cached.identity is None:
            log.info("opaque token refused (%s): %s", client.endpoint, cached.refusal)
            raise Unauthorized(cached.refusal, reason=cached.reason)
        return cached.identity

    def _ask(self, token: str, client: IntrospectionClient) -> dict[str, Any]:
        try:
            check_fetchable(client.endpoint)
        except KeysUnavailable as exc:
            log.error("introspection endpoint refused: %s", exc)
            raise ServiceUnavailable(
                "the site's token introspection endpoint is unusable", retry_after=60
            ) from None
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode()
        credentials = base64.b64encode(
            f"{_form(client.client_id)}:{_form(client.client_secret)}".encode()
        ).decode()
        request = urllib.request.Request(  # noqa: S310 (the scheme was checked above)
            client.endpoint,
            data=body,
            method="POST",
            headers={
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Basic {credentials}",
                "User-Agent": "commentguard-introspection",
            },
        )
        handlers = [urllib.request.ProxyHandler({})] if is_loopback(client.endpoint) else []
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(request, timeout=self._timeout) as response:
                raw = response.read(MAX_DOCUMENT_BYTES + 1)
        except urllib.error.HTTPError as exc:
            # 401/403: this service's credentials are wrong; nothing a reader can fix.
            level = logging.ERROR if exc.code in (400, 401, 403) else logging.WARNING
            log.log(level, "introspection at %s answered HTTP %s", client.endpoint, exc.code)
            raise ServiceUnavailable(
                "the site's token introspection endpoint refused this service",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            log.warning("introspection at %s could not be reached: %s", client.endpoint, reason)
            raise ServiceUnavailable(
                "the site's token introspection endpoint could not be reached",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        try:
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise ValueError("too large")
            answer = json.loads(raw)
            if not isinstance(answer, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("introspection at %s did not answer with a JSON object", client.endpoint)
            raise ServiceUnavailable(
                "the site's token introspection endpoint answered nonsense",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        return answer

    def _judge(
        self,
        answer: Mapping[str, Any],
        now: float,
        *,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
    ) -> _Answer:
        refused_until = now + self._max_cache

        def refuse(detail: str, reason: UnauthorizedReason = "malformed") -> _Answer:
            return _Answer(until=refused_until, identity=None, refusal=detail, reason=reason)

        if answer.get("active") is not True:
            return refuse(
                "the token is not active (revoked, expired or unknown)", "introspection_inactive"
            )
        exp = answer.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return refuse("the introspection answer gives the token no expiry (exp)")
        if exp <= now:
            return refuse("the token has expired", "expired")
        issuer = answer.get("iss")
        if issuer is None:
            if len(trusted_issuers) != 1:
                return refuse("the introspection answer names no issuer (iss)")
            issuer = trusted_issuers[0]
        if issuer not in trusted_issuers:
            return refuse(
                f"the token's issuer {issuer!r:.80} is not trusted by this site",
                "untrusted_issuer",
            )
        granted = answer.get("aud")
        granted_list = [granted] if isinstance(granted, str) else granted
        if not isinstance(granted_list, list) or not set(granted_list) & set(audiences):
            return refuse(
                "the token is not meant for this site (its aud is not one the site accepts)",
                "wrong_audience",
            )
        subject = answer.get("sub") or answer.get("client_id")
        if not isinstance(subject, str) or not subject:
            return refuse("the introspection answer names no subject (sub or client_id)")
        claims = {**answer, "iss": issuer, "sub": subject}
        try:
            identity = claimed_identity(
                claims,
                issuer=issuer,
                subject=subject,
                name_claims=("name", "preferred_username", "username"),
            )
        except ValueError as exc:
            return refuse(f"the token's subject {exc}")
        return _Answer(until=min(float(exp), now + self._max_cache), identity=identity)


def _form(value: str) -> str:
    # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
    return urllib.parse.quote_plus(value)


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` has the shape of a JWS compact serialisation (three segments,
    the first a base64url JSON object); anything else is treated as opaque."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0]:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict)
