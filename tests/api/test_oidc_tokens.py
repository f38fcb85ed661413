"""Tokens from a real OpenID Connect provider (oidc-provider, ``tests/oidc``) through the
API: the ones it issues are accepted, forged ones are refused (401, logged without the
token), and its keys rotate while the service runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from models import Site
from service.app import create_app
from service.moderation.sites import create_site
from service.settings import Settings
from tests.support.oidc import OTHER_RESOURCE, PUBLIC_CLIENT, RESOURCE, OidcProvider

#: Short, so that the rotation test can see a refetch without waiting 30 s.
MIN_REFRESH = 0.5


@pytest.fixture
def app(api_settings: Settings, rolled_back_sessions: sessionmaker[Session]) -> Flask:
    settings = api_settings.model_copy(update={"jwks_min_refresh_seconds": MIN_REFRESH})
    return create_app(settings, sessions=rolled_back_sessions)


@pytest.fixture
def oidc_site(db_session: Session, oidc_provider: OidcProvider) -> Site:
    """``blog``: trusts the provider, for its API resource and for the blog's own ID tokens."""
    return create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        issuers=[oidc_provider.issuer],
        audiences=[RESOURCE, PUBLIC_CLIENT],
    )


def post(client: FlaskClient, token: str, content: str = "Nice post, thank you.") -> TestResponse:
    return client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/post-1", "content": content},
        headers={"Authorization": f"Bearer {token}"},
    )


# --- accepted -----------------------------------------------------------------------------


def test_a_client_credentials_token_is_an_rfc_9068_jwt_and_is_accepted(
    client: FlaskClient, oidc_site: Site, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.client_credentials()
    header = jwt.get_unverified_header(token)
    assert (header["typ"], header["alg"]) == ("at+jwt", "RS256")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        oidc_provider.issuer,
        RESOURCE,
        "cg-backend",
    )

    response = post(client, token)
    assert response.status_code == 202, response.get_json()


def test_an_authorization_code_pkce_access_token_is_accepted_with_the_readers_name(
    client: FlaskClient, oidc_site: Site, oidc_provider: OidcProvider
) -> None:
    tokens = oidc_provider.authorization_code(login="alice")
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"

    response = post(client, tokens["access_token"])
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["author_name"] == "User alice"

    # The same reader, identified by (issuer, subject), reads it back.
    again = client.get(
        response.headers["Location"], headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert again.status_code == 200


def test_an_id_token_is_accepted_where_the_site_accepts_the_client_as_audience(
    client: FlaskClient, oidc_site: Site, oidc_provider: OidcProvider
) -> None:
    tokens = oidc_provider.authorization_code(login="bob")
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["aud"] == (
        PUBLIC_CLIENT
    )
    response = post(client, tokens["id_token"], content="A reply with an ID token.")
    assert response.status_code == 202, response.get_json()


# --- key rotation -------------------------------------------------------------------------


def test_keys_rotated_at_the_provider_are_picked_up_with_one_refetch(
    client: FlaskClient, oidc_site: Site, oidc_provider: OidcProvider
) -> None:
    before = oidc_provider.client_credentials()
    assert post(client, before, "Before the rotation.").status_code == 202
    fetches = oidc_provider.stats()["jwks_fetches"]

    new_kid, old_kid = oidc_provider.rotate()[:2]
    assert jwt.get_unverified_header(before)["kid"] == old_kid
    after = oidc_provider.client_credentials()
    assert jwt.get_unverified_header(after)["kid"] == new_kid

    # The service's cache knows only the old key; the new kid is one refetch away, which
    # the rate limit allows once MIN_REFRESH has passed since the last fetch.
    time.sleep(MIN_REFRESH + 0.1)
    assert post(client, after, "After the rotation.").status_code == 202
    assert oidc_provider.stats()["jwks_fetches"] == fetches + 1

    # Both keys are now cached: no further fetch for either.
    assert post(client, oidc_provider.client_credentials(), "Once more.").status_code == 202
    assert post(client, before, "And with the old key.").status_code == 202
    assert oidc_provider.stats()["jwks_fetches"] == fetches + 1


# --- forged -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _claims(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": provider.issuer,
        "sub": "mallory",
        "aud": RESOURCE,
        "iat": now,
        "exp": now + 300,
        "client_id": "cg-backend",
        "jti": f"forged-{now}",
    }
    base.update(changes)
    return base


