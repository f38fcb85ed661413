"""Request and response shapes of the HTTP API (pydantic v2)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypedDict

from models import Status, Trust
from service.moderation import queue as queue_domain
from service.moderation import threads as thread_domain
from service.moderation.queue import QueueSort
from service.moderation.text import storable_text

_LANG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
#: What ``CommentIn._url`` accepts (case-insensitively), spelled out for JSON Schema.
_URL_SCHEMA = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/]+"


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; the database clock is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


#: A timestamp that always serialises with its zone.
UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]


def iso_time(value: dt.datetime | None) -> str | None:
    """``value`` in ISO 8601 with its zone (a naive one, from SQLite, is UTC), or None."""
    return None if value is None else _utc(value).isoformat()


#: Refuse text a database cannot store faithfully: NUL and lone UTF-16 surrogates.
_clean_text = storable_text

#: Text a query parameter may hold (the database would refuse NUL).
StorableStr = Annotated[str, AfterValidator(storable_text)]


class Out(BaseModel):
    """A response's shape. Documented closed (``additionalProperties: false``), so that
    the schemathesis test catches a field a view sends and the document does not name."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})


class BlankIsAbsent(BaseModel):
    """A query model in which an empty parameter (``?state=``) counts as absent."""

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value != ""}
        return data


class SelfLinks(TypedDict):
    self: str


