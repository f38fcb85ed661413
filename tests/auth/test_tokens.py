"""TokenVerifier against a real identity provider stand-in: an HTTP server on 127.0.0.1
serving an OpenID Connect discovery document and a JWK Set, with keys made here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.warnings import InsecureKeyLengthWarning

from service.auth.dev_issuer import mint_dev_token
from service.auth.tokens import LEEWAY_SECONDS, TokenVerifier, bearer_token
from service.moderation.errors import ServiceUnavailable, Unauthorized
from service.settings import Settings

AUDIENCE = "https://blog.example"
MIN_REFRESH = 30.0
MAX_AGE = 300.0


# --- keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A signing key made by the test, and the JWK its issuer would publish for it."""

    kid: str
    alg: str
    private: Any
    publish_alg: bool = False

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if self.alg in ("RS256", "PS256"):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif self.alg == "ES256":
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = OKPAlgorithm.to_jwk(public, as_dict=True)
        data.update(kid=self.kid, use="sig")
        if self.publish_alg:
            data["alg"] = self.alg
        return data

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


@dataclass(frozen=True)
class Keys:
    rsa: Key
    rsa_pss: Key
    ec: Key
    ed: Key
    rsa_new: Key
    rogue: Key


@pytest.fixture(scope="module")
def keys() -> Keys:
    # RSA generation is the slow part of this module; do it once.
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(
        rsa=Key("rsa-1", "RS256", rsa_private),
        rsa_pss=Key("rsa-1", "PS256", rsa_private),
        ec=Key("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        ed=Key("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate()),
        rsa_new=Key("rsa-2", "RS256", rsa.generate_private_key(65537, 2048)),
        # Same kid as the published RSA key, different key: a forger's.
        rogue=Key("rsa-1", "RS256", rsa.generate_private_key(65537, 2048)),
    )


# --- the issuer -------------------------------------------------------------------------


