"""The development issuer: its key file, its tokens, the verifier's trust in them, and the
``commentguard dev token`` command."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from service.auth.dev_issuer import (
    DEV_CLIENT_ID,
    DEV_ISSUER,
    MAX_TTL_SECONDS,
    DevIssuerDisabled,
    load_or_create_key,
    mint_dev_token,
    public_jwk,
)
from service.auth.roles import site_roles
from service.auth.tokens import TokenVerifier
from service.cli import main
from service.moderation.errors import Unauthorized
from service.settings import Settings

SITE = "demo"


def make_settings(key_path: Path, *, dev_issuer: bool) -> Settings:
    return Settings(
        database_url="sqlite://",
        secret_key="s" * 48,
        environment="development",
        dev_issuer=dev_issuer,
        dev_key_path=key_path,
    )


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "keys" / "dev-issuer-key.pem"


@pytest.fixture
def dev_on(key_path: Path) -> Settings:
    return make_settings(key_path, dev_issuer=True)


def test_a_minted_token_verifies_when_the_dev_issuer_is_on(dev_on: Settings) -> None:
    token = mint_dev_token(
        dev_on,
        subject="alice",
        site=SITE,
        name="Alice",
        email="alice@example.org",
        ttl_seconds=600,
        roles=["moderator"],
    )
    identity = TokenVerifier(dev_on).verify(token, trusted_issuers=[], audiences=[], site_slug=SITE)
    assert identity.issuer == DEV_ISSUER
    assert identity.subject == "alice"
    assert identity.name == "Alice"
    assert identity.email == "alice@example.org"
    assert identity.email_verified is False
    # Role claims are carried; mapping them to roles at a site is authenticate()'s job.
    assert identity.roles == frozenset()
    assert identity.claims["roles"] == ["commentguard:demo:moderator"]
    assert identity.claims["aud"] == SITE
    assert identity.claims["client_id"] == DEV_CLIENT_ID
    assert identity.claims["exp"] - identity.claims["iat"] == 600
    assert identity.claims["jti"]


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("roles", ["commentguard:demo:admin", "commentguard:other:operator", "custom"]),
        ("groups", ["commentguard:demo:admin", "commentguard:other:operator", "custom"]),
        ("scope", "commentguard:demo:admin commentguard:other:operator custom"),
    ],
)
def test_bare_role_names_grant_the_role_at_the_token_site_in_the_configured_claim(
    dev_on: Settings, claim: str, expected: object
) -> None:
    configured = dev_on.model_copy(update={"roles_claim": claim})
    roles = ["admin", "commentguard:other:operator", "custom"]
    token = mint_dev_token(configured, subject="alice", site=SITE, roles=roles)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims[claim] == expected
    granted = site_roles(claims, claim=claim, site_slug=SITE, prefix="commentguard")
    assert granted == {"admin", "moderator", "operator"}
    assert site_roles(claims, claim=claim, site_slug="other", prefix="commentguard") == {"operator"}


def test_a_minted_token_is_an_rfc_9068_access_token(dev_on: Settings) -> None:
    token = mint_dev_token(dev_on, subject="alice", site=SITE)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "EdDSA"
    assert header["kid"] == public_jwk(load_or_create_key(dev_on.dev_key_path))["kid"]
    identity = TokenVerifier(dev_on).verify(
        token, trusted_issuers=[], audiences=[], site_slug=SITE, token_type="at+jwt"
    )
    assert identity.name is None
    assert "name" not in identity.claims
    assert "email" not in identity.claims


def test_every_token_gets_its_own_jti(dev_on: Settings) -> None:
    first, second = (mint_dev_token(dev_on, subject="alice", site=SITE) for _ in range(2))
    verifier = TokenVerifier(dev_on)
    ids = {
        verifier.verify(t, trusted_issuers=[], audiences=[], site_slug=SITE).claims["jti"]
        for t in (first, second)
    }
    assert len(ids) == 2


def test_a_dev_token_is_only_for_its_own_site(dev_on: Settings) -> None:
    token = mint_dev_token(dev_on, subject="alice", site=SITE)
    with pytest.raises(Unauthorized) as caught:
        TokenVerifier(dev_on).verify(
            token, trusted_issuers=[], audiences=["https://blog.example"], site_slug="other"
        )
    assert "not meant for this site" in caught.value.detail


def test_without_a_slug_a_dev_token_needs_its_site_among_the_audiences(
    dev_on: Settings,
) -> None:
    token = mint_dev_token(dev_on, subject="alice", site=SITE)
    verifier = TokenVerifier(dev_on)
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token, trusted_issuers=[], audiences=[])
    assert "accepts no token audience" in caught.value.detail
    assert verifier.verify(token, trusted_issuers=[], audiences=[SITE]).subject == "alice"


def test_a_dev_token_is_refused_when_the_dev_issuer_is_off(
    dev_on: Settings, key_path: Path
) -> None:
    token = mint_dev_token(dev_on, subject="alice", site=SITE)
    dev_off = make_settings(key_path, dev_issuer=False)
    with pytest.raises(Unauthorized) as caught:
        # Even a site that lists the dev issuer, and accepts the audience, is refused.
        TokenVerifier(dev_off).verify(
            token, trusted_issuers=[DEV_ISSUER], audiences=[SITE], site_slug=SITE
        )
    assert caught.value.error == "invalid_token"
    assert "dev issuer is off" in caught.value.detail


def test_minting_is_refused_when_the_dev_issuer_is_off(key_path: Path) -> None:
    with pytest.raises(DevIssuerDisabled):
        mint_dev_token(make_settings(key_path, dev_issuer=False), subject="alice", site=SITE)
    assert not key_path.exists()


@pytest.mark.parametrize(
    ("subject", "site", "ttl"),
    [
        ("", SITE, 60),
        (" ", SITE, 60),
        ("alice", "", 60),
        ("alice", SITE, 0),
        ("alice", SITE, MAX_TTL_SECONDS + 1),
    ],
)
def test_minting_checks_its_arguments(dev_on: Settings, subject: str, site: str, ttl: int) -> None:
    with pytest.raises(ValueError, match="must"):
        mint_dev_token(dev_on, subject=subject, site=site, ttl_seconds=ttl)


def test_the_key_file_is_created_private_and_then_reused(dev_on: Settings, key_path: Path) -> None:
    assert not key_path.parent.exists()
    first = mint_dev_token(dev_on, subject="alice", site=SITE)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    pem = key_path.read_bytes()
    second = mint_dev_token(dev_on, subject="bob", site=SITE)
    assert key_path.read_bytes() == pem
    assert jwt.get_unverified_header(first)["kid"] == jwt.get_unverified_header(second)["kid"]
    assert [p.name for p in key_path.parent.iterdir()] == [key_path.name]


def test_processes_racing_to_create_the_key_agree_on_one(key_path: Path) -> None:
    barrier = threading.Barrier(8)
    kids: list[str] = []

    def create() -> None:
        barrier.wait()
        kids.append(public_jwk(load_or_create_key(key_path))["kid"])

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8
    assert len(set(kids)) == 1


def test_a_new_dev_key_is_picked_up_after_the_refresh_interval(
    dev_on: Settings, key_path: Path
) -> None:
    now = [0.0]
    verifier = TokenVerifier(dev_on, jwks_min_refresh=30.0, clock=lambda: now[0])
    old = mint_dev_token(dev_on, subject="alice", site=SITE)
    verifier.verify(old, trusted_issuers=[], audiences=[], site_slug=SITE)

    key_path.unlink()
    new = mint_dev_token(dev_on, subject="alice", site=SITE)
    now[0] += 30.0
    assert verifier.verify(new, trusted_issuers=[], audiences=[], site_slug=SITE).subject == "alice"


# --- the command ----------------------------------------------------------------------------


def _env(key_path: Path, *, dev_issuer: bool) -> dict[str, str]:
    return {
        "DATABASE_URL": "sqlite://",
        "SECRET_KEY": "s" * 48,
        "COMMENTGUARD_ENVIRONMENT": "development",
        "COMMENTGUARD_DEV_ISSUER": "true" if dev_issuer else "false",
        "COMMENTGUARD_DEV_KEY_PATH": str(key_path),
    }


def test_dev_token_prints_a_token_that_verifies(dev_on: Settings, key_path: Path) -> None:
    args = ["dev", "token", "--sub", "alice", "--site", SITE, "--name", "Alice", "--ttl", "120"]
    result = CliRunner().invoke(main, args, env=_env(key_path, dev_issuer=True))
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    identity = TokenVerifier(dev_on).verify(token, trusted_issuers=[], audiences=[], site_slug=SITE)
    assert (identity.subject, identity.name) == ("alice", "Alice")
    assert identity.claims["exp"] - identity.claims["iat"] == 120
    assert identity.claims["exp"] <= time.time() + 120


def test_dev_token_is_refused_when_the_dev_issuer_is_off(key_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["dev", "token", "--sub", "alice", "--site", SITE],
        env=_env(key_path, dev_issuer=False),
    )
    assert result.exit_code == 2
    assert "COMMENTGUARD_DEV_ISSUER" in result.output
    assert not key_path.exists()


def test_dev_token_explains_a_bad_configuration(key_path: Path) -> None:
    env = {**_env(key_path, dev_issuer=True), "COMMENTGUARD_ENVIRONMENT": "production"}
    result = CliRunner().invoke(main, ["dev", "token", "--sub", "a", "--site", SITE], env=env)
    assert result.exit_code == 2
    assert "configuration" in result.output
