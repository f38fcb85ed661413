"""The moderators' web UI as an OpenID Connect relying party: authorization code with
PKCE (S256), by Authlib's requests client, at the issuer a site configures
(``service.moderation.sites.UiClient``).

The issuer's endpoints come from its discovery document (cached per process for
:data:`DISCOVERY_MAX_AGE`), except for the development issuer, which lives in this very
app: its authorization endpoint is the app's ``/dev-issuer/authorize`` and its code is
redeemed in-process (a sync worker calling its own server could wait on itself). The ID
token is checked by the same :class:`~service.auth.tokens.TokenVerifier` as API tokens
(signature by the issuer's JWKS, ``iss``, ``aud`` = the client id, lifetime), then its
``nonce``; where the issuer has a userinfo endpoint its claims are added (the ID token's
win; a userinfo answer for another ``sub`` is refused). Roles are then read from those
claims as from an API token's (``service/auth/roles.py``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from service.auth import dev_issuer
from service.auth.claims import claimed_identity
from service.auth.dev_issuer import DEV_ISSUER
from service.auth.jwks import (
    DISCOVERY_PATH,
    KeysUnavailable,
    check_fetchable,
    fetch_json,
    is_loopback,
)
from service.moderation.errors import ServiceUnavailable, Unauthorized
from service.moderation.sites import UiClient
from service.moderation.types import Identity
from service.settings import Settings

log = logging.getLogger(__name__)

#: A discovery document is fetched again this long after the last fetch.
DISCOVERY_MAX_AGE = 3600.0
#: What the UI asks the issuer for: who the moderator is (roles come in the roles claim).
SCOPE = "openid profile email"


class IdTokenVerifier(Protocol):
    """What checks an ID token: :class:`~service.auth.tokens.TokenVerifier`."""

    def verify(
        self, token: str, *, trusted_issuers: Sequence[str], audiences: Sequence[str]
    ) -> Identity: ...


class LoginFailed(Exception):
    """The issuer refused the login, or what it sent back does not check out; ``detail``
    says why in words fit for the moderator (never a token)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    #: None for the development issuer (its codes are redeemed in-process).
    token_endpoint: str | None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class Login:
    """A started login: where to send the browser, and what to keep until it comes back."""

    url: str
    state: dict[str, str]


@dataclass(frozen=True, slots=True)
class LoggedIn:
    identity: Identity
    #: The ID token, kept for the issuer's logout (``id_token_hint``).
    id_token: str


