"""Request and response shapes of the HTTP API (pydantic v2)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from service.moderation.text import storable_text

_LANG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


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


class CommentIn(BaseModel):
    """``POST /v1/comments``. Unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=64)
    thread: str = Field(min_length=1, max_length=512)
    parent: uuid.UUID | None = None
    author_name: str | None = Field(default=None, max_length=200)
    author_email: str | None = Field(default=None, max_length=320)
    author_url: str | None = Field(default=None, max_length=2048)
    #: The size limit (64 KB of UTF-8) is checked before validation and answered 413.
    content: str
    user_ip: str | None = Field(default=None, max_length=45)
    user_agent: str | None = Field(default=None, max_length=1024)
    referrer: str | None = Field(default=None, max_length=2048)
    permalink: str | None = Field(default=None, max_length=2048)
    lang: str | None = Field(default=None, max_length=35)

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


class ReasonOut(BaseModel):
    phrase: str
    #: Contribution to the log-odds of spam; null for a policy rule.
    weight: float | None
    feature: str


class VerdictOut(BaseModel):
    score: float
    decision: str
    discard: bool
    reasons: list[ReasonOut]
    classifier_version: str
    latency_ms: float
    created_at: UtcDatetime


class CommentOut(BaseModel):
    id: uuid.UUID
    site: str
    thread: str
    parent: uuid.UUID | None
    status: str
    discard: bool
    author_name: str | None
    content: str
    created_at: UtcDatetime
    verdict: VerdictOut | None = None
    links: dict[str, str]

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
