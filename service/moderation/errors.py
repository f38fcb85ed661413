"""Domain errors. Each says what went wrong in the caller's terms; ``service/errors.py``
maps each class to an HTTP status and a stable problem ``type``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    """The thing named does not exist (or the caller may not know that it does)."""


class Conflict(DomainError):
    """The request conflicts with the current state (a duplicate, say)."""


class PreconditionFailed(DomainError):
    """An ``If-Match`` version is stale: someone else changed the resource first.
    ``etag`` is the resource's current ETag, sent back so the client can re-read."""

    def __init__(self, detail: str, *, etag: str | None = None) -> None:
        super().__init__(detail)
        self.etag = etag


class PreconditionRequired(DomainError):
    """A write that must be conditional came without ``If-Match`` (RFC 6585, 428)."""


class RateLimited(DomainError):
    """Too many requests from this author; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


#: Why credentials were refused, in a word (a label of the token failures metric; the
#: detail says it in a sentence): none sent; not a well-formed token or header, or a claim
#: of the wrong shape; an algorithm not accepted; an issuer the site does not trust; a
#: signing key the issuer does not publish; a key unfit for the token; a bad signature;
#: expired; not valid yet; meant for another audience; an opaque token its introspection
#: endpoint calls inactive; an API key that is unknown, revoked or another site's.
UnauthorizedReason = Literal[
    "missing",
    "malformed",
    "algorithm",
    "untrusted_issuer",
    "unknown_kid",
    "unusable_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "introspection_inactive",
    "invalid_api_key",
]


class Unauthorized(DomainError):
    """No usable credentials; ``error`` is the RFC 6750 error code (or None when absent),
    ``reason`` why, in a word (:data:`UnauthorizedReason`)."""

    def __init__(
        self,
        detail: str,
        *,
        error: str | None = "invalid_token",
        reason: UnauthorizedReason = "malformed",
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.reason: UnauthorizedReason = reason


class Forbidden(DomainError):
    """Valid credentials, but not for this."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: where (a JSON pointer-ish dotted path) and why."""

    field: str
    message: str


class InvalidInput(DomainError):
    """The request is well-formed but its fields break the rules; ``errors`` names each."""

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)


class ServiceUnavailable(DomainError):
    """A dependency (database, broker, classifier) is down; try again after ``retry_after``."""

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