class OidcLogins:
    """Starts and finishes UI logins; one per process (thread-safe), built by the app."""

    def __init__(self, settings: Settings, verifier: IdTokenVerifier) -> None:
        self._settings = settings
        self._verifier = verifier
        self._timeout = settings.dependency_timeout_seconds
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        self._lock = threading.Lock()

    def metadata(self, client: UiClient, *, dev_authorize_url: str) -> ProviderMetadata:
        """The issuer's endpoints; ``ServiceUnavailable`` when its discovery document
        cannot be had (or describes another issuer, or names an endpoint not over https)."""
        if client.issuer == DEV_ISSUER:
            if not self._settings.dev_issuer:
                raise ServiceUnavailable(
                    "this site logs in at the development issuer, which is off here"
                )
            return ProviderMetadata(DEV_ISSUER, dev_authorize_url, None)
        now = time.monotonic()
        cached = self._metadata.get(client.issuer)
        if cached is not None and now - cached[0] < DISCOVERY_MAX_AGE:
            return cached[1]
        try:
            found = self._discover(client.issuer)
        except KeysUnavailable as exc:
            log.warning("UI login: discovery of %s failed: %s", client.issuer, exc)
            raise ServiceUnavailable(
                f"the site's identity provider {client.issuer} cannot be reached; try again"
            ) from None
        with self._lock:
            self._metadata[client.issuer] = (now, found)
        return found

    def _discover(self, issuer: str) -> ProviderMetadata:
        url = issuer.rstrip("/") + DISCOVERY_PATH
        document = fetch_json(url, timeout=self._timeout)
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise KeysUnavailable(f"{url} is not the discovery document of {issuer}")
        endpoints: dict[str, str | None] = {}
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "end_session_endpoint",
        ):
            value = document.get(name)
            if isinstance(value, str) and value:
                check_fetchable(value)
                endpoints[name] = value
            else:
                endpoints[name] = None
        authorization, token = endpoints["authorization_endpoint"], endpoints["token_endpoint"]
        if authorization is None or token is None:
            raise KeysUnavailable(f"{url} names no authorization or token endpoint")
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise KeysUnavailable(f"{issuer} does not support PKCE with S256")
        return ProviderMetadata(
            issuer,
            authorization,
            token,
            endpoints["userinfo_endpoint"],
            endpoints["end_session_endpoint"],
        )

    def begin(self, client: UiClient, metadata: ProviderMetadata, *, redirect_uri: str) -> Login:
        """The authorization request: a fresh ``state``, ``nonce`` and PKCE verifier."""
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        oauth = self._oauth(client, redirect_uri)
        url, state = oauth.create_authorization_url(
            metadata.authorization_endpoint,
            state=secrets.token_urlsafe(24),
            code_verifier=verifier,
            nonce=nonce,
        )
        return Login(url, {"state": state, "nonce": nonce, "code_verifier": verifier})

    def finish(
        self,
        client: UiClient,
        metadata: ProviderMetadata,
        *,
        started: dict[str, Any],
        params: dict[str, str],
        redirect_uri: str,
    ) -> LoggedIn:
        """Check the issuer's redirect (``params``: ``state`` and ``code``, or ``error``)
        against the login ``started``, redeem the code, verify the ID token and read the
        userinfo: the moderator's identity with every claim (roles not yet applied).
        ``LoginFailed`` for anything that does not check out; ``ServiceUnavailable`` when
        the issuer cannot be reached."""
        expected = str(started.get("state", ""))
        if not expected or not hmac.compare_digest(params.get("state", ""), expected):
            raise LoginFailed("the login's state does not match; start again")
        if "error" in params:
            description = params.get("error_description") or params["error"]
            raise LoginFailed(f"the identity provider refused the login: {description[:200]}")
        code = params.get("code", "")
        if not code:
            raise LoginFailed("the identity provider sent no authorization code")
        token = self._redeem(client, metadata, code, started, redirect_uri)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise LoginFailed("the identity provider sent no ID token")
        try:
            verified = self._verifier.verify(
                id_token, trusted_issuers=[client.issuer], audiences=[client.client_id]
            )
        except Unauthorized as exc:
            raise LoginFailed(f"the ID token was refused: {exc.detail}") from None
        claims = dict(verified.claims)
        if not hmac.compare_digest(str(claims.get("nonce", "")), str(started.get("nonce", ""))):
            raise LoginFailed("the ID token's nonce does not match this login")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client.client_id:
            raise LoginFailed("the ID token was issued to another client (azp)")
        access_token = token.get("access_token")
        if metadata.userinfo_endpoint and isinstance(access_token, str):
            userinfo = self._userinfo(client, metadata.userinfo_endpoint, access_token)
            if userinfo.get("sub") != claims["sub"]:
                raise LoginFailed("the userinfo answer is about someone else")
            claims = {**userinfo, **claims}
        roles_claim = self._settings.roles_claim
        if roles_claim not in claims and roles_claim == "scope" and "scope" in token:
            # Roles granted as scopes show in the token response's granted scope.
            claims["scope"] = token["scope"]
        try:
            identity = claimed_identity(
                claims,
                issuer=claims["iss"],
                subject=claims["sub"],
                name_claims=("name", "preferred_username", "nickname", "email"),
            )
        except ValueError as exc:
            raise LoginFailed(f"the ID token's subject {exc}") from None
        return LoggedIn(identity, id_token)

    def logout_url(
        self,
        client: UiClient,
        metadata: ProviderMetadata,
        *,
        id_token: str | None,
        post_logout_redirect_uri: str,
    ) -> str | None:
        """Where to send the browser to end its session at the issuer too (OpenID Connect
        RP-Initiated Logout), when the issuer advertises an ``end_session_endpoint``."""
        if metadata.end_session_endpoint is None:
            return None
        params = {
            "client_id": client.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        if id_token:
            params["id_token_hint"] = id_token
        separator = "&" if urllib.parse.urlsplit(metadata.end_session_endpoint).query else "?"
        return metadata.end_session_endpoint + separator + urllib.parse.urlencode(params)

    # --- the back channel -------------------------------------------------------------------

    def _oauth(self, client: UiClient, redirect_uri: str) -> OAuth2Session:
        oauth = OAuth2Session(
            client_id=client.client_id,
            client_secret=client.client_secret,
            token_endpoint_auth_method=("client_secret_basic" if client.client_secret else "none"),
            scope=SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )
        # A proxy configured for the outside world must not see requests to this machine.
        oauth.trust_env = not is_loopback(client.issuer)
        return oauth

    def _redeem(
        self,
        client: UiClient,
        metadata: ProviderMetadata,
        code: str,
        started: dict[str, Any],
        redirect_uri: str,
    ) -> dict[str, Any]:
        verifier = str(started.get("code_verifier", ""))
        if metadata.token_endpoint is None:
            try:
                return dev_issuer.redeem_code(
                    self._settings,
                    code=code,
                    client_id=client.client_id,
                    redirect_uri=redirect_uri,
                    code_verifier=verifier,
                )
            except dev_issuer.AuthorizationError as exc:
                raise LoginFailed(f"the development issuer refused the code: {exc}") from None
        oauth = self._oauth(client, redirect_uri)
        try:
            token = oauth.fetch_token(
                metadata.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                redirect_uri=redirect_uri,
                timeout=self._timeout,
            )
        except OAuthError as exc:
            raise LoginFailed(
                f"the identity provider refused the code: {exc.description or exc.error}"
            ) from None
        except (requests.RequestException, ValueError) as exc:
            log.warning("UI login: the token endpoint of %s failed: %s", client.issuer, exc)
            raise ServiceUnavailable(
                "the site's identity provider did not answer; try again"
            ) from None
        return dict(token)

    def _userinfo(self, client: UiClient, endpoint: str, access_token: str) -> dict[str, Any]:
        session = requests.Session()
        session.trust_env = not is_loopback(endpoint)
        try:
            answer = session.get(
                endpoint,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            log.warning("UI login: the userinfo endpoint of %s failed: %s", client.issuer, exc)
            raise ServiceUnavailable("the site's identity provider did not answer") from None
        if answer.status_code != 200:
            raise LoginFailed(f"the userinfo endpoint answered HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise LoginFailed("the userinfo answer is not JSON") from None
        if not isinstance(body, dict):
            raise LoginFailed("the userinfo answer is not a JSON object")
        return body
