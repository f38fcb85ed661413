"""The moderators' web UI (``/ui``): login and logout, the queue, the actions and their
undo, a comment's detail and audit trail, the site's rules.

Views are thin, as the API's: they parse, make one domain call (the same functions the
JSON API calls) and render. Pages are HTML; the same endpoints answer JSON to the page's
script (``Accept: application/json``), and errors go back the same way: an HTML error
page to a browser's navigation, ``application/problem+json`` to the script.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from models import Status, Trust
from service.api.context import EXTENSION as API_EXTENSION
from service.api.context import Services, services, transaction
from service.api.webhooks import send_after_commit, webhook_lease
from service.auth.oidc_client import LoginFailed, OidcLogins, ProviderMetadata
from service.auth.roles import Role, site_roles
from service.errors import DOMAIN_PROBLEMS, ProblemType, problem
from service.moderation.actions import Action, Item, ItemResult, Outcome, act_on_comments
from service.moderation.authors import get_author, set_trust
from service.moderation.comments import find_comment, read_comment
from service.moderation.cursors import cursor_key
from service.moderation.errors import (
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
)
from service.moderation.queue import QueueItem, queue_page, queue_query, status_counts
from service.moderation.rules import change_rules, read_rules
from service.moderation.sites import SiteInfo, UiClient, list_sites, ui_client_of
from service.moderation.types import Identity
from service.moderation.ui_sessions import (
    LOGIN_SECONDS,
    UiSessionInfo,
    complete_login,
    end_ui_session,
    find_ui_session,
    remember_action,
    session_id,
    start_login,
)
from service.moderation.undo import Done, undo_comment_actions, undo_trust
from service.ui.highlight import highlight, spam_terms
from service.ui.security import (
    CSRF_FIELD,
    CsrfRefused,
    add_security_headers,
    check_csrf,
    clear_cookie,
    login_cookie_name,
    origin_of,
    safe_return_path,
    session_cookie_name,
    set_cookie,
)

log = logging.getLogger(__name__)

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

EXTENSION = "commentguard.ui"
#: The tabs of the queue, in order.
TABS = (Status.held, Status.spam, Status.approved)
#: Comments per page of the queue.
PAGE_SIZE = 25
#: What a moderator may do from the queue's buttons and keys.
UI_ACTIONS = (Action.approve, Action.spam, Action.trash, Action.hold, Action.restore)
ACTION_WORDS = {
    Action.approve: "Approved",
    Action.spam: "Marked as spam",
    Action.trash: "Deleted",
    Action.hold: "Held",
    Action.restore: "Restored",
    Action.ham: "Marked as not spam",
}


@dataclass(frozen=True, slots=True)
class UiServices:
    logins: OidcLogins


class LoginRequired(Exception):
    """The request needs a logged-in moderator of ``slug``; a browser is sent to log in."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug


@dataclass(frozen=True, slots=True)
class Moderator:
    """A request's site and its logged-in moderator."""

    site: SiteInfo
    ui: UiSessionInfo

    @property
    def actor(self) -> Identity:
        return self.ui.identity()

    @property
    def is_admin(self) -> bool:
        return Role.admin.value in self.ui.roles


def register_ui(app: Flask) -> None:
    """Add the UI to ``app`` (after the API's services are in place)."""
    found = app.extensions[API_EXTENSION]
    assert isinstance(found, Services)
    app.extensions[EXTENSION] = UiServices(OidcLogins(found.settings, found.verifier))
    app.register_blueprint(bp)
    app.after_request(_headers)
    if found.settings.dev_issuer:
        from service.ui import dev_login

        app.register_blueprint(dev_login.bp)


def _logins() -> OidcLogins:
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, UiServices)
    return found.logins


# --- plumbing ---------------------------------------------------------------------------------


def _headers(response: BaseResponse) -> BaseResponse:
    """The UI's security headers on every answer under its paths (routing redirects and
    errors included), never on the API's."""
    path = request.path
    if path == "/ui" or path.startswith(("/ui/", "/dev-issuer/")):
        add_security_headers(response, page=request.endpoint != "ui.static")
    return response


