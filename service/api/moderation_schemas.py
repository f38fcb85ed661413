"""Request and response shapes of the moderators' write endpoints: actions, the audit
trail, authors' trust and site rules (pydantic v2)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from models import AuditEntry, Author, Trust
from service.api.schemas import UtcDatetime
from service.moderation.actions import MAX_BULK, Action, ItemResult, Outcome
from service.moderation.comments import comment_etag
from service.moderation.errors import FieldError, InvalidInput
from service.moderation.policy import effective_trust
from service.moderation.text import storable_text

NOTE_MAX = 2000

#: A person's note on an action (kept in the audit log): bounded, storable text.
Note = Annotated[str, Field(max_length=NOTE_MAX), AfterValidator(storable_text)]
_NOTE = TypeAdapter(Note | None)

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: dict[str, Any], what: str) -> M:
    """``body`` as ``model``, or ``InvalidInput`` naming each bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()
        ]
        raise InvalidInput(f"the {what} has invalid fields", errors) from None


def note_of(body: dict[str, Any]) -> str | None:
    """The body's optional ``note`` (see :data:`Note`), or ``InvalidInput``."""
    try:
        return _NOTE.validate_python(body.get("note"))
    except ValidationError as exc:
        raise InvalidInput(
            "invalid note", [FieldError("note", e["msg"]) for e in exc.errors()]
        ) from None


class ActionIn(BaseModel):
    """``POST /v1/comments/{id}/actions``."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    note: Note | None = None


class BulkItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    version: int | None = Field(default=None, ge=1)


class BulkActionIn(BaseModel):
    """``POST /v1/sites/{site}/actions``: ``ids`` (act on whatever version each comment
    is at) or ``items`` (each with the version the moderator saw), not both."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    note: Note | None = None
    ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_BULK)
    items: list[BulkItemIn] | None = Field(default=None, min_length=1, max_length=MAX_BULK)

    @model_validator(mode="after")
    def _one_list(self) -> BulkActionIn:
        if (self.ids is None) == (self.items is None):
            raise ValueError("give either 'ids' or 'items'")
        return self


class ActorOut(BaseModel):
    issuer: str
    subject: str


class AuditOut(BaseModel):
    id: int
    action: str
    target_type: str
    target_id: str
    comment_id: uuid.UUID | None
    from_state: str | None
    to_state: str | None
    note: str | None
    details: dict[str, Any]
    actor: ActorOut
    created_at: UtcDatetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls(
            id=entry.id,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            comment_id=entry.comment_id,
            from_state=entry.from_state,
            to_state=entry.to_state,
            note=entry.note,
            details=entry.details,
            actor=ActorOut(issuer=entry.actor_issuer, subject=entry.actor_subject),
            created_at=entry.created_at,
        )


class ItemOut(BaseModel):
    """One comment's result in a bulk action."""

    id: uuid.UUID
    result: Outcome
    status: str | None = None
    version: int | None = None
    etag: str | None = None
    audit_id: int | None = None
    label: str | None = None
    detail: str | None = None

    @classmethod
    def of(cls, result: ItemResult) -> ItemOut:
        return cls(
            id=result.comment_id,
            result=result.outcome,
            status=result.status.value if result.status else None,
            version=result.version,
            etag=comment_etag(result.version) if result.version is not None else None,
            audit_id=result.audit_id,
            label=result.label.value if result.label else None,
            detail=result.detail,
        )


class AuthorTrustIn(BaseModel):
    """``POST /v1/sites/{site}/authors/{id}/trust``."""

    model_config = ConfigDict(extra="forbid")

    trust: Trust
    until: dt.datetime | None = None
    note: Note | None = None


class AuthorOut(BaseModel):
    id: int
    issuer: str
    subject: str
    display_name: str | None
    email: str | None
    trust: str
    #: The trust the worker applies now: an expired ban counts as normal.
    effective_trust: str
    banned_until: UtcDatetime | None
    approved_count: int
    spam_count: int
    created_at: UtcDatetime

    @classmethod
    def of(cls, author: Author, now: dt.datetime) -> AuthorOut:
        return cls(
            id=author.id,
            issuer=author.issuer,
            subject=author.subject,
            display_name=author.display_name,
            email=author.email,
            trust=author.trust.value,
            effective_trust=effective_trust(author.trust, author.banned_until, now).value,
            banned_until=author.banned_until,
            approved_count=author.approved_count,
            spam_count=author.spam_count,
            created_at=author.created_at,
        )
