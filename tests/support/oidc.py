"""A real OpenID Connect provider for the tests: ``tests/oidc/provider.mjs`` (the npm
package ``oidc-provider``), run by Node on 127.0.0.1, and an HTTP client for it.

``make test`` installs the package (``npm ci`` in ``tests/oidc``). Without Node the tests
that need the provider skip, saying so; with Node but without the package they fail,
saying how to install it.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"

#: The resource (RFC 8707) whose access tokens are RFC 9068 JWTs: the ``aud`` a site
#: trusting the provider expects.
RESOURCE = "https://api.commentguard.test"
#: Another resource of the same provider: its tokens are for someone else.
OTHER_RESOURCE = "https://other.commentguard.test"
#: A resource whose access tokens are opaque (checked by introspection).
OPAQUE_RESOURCE = "https://opaque.commentguard.test"

BACKEND_CLIENT = ("cg-backend", "cg-backend-secret")
PUBLIC_CLIENT = "cg-blog"
REDIRECT_URI = "http://127.0.0.1:9/callback"

STARTUP_SECONDS = 30.0


class _Form(html.parser.HTMLParser):
    """The first ``<form>`` of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and self.action is None:
            self.action = values.get("action", "")
            self._inside = True
        elif tag == "input" and self._inside and "name" in values:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside = False
            self._done = True


@dataclass
class OidcProvider:
    """A running provider; ``issuer`` is its URL and issuer identifier."""

    issuer: str
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return self.issuer + path

    def client_credentials(self, *, resource: str = RESOURCE, scope: str = "comments") -> str:
        """An access token for the confidential client (``sub`` is its client id)."""
        answer = requests.post(
            self.url("/token"),
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
            auth=BACKEND_CLIENT,
            timeout=10,
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token

    def authorization_code(
        self, *, login: str = "alice", resource: str = RESOURCE, scope: str = "comments"
    ) -> dict[str, Any]:
        """The token response of an authorization code + PKCE (S256) flow by the public
        client, with the provider's development login and consent pages walked as a
        browser would: ``access_token`` (for ``resource``) and ``id_token``."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        state = secrets.token_urlsafe(16)
        browser = requests.Session()
        response = browser.get(
            self.url("/auth"),
            params={
                "client_id": PUBLIC_CLIENT,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": f"openid profile email {scope}",
                "resource": resource,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            allow_redirects=False,
            timeout=10,
        )
        for _ in range(12):
            if response.is_redirect:
                location = urllib.parse.urljoin(response.url, response.headers["Location"])
                if location.startswith(REDIRECT_URI):
                    return self._redeem(location, state=state, verifier=verifier, resource=resource)
                response = browser.get(location, allow_redirects=False, timeout=10)
                continue
            response.raise_for_status()
            form = _Form()
            form.feed(response.text)
            if form.action is None:
                raise AssertionError(f"no form on the provider's page: {response.text[:500]}")
            fields = dict(form.fields)
            if fields.get("prompt") == "login":
                # The development login page takes any login and any password.
                fields.update(login=login, password="any")
            response = browser.post(
                urllib.parse.urljoin(response.url, form.action),
                data=fields,
                allow_redirects=False,
                timeout=10,
            )
        raise AssertionError("the authorization flow did not reach the redirect URI")

    def _redeem(self, location: str, *, state: str, verifier: str, resource: str) -> dict[str, Any]:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        if "error" in query:
            raise AssertionError(f"the provider refused: {query}")
        assert query["state"] == [state]
        answer = requests.post(
            self.url("/token"),
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": PUBLIC_CLIENT,
                "code_verifier": verifier,
                "resource": resource,
            },
            timeout=10,
        )
        answer.raise_for_status()
        tokens: dict[str, Any] = answer.json()
        return tokens

    def register_client(
        self, *, redirect_uri: str, post_logout_redirect_uri: str
    ) -> tuple[str, str]:
        """A new confidential client (client_secret_basic) for authorization code + PKCE
        redirecting to ``redirect_uri``, by dynamic registration (RFC 7591): its id and
        secret."""
        answer = requests.post(
            self.url("/reg"),
            json={
                "redirect_uris": [redirect_uri],
                "post_logout_redirect_uris": [post_logout_redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            timeout=10,
        )
        answer.raise_for_status()
        body = answer.json()
        return str(body["client_id"]), str(body["client_secret"])

    def set_roles(self, login: str, roles: list[str]) -> None:
        """Give the account ``login`` these values in its ``roles`` claim (userinfo)."""
        answer = requests.put(
            self.url(f"/_test/accounts/{urllib.parse.quote(login, safe='')}"),
            json={"roles": roles},
            timeout=10,
        )
        answer.raise_for_status()

    def sign(self, header: dict[str, Any], payload: dict[str, Any]) -> str:
        """``header.payload`` signed RS256 with the provider's current key, as given."""
        answer = requests.post(
            self.url("/_test/sign"), json={"header": header, "payload": payload}, timeout=10
        )
        answer.raise_for_status()
        token: str = answer.json()["token"]
        return token

    def rotate(self) -> list[str]:
        """Make a new signing key; the kids now published, newest (the signing one) first."""
        answer = requests.post(self.url("/_test/rotate"), timeout=30)
        answer.raise_for_status()
        kids: list[str] = answer.json()["kids"]
        return kids

    def stats(self) -> dict[str, Any]:
        """``jwks_fetches`` (GETs of the key set so far) and ``kids`` (newest first)."""
        answer = requests.get(self.url("/_test/stats"), timeout=10)
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats

    def jwks(self) -> dict[str, Any]:
        answer = requests.get(self.url("/jwks"), timeout=10)
        answer.raise_for_status()
        keys: dict[str, Any] = answer.json()
        return keys


def why_unavailable() -> str | None:
    """Why the provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed: the OpenID Connect provider tests need Node.js 20+"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_provider(log_path: Path) -> Iterator[OidcProvider]:
    """Start ``provider.mjs`` on a free port, wait until its discovery document answers,
    and stop it afterwards. Its output goes to ``log_path``, quoted when it fails."""
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(
            f"oidc-provider is not installed in {OIDC_DIR}; run `make test` "
            f"(or `npm ci --prefix {OIDC_DIR}`)"
        )
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["node", "provider.mjs", str(port)],
            cwd=OIDC_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the OIDC provider exited ({process.returncode}): {log_path.read_text()}"
                )
            try:
                discovery = requests.get(issuer + "/.well-known/openid-configuration", timeout=2)
                if discovery.ok and discovery.json().get("issuer") == issuer:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the OIDC provider did not answer within {STARTUP_SECONDS:.0f}s: "
                    f"{log_path.read_text()}"
                )
            time.sleep(0.1)
        yield OidcProvider(issuer=issuer, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