def wants_json() -> bool:
    """Whether the caller is the page's script (it asks for JSON) rather than a browser
    navigating."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _origin() -> str:
    public = services().settings.ui_public_url
    return public if public else origin_of(request.host_url)


def _external(endpoint: str, **values: Any) -> str:
    """An absolute URL of this app, at its public origin when one is configured."""
    public = services().settings.ui_public_url
    if public:
        return public + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _redirect_uri() -> str:
    return _external("ui.callback")


def _session_cookie_path() -> str:
    return request.script_root + "/ui"


def _current(db: Session) -> UiSessionInfo | None:
    token = request.cookies.get(session_cookie_name(services().settings))
    if not token:
        return None
    return find_ui_session(
        db, token=token, now=_now(), idle_seconds=services().settings.ui_session_idle_seconds
    )


def _site(db: Session, slug: str) -> tuple[SiteInfo, UiClient]:
    site = services().sites.get(db, slug=slug)
    if site.ui_client is None:
        raise NotFound(f"site '{slug}' has no moderation UI configured")
    return site, site.ui_client


def _moderator(db: Session, slug: str, *, role: Role = Role.moderator) -> Moderator:
    """The site and its logged-in moderator (holding ``role`` there), after the CSRF
    check of a state-changing request: ``LoginRequired`` without a session for the site,
    ``CsrfRefused``, ``Forbidden`` without the role."""
    site, _client = _site(db, slug)
    ui = _current(db)
    if ui is None or not ui.logged_in or ui.site_id != site.id:
        if request.method not in ("GET", "HEAD"):
            # Without a session nothing can be right; refuse before anything else.
            check_csrf(request, expected=None, origin=_origin())
        raise LoginRequired(slug)
    check_csrf(request, expected=ui.csrf_token, origin=_origin())
    if role.value not in ui.roles:
        raise Forbidden(f"this needs the {role.value} role at site '{slug}'")
    return Moderator(site, ui)


@contextmanager
def _moderating(slug: str, *, role: Role = Role.moderator) -> Iterator[tuple[Session, Moderator]]:
    with transaction() as db:
        yield db, _moderator(db, slug, role=role)


def _render(template: str, code: int = 200, /, **context: Any) -> BaseResponse:
    return Response(render_template(template, **context), status=code, mimetype="text/html")


def _error(status: int, title: str, detail: str, **extra: Any) -> BaseResponse:
    if wants_json():
        slug = {401: "unauthorized", 403: "forbidden", 404: "not-found"}.get(status, "error")
        kind = next((p for p in DOMAIN_PROBLEMS.values() if p.status == status), None)
        return problem(status, kind.slug if kind else slug, title, detail)
    return _render("error.html", status, title=title, detail=detail, status=status, **extra)


# --- errors -----------------------------------------------------------------------------------


@bp.errorhandler(LoginRequired)
def _login_required(exc: LoginRequired) -> BaseResponse:
    login = url_for("ui.login", slug=exc.slug)
    if request.method in ("GET", "HEAD") and not wants_json():
        return redirect(login + "?" + urlencode({"next": request.full_path.rstrip("?")}), 303)
    return _error(401, "Please log in", "your session has ended; log in again", login_url=login)


@bp.errorhandler(CsrfRefused)
def _csrf(exc: CsrfRefused) -> BaseResponse:
    return _error(403, "Request refused", exc.detail)


@bp.errorhandler(DomainError)
def _domain(exc: DomainError) -> BaseResponse:
    kind = next(
        (p for cls, p in DOMAIN_PROBLEMS.items() if isinstance(exc, cls)),
        ProblemType(500, "internal", "Internal error"),
    )
    if wants_json():
        errors = exc.errors if isinstance(exc, InvalidInput) else ()
        headers = {"ETag": exc.etag} if isinstance(exc, PreconditionFailed) and exc.etag else {}
        if isinstance(exc, ServiceUnavailable):
            headers["Retry-After"] = str(exc.retry_after)
        return problem(
            kind.status, kind.slug, kind.title, exc.detail, errors=errors, headers=headers
        )
    errors = exc.errors if isinstance(exc, InvalidInput) else []
    return _render(
        "error.html",
        kind.status,
        status=kind.status,
        title=kind.title,
        detail=exc.detail,
        errors=errors,
    )


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> BaseResponse:
    status = exc.code or 500
    return _error(status, exc.name, exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> BaseResponse:
    log.exception("unhandled error in the UI")
    return _error(500, "Internal error", "an unexpected error occurred; try again")


@bp.route("/<path:_rest>", methods=["GET", "POST"])
def _unknown(_rest: str) -> BaseResponse:
    """Anything else under /ui: the UI's own 404 page (the app's would be JSON)."""
    raise NotFound("no such page")


# --- login and logout -------------------------------------------------------------------------


@bp.get("/")
def index() -> BaseResponse:
    """The sites whose moderators can log in here."""
    with transaction() as db:
        sites = [(s.slug, s.name) for s in list_sites(db) if ui_client_of(s) is not None]
    return _render("index.html", sites=sites)


@bp.get("/<slug>/", strict_slashes=False)
def site_home(slug: str) -> BaseResponse:
    return redirect(url_for("ui.queue", slug=slug), 303)


def _metadata(client: UiClient) -> ProviderMetadata:
    dev_url = ""
    if services().settings.dev_issuer:
        dev_url = _external("dev_issuer.authorize")
    return _logins().metadata(client, dev_authorize_url=dev_url)


@bp.get("/<slug>/login")
def login(slug: str) -> BaseResponse:
    """Start a login at the site's issuer: remember ``state``, ``nonce`` and the PKCE
    verifier in a pending session (its own cookie, beside the session's),
    then send the browser to the issuer's authorization endpoint."""
    default = url_for("ui.queue", slug=slug)
    back = safe_return_path(request.args.get("next"), prefix=f"/ui/{slug}/", default=default)
    settings = services().settings
    with transaction() as db:
        site, client = _site(db, slug)
        started = _logins().begin(client, _metadata(client), redirect_uri=_redirect_uri())
        earlier = request.cookies.get(login_cookie_name(settings))
        if earlier:
            # A login started again in the same browser replaces the one left unfinished.
            end_ui_session(db, id=session_id(earlier))
        token = start_login(
            db,
            site_id=site.id,
            login={**started.state, "site": slug, "next": back},
            now=_now(),
        )
    response = redirect(started.url, 303)
    set_cookie(
        response,
        settings,
        name=login_cookie_name(settings),
        value=token,
        path=_session_cookie_path(),
        max_age=LOGIN_SECONDS,
    )
    return response


@bp.get("/callback")
def callback() -> BaseResponse:
    """The issuer's redirect: check it against the pending login, verify the moderator and
    their role, and replace the pending session by a logged-in one under a new cookie."""
    settings = services().settings
    login_token = request.cookies.get(login_cookie_name(settings), "")
    failure: tuple[int, str, str] | None = None
    response: BaseResponse
    token: str | None = None
    back = url_for("ui.index")
    with transaction() as db:
        pending = find_ui_session(
            db, token=login_token, now=_now(), idle_seconds=settings.ui_session_idle_seconds
        )
        if pending is None or pending.login is None:
            failure = (
                400,
                "Login expired",
                "this login has expired or was started in another browser; start again",
            )
        else:
            slug = str(pending.login.get("site", ""))
            site, client = _site(db, slug)
            back = str(pending.login.get("next") or url_for("ui.queue", slug=slug))
            try:
                logged = _logins().finish(
                    client,
                    _metadata(client),
                    started=pending.login,
                    params=request.args.to_dict(),
                    redirect_uri=_redirect_uri(),
                )
            except LoginFailed as exc:
                failure = (400, "Login failed", exc.detail)
                end_ui_session(db, id=pending.id)
            else:
                roles = site_roles(
                    logged.identity.claims,
                    claim=settings.roles_claim,
                    site_slug=site.slug,
                    prefix=settings.roles_prefix,
                )
                if Role.moderator.value not in roles:
                    who = logged.identity.name or logged.identity.subject
                    failure = (
                        403,
                        "Not a moderator",
                        f"{who} holds no moderator role at site '{site.slug}' "
                        f"({settings.roles_prefix}:{site.slug}:moderator or admin)",
                    )
                    end_ui_session(db, id=pending.id)
                else:
                    previous = _current(db)
                    if previous is not None:
                        end_ui_session(db, id=previous.id)
                    token = complete_login(
                        db,
                        pending_id=pending.id,
                        identity=logged.identity,
                        roles=roles,
                        id_token=logged.id_token,
                        now=_now(),
                        max_seconds=settings.ui_session_max_seconds,
                    )
    if failure is not None:
        response = _error(*failure, retry_url=url_for("ui.index"))
    else:
        assert token is not None
        response = redirect(back, 303)
        set_cookie(
            response,
            settings,
            name=session_cookie_name(settings),
            value=token,
            path=_session_cookie_path(),
            max_age=settings.ui_session_max_seconds,
        )
    clear_cookie(response, settings, name=login_cookie_name(settings), path=_session_cookie_path())
    return response


@bp.post("/<slug>/logout")
def logout(slug: str) -> BaseResponse:
    """End the session here, and at the issuer too when it offers RP-initiated logout.
    Without a session (it ended already) there is nothing to end: the signed-out page."""
    settings = services().settings
    with transaction() as db:
        current = _current(db)
        if current is None or not current.logged_in:
            mod = None
        else:
            mod = _moderator(db, slug)
            end_ui_session(db, id=mod.ui.id)
    if mod is None:
        response = _render("signed_out.html", slug=slug, end_session=None)
        clear_cookie(
            response, settings, name=session_cookie_name(settings), path=_session_cookie_path()
        )
        return response
    client = mod.site.ui_client
    assert client is not None
    end_session = None
    with suppress(ServiceUnavailable):
        end_session = _logins().logout_url(
            client,
            _metadata(client),
            id_token=mod.ui.id_token,
            post_logout_redirect_uri=_external("ui.index"),
        )
    response = _render("signed_out.html", slug=slug, end_session=end_session)
    clear_cookie(
        response, settings, name=session_cookie_name(settings), path=_session_cookie_path()
    )
    return response


# --- the queue --------------------------------------------------------------------------------


@bp.get("/<slug>/queue")
def queue(slug: str) -> BaseResponse:
    """One page of one tab: newest first unless sorted otherwise, filtered by thread and
    author, paged by the queue's cursor."""
    args = request.args
    query = queue_query(
        status=args.get("status") or None,
        sort=args.get("sort") or None,
        q=args.get("q") or None,
        author=args.get("author") or None,
        limit=str(PAGE_SIZE),
        cursor=args.get("cursor") or None,
        thread=args.get("thread") or None,
    )
    key = cursor_key(services().settings.secret_key.get_secret_value())
    with _moderating(slug) as (db, mod):
        page = queue_page(db, site_id=mod.site.id, query=query, cursor_key=key)
    filters = {
        k: v
        for k, v in (
            ("status", query.status.value),
            ("sort", query.sort.value),
            ("thread", query.thread),
            ("author", str(query.author_id) if query.author_id is not None else None),
            ("q", query.q),
        )
        if v
    }
    next_url = None
    if page.next_cursor is not None:
        next_url = (
            url_for("ui.queue", slug=slug)
            + "?"
            + urlencode({**filters, "cursor": page.next_cursor})
        )
    return _render(
        "queue.html",
        mod=mod,
        slug=slug,
        query=query,
        filters=filters,
        tabs=[(s.value, page.counts.get(s.value, 0)) for s in TABS],
        counts=page.counts,
        items=[_item_view(i) for i in page.items],
        next_url=next_url,
        first_page=bool(query.cursor),
        notice=_notice(args),
        return_to=request.full_path.rstrip("?"),
    )


def _item_view(item: QueueItem) -> dict[str, Any]:
    author = item.author
    return {
        "id": str(item.id),
        "version": item.version,
        "status": item.status.value,
        "thread": item.thread,
        "author_id": author.id,
        "author_name": item.author_name or author.display_name or author.subject,
        "author_email": item.author_email,
        "trust": author.trust.value,
        "approved_count": author.approved_count,
        "spam_count": author.spam_count,
        "score": item.score,
        "reasons": item.reasons,
        "segments": highlight(item.content, spam_terms(item.reasons)),
        "created_at": item.created_at,
        "discard": item.discard,
    }


def _notice(args: Any) -> str | None:
    """The message a redirect after a form post asks the page to show (fixed texts with
    numbers: nothing from the address is shown as given)."""
    kind = args.get("notice")
    count = _small_int(args.get("n"))
    stale = _small_int(args.get("stale"))
    if kind == "acted":
        word = ACTION_WORDS.get(_action_of(args.get("action")) or Action.hold, "Done")
        text = f"{word} {count} comment{'s' if count != 1 else ''}."
        if stale:
            text += f" {stale} had been changed by someone else first; reload to see them."
        return text
    if kind == "undone":
        return f"Undid the last action ({count} undone, {stale} changed by someone else since)."
    if kind == "nothing":
        return "There is nothing to undo."
    if kind == "trust":
        return "The author's trust was changed."
    if kind == "rules":
        return "The rules were saved."
    return None


def _small_int(value: str | None) -> int:
    if value and value.isascii() and value.isdigit() and len(value) <= 4:
        return int(value)
    return 0


def _action_of(value: str | None) -> Action | None:
    try:
        return Action(value) if value else None
    except ValueError:
        return None


# --- actions ----------------------------------------------------------------------------------


def _parse_action() -> Action:
    action = _action_of(request.form.get("action"))
    if action is None or action not in UI_ACTIONS:
        raise InvalidInput(
            "invalid action",
            [FieldError("action", f"one of {', '.join(a.value for a in UI_ACTIONS)}")],
        )
    return action


def _parse_item(value: str) -> Item:
    """``<comment id>:<version>`` as the page writes it."""
    cid, _, version = value.partition(":")
    try:
        comment_id = uuid.UUID(cid)
    except ValueError:
        raise InvalidInput("invalid item", [FieldError("item", "a comment id")]) from None
    if not (version.isascii() and version.isdigit() and 0 < len(version) <= 18):
        raise InvalidInput("invalid item", [FieldError("item", "a comment id and version")])
    return Item(comment_id, int(version))


@bp.post("/<slug>/actions")
def act_in_bulk(slug: str) -> BaseResponse:
    """One action on the selected comments (``item``: ``<id>:<version>``, repeated), each
    at the version the page showed."""
    action = _parse_action()
    items = [_parse_item(v) for v in request.form.getlist("item")]
    if not items:
        raise InvalidInput("nothing selected", [FieldError("item", "select comments first")])
    return _act(slug, action, items)


@bp.post("/<slug>/comments/<comment_id>/actions")
def act(slug: str, comment_id: str) -> BaseResponse:
    """One action on one comment, at the version the page showed (``version``)."""
    action = _parse_action()
    version = request.form.get("version") or request.args.get("version") or ""
    return _act(slug, action, [_parse_item(f"{comment_id}:{version}")])


def _act(slug: str, action: Action, items: list[Item]) -> BaseResponse:
    with _moderating(slug) as (db, mod):
        results = act_on_comments(
            db,
            site_id=mod.site.id,
            items=items,
            actor=mod.actor,
            action=action,
            note=None,
            webhook_lease=webhook_lease(),
        )
        done = [r for r in results if r.outcome is Outcome.ok]
        if done:
            remember_action(db, id=mod.ui.id, action=_comments_record(action, done))
        counts = status_counts(db, site_id=mod.site.id)
    send_after_commit([d for r in results for d in r.deliveries])
    tally = Counter(r.outcome.value for r in results)
    stale = tally.get(Outcome.conflict.value, 0)
    if wants_json():
        return jsonify(
            action=action.value,
            counts=counts,
            tally=dict(tally),
            results=[_result(r) for r in results],
            message=_notice(
                {
                    "notice": "acted",
                    "action": action.value,
                    "n": str(len(done)),
                    "stale": str(stale),
                }
            ),
        )
    return _back(slug, notice="acted", action=action.value, n=len(done), stale=stale)


def _comments_record(action: Action, done: list[ItemResult]) -> dict[str, Any]:
    return {
        "kind": "comments",
        "action": action.value,
        "items": [
            {
                "id": str(r.comment_id),
                "from": r.from_status.value if r.from_status else None,
                "version": r.version,
                "audit_id": r.audit_id,
            }
            for r in done
        ],
    }


def _result(r: ItemResult) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(r.comment_id), "result": r.outcome.value}
    if r.status is not None:
        out["status"] = r.status.value
    if r.version is not None:
        out["version"] = r.version
    if r.outcome is Outcome.conflict:
        out["detail"] = (
            f"someone else acted on this comment first: it is now "
            f"{r.status.value if r.status else 'changed'} (version {r.version}); reload to see it"
        )
    elif r.detail:
        out["detail"] = r.detail
    return out


