"""Opaque tokens checked by RFC 7662 introspection at a real provider (oidc-provider):
accepted when active and meant for the site, answers cached for the token's remaining
life and at most 60 s, refusals answered 401."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
import requests
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from models import Site
from service.auth.introspection import MAX_CACHE_SECONDS, Introspector, looks_like_jwt
from service.cli import main
from service.moderation.errors import ServiceUnavailable, Unauthorized
from service.moderation.sites import IntrospectionClient, SiteInfo, create_site, get_site
from service.moderation.types import Identity
from service.settings import Settings
from tests.support.env import settings_env
from tests.support.oidc import BACKEND_CLIENT, OPAQUE_RESOURCE, RESOURCE, OidcProvider


def _client(provider: OidcProvider, secret: str = BACKEND_CLIENT[1]) -> IntrospectionClient:
    return IntrospectionClient(provider.url("/token/introspection"), BACKEND_CLIENT[0], secret)


@pytest.fixture
def opaque_site(db_session: Session, oidc_provider: OidcProvider) -> Site:
    return create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        issuers=[oidc_provider.issuer],
        audiences=[OPAQUE_RESOURCE, RESOURCE],
        introspection=_client(oidc_provider),
    )


def post(client: FlaskClient, token: str, content: str = "An opaque hello.") -> TestResponse:
    return client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/post-1", "content": content},
        headers={"Authorization": f"Bearer {token}"},
    )


def check(introspector: Introspector, provider: OidcProvider, token: str) -> Identity:
    """Introspect ``token`` as a site trusting ``provider`` for the opaque resource would."""
    return introspector.introspect(
        token,
        client=_client(provider),
        trusted_issuers=[provider.issuer],
        audiences=[OPAQUE_RESOURCE],
    )


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_an_opaque_token_is_accepted_and_its_answer_cached(
    client: FlaskClient, opaque_site: Site, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.client_credentials(resource=OPAQUE_RESOURCE)
    assert not looks_like_jwt(token)
    before = oidc_provider.stats()["introspections"]

    assert post(client, token, "First.").status_code == 202
    assert post(client, token, "Second.").status_code == 202
    assert oidc_provider.stats()["introspections"] == before + 1


def test_jwts_still_go_to_the_verifier_on_a_site_with_introspection(
    client: FlaskClient, opaque_site: Site, oidc_provider: OidcProvider
) -> None:
    before = oidc_provider.stats()["introspections"]
    assert post(client, oidc_provider.client_credentials(resource=RESOURCE)).status_code == 202
    assert oidc_provider.stats()["introspections"] == before


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: "not-a-token-the-provider-issued", "not active"),
        (
            lambda p: p.client_credentials(resource="https://opaque-other.commentguard.test"),
            "not meant for this site",
        ),
    ],
    ids=["unknown", "another audience"],
)
def test_an_unacceptable_opaque_token_is_refused(
    client: FlaskClient,
    opaque_site: Site,
    oidc_provider: OidcProvider,
    make: Callable[[OidcProvider], str],
    reason: str,
) -> None:
    token = make(oidc_provider)
    response = post(client, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert reason in response.get_json()["detail"]
    assert token not in response.get_data(as_text=True)


def test_a_revoked_token_is_refused_once_the_cached_answer_lapses(
    oidc_provider: OidcProvider,
) -> None:
    clock = Clock()
    introspector = Introspector(timeout=5.0, clock=clock)
    token = oidc_provider.client_credentials(resource=OPAQUE_RESOURCE)
    identity = check(introspector, oidc_provider, token)
    assert (identity.issuer, identity.subject) == (oidc_provider.issuer, BACKEND_CLIENT[0])
    assert identity.claims["aud"] == OPAQUE_RESOURCE

    revoked = requests.post(
        oidc_provider.url("/token/revocation"),
        data={"token": token, "token_type_hint": "access_token"},
        auth=BACKEND_CLIENT,
        timeout=10,
    )
    assert revoked.status_code == 200
    before = oidc_provider.stats()["introspections"]

    # Within the minute the cached answer stands, without asking the provider.
    clock.now += MAX_CACHE_SECONDS - 1
    assert check(introspector, oidc_provider, token).subject == BACKEND_CLIENT[0]
    assert oidc_provider.stats()["introspections"] == before

    clock.now += 2
    with pytest.raises(Unauthorized) as caught:
        check(introspector, oidc_provider, token)
    assert "not active" in caught.value.detail
    assert oidc_provider.stats()["introspections"] == before + 1


def test_an_answer_is_kept_no_longer_than_the_token_lives(oidc_provider: OidcProvider) -> None:
    clock = Clock()
    introspector = Introspector(timeout=5.0, clock=clock)
    token = oidc_provider.client_credentials(resource=OPAQUE_RESOURCE)
    exp = check(introspector, oidc_provider, token).claims["exp"]
    # Pretend the token was first seen 10 s before it expires: then it lasts 10 s.
    introspector = Introspector(timeout=5.0, clock=clock)
    clock.now = exp - 10
    check(introspector, oidc_provider, token)
    before = oidc_provider.stats()["introspections"]
    clock.now = exp - 1
    check(introspector, oidc_provider, token)
    assert oidc_provider.stats()["introspections"] == before
    clock.now = exp + 1
    with pytest.raises(Unauthorized) as caught:
        check(introspector, oidc_provider, token)
    assert "expired" in caught.value.detail
    assert oidc_provider.stats()["introspections"] == before + 1


def test_wrong_client_credentials_are_a_503_not_the_readers_fault(
    oidc_provider: OidcProvider,
) -> None:
    introspector = Introspector(timeout=5.0)
    token = oidc_provider.client_credentials(resource=OPAQUE_RESOURCE)
    with pytest.raises(ServiceUnavailable):
        introspector.introspect(
            token,
            client=_client(oidc_provider, secret="wrong"),
            trusted_issuers=[oidc_provider.issuer],
            audiences=[OPAQUE_RESOURCE],
        )


def test_site_create_configures_introspection(
    settings: Settings, committed: sessionmaker[Session], oidc_provider: OidcProvider
) -> None:
    env = {**os.environ, **settings_env(settings)}
    endpoint = oidc_provider.url("/token/introspection")
    args = ["site", "create", "--slug", "opaque", "--name", "O", "--url", "https://o.example"]
    args += ["--issuer", oidc_provider.issuer, "--audience", OPAQUE_RESOURCE]
    args += ["--introspection-endpoint", endpoint, "--introspection-client-id", "cg-backend"]
    # The secret is prompted for, not echoed, when not given on the command line.
    result = CliRunner().invoke(main, args, env=env, input=f"{BACKEND_CLIENT[1]}\n")
    assert result.exit_code == 0, result.output
    assert BACKEND_CLIENT[1] not in result.output
    with committed.begin() as session:
        info = SiteInfo.of(get_site(session, slug="opaque"))
    assert info.introspection == IntrospectionClient(endpoint, *BACKEND_CLIENT)

    half = CliRunner().invoke(main, [*args[:12], "--introspection-client-id", "x"], env=env)
    assert half.exit_code == 2
    assert "needs --introspection-endpoint" in half.output
