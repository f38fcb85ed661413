"""The development issuer's side of the UI login: its authorization endpoint and login
page, the codes it issues and how they are redeemed (PKCE, client, redirect URI, expiry),
and that none of it exists while the issuer is off."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import urllib.parse
from pathlib import Path

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from models import Site
from service.app import create_app
from service.auth.dev_issuer import (
    CODE_TYPE,
    DEV_ISSUER,
    DEV_UI_CLIENT_ID,
    AuthorizationError,
    DevIssuerDisabled,
    check_authorization_request,
    issue_code,
    load_or_create_key,
    public_jwk,
    redeem_code,
)
from service.auth.tokens import TokenVerifier
from service.settings import Settings
from tests.ui.conftest import form_of

CALLBACK = "http://localhost/ui/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def request_params(challenge: str, **changes: str) -> dict[str, str]:
    return {
        "client_id": DEV_UI_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid profile email",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }


def checked(settings: Settings, params: dict[str, str]) -> dict[str, str]:
    return check_authorization_request(
        settings, params, redirect_uri_allowed=lambda uri: uri == CALLBACK
    )


def test_a_code_redeems_for_an_id_token_the_verifier_accepts(api_settings: Settings) -> None:
    verifier, challenge = pkce()
    request = checked(api_settings, request_params(challenge))
    code = issue_code(
        api_settings, request, subject="mia", name="Mia", roles=["commentguard:blog:moderator"]
    )
    tokens = redeem_code(
        api_settings,
        code=code,
        client_id=DEV_UI_CLIENT_ID,
        redirect_uri=CALLBACK,
        code_verifier=verifier,
    )
    identity = TokenVerifier(api_settings).verify(
        tokens["id_token"], trusted_issuers=[DEV_ISSUER], audiences=[DEV_UI_CLIENT_ID]
    )
    assert identity.subject == "mia"
    assert identity.name == "Mia"
    assert identity.claims["nonce"] == "n-1"
    assert identity.claims["roles"] == ["commentguard:blog:moderator"]
    assert identity.claims["aud"] == DEV_UI_CLIENT_ID


def test_a_code_is_no_token(api_settings: Settings) -> None:
    _verifier, challenge = pkce()
    code = issue_code(api_settings, checked(api_settings, request_params(challenge)), subject="m")
    assert jwt.get_unverified_header(code)["typ"] == CODE_TYPE
    from service.moderation.errors import Unauthorized

    with pytest.raises(Unauthorized):
        TokenVerifier(api_settings).verify(
            code, trusted_issuers=[DEV_ISSUER], audiences=[DEV_UI_CLIENT_ID], site_slug="blog"
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code_verifier": "w" * 64}, "does not match"),
        ({"code_verifier": "short"}, "malformed"),
        ({"client_id": "someone-else"}, "another client"),
        ({"redirect_uri": "http://localhost/elsewhere"}, "another client"),
        ({"code": "not-a-code"}, "invalid or has expired"),
    ],
)
def test_a_code_is_refused_with_anything_else(
    api_settings: Settings, change: dict[str, str], message: str
) -> None:
    verifier, challenge = pkce()
    code = issue_code(api_settings, checked(api_settings, request_params(challenge)), subject="m")
    arguments = {
        "code": code,
        "client_id": DEV_UI_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        **change,
    }
    with pytest.raises(AuthorizationError, match=message) as refused:
        redeem_code(api_settings, **arguments)
    assert refused.value.error == "invalid_grant"


def test_an_expired_code_is_refused(api_settings: Settings) -> None:
    verifier, challenge = pkce()
    key = load_or_create_key(api_settings.dev_key_path)
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "client_id": DEV_UI_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "code_challenge": challenge,
        "nonce": "n",
        "scope": "openid",
        "iat": now - 300,
        "exp": now - 200,
        "user": {"sub": "m", "roles": []},
    }
    code = jwt.encode(
        claims, key, algorithm="EdDSA", headers={"typ": CODE_TYPE, "kid": public_jwk(key)["kid"]}
    )
    with pytest.raises(AuthorizationError, match="expired"):
        redeem_code(
            api_settings,
            code=code,
            client_id=DEV_UI_CLIENT_ID,
            redirect_uri=CALLBACK,
            code_verifier=verifier,
        )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "other"}, "unauthorized_client"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "abc"}, "invalid_request"),
        ({"state": ""}, "invalid_request"),
        ({"nonce": ""}, "invalid_request"),
    ],
)
def test_the_authorization_request_is_checked(
    api_settings: Settings, change: dict[str, str], error: str
) -> None:
    _verifier, challenge = pkce()
    with pytest.raises(AuthorizationError) as refused:
        checked(api_settings, request_params(challenge, **change))
    assert refused.value.error == error


def test_the_login_page_never_redirects_to_a_foreign_uri(client: FlaskClient, site: Site) -> None:
    _verifier, challenge = pkce()
    foreign = request_params(challenge, redirect_uri="https://evil.example/cb")
    page = client.get("/dev-issuer/authorize?" + urllib.parse.urlencode(foreign))
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "redirect_uri" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    # A fault after the redirect URI checks out goes back to the UI, as OAuth says.
    no_pkce = request_params(challenge, code_challenge_method="plain")
    answer = client.get("/dev-issuer/authorize?" + urllib.parse.urlencode(no_pkce))
    assert answer.status_code == 303
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)
    assert back["error"] == ["invalid_request"]
    assert back["state"] == ["s-1"]


def test_the_login_page_asks_who_to_be_and_redirects_with_a_code(
    client: FlaskClient, site: Site
) -> None:
    _verifier, challenge = pkce()
    page = client.get("/dev-issuer/authorize?" + urllib.parse.urlencode(request_params(challenge)))
    assert page.status_code == 200
    assert '<option value="blog">blog</option>' in page.text
    form = form_of(page.text)
    answer = client.post(
        str(form.action), data={**form.fields, "subject": "mia", "role": "admin", "site": "blog"}
    )
    assert answer.status_code == 303
    location = urllib.parse.urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = urllib.parse.parse_qs(location.query)
    assert query["state"] == ["s-1"]
    claims = jwt.decode(query["code"][0], options={"verify_signature": False})
    assert claims["user"]["roles"] == ["commentguard:blog:admin"]
    empty = client.post(str(form.action), data={**form.fields, "subject": " "})
    assert empty.status_code == 400


def test_a_login_that_fails_at_the_callback_says_why_and_leaves_no_session(
    client: FlaskClient, site: Site
) -> None:
    start = client.get("/ui/blog/login")
    authorize = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["Location"]).query)
    forged = client.get("/ui/callback?" + urllib.parse.urlencode({"state": "x", "code": "y"}))
    assert forged.status_code == 400
    assert "state does not match" in forged.text
    again = client.get(
        "/ui/callback?" + urllib.parse.urlencode({"state": authorize["state"][0], "code": "y"})
    )
    assert again.status_code == 400
    assert "expired" in again.text  # the failed attempt ended the pending login
    assert "cg_ui=" not in " ".join(again.headers.getlist("Set-Cookie"))


def test_the_issuer_refuses_an_error_redirect_from_the_provider(
    client: FlaskClient, site: Site
) -> None:
    start = client.get("/ui/blog/login")
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["Location"]).query)["state"]
    denied = client.get(
        "/ui/callback?"
        + urllib.parse.urlencode(
            {"state": state[0], "error": "access_denied", "error_description": "no <b>way</b>"}
        )
    )
    assert denied.status_code == 400
    assert "refused the login: no &lt;b&gt;way&lt;/b&gt;" in denied.text


def test_nothing_of_it_exists_while_the_issuer_is_off(
    settings: Settings, rolled_back_sessions: sessionmaker[Session], tmp_path: Path, site: Site
) -> None:
    off = settings.model_copy(update={"dev_issuer": False, "dev_key_path": tmp_path / "k.pem"})
    app = create_app(off, sessions=rolled_back_sessions)
    with app.test_client() as client:
        assert client.get("/dev-issuer/authorize").status_code == 404
        # A site left pointing at the development issuer cannot log anyone in.
        login = client.get("/ui/blog/login")
        assert login.status_code == 503
        assert "development issuer, which is off" in login.text
    _verifier, challenge = pkce()
    with pytest.raises(DevIssuerDisabled):
        check_authorization_request(
            off, request_params(challenge), redirect_uri_allowed=lambda _uri: True
        )