def _back(slug: str, **notice: Any) -> BaseResponse:
    default = url_for("ui.queue", slug=slug)
    target = safe_return_path(request.form.get("next"), prefix=f"/ui/{slug}/", default=default)
    path, _, query = target.partition("?")
    kept = [p for p in query.split("&") if p and p.split("=")[0] not in _NOTICE_KEYS]
    kept.append(urlencode({k: str(v) for k, v in notice.items()}))
    return redirect(path + "?" + "&".join(kept), 303)


_NOTICE_KEYS = frozenset({"notice", "action", "n", "stale"})


@bp.post("/<slug>/undo")
def undo(slug: str) -> BaseResponse:
    """Undo the session's last action (comments or an author's trust), unless someone has
    acted on its targets since."""
    now = _now()
    results: list[ItemResult] = []
    with _moderating(slug) as (db, mod):
        last = mod.ui.last_action
        undone = stale = 0
        if last and last.get("kind") == "comments":
            done = [
                Done(
                    uuid.UUID(i["id"]),
                    Action(last["action"]),
                    Status(i["from"]),
                    int(i["version"]),
                    int(i["audit_id"]),
                )
                for i in last["items"]
            ]
            results = undo_comment_actions(
                db, site_id=mod.site.id, done=done, actor=mod.actor, webhook_lease=webhook_lease()
            )
            undone = sum(r.outcome is Outcome.ok for r in results)
            stale = len(results) - undone
        elif last and last.get("kind") == "trust":
            try:
                undo_trust(
                    db,
                    site_id=mod.site.id,
                    author_id=int(last["author_id"]),
                    before=Trust(last["before"]),
                    before_until=_time(last.get("before_until")),
                    after=Trust(last["after"]),
                    after_until=_time(last.get("after_until")),
                    actor=mod.actor,
                    now=now,
                )
                undone = 1
            except PreconditionFailed:
                stale = 1
        if last:
            remember_action(db, id=mod.ui.id, action=None)
        counts = status_counts(db, site_id=mod.site.id)
    send_after_commit([d for r in results for d in r.deliveries])
    kind = "undone" if last else "nothing"
    if wants_json():
        message = _notice({"notice": kind, "n": str(undone), "stale": str(stale)})
        return jsonify(undone=undone, stale=stale, counts=counts, message=message)
    return _back(slug, notice=kind, n=undone, stale=stale)


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