@dataclass
class Issuer:
    """What the test's identity provider serves, and what it was asked for."""

    url: str = ""
    published: list[Key] = field(default_factory=list)
    jwks_status: int = 200
    jwks_delay: float = 0.0
    discovery_issuer: str | None = None
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, suffix: str) -> int:
        with self.lock:
            return sum(path.endswith(suffix) for path in self.requests)

    @property
    def discovery_count(self) -> int:
        return self.count("/.well-known/openid-configuration")

    @property
    def jwks_count(self) -> int:
        return self.count("/jwks")


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with issuer.lock:
                issuer.requests.append(self.path)
            if self.path == "/tenant/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": issuer.discovery_issuer or issuer.url,
                        "jwks_uri": issuer.url + "/jwks",
                    },
                )
            elif self.path == "/tenant/jwks":
                time.sleep(issuer.jwks_delay)
                self._json(issuer.jwks_status, {"keys": [k.jwk() for k in issuer.published]})
            else:
                self._json(404, {"error": "not found"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def issuer(keys: Keys) -> Iterator[Issuer]:
    state = Issuer(published=[keys.rsa, keys.ec, keys.ed])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tenant"
    # A short poll interval: shutdown() waits for the serving loop to notice.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# --- the verifier -----------------------------------------------------------------------


class Clock:
    """A monotonic clock the test moves by hand (it drives only the key cache)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_settings(tmp_path: Path, *, dev_issuer: bool = False) -> Settings:
    return Settings(
        database_url="sqlite://",
        secret_key="s" * 48,
        environment="test",
        dev_issuer=dev_issuer,
        dev_key_path=tmp_path / "dev-key.pem",
    )


@pytest.fixture
def verifier(tmp_path: Path, clock: Clock) -> TokenVerifier:
    # Every check of every token, each time: these tests are about the checks and the key
    # cache (several re-sign the same claims within a second, which gives the same token);
    # the cache of verified tokens has its own tests at the end.
    return TokenVerifier(
        make_settings(tmp_path),
        http_timeout=2.0,
        jwks_max_age=MAX_AGE,
        jwks_min_refresh=MIN_REFRESH,
        clock=clock,
        token_cache_seconds=0,
    )


def claims(issuer: Issuer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer.url,
        "sub": "user-42",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "name": "Alice Example",
        "email": "alice@example.org",
        "email_verified": True,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, payload: dict[str, Any], **headers: Any) -> str:
    header: dict[str, Any] = {"kid": key.kid, **headers}
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=header)


def verify(verifier: TokenVerifier, issuer: Issuer, token: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"trusted_issuers": [issuer.url], "audiences": [AUDIENCE]}
    options.update(kwargs)
    return verifier.verify(token, **options)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def refused(verifier: TokenVerifier, issuer: Issuer, token: str, **kwargs: Any) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verify(verifier, issuer, token, **kwargs)
    assert caught.value.error == "invalid_token"
    assert not token or token not in caught.value.detail
    return caught.value


# --- accepted ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rsa", "rsa_pss", "ec", "ed"])
def test_a_valid_token_gives_the_identity(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, which: str
) -> None:
    key: Key = getattr(keys, which)
    identity = verify(verifier, issuer, sign(key, claims(issuer)))
    assert identity.issuer == issuer.url
    assert identity.subject == "user-42"
    assert identity.name == "Alice Example"
    assert identity.email == "alice@example.org"
    assert identity.email_verified is True
    assert identity.roles == frozenset()
    assert identity.claims["aud"] == AUDIENCE


def test_keys_are_discovered_once_and_cached(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    for key in (keys.rsa, keys.ec, keys.ed, keys.rsa):
        verify(verifier, issuer, sign(key, claims(issuer)))
    assert issuer.discovery_count == 1
    assert issuer.jwks_count == 1


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"name": "N", "preferred_username": "P", "nickname": "K"}, "N"),
        ({"preferred_username": "P", "nickname": "K"}, "P"),
        ({"nickname": "K"}, "K"),
        ({}, None),
    ],
)
def test_the_name_comes_from_name_then_preferred_username_then_nickname(
    verifier: TokenVerifier,
    issuer: Issuer,
    keys: Keys,
    present: dict[str, str],
    expected: str | None,
) -> None:
    payload = {**claims(issuer, name=None, email=None, email_verified=None), **present}
    identity = verify(verifier, issuer, sign(keys.ec, payload))
    assert identity.name == expected
    assert identity.email is None
    assert identity.email_verified is False


def test_an_audience_list_needs_one_accepted_member(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    token = sign(keys.ec, claims(issuer, aud=["https://other.example", AUDIENCE]))
    assert verify(verifier, issuer, token).subject == "user-42"


def test_clock_skew_within_the_leeway_is_tolerated(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    now = int(time.time())
    skew = LEEWAY_SECONDS // 2
    token = sign(keys.ec, claims(issuer, iat=now + skew, nbf=now + skew, exp=now - skew))
    assert verify(verifier, issuer, token).subject == "user-42"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_a_required_token_type_is_compared_as_a_media_type(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, typ: str
) -> None:
    token = sign(keys.ec, claims(issuer), typ=typ)
    assert verify(verifier, issuer, token, token_type="at+jwt").subject == "user-42"


# --- refused before any request ---------------------------------------------------------


def test_alg_none_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    token = f"{b64json({'alg': 'none', 'kid': keys.rsa.kid})}.{b64json(claims(issuer))}."
    error = refused(verifier, issuer, token)
    assert "'none' is not accepted" in error.detail
    assert issuer.requests == []


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    # The classic confusion attack: HMAC keyed with the issuer's public key PEM, which a
    # verifier that let the header choose the algorithm would accept.
    signing_input = f"{b64json({'alg': 'HS256', 'kid': keys.rsa.kid})}.{b64json(claims(issuer))}"
    mac = hmac.new(keys.rsa.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    error = refused(verifier, issuer, f"{signing_input}.{b64(mac)}")
    assert "'HS256' is not accepted" in error.detail
    assert issuer.requests == []


def test_an_untrusted_issuer_is_refused_without_any_request(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    token = sign(keys.rsa, claims(issuer))
    error = refused(verifier, issuer, token, trusted_issuers=["https://idp.example"])
    assert "is not trusted by this site" in error.detail
    assert issuer.requests == []


def test_a_missing_kid_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    token = jwt.encode(claims(issuer), keys.rsa.private, algorithm="RS256")
    assert "names no signing key" in refused(verifier, issuer, token).detail
    assert issuer.requests == []


def test_a_site_without_audiences_accepts_no_token(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    token = sign(keys.rsa, claims(issuer, aud=None))
    assert "accepts no token audience" in refused(verifier, issuer, token, audiences=[]).detail


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "a.b.c.d", "é.é.é", "x" * 20_000])
def test_malformed_tokens_are_refused(verifier: TokenVerifier, issuer: Issuer, token: str) -> None:
    assert "not a well-formed JWT" in refused(verifier, issuer, token).detail


def test_a_wrong_token_type_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    token = sign(keys.ec, claims(issuer), typ="JWT")
    assert "not 'at+jwt'" in refused(verifier, issuer, token, token_type="at+jwt").detail


def test_http_to_a_remote_issuer_is_never_used(verifier: TokenVerifier, keys: Keys) -> None:
    remote = Issuer(url="http://idp.example")
    with pytest.raises(ServiceUnavailable) as caught:
        verify(verifier, remote, sign(keys.rsa, claims(remote)))
    assert "could not be fetched" in caught.value.detail


# --- refused after checking ---------------------------------------------------------------


def test_a_wrong_audience_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    token = sign(keys.rsa, claims(issuer, aud="https://other-blog.example"))
    assert "not meant for this site" in refused(verifier, issuer, token).detail


def test_the_site_slug_is_an_audience_for_dev_tokens_only(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    token = sign(keys.rsa, claims(issuer, aud="demo"))
    error = refused(verifier, issuer, token, site_slug="demo")
    assert "not meant for this site" in error.detail


def test_an_expired_token_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    now = int(time.time())
    token = sign(keys.rsa, claims(issuer, iat=now - 600, exp=now - 120))
    assert refused(verifier, issuer, token).detail == "the token has expired"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_not_valid_yet_is_refused(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, claim: str
) -> None:
    token = sign(keys.rsa, claims(issuer, **{claim: int(time.time()) + 120}))
    assert "not valid yet" in refused(verifier, issuer, token).detail


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud"])
def test_a_missing_required_claim_is_refused(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, claim: str
) -> None:
    token = sign(keys.rsa, claims(issuer, **{claim: None}))
    assert f"lacks the required '{claim}' claim" in refused(verifier, issuer, token).detail


def test_a_missing_issuer_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    token = sign(keys.rsa, claims(issuer, iss=None))
    assert "names no issuer" in refused(verifier, issuer, token).detail


def test_a_signature_by_an_unpublished_key_is_refused(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    token = sign(keys.rogue, claims(issuer))
    assert "signature does not verify" in refused(verifier, issuer, token).detail


def test_an_altered_payload_is_refused(verifier: TokenVerifier, issuer: Issuer, keys: Keys) -> None:
    header, _, signature = sign(keys.rsa, claims(issuer)).split(".")
    forged = f"{header}.{b64json(claims(issuer, sub='admin'))}.{signature}"
    assert "signature does not verify" in refused(verifier, issuer, forged).detail


def test_a_key_published_for_one_algorithm_is_not_used_for_another(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    issuer.published = [Key(keys.rsa.kid, "RS256", keys.rsa.private, publish_alg=True)]
    assert verify(verifier, issuer, sign(keys.rsa, claims(issuer))).subject == "user-42"
    error = refused(verifier, issuer, sign(keys.rsa_pss, claims(issuer)))
    assert "not a key for PS256" in error.detail


def test_a_short_rsa_key_is_refused(verifier: TokenVerifier, issuer: Issuer) -> None:
    # The point of the test is a breakable key.
    weak = Key("weak", "RS256", rsa.generate_private_key(65537, 1024))  # noqa: S505
    issuer.published = [weak]
    with pytest.warns(InsecureKeyLengthWarning):
        token = sign(weak, claims(issuer))
    assert "too weak" in refused(verifier, issuer, token).detail


# --- unknown keys, rotation, and the refetch limit ---------------------------------------


def test_an_unknown_kid_refetches_at_most_once_per_interval(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, clock: Clock
) -> None:
    stranger = Key("nobody-knows", "ES256", ec.generate_private_key(ec.SECP256R1()))
    token = sign(stranger, claims(issuer))
    assert "is not one its issuer publishes" in refused(verifier, issuer, token).detail
    # The keys were fetched just now, so there was nothing new to refetch.
    assert (issuer.discovery_count, issuer.jwks_count) == (1, 1)
    for _ in range(20):
        refused(verifier, issuer, token)
    assert issuer.jwks_count == 1

    clock.advance(MIN_REFRESH)
    refused(verifier, issuer, token)
    assert (issuer.discovery_count, issuer.jwks_count) == (1, 2)
    refused(verifier, issuer, token)
    assert issuer.jwks_count == 2


def test_a_rotated_key_is_accepted_after_one_refetch(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, clock: Clock
) -> None:
    assert verify(verifier, issuer, sign(keys.rsa, claims(issuer))).subject == "user-42"
    issuer.published = [keys.rsa_new]
    new_token = sign(keys.rsa_new, claims(issuer))

    # Within the interval the new kid cannot make the verifier fetch again...
    clock.advance(MIN_REFRESH / 2)
    refused(verifier, issuer, new_token)
    assert issuer.jwks_count == 1
    # ...after it, one refetch finds the new key.
    clock.advance(MIN_REFRESH / 2)
    assert verify(verifier, issuer, new_token).subject == "user-42"
    assert verify(verifier, issuer, new_token).subject == "user-42"
    assert (issuer.discovery_count, issuer.jwks_count) == (1, 2)
    # The retired key went with the refetch.
    assert (
        "is not one its issuer" in refused(verifier, issuer, sign(keys.rsa, claims(issuer))).detail
    )


def test_keys_are_reloaded_when_older_than_their_max_age(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, clock: Clock
) -> None:
    verify(verifier, issuer, sign(keys.rsa, claims(issuer)))
    issuer.published = [keys.ec]
    clock.advance(MAX_AGE)
    assert (
        "is not one its issuer" in refused(verifier, issuer, sign(keys.rsa, claims(issuer))).detail
    )
    assert issuer.jwks_count == 2


# --- the issuer failing -----------------------------------------------------------------


def test_unfetchable_keys_are_unavailable_and_the_failure_is_remembered(
    verifier: TokenVerifier,
    issuer: Issuer,
    keys: Keys,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer.jwks_status = 500
    token = sign(keys.rsa, claims(issuer))
    with (
        caplog.at_level(logging.WARNING, logger="service.auth"),
        pytest.raises(ServiceUnavailable) as caught,
    ):
        verify(verifier, issuer, token)
    assert f"signing keys of issuer {issuer.url} could not be fetched" in caught.value.detail
    assert caught.value.retry_after >= 1
    assert "HTTP 500" in caplog.text
    fetched = issuer.jwks_count

    with pytest.raises(ServiceUnavailable):
        verify(verifier, issuer, token)
    assert issuer.jwks_count == fetched

    issuer.jwks_status = 200
    clock.advance(MIN_REFRESH)
    assert verify(verifier, issuer, token).subject == "user-42"


def test_cached_keys_outlive_a_failed_reload(
    verifier: TokenVerifier,
    issuer: Issuer,
    keys: Keys,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = sign(keys.rsa, claims(issuer))
    verify(verifier, issuer, token)
    issuer.jwks_status = 503
    clock.advance(MAX_AGE)
    with caplog.at_level(logging.WARNING, logger="service.auth"):
        assert verify(verifier, issuer, token).subject == "user-42"
    assert "keeping the previous ones" in caplog.text


def test_a_slow_issuer_times_out(tmp_path: Path, issuer: Issuer, keys: Keys) -> None:
    issuer.jwks_delay = 1.0
    verifier = TokenVerifier(make_settings(tmp_path), http_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        verify(verifier, issuer, sign(keys.rsa, claims(issuer)))
    assert time.monotonic() - started < 0.9


def test_a_discovery_document_for_another_issuer_is_not_used(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys
) -> None:
    issuer.discovery_issuer = "https://evil.example"
    with pytest.raises(ServiceUnavailable):
        verify(verifier, issuer, sign(keys.rsa, claims(issuer)))
    assert issuer.jwks_count == 0


# --- never the token in a message -------------------------------------------------------


def test_no_refusal_quotes_the_token(
    verifier: TokenVerifier, issuer: Issuer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    tokens = [
        sign(keys.rsa, claims(issuer, exp=now - 600)),
        sign(keys.rsa, claims(issuer, aud="https://elsewhere.example")),
        sign(keys.rogue, claims(issuer)),
        sign(keys.rsa, claims(issuer, iss="https://idp.example")),
        sign(keys.rsa, claims(issuer), kid="k" * 400),
        sign(keys.rsa, claims(issuer)) + "x",
        "not-a-jwt-" + "y" * 100,
    ]
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            error = refused(verifier, issuer, token)
            for part in [token, *(p for p in token.split(".") if len(p) > 16)]:
                assert part not in error.detail
                assert part not in str(error)
                assert part not in caplog.text


# --- the Authorization header -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER  abc-_~+/=", "abc-_~+/="),
        ("  Bearer abc  ", "abc"),
    ],
)
def test_bearer_token_reads_the_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "   ", "Basic dXNlcjpwYXNz", "Token abc"])
def test_no_bearer_credentials_have_no_error_code(header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        bearer_token(header)
    assert caught.value.error is None


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer é"])
def test_a_malformed_bearer_header_is_an_invalid_request(header: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        bearer_token(header)
    assert caught.value.error == "invalid_request"


# --- the cache of verified tokens -------------------------------------------------------


class WallClock:
    """The wall clock of the verified-token cache, moved by hand (PyJWT keeps the real one
    for ``exp``, so tokens here stay valid to it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


CACHE_SECONDS = 60.0


def caching_verifier(
    tmp_path: Path, clock: Clock, wall: WallClock, *, entries: int = 100
) -> TokenVerifier:
    return TokenVerifier(
        make_settings(tmp_path),
        http_timeout=2.0,
        jwks_max_age=MAX_AGE,
        jwks_min_refresh=MIN_REFRESH,
        clock=clock,
        token_cache_seconds=CACHE_SECONDS,
        token_cache_entries=entries,
        wall_clock=wall,
    )


def withdraw_keys(issuer: Issuer, clock: Clock) -> None:
    """The issuer stops publishing every key, and the verifier's key cache learns it: from
    then on a token is accepted only from the cache of verified tokens."""
    issuer.published = []
    clock.advance(MAX_AGE)


def test_a_verified_token_is_accepted_from_the_cache_until_the_cache_time(
    tmp_path: Path, issuer: Issuer, keys: Keys, clock: Clock, wall: WallClock
) -> None:
    verifier = caching_verifier(tmp_path, clock, wall)
    token = sign(keys.ec, claims(issuer))
    assert verify(verifier, issuer, token).subject == "user-42"
    withdraw_keys(issuer, clock)

    wall.now += CACHE_SECONDS - 1
    identity = verify(verifier, issuer, token)
    assert (identity.subject, identity.name) == ("user-42", "Alice Example")
    assert issuer.jwks_count == 1
    wall.now += 1
    assert "is not one its issuer publishes" in refused(verifier, issuer, token).detail
    assert issuer.jwks_count == 2


def test_a_cached_token_is_not_accepted_past_its_exp(
    tmp_path: Path, issuer: Issuer, keys: Keys, clock: Clock, wall: WallClock
) -> None:
    verifier = caching_verifier(tmp_path, clock, wall)
    now = int(wall.now)
    token = sign(keys.ec, claims(issuer, exp=now + 20))
    verify(verifier, issuer, token)
    withdraw_keys(issuer, clock)

    wall.now = now + 19
    assert verify(verifier, issuer, token).subject == "user-42"
    wall.now = now + 20
    refused(verifier, issuer, token)


def test_a_cached_token_is_checked_afresh_for_other_audiences_issuers_or_sites(
    tmp_path: Path, issuer: Issuer, keys: Keys, clock: Clock, wall: WallClock
) -> None:
    verifier = caching_verifier(tmp_path, clock, wall)
    token = sign(keys.ec, claims(issuer))
    verify(verifier, issuer, token)

    detail = refused(verifier, issuer, token, audiences=["https://other.example"]).detail
    assert "not meant for this site" in detail
    assert "not trusted" in refused(verifier, issuer, token, trusted_issuers=["https://x"]).detail
    assert "not 'at+jwt'" in refused(verifier, issuer, token, token_type="at+jwt").detail
    # The context it was accepted in still finds it.
    withdraw_keys(issuer, clock)
    assert verify(verifier, issuer, token).subject == "user-42"


def test_a_dev_token_cached_for_one_site_is_refused_for_another(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, dev_issuer=True)
    verifier = TokenVerifier(settings, token_cache_seconds=CACHE_SECONDS)
    token = mint_dev_token(settings, subject="alice", site="blog-a")
    mine = verifier.verify(token, trusted_issuers=[], audiences=[], site_slug="blog-a")
    assert mine.subject == "alice"
    with pytest.raises(Unauthorized, match="not meant for this site"):
        verifier.verify(token, trusted_issuers=[], audiences=[], site_slug="blog-b")


def test_a_refused_token_is_never_cached(
    tmp_path: Path, issuer: Issuer, keys: Keys, clock: Clock, wall: WallClock
) -> None:
    verifier = caching_verifier(tmp_path, clock, wall)
    token = sign(keys.rsa_new, claims(issuer))
    assert "is not one its issuer publishes" in refused(verifier, issuer, token).detail

    # The issuer starts publishing the key: the same token is checked again, and passes.
    issuer.published = [keys.rsa, keys.rsa_new]
    clock.advance(MIN_REFRESH)
    assert verify(verifier, issuer, token).subject == "user-42"

    forged = sign(keys.rogue, claims(issuer))
    for _ in range(2):
        assert "signature does not verify" in refused(verifier, issuer, forged).detail


def test_the_cache_keeps_the_most_recently_used_tokens_up_to_its_size(
    tmp_path: Path, issuer: Issuer, keys: Keys, clock: Clock, wall: WallClock
) -> None:
    verifier = caching_verifier(tmp_path, clock, wall, entries=2)
    first, second, third = (sign(keys.ec, claims(issuer, sub=f"user-{i}")) for i in range(3))
    verify(verifier, issuer, first)
    verify(verifier, issuer, second)
    verify(verifier, issuer, first)  # used again: now the most recent
    verify(verifier, issuer, third)  # the cache is full: the least recently used goes
    withdraw_keys(issuer, clock)

    assert verify(verifier, issuer, first).subject == "user-0"
    assert verify(verifier, issuer, third).subject == "user-2"
    refused(verifier, issuer, second)
