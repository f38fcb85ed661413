"""Webhooks made through the domain, as the API makes them, for the tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Site, WebhookDelivery, WebhookEvent
from service.moderation.types import Identity
from service.moderation.webhooks import WithSecret, allow_private_targets, create_webhook

ADMIN = Identity(issuer="https://issuer.test", subject="admin", roles=frozenset({"admin"}))


def add_hook(
    session: Session,
    site: Site,
    url: str,
    *,
    events: Sequence[WebhookEvent] = tuple(WebhookEvent),
    enabled: bool = True,
    allow_private: bool = True,
) -> WithSecret:
    """A webhook of ``site`` for ``url`` (the site is set to allow private targets first,
    so that a receiver on 127.0.0.1 will do). Flushes."""
    if allow_private:
        allow_private_targets(session, site_id=site.id, allow=True)
    return create_webhook(
        session,
        site_id=site.id,
        url=url,
        events=events,
        enabled=enabled,
        description=None,
        actor=ADMIN,
        resolve_timeout=3.0,
    )


def deliveries_of(session: Session, webhook_id: uuid.UUID) -> list[WebhookDelivery]:
    """The webhook's deliveries, oldest first."""
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id)
        )
    )


def payload(delivery: WebhookDelivery) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(delivery.body)
    return body