@bp.post("/<slug>/authors/<int:author_id>/trust")
def trust(slug: str, author_id: int) -> BaseResponse:
    """Trust, ban (for ever) or reset an author (``trust``: trusted, banned, normal)."""
    try:
        wanted = Trust(request.form.get("trust", ""))
    except ValueError:
        raise InvalidInput(
            "invalid trust", [FieldError("trust", "trusted, normal or banned")]
        ) from None
    now = _now()
    with _moderating(slug) as (db, mod):
        before = get_author(db, site_id=mod.site.id, author_id=author_id)
        before_trust, before_until = before.trust, before.banned_until
        author = set_trust(
            db,
            site_id=mod.site.id,
            author_id=author_id,
            trust=wanted,
            until=None,
            note=None,
            actor=mod.actor,
            now=now,
        )
        remember_action(
            db,
            id=mod.ui.id,
            action={
                "kind": "trust",
                "author_id": author_id,
                "before": before_trust.value,
                "before_until": _iso(before_until),
                "after": author.trust.value,
                "after_until": _iso(author.banned_until),
            },
        )
        name = author.display_name or author.subject
    if wants_json():
        words = {Trust.trusted: "trusted", Trust.banned: "banned", Trust.normal: "not trusted"}
        return jsonify(
            author={"id": author_id, "trust": wanted.value},
            message=f"{name} is now {words[wanted]}. (u: undo)",
        )
    return _back(slug, notice="trust")


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