def _header(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "kid": provider.stats()["kids"][0]}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def _alg_none(p: OidcProvider) -> str:
    return f"{_b64json(_header(p, alg='none'))}.{_b64json(_claims(p))}."


def _hs256_with_public_key(p: OidcProvider) -> str:
    jwk = next(k for k in p.jwks()["keys"] if k["kid"] == p.stats()["kids"][0])
    public = jwt.PyJWK(jwk, "RS256").key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64json(_header(p, alg='HS256'))}.{_b64json(_claims(p))}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _untrusted_issuer(p: OidcProvider) -> str:
    return p.sign(_header(p), _claims(p, iss="https://idp.attacker.example"))


def _other_audience(p: OidcProvider) -> str:
    # A genuine token of the provider, for another resource server.
    return p.client_credentials(resource=OTHER_RESOURCE)


def _expired(p: OidcProvider) -> str:
    now = int(time.time())
    return p.sign(_header(p), _claims(p, iat=now - 7200, exp=now - 3600))


def _not_yet_valid(p: OidcProvider) -> str:
    now = int(time.time())
    return p.sign(_header(p), _claims(p, nbf=now + 3600, exp=now + 7200))


def _bad_signature(p: OidcProvider) -> str:
    token = p.client_credentials()
    head, payload, signature = token.split(".")
    raw = bytearray(_unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{_b64(bytes(raw))}"


def _signed_by_another_key(p: OidcProvider) -> str:
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(p), rogue, algorithm="RS256", headers=_header(p))


def _unknown_kid(p: OidcProvider) -> str:
    return p.sign(_header(p, kid="no-such-key"), _claims(p))


def _missing_kid(p: OidcProvider) -> str:
    return p.sign(_header(p, kid=None), _claims(p))


def _altered_header(p: OidcProvider) -> str:
    token = p.client_credentials()
    header, _, _ = _parts(token)
    _, payload, signature = token.split(".")
    return f"{_b64json({**header, 'typ': 'JWT'})}.{payload}.{signature}"


def _altered_payload(p: OidcProvider) -> str:
    token = p.client_credentials()
    _, claims, _ = _parts(token)
    head, _, signature = token.split(".")
    return f"{head}.{_b64json({**claims, 'sub': 'admin'})}.{signature}"


FORGERIES: dict[str, tuple[Callable[[OidcProvider], str], str]] = {
    "alg none": (_alg_none, "'none' is not accepted"),
    "HS256 keyed with the public key": (_hs256_with_public_key, "'HS256' is not accepted"),
    "untrusted issuer": (_untrusted_issuer, "is not trusted by this site"),
    "another audience": (_other_audience, "not meant for this site"),
    "expired": (_expired, "has expired"),
    "not yet valid": (_not_yet_valid, "not valid yet"),
    "bad signature": (_bad_signature, "signature does not verify"),
    "signed by another key": (_signed_by_another_key, "signature does not verify"),
    "unknown kid": (_unknown_kid, "not one its issuer publishes"),
    "missing kid": (_missing_kid, "names no signing key"),
    "altered header": (_altered_header, "signature does not verify"),
    "altered payload": (_altered_payload, "signature does not verify"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_a_forged_token_is_refused_and_logged_without_the_token(
    client: FlaskClient,
    oidc_site: Site,
    oidc_provider: OidcProvider,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    forge, reason = FORGERIES[case]
    token = forge(oidc_provider)
    with caplog.at_level(logging.INFO, logger="service"):
        response = post(client, token)

    assert response.status_code == 401, response.get_json()
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert reason in response.get_json()["detail"]
    assert reason in challenge

    refusals = [r for r in caplog.records if "token refused" in r.getMessage()]
    assert len(refusals) == 1
    assert reason in refusals[0].getMessage()
    # Neither the token nor any of its signed parts appears in any log line or the answer.
    secrets_ = [token, *(part for part in token.split(".") if len(part) > 16)]
    for record in caplog.records:
        line = record.getMessage()
        assert not any(part in line for part in secrets_), line
    assert not any(part in response.get_data(as_text=True) for part in secrets_)
