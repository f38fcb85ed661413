"""Token issuers' signing keys: OIDC discovery, JWKS fetching, and a per-issuer cache.

The cache is built so that a stranger cannot turn it into a flood of outbound requests:
only issuers a site trusts ever get an entry (the verifier checks that first), a token
naming an unknown ``kid`` triggers at most one refetch per ``min_refresh_interval``, and
a failed fetch is remembered for that same interval instead of being retried on every
request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWKError

log = logging.getLogger(__name__)

#: The signature algorithms accepted, and nothing else: no ``none``, no symmetric
#: algorithm (a public key must never double as an HMAC secret).
ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")

# Which key each algorithm needs: (kty, crv). Checked here rather than trusting PyJWT to
# reject, say, a P-384 key used for ES256.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
}

DISCOVERY_PATH = "/.well-known/openid-configuration"

#: Discovery documents and key sets are small; anything bigger is not one.
MAX_DOCUMENT_BYTES = 512 * 1024

_USER_AGENT = "commentguard-token-verifier"

#: Signing keys by ``kid``, then by algorithm (an RSA key without ``alg`` serves both
#: RS256 and PS256).
KeySet = Mapping[str, Mapping[str, PyJWK]]


class KeysUnavailable(Exception):
    """The issuer's keys could not be obtained: network error, HTTP status, bad document."""


class UnknownKey(Exception):
    """The issuer publishes no key with this ``kid`` (after any refetch allowed)."""