# --- a comment, and the site's rules --------------------------------------------------------------


@bp.get("/<slug>/comments/<comment_id>")
def comment(slug: str, comment_id: str) -> BaseResponse:
    """One comment with every verdict, its audit trail, its author and the same IP's."""
    try:
        cid = uuid.UUID(comment_id)
    except ValueError:
        raise NotFound(f"no comment {comment_id}") from None
    with _moderating(slug) as (db, mod):
        found, site = find_comment(db, comment_id=cid)
        if site.id != mod.site.id:
            raise NotFound(f"no comment {comment_id}")
        view = read_comment(db, comment=found, site=site, reader=mod.actor)
        detail = view.detail
        assert detail is not None
        reasons = view.verdict.reasons if view.verdict is not None else []
        context = {
            "comment": found,
            "verdict": view.verdict,
            "detail": detail,
            "segments": highlight(found.content, spam_terms(reasons)),
        }
    return _render(
        "comment.html",
        mod=mod,
        slug=slug,
        return_to=request.full_path.rstrip("?"),
        **context,
    )


_RULE_LISTS = ("blocked_words", "moderation_words", "moderation_patterns")
_RULE_THRESHOLDS = ("hold_threshold", "spam_threshold", "discard_threshold")
_RULE_INTEGERS = ("max_links", "flood_limit_per_minute")


