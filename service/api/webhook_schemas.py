"""Request and response shapes of the webhook endpoints (pydantic v2)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from models import DeliveryState, Webhook, WebhookDelivery, WebhookEvent
from service.api.schemas import BlankIsAbsent, Out, PageLinks, StorableStr, UtcDatetime
from service.moderation.deliveries import DEFAULT_PAGE, MAX_PAGE
from service.moderation.text import storable_text
from service.moderation.webhooks import MAX_KEEP_PREVIOUS, webhook_etag
from service.webhooks.targets import MAX_URL_LENGTH

DESCRIPTION_MAX = 200

#: A webhook's URL as sent: its rules are checked by the domain (``check_url``).
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
#: What the webhook is for, for people: bounded, storable text.
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX), AfterValidator(storable_text)]
Events = Annotated[list[WebhookEvent], Field(min_length=1, max_length=len(WebhookEvent))]


class WebhookIn(BaseModel):
    """``POST /v1/sites/{site}/webhooks``. ``events`` defaults to every event."""

    model_config = ConfigDict(extra="forbid")

    url: Url
    events: Events = Field(default_factory=lambda: list(WebhookEvent))
    enabled: StrictBool = True
    description: Description | None = None


class WebhookPatchIn(BaseModel):
    """``PATCH /v1/sites/{site}/webhooks/{id}``: the fields to change (``description``
    null clears it; the others may not be null)."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    enabled: StrictBool | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _not_null(self) -> WebhookPatchIn:
        nulls = [
            name
            for name in ("url", "events", "enabled")
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null")
        return self


class RotateIn(BaseModel):
    """``POST /v1/sites/{site}/webhooks/{id}/rotate-secret``: how long the old secret
    stays valid beside the new one (0: not at all)."""

    model_config = ConfigDict(extra="forbid")

    keep_previous_seconds: int = Field(default=0, ge=0, le=int(MAX_KEEP_PREVIOUS.total_seconds()))


class WebhookLinks(TypedDict):
    self: str
    #: The webhook's delivery log.
    deliveries: str


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class WebhookOut(Out):
    """A webhook; ``secret`` only in the answers to registration and rotation."""

    id: uuid.UUID
    site: str
    url: str
    events: list[WebhookEvent]
    enabled: bool
    description: str | None
    version: int
    etag: str
    #: Until when deliveries are signed with the previous secret too (after a rotation
    #: that kept it), else null.
    previous_secret_expires_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    links: WebhookLinks
    #: The signing secret: in the answers to creation and rotation only (absent, never
    #: null, elsewhere).
    secret: str | SkipJsonSchema[None] = Field(
        default=None,
        description=(
            "The signing secret (`whsec_...`): only in the answers to registration and to "
            "a rotation, never shown again. Absent from every other answer."
        ),
        json_schema_extra=_no_default,
    )

    @classmethod
    def of(cls, webhook: Webhook, *, site: str, secret: str | None = None) -> WebhookOut:
        expires = webhook.previous_secret_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        kept = webhook.previous_secret is not None and expires is not None
        base = f"/v1/sites/{site}/webhooks/{webhook.id}"
        return cls(
            id=webhook.id,
            site=site,
            url=webhook.url,
            events=[WebhookEvent(e) for e in webhook.events],
            enabled=webhook.enabled,
            description=webhook.description,
            version=webhook.version,
            etag=webhook_etag(webhook.version),
            previous_secret_expires_at=expires if kept else None,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
            links={"self": base, "deliveries": f"{base}/deliveries"},
            secret=secret,
        )

    def body(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        if self.secret is None:
            del out["secret"]
        return out


class WebhookListOut(Out):
    """``GET /v1/sites/{site}/webhooks``: the site's webhooks, oldest first (never a
    secret), and whether the site allows private targets (an operator's setting)."""

    site: str
    allow_private_targets: bool
    webhooks: list[WebhookOut]


class DeliveryLinks(TypedDict):
    #: Where an admin POSTs to deliver the event again.
    redeliver: str


class DeliveryOut(Out):
    """One delivery of an event to a webhook, and how its attempts went."""

    id: int
    event_id: uuid.UUID
    event: WebhookEvent
    state: DeliveryState
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: UtcDatetime | None
    next_attempt_at: UtcDatetime | None
    delivered_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    created_at: UtcDatetime
    redelivery_of: int | None
    #: The body as sent (parsed).
    payload: dict[str, Any]
    links: DeliveryLinks

    @classmethod
    def of(cls, delivery: WebhookDelivery, *, site: str) -> DeliveryOut:
        base = f"/v1/sites/{site}/webhooks/{delivery.webhook_id}/deliveries/{delivery.id}"
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event=WebhookEvent(delivery.event_type),
            state=delivery.state,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            last_attempt_at=delivery.last_attempt_at,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            finished_at=delivery.finished_at,
            created_at=delivery.created_at,
            redelivery_of=delivery.redelivery_of,
            payload=json.loads(delivery.body),
            links={"redeliver": f"{base}/redeliver"},
        )


class DeliveryPageOut(Out):
    """A page of a webhook's delivery log, newest first."""

    deliveries: list[DeliveryOut]
    #: Null on the last page.
    next_cursor: str | None
    links: PageLinks


class DeliveriesQueryIn(BlankIsAbsent):
    """``GET /v1/sites/{site}/webhooks/{id}/deliveries``'s query parameters (an empty one
    counts as absent)."""

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    #: ``next_cursor`` of the previous page, with the same ``state``.
    cursor: StorableStr | None = Field(default=None, min_length=1)
    #: Only deliveries in this state.
    state: DeliveryState | None = None
