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

from models import AuditEntry, Author, Status, Trust
from service.api import spec
from service.api.schemas import (
    BlankIsAbsent,
    CommentOut,
    Out,
    PageLinks,
    SelfLinks,
    StorableStr,
    UtcDatetime,
    VerdictOut,
)
from service.moderation.actions import MAX_BULK, Action, ItemResult, Outcome
from service.moderation.audit import MAX_PAGE
from service.moderation.comments import comment_etag
from service.moderation.errors import FieldError, InvalidInput
from service.moderation.policy import SitePolicy, effective_trust
from service.moderation.text import storable_text

NOTE_MAX = 2000

#: A person's note on an action (kept in the audit log): bounded, storable text.
Note = Annotated[str, Field(max_length=NOTE_MAX), AfterValidator(storable_text)]
_NOTE = TypeAdapter(Note | None)

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: dict[str, Any], what: str) -> M:
    """``body`` as ``model``, or ``InvalidInput`` naming each bad field."""
    return spec.parse(model, body, what)


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


class ActorOut(Out):
    issuer: str
    subject: str


class AuditOut(Out):
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


class ItemOut(Out):
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


class AuthorOut(Out):
    id: int
    issuer: str
    subject: str
    display_name: str | None
    email: str | None
    trust: Trust
    #: The trust the worker applies now: an expired ban counts as normal.
    effective_trust: Trust
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


class ActionDoneOut(Out):
    """What an action did."""

    action: Action
    from_: Status = Field(alias="from")
    to: Status
    note: str | None
    audit_id: int
    #: The training label it wrote (``spam`` or ``ham``), or null.
    label: str | None


class ActedCommentOut(Out):
    """``POST /v1/comments/{id}/actions``: the comment after the action."""

    id: uuid.UUID
    site: str
    thread: str
    parent: uuid.UUID | None
    author_name: str | None
    content: str
    created_at: UtcDatetime
    status: Status
    discard: bool
    version: int
    action: ActionDoneOut
    links: SelfLinks


class BulkResultOut(Out):
    """``POST /v1/sites/{site}/actions``: one result per comment, in the order given."""

    action: Action
    #: Results by outcome (only outcomes that occurred).
    counts: dict[str, int]
    results: list[ItemOut]


class AuditQueryIn(BlankIsAbsent):
    """``GET /v1/sites/{site}/audit``'s query parameters (an empty one counts as absent)."""

    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    #: ``next_cursor`` of the previous page.
    cursor: str | None = None
    #: Only entries of this action (``spam``, ``trust``, ``rules``...).
    action: StorableStr | None = None
    #: Only entries by this actor (a subject).
    actor: StorableStr | None = None
    #: Only entries about this comment.
    comment: uuid.UUID | None = None


class AuditPageOut(Out):
    """A page of the audit trail, newest first."""

    entries: list[AuditOut]
    next_cursor: str | None
    links: PageLinks


class RulesIn(SitePolicy):
    """``PUT`` (fields left out take their defaults) and ``PATCH`` (fields left out stay)
    ``/v1/sites/{site}/rules``: the site's policy, and a note for the audit trail."""

    note: Note | None = None


class HistoryOut(Out):
    """An audit row of the comment."""

    id: int
    action: str
    from_: str | None = Field(alias="from")
    to: str | None
    note: str | None
    actor: ActorOut
    created_at: UtcDatetime


class RecentOut(Out):
    """Another comment, in a moderator's detail."""

    id: uuid.UUID
    thread: str
    status: Status
    score: float | None
    author_id: int | None
    author_name: str | None
    #: The content's first 280 characters.
    excerpt: str
    created_at: UtcDatetime
    links: SelfLinks


class DetailAuthorOut(Out):
    id: int
    issuer: str
    subject: str
    display_name: str | None
    email: str | None
    trust: Trust
    banned_until: UtcDatetime | None
    approved_count: int
    spam_count: int
    comments_by_status: dict[str, int]
    #: The author's latest other comments.
    recent: list[RecentOut]


class ModerationOut(Out):
    """What a moderator of the comment's site sees beyond what its author does."""

    version: int
    author_email: str | None
    author_url: str | None
    user_ip: str | None
    user_agent: str | None
    referrer: str | None
    permalink: str | None
    lang: str | None
    #: All the comment's verdicts, oldest first.
    verdicts: list[VerdictOut]
    #: Its audit rows, oldest first.
    history: list[HistoryOut]
    author: DetailAuthorOut
    #: The latest other comments from the same IP on the same site.
    same_ip: list[RecentOut]


class CommentReadOut(CommentOut):
    """``GET /v1/comments/{id}``: the comment as its author sees it; a moderator of its
    site also gets ``moderation``."""

    moderation: ModerationOut | None = None