@bp.get("/<slug>/rules")
def rules(slug: str) -> BaseResponse:
    """The site's rules: a form for its admins, read-only for its other moderators."""
    with _moderating(slug) as (db, mod):
        current = read_rules(db, site_id=mod.site.id)
    return _render(
        "rules.html",
        mod=mod,
        slug=slug,
        etag=current.etag,
        values=_rule_values(current.policy.model_dump(mode="json")),
        errors=[],
        notice=_notice(request.args),
    )


@bp.post("/<slug>/rules")
def save_rules(slug: str) -> BaseResponse:
    """Replace the rules, if they are still those the form was made from (its ``etag``,
    as ``If-Match``): else the form again, with the current rules and a message."""
    form = request.form
    etag = form.get("etag", "")
    with _moderating(slug, role=Role.admin) as (db, mod):
        try:
            changes = _rule_changes(form)
            change_rules(
                db,
                site_id=mod.site.id,
                changes=changes,
                replace=True,
                actor=mod.actor,
                expected_etags=frozenset({etag}),
                note=form.get("note") or None,
            )
        except PreconditionFailed as exc:
            current = read_rules(db, site_id=mod.site.id)
            return _rules_again(
                mod,
                slug,
                current.etag,
                current.policy.model_dump(mode="json"),
                412,
                [],
                exc.detail + " (these are the current rules)",
            )
        except InvalidInput as exc:
            return _rules_again(mod, slug, etag, _form_values(form), 422, exc.errors, exc.detail)
    services().sites.forget(slug)
    return redirect(url_for("ui.rules", slug=slug) + "?notice=rules", 303)


