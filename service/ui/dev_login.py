"""The development issuer's authorization endpoint and login page (``/dev-issuer``),
registered only while ``COMMENTGUARD_DEV_ISSUER`` is on (which production refuses).

``GET /dev-issuer/authorize`` takes an OpenID Connect authorization request from the UI
(code + PKCE S256) and shows a login page asking who to be: a subject, a name, and a role
at a site; no password, since anyone who can reach a development server may be anyone.
Its ``POST`` issues the code (``service/auth/dev_issuer.py``) and redirects to the UI's
``/ui/callback`` with it and the ``state``. The redirect URI must be exactly this app's
callback, so the page can never send a code elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from service.api.context import services, transaction
from service.auth.dev_issuer import (
    AuthorizationError,
    check_authorization_request,
    issue_code,
)
from service.auth.roles import Role
from service.moderation.sites import list_sites

bp = Blueprint("dev_issuer", __name__, url_prefix="/dev-issuer", template_folder="templates")

#: Errors after which the redirect URI itself cannot be trusted: shown on the page.
_NOT_REDIRECTED = frozenset({"unauthorized_client"})


def _callback() -> str:
    public = services().settings.ui_public_url
    if public:
        return public + url_for("ui.callback")
    return url_for("ui.callback", _external=True)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse:
    """The login page (GET) and the login (POST), for one authorization request."""
    settings = services().settings
    params = {k: v for k, v in request.values.items() if isinstance(v, str)}
    redirect_uri = params.get("redirect_uri", "")
    callback = _callback()
    try:
        checked = check_authorization_request(
            settings, params, redirect_uri_allowed=lambda uri: uri == callback
        )
    except AuthorizationError as exc:
        if exc.error in _NOT_REDIRECTED or redirect_uri != callback:
            return _page("dev_login_error.html", 400, error=exc.error, detail=exc.description)
        refusal = {"error": exc.error, "error_description": exc.description}
        if params.get("state"):
            refusal["state"] = params["state"]
        return redirect(redirect_uri + "?" + urlencode(refusal), 303)
    if request.method == "GET":
        with transaction() as db:
            sites = [s.slug for s in list_sites(db)]
        return _page(
            "dev_login.html",
            200,
            request_fields=checked,
            sites=sites,
            roles=[r.value for r in Role],
        )
    form = request.form
    subject = form.get("subject", "").strip()
    site = form.get("site", "").strip()
    role = form.get("role", "")
    roles = []
    if role in {r.value for r in Role} and site:
        roles.append(f"{settings.roles_prefix}:{site}:{role}")
    try:
        code = issue_code(
            settings,
            checked,
            subject=subject,
            name=form.get("name", "").strip() or None,
            email=form.get("email", "").strip() or None,
            roles=roles,
        )
    except AuthorizationError as exc:
        return _page("dev_login_error.html", 400, error=exc.error, detail=exc.description)
    query = urlencode({"code": code, "state": checked["state"]})
    return redirect(checked["redirect_uri"] + "?" + query, 303)


def _page(template: str, status: int, **context: object) -> BaseResponse:
    return Response(render_template(template, **context), status=status, mimetype="text/html")