class KeyAlgorithmMismatch(Exception):
    """The issuer's key with this ``kid`` is not a key for the token's algorithm."""


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost`` or a loopback address)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetchable(url: str) -> None:
    """Refuse URLs keys must not be fetched from: anything but ``https``, except plain
    ``http`` to a loopback address (a development identity provider on this machine)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and is_loopback(url)):
        return
    raise KeysUnavailable(f"{url} is not an https URL")


def fetch_json(url: str, *, timeout: float, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """GET ``url`` and parse it as JSON within ``timeout`` seconds in all.

    Raises :class:`KeysUnavailable` for a refused URL, any network error, a non-200
    status, a body over ``max_bytes``, or a body that is not JSON.
    """
    check_fetchable(url)
    request = urllib.request.Request(  # noqa: S310 (the scheme was checked above)
        url, headers={"Accept": "application/json", "User-Agent": _USER_AGENT}
    )
    # A proxy configured for the outside world must not see requests to this machine.
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as response:
            # Redirects are followed, but must still land somewhere keys may come from.
            check_fetchable(response.geturl())
            if response.status != 200:
                raise KeysUnavailable(f"{url} answered HTTP {response.status}")
            body = _read_until(response, deadline=deadline, max_bytes=max_bytes, url=url)
    except urllib.error.HTTPError as exc:
        raise KeysUnavailable(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise KeysUnavailable(f"{url} could not be reached: {reason}") from None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeysUnavailable(f"{url} did not answer with JSON") from None


def _read_until(response: Any, *, deadline: float, max_bytes: int, url: str) -> bytes:
    # The socket timeout bounds each read, not the whole body: a server dripping one byte
    # at a time would otherwise hold a request thread for as long as it likes.
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise KeysUnavailable(f"{url} took too long to answer")
        chunk = response.read(16 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise KeysUnavailable(f"{url} answered with more than {max_bytes} bytes")
        chunks.append(chunk)


def discover_jwks_uri(issuer: str, *, timeout: float) -> str:
    """The ``jwks_uri`` of ``issuer`` from its OpenID Connect discovery document.

    The document must name ``issuer`` exactly (OpenID Connect Discovery 1.0 §4.3), so a
    document served for some other issuer is never used.
    """
    url = issuer.rstrip("/") + DISCOVERY_PATH
    document = fetch_json(url, timeout=timeout)
    if not isinstance(document, dict):
        raise KeysUnavailable(f"{url} is not a discovery document")
    if document.get("issuer") != issuer:
        raise KeysUnavailable(f"{url} describes another issuer, {document.get('issuer')!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise KeysUnavailable(f"{url} names no jwks_uri")
    check_fetchable(jwks_uri)
    return jwks_uri


def parse_jwks(document: Any, *, source: str) -> dict[str, dict[str, PyJWK]]:
    """The usable signing keys of a JWK Set, by ``kid`` and algorithm.

    Keys are skipped (not fatal: one odd key must not take the others down) when they
    have no ``kid``, are not for signatures (``use``/``key_ops``), are symmetric or
    private, or fit none of :data:`ALGORITHMS`. A document that is not a JWK Set raises
    :class:`KeysUnavailable`.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailable(f"{source} is not a JWK Set")
    keys: dict[str, dict[str, PyJWK]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        key_ops = jwk.get("key_ops")
        if isinstance(key_ops, list) and "verify" not in key_ops:
            continue
        if "d" in jwk:
            # A published private key is a leak at the issuer; refuse to depend on it.
            log.warning("%s publishes a private key (kid %r); ignoring it", source, kid)
            continue
        for algorithm in _algorithms_for(jwk):
            try:
                keys.setdefault(kid, {})[algorithm] = PyJWK(jwk, algorithm)
            except (PyJWKError, ValueError, TypeError) as exc:
                log.warning("%s: key %r is unusable for %s: %s", source, kid, algorithm, exc)
    if not keys:
        log.warning("%s publishes no usable signing key", source)
    return {kid: algs for kid, algs in keys.items() if algs}


def _algorithms_for(jwk: Mapping[str, Any]) -> list[str]:
    stated = jwk.get("alg")
    return [
        algorithm
        for algorithm, (kty, crv) in _KEY_TYPES.items()
        if jwk.get("kty") == kty
        and (crv is None or jwk.get("crv") == crv)
        and (stated is None or stated == algorithm)
    ]


class IssuerKeys:
    """The cached signing keys of one issuer.

    ``load`` fetches the issuer's current keys (over the network, or from a file for the
    development issuer) and raises :class:`KeysUnavailable` when it cannot. Keys older
    than ``max_age`` seconds are reloaded on the next use; a ``kid`` not in the cache
    reloads them too, but no load (successful or not) starts within
    ``min_refresh_interval`` seconds of the previous one. When a reload fails the old
    keys stay in use, so an identity provider's short outage does not log everyone out.
    Safe to share between threads; concurrent reloads of one issuer are done once.
    """

    def __init__(
        self,
        issuer: str,
        load: Callable[[], KeySet],
        *,
        max_age: float,
        min_refresh_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._load = load
        self._max_age = max_age
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._loaded_at = 0.0
        self._last_attempt: float | None = None
        self._last_error = ""

    def key(self, kid: str, algorithm: str) -> PyJWK:
        """The key ``kid`` for ``algorithm``.

        Raises :class:`UnknownKey`, :class:`KeyAlgorithmMismatch`, or
        :class:`KeysUnavailable` when no keys have ever been loaded.
        """
        keys = self._keys
        if keys is None or self._stale(self._clock()):
            keys = self._reload(lambda current, now: current is None or self._stale(now))
        if kid not in keys:
            keys = self._reload(lambda current, _now: current is None or kid not in current)
        by_algorithm = keys.get(kid)
        if by_algorithm is None:
            raise UnknownKey(kid)
        found = by_algorithm.get(algorithm)
        if found is None:
            raise KeyAlgorithmMismatch(kid)
        return found

    def _reload(self, needed: Callable[[KeySet | None, float], bool]) -> KeySet:
        with self._lock:
            # Another thread may have reloaded while this one waited for the lock.
            now = self._clock()
            if needed(self._keys, now) and self._may_attempt(now):
                self._last_attempt = now
                try:
                    self._keys = self._load()
                    self._loaded_at = now
                    self._last_error = ""
                except KeysUnavailable as exc:
                    self._last_error = str(exc)
                    log.warning(
                        "keys of issuer %s could not be fetched%s: %s",
                        self.issuer,
                        "" if self._keys is None else " (keeping the previous ones)",
                        exc,
                    )
            if self._keys is None:
                raise KeysUnavailable(self._last_error or "no keys loaded yet")
            return self._keys

    def _stale(self, now: float) -> bool:
        return now - self._loaded_at >= self._max_age

    def _may_attempt(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._min_refresh_interval


def remote_loader(issuer: str, *, timeout: float) -> Callable[[], KeySet]:
    """A ``load`` for :class:`IssuerKeys` that discovers the issuer's ``jwks_uri`` (once,
    then again only when fetching from it fails) and fetches the key set from it."""
    jwks_uri: str | None = None

    def load() -> KeySet:
        nonlocal jwks_uri
        if jwks_uri is not None:
            try:
                return parse_jwks(fetch_json(jwks_uri, timeout=timeout), source=jwks_uri)
            except KeysUnavailable:
                # The issuer may have moved its keys; rediscover before giving up.
                jwks_uri = None
        uri = discover_jwks_uri(issuer, timeout=timeout)
        keys = parse_jwks(fetch_json(uri, timeout=timeout), source=uri)
        jwks_uri = uri
        return keys

    return load