def _rules_again(
    mod: Moderator,
    slug: str,
    etag: str,
    values: dict[str, Any],
    status: int,
    errors: list[FieldError],
    message: str,
) -> BaseResponse:
    return _render(
        "rules.html",
        status,
        mod=mod,
        slug=slug,
        etag=etag,
        values=_rule_values(values) if status == 412 else values,
        errors=errors,
        notice=message,
    )


def _rule_values(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as the form shows it (lists one entry a line, blanks for no value)."""
    values: dict[str, Any] = {}
    for name in _RULE_LISTS:
        values[name] = "\n".join(policy.get(name) or [])
    for name in (*_RULE_THRESHOLDS, *_RULE_INTEGERS):
        value = policy.get(name)
        values[name] = "" if value is None else str(value)
    values["approve_known_authors"] = bool(policy.get("approve_known_authors"))
    return values


def _form_values(form: Any) -> dict[str, Any]:
    values = {
        name: form.get(name, "") for name in (*_RULE_LISTS, *_RULE_THRESHOLDS, *_RULE_INTEGERS)
    }
    values["approve_known_authors"] = form.get("approve_known_authors") == "on"
    return values


def _rule_changes(form: Any) -> dict[str, Any]:
    """The form's fields as a policy: numbers parsed (``InvalidInput`` naming each that is
    not one), lists one entry per non-blank line."""
    changes: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name in _RULE_LISTS:
        changes[name] = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
    for name, parse, message in (
        *((n, float, "a number from 0 to 1, or blank") for n in _RULE_THRESHOLDS),
        *((n, int, "a whole number") for n in _RULE_INTEGERS),
    ):
        raw = form.get(name, "").strip()
        if not raw:
            if name in _RULE_THRESHOLDS:
                changes[name] = None
            continue
        try:
            changes[name] = _number(parse, raw)
        except ValueError:
            errors.append(FieldError(name, message))
    changes["approve_known_authors"] = form.get("approve_known_authors") == "on"
    if errors:
        raise InvalidInput("invalid rules", errors)
    return changes


def _number(parse: Callable[[str], Any], raw: str) -> Any:
    if len(raw) > 30:
        raise ValueError(raw)
    value = parse(raw)
    if isinstance(value, float) and value != value:  # NaN
        raise ValueError(raw)
    return value


@bp.app_template_filter("when")
def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_field": CSRF_FIELD, "static_version": "1"}
