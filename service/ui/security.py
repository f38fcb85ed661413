"""What keeps the UI's pages safe: its cookies, the CSRF check, the response headers, and
the return addresses it will redirect to.

* Cookies are HttpOnly, ``SameSite=Lax``, ``Secure`` (and ``__Secure-`` prefixed) in
  production, and scoped to the UI's path (``/ui``): the session cookie, and the pending
  login's while a login is under way. The JSON API never receives either.
* Every state-changing request (anything but GET, HEAD, OPTIONS) must carry the session's
  CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser
  sends ``Origin``, come from the UI's own origin.
* Every UI response carries a Content-Security-Policy that allows scripts, styles and
  requests from this origin only (no inline script, no ``eval``), forbids framing, and
  ``X-Content-Type-Options: nosniff``; pages are ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
import urllib.parse

from flask import Request
from werkzeug.wrappers import Response as BaseResponse

from service.settings import Settings

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token, or from another
    origin (403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def secure_cookies(settings: Settings) -> bool:
    """Cookies are ``Secure`` in production (the UI is served over https there)."""
    return settings.environment == "production"


def session_cookie_name(settings: Settings) -> str:
    return "__Secure-cg_ui" if secure_cookies(settings) else "cg_ui"


def login_cookie_name(settings: Settings) -> str:
    return "__Secure-cg_ui_login" if secure_cookies(settings) else "cg_ui_login"


def set_cookie(
    response: BaseResponse, settings: Settings, *, name: str, value: str, path: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=secure_cookies(settings),
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response: BaseResponse, settings: Settings, *, name: str, path: str) -> None:
    response.delete_cookie(
        name, path=path, secure=secure_cookies(settings), httponly=True, samesite="Lax"
    )


def check_csrf(request: Request, *, expected: str | None, origin: str) -> None:
    """Refuse (``CsrfRefused``) a state-changing request that does not carry ``expected``
    (the session's token; None: there is no session, so nothing can be right) or whose
    ``Origin`` is not ``origin``."""
    if request.method in SAFE_METHODS:
        return
    sent_origin = request.headers.get("Origin")
    if sent_origin is not None and sent_origin != origin:
        raise CsrfRefused(f"the request came from another origin ({sent_origin[:100]})")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    if expected is None or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("the form's security token is missing or out of date; reload the page")


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def add_security_headers(response: BaseResponse, *, page: bool = True) -> BaseResponse:
    """The UI's headers on ``response`` (``page``: not a static file, so never cached)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if page:
        response.headers["Cache-Control"] = "no-store"
    return response


def safe_return_path(value: str | None, *, prefix: str, default: str) -> str:
    """``value`` when it is a path under ``prefix`` on this server (no scheme, no host, no
    backslash, no control character: nothing a browser could take for another site);
    else ``default``."""
    if not value or len(value) > 2000:
        return default
    if any(ch in value for ch in "\\\r\n\t") or not value.startswith(prefix):
        return default
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return default
    return value
