"""Problem Details (RFC 9457) for every error, and the one table: domain error -> status.

Each problem has a stable ``type`` (a URN that will not change with wording), a ``title``
per type, the request's ``detail`` and, for invalid input, ``errors`` naming each field.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from service.moderation.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:commentguard:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    slug: str
    title: str


# The one table. A new domain error gets a row here, nowhere else.
DOMAIN_PROBLEMS: dict[type[DomainError], ProblemType] = {
    InvalidInput: ProblemType(422, "invalid-input", "The request's fields are invalid"),
    Unauthorized: ProblemType(401, "unauthorized", "Authentication is required"),
    Forbidden: ProblemType(403, "forbidden", "Not allowed"),
    NotFound: ProblemType(404, "not-found", "Not found"),
    Conflict: ProblemType(409, "conflict", "Conflict with the current state"),
    PreconditionFailed: ProblemType(412, "precondition-failed", "The resource has changed"),
    PreconditionRequired: ProblemType(428, "precondition-required", "If-Match is required"),
    RateLimited: ProblemType(429, "rate-limited", "Too many requests"),
    ServiceUnavailable: ProblemType(503, "unavailable", "Service unavailable"),
}

# Werkzeug's own errors (routing, body size, methods) keep their status, with our types.
HTTP_SLUGS: dict[int, str] = {
    400: "malformed-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


class MalformedRequest(Exception):
    """The request body could not be parsed (400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnsupportedMediaType(Exception):
    """The request body is not in a type the endpoint accepts (415)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PayloadTooLarge(Exception):
    """A field or the body is over its size limit (413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _domain_problem(exc: DomainError) -> Response:
    kind = next(
        (p for cls, p in DOMAIN_PROBLEMS.items() if isinstance(exc, cls)),
        ProblemType(500, "internal", "Internal error"),
    )
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = _bearer_challenge(exc)
    if isinstance(exc, RateLimited | ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Forbidden):
        headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
    if isinstance(exc, PreconditionFailed) and exc.etag is not None:
        headers["ETag"] = exc.etag
    errors = exc.errors if isinstance(exc, InvalidInput) else ()
    return problem(kind.status, kind.slug, kind.title, exc.detail, errors=errors, headers=headers)


def _bearer_challenge(exc: Unauthorized) -> str:
    """RFC 6750 section 3: no error code when the request had no credentials at all."""
    if exc.error is None:
        return 'Bearer realm="commentguard"'
    description = exc.detail.replace("\\", "\\\\").replace('"', '\\"')
    return f'Bearer realm="commentguard", error="{exc.error}", error_description="{description}"'


def register_error_handlers(app: Flask) -> None:
    """Make every error leave the app as problem+json; nothing escapes as HTML."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Response:
        return _domain_problem(exc)

    @app.errorhandler(MalformedRequest)
    def _malformed(exc: MalformedRequest) -> Response:
        return problem(400, "malformed-request", "Malformed request", exc.detail)

    @app.errorhandler(UnsupportedMediaType)
    def _media(exc: UnsupportedMediaType) -> Response:
        return problem(415, "unsupported-media-type", "Unsupported media type", exc.detail)

    @app.errorhandler(PayloadTooLarge)
    def _too_large(exc: PayloadTooLarge) -> Response:
        return problem(413, "payload-too-large", "Payload too large", exc.detail)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        slug = HTTP_SLUGS.get(status, f"http-{status}")
        response = problem(status, slug, exc.name, exc.description or exc.name)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _database_down(exc: Exception) -> Response:
        log.error("database unavailable: %s", type(exc).__name__)
        return problem(
            503,
            "unavailable",
            "Service unavailable",
            "the database is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return _database_down(exc)
        log.exception("database error")
        return problem(500, "internal", "Internal error", "an unexpected error occurred")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "internal", "Internal error", "an unexpected error occurred")
