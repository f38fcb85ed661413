"""What views share: the app's services, the request transaction, body parsing, auth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app, request
from sqlalchemy.orm import Session, sessionmaker

from service.auth.api_keys import check_api_key, is_api_key
from service.auth.introspection import Introspector, looks_like_jwt
from service.auth.roles import Role, require_role, site_roles
from service.auth.tokens import bearer_token
from service.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from service.moderation.classify import ClassifierChoice
from service.moderation.errors import ServiceUnavailable, Unauthorized
from service.moderation.sites import SiteDirectory, SiteInfo
from service.moderation.types import Identity
from service.settings import Settings

EXTENSION = "commentguard"

#: Where a blog backend may send its API key instead of ``Authorization: Bearer``.
API_KEY_HEADER = "X-API-Key"


class Verifier(Protocol):
    def verify(
        self,
        token: str,
        *,
        trusted_issuers: Sequence[str],
        audiences: Sequence[str],
        site_slug: str | None = None,
    ) -> Identity: ...


class Queue(Protocol):
    def enqueue(self, task: str, payload: dict[str, Any]) -> None: ...

    def ping(self) -> bool: ...


class Classifications(Protocol):
    def add(self, comment_id: Any, request_id: str | None = None) -> None: ...


class ClassifierStatus(Protocol):
    def ready(self) -> tuple[bool, str]: ...


class ServingClassifier(ClassifierStatus, ClassifierChoice, Protocol):
    """The process's classifiers: ready or not (``/readyz``), and each site's (the
    Akismet endpoint scores in-process)."""


class RequestMetrics(Protocol):
    def token_failure(self, reason: str) -> None: ...

    def render(self, accept: str | None) -> tuple[bytes, str]: ...


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a view may use, built once by ``create_app``."""

    settings: Settings
    sessions: sessionmaker[Session]
    #: ``sessions`` without BEGIN and COMMIT, where the database allows (see
    #: ``service.db.autocommit_sessions``); None elsewhere.
    autocommit_sessions: sessionmaker[Session] | None
    verifier: Verifier
    introspector: Introspector
    queue: Queue
    #: Where accepted comments go to be classified (batched; see ``ClassificationBatcher``).
    classifications: Classifications
    classifier: ServingClassifier
    sites: SiteDirectory
    #: The process's Prometheus metrics (``service.metrics.ApiMetrics``).
    metrics: RequestMetrics


def services() -> Services:
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, Services)
    return found


@contextmanager
def transaction(*, single_write: bool = False) -> Iterator[Session]:
    """The request's one transaction: committed when the block ends, rolled back on error.

    ``single_write``: the caller guarantees that the block writes with one statement at
    most (it may read before), and that nothing after that statement would need it undone.
    Where the database makes a statement atomic on its own (PostgreSQL), the block then
    runs without BEGIN and COMMIT, two round trips fewer, with the same outcome: that one
    statement writes all or nothing.
    """
    found = services()
    sessions = found.autocommit_sessions if single_write else None
    with (sessions or found.sessions).begin() as session:
        yield session


def json_body() -> dict[str, Any]:
    """The request's JSON object, or the right problem: 415 wrong type, 400 unparsable."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"send application/json, not {mimetype or 'a body without a Content-Type'}"
        )
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object")
    return body


def check_text_size(body: dict[str, Any], field: str, limit: int) -> None:
    """413 when ``body[field]`` holds more than ``limit`` bytes of UTF-8."""
    value = body.get(field)
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > limit:
        raise PayloadTooLarge(f"'{field}' is over {limit} bytes")


def require_broker() -> None:
    """503 before anything is written when the broker is known to be down.

    A comment accepted while the broker is down would still reach a verdict (the sweeper
    enqueues it later), but minutes late; refusing lets the blog retry elsewhere or later.
    """
    if not services().queue.ping():
        raise ServiceUnavailable("the task broker is unavailable; try again shortly")


def credentials() -> str:
    """The request's credential: the ``X-API-Key`` header when present, else the token of
    ``Authorization: Bearer`` (401 without either, as :func:`bearer_token` says). A
    refusal is counted by its reason (the token failures metric)."""
    try:
        api_key = request.headers.get(API_KEY_HEADER)
        if api_key is not None:
            api_key = api_key.strip()
            if not is_api_key(api_key):
                raise Unauthorized(f"the {API_KEY_HEADER} header holds no API key (cg_...)")
            return api_key
        return bearer_token(request.headers.get("Authorization"))
    except Unauthorized as exc:
        _count_failure(exc)
        raise


def _count_failure(exc: Unauthorized) -> None:
    # A try/except rather than a context manager: this is on every request's path, and a
    # generator-based one costs about 2 microseconds each time.
    services().metrics.token_failure(exc.reason)


def authenticate(session: Session, site: SiteInfo, token: str) -> Identity:
    """The caller's identity at ``site``, proven by ``token`` (from :func:`credentials`):
    an API key of the site (``cg_...``); a JWT from an issuer the site trusts, checked
    against the issuer's keys; or, where the site configures introspection, an opaque
    token checked at its introspection endpoint.

    The identity's ``roles`` are those its claims grant at ``site`` (see
    ``service/auth/roles.py``), and no others; an API key grants none. A refusal is
    counted by its reason (the token failures metric).
    """
    found = services()
    try:
        if is_api_key(token):
            return check_api_key(session, site_id=site.id, key=token, now=dt.datetime.now(dt.UTC))
        if site.introspection is not None and not looks_like_jwt(token):
            identity = found.introspector.introspect(
                token,
                client=site.introspection,
                trusted_issuers=site.trusted_issuers,
                audiences=site.audiences,
            )
        else:
            identity = found.verifier.verify(
                token,
                trusted_issuers=site.trusted_issuers,
                audiences=site.audiences,
                site_slug=site.slug,
            )
    except Unauthorized as exc:
        _count_failure(exc)
        raise
    roles = site_roles(
        identity.claims,
        claim=found.settings.roles_claim,
        site_slug=site.slug,
        prefix=found.settings.roles_prefix,
    )
    return dataclasses.replace(identity, roles=roles)


def authorize(session: Session, site: SiteInfo, token: str, *, role: Role) -> Identity:
    """The caller's identity when its token is valid for ``site`` and grants ``role``
    there: 401 for a bad token (as :func:`authenticate`), 403 with
    ``WWW-Authenticate: Bearer error="insufficient_scope"`` for a missing role. The check
    every view that needs more than a commenter uses."""
    return require_role(authenticate(session, site, token), role, site_slug=site.slug)