class PageLinks(TypedDict):
    #: This page (path and query).
    self: str
    #: The next page; absent on the last.
    next: NotRequired[str]


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error (RFC 9457 Problem Details), as ``application/problem+json``."""

    #: A stable URN, ``urn:commentguard:problem:<slug>``.
    type: str = Field(pattern=r"^urn:commentguard:problem:[a-z0-9-]+$")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    #: The request's path.
    instance: str | None
    #: For invalid input: each bad field (or query parameter, or header) and why.
    errors: list[FieldProblem] = Field(default_factory=list)


class CommentIn(BaseModel):
    """``POST /v1/comments``. Unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")

    # The validators below check these fields; ``pattern`` in the JSON Schema says the
    # same to the document's readers (ECMA-262 syntax, which has no inline flags).
    site: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": _SLUG.pattern})
    thread: str = Field(min_length=1, max_length=512)
    parent: uuid.UUID | None = None
    author_name: str | None = Field(default=None, max_length=200)
    author_email: str | None = Field(
        default=None, max_length=320, json_schema_extra={"pattern": _EMAIL.pattern}
    )
    author_url: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": _URL_SCHEMA}
    )
    #: The size limit (64 KB of UTF-8) is checked before validation and answered 413.
    content: str = Field(json_schema_extra={"pattern": r"\S"})
    #: An IPv4 or IPv6 address.
    user_ip: str | None = Field(default=None, max_length=45)
    user_agent: str | None = Field(default=None, max_length=1024)
    referrer: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": _URL_SCHEMA}
    )
    permalink: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"pattern": _URL_SCHEMA}
    )
    lang: str | None = Field(
        default=None, max_length=35, json_schema_extra={"pattern": _LANG.pattern}
    )

    @field_validator(
        "site",
        "thread",
        "author_name",
        "author_email",
        "author_url",
        "content",
        "user_agent",
        "referrer",
        "permalink",
        "lang",
    )
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value)

    @field_validator("site")
    @classmethod
    def _site(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("must be a site slug: lower-case letters, digits and '-'")
        return value

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("author_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("must be an email address")
        return value

    @field_validator("author_url", "referrer", "permalink")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("user_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("must be an IPv4 or IPv6 address") from None

    @field_validator("lang")
    @classmethod
    def _lang(cls, value: str | None) -> str | None:
        if value is not None and not _LANG.match(value):
            raise ValueError("must be a language tag such as 'en' or 'pt-BR'")
        return value


class ReasonOut(Out):
    phrase: str
    #: Contribution to the log-odds of spam; null for a policy rule.
    weight: float | None
    feature: str


class VerdictOut(Out):
    score: float
    decision: str
    discard: bool
    reasons: list[ReasonOut]
    classifier_version: str
    latency_ms: float
    created_at: UtcDatetime


class CommentOut(Out):
    """A comment as its author sees it (and, on acceptance, as it was stored)."""

    id: uuid.UUID
    site: str
    thread: str
    parent: uuid.UUID | None
    status: Status
    discard: bool
    author_name: str | None
    content: str
    created_at: UtcDatetime
    #: The latest verdict; null while the comment waits for the classifier.
    verdict: VerdictOut | None = None
    links: SelfLinks

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class QueueQueryIn(BaseModel):
    """``GET /v1/sites/{site}/queue``'s query parameters."""

    status: Status = Status.held
    sort: QueueSort = QueueSort.created_desc
    #: Words that must all occur in the content (blank: none).
    q: Annotated[StorableStr, AfterValidator(str.strip)] | None = Field(
        default=None, max_length=queue_domain.MAX_QUERY_LENGTH
    )
    #: An author id (``author.id`` of an item).
    author: int | None = Field(default=None, ge=1, le=2**31 - 1)
    limit: int = Field(default=queue_domain.DEFAULT_LIMIT, ge=1, le=queue_domain.MAX_LIMIT)
    #: ``next_cursor`` of the previous page, with the same other parameters.
    cursor: str | None = Field(default=None, min_length=1)
    #: Only this thread's comments (blank: every thread).
    thread: StorableStr | None = Field(default=None, max_length=queue_domain.MAX_THREAD_LENGTH)

    def domain(self) -> queue_domain.QueueQuery:
        return queue_domain.QueueQuery(
            status=self.status,
            sort=self.sort,
            q=self.q or None,
            author_id=self.author,
            limit=self.limit,
            cursor=self.cursor,
            thread=self.thread or None,
        )


class QueueAuthorOut(Out):
    id: int
    issuer: str
    subject: str
    display_name: str | None
    trust: Trust
    banned_until: UtcDatetime | None
    approved_count: int
    spam_count: int


class QueueItemOut(Out):
    id: uuid.UUID
    thread: str
    parent: uuid.UUID | None
    status: Status
    discard: bool
    #: Null until the classifier has scored it.
    score: float | None
    #: The verdict's strongest reasons.
    reasons: list[ReasonOut]
    author_name: str | None
    author_email: str | None
    author: QueueAuthorOut
    content: str
    created_at: UtcDatetime
    version: int
    #: What ``If-Match`` takes to act on it.
    etag: str
    links: SelfLinks


class QueuePageOut(Out):
    site: str
    status: Status
    sort: QueueSort
    #: The site's comments per status (every status, zeros included).
    counts: dict[str, int]
    items: list[QueueItemOut]
    #: Null on the last page.
    next_cursor: str | None
    links: PageLinks


class ThreadQueryIn(BaseModel):
    """``GET /v1/sites/{site}/threads/{thread}/comments``'s query parameters."""

    limit: int = Field(default=thread_domain.DEFAULT_LIMIT, ge=1, le=thread_domain.MAX_LIMIT)
    #: ``next_cursor`` of the previous page.
    cursor: str | None = Field(default=None, min_length=1)


class ThreadCommentOut(Out):
    id: uuid.UUID
    #: Null for a top-level comment, and for a reply whose parent is not shown.
    parent: uuid.UUID | None
    author_name: str | None
    author_url: str | None
    content: str
    created_at: UtcDatetime
    replies: list[ThreadCommentOut]


class ThreadPageOut(Out):
    site: str
    thread: str
    #: The thread's approved comments.
    total: int
    comments: list[ThreadCommentOut]
    next_cursor: str | None
    links: PageLinks


class HealthOut(Out):
    status: str


class ReadyOut(Out):
    status: str
    #: database, broker, classifier: ``ok`` or what is wrong.
    checks: dict[str, str]
