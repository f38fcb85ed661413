"""A site's webhooks: ``/v1/sites/{site}/webhooks`` (register, list), ``.../{id}`` (read,
change with ``If-Match``, delete), ``.../{id}/rotate-secret``, ``.../{id}/deliveries``
(the delivery log) and ``.../deliveries/{delivery_id}/redeliver``.

Moderators of the site read; its admins change. The signing secret is in the answers to
registration and rotation only. See docs/webhooks.md.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for

from models import DeliveryState
from service.api.conditional import if_match, parse_if_match
from service.api.context import authorize, credentials, json_body, services, transaction
from service.api.moderation_schemas import parse
from service.api.webhook_schemas import (
    DeliveryOut,
    RotateIn,
    WebhookIn,
    WebhookOut,
    WebhookPatchIn,
)
from service.auth.roles import Role
from service.moderation.deliveries import due_pairs, list_deliveries, redeliver
from service.moderation.errors import FieldError, InvalidInput, NotFound
from service.moderation.webhooks import (
    WebhookChanges,
    allows_private_targets,
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhooks,
    rotate_secret,
    update_webhook,
    webhook_etag,
)
from service.queue import send_deliveries

bp = Blueprint("webhooks", __name__, url_prefix="/v1/sites/<slug>/webhooks")


def webhook_lease() -> dt.timedelta:
    """How long a new delivery is left to its task before the sweeper sends it."""
    return dt.timedelta(seconds=services().settings.webhook_lease_seconds)


def send_after_commit(deliveries: Sequence[int]) -> None:
    """Enqueue new deliveries (call once their transaction has committed); a broker
    failure leaves them to the webhook sweeper."""
    send_deliveries(services().queue, due_pairs(deliveries))


@bp.post("")
def create(slug: str) -> Response:
    """Register a webhook (admin): 201 with it, its ``secret`` (shown this once),
    ``Location`` and ``ETag``."""
    token = credentials()
    data = parse(WebhookIn, json_body(), "webhook")
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.admin)
        created = create_webhook(
            session,
            site_id=site.id,
            url=data.url,
            events=data.events,
            enabled=data.enabled,
            description=data.description,
            actor=actor,
            resolve_timeout=services().settings.dependency_timeout_seconds,
        )
        out = WebhookOut.of(created.webhook, site=slug, secret=created.secret)
    response = _answer(out, status=201)
    response.headers["Location"] = out.links["self"]
    return response


@bp.get("")
def index(slug: str) -> Response:
    """The site's webhooks (moderator), oldest first, and whether the site allows
    private targets."""
    token = credentials()
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        hooks = [
            WebhookOut.of(h, site=slug).body() for h in list_webhooks(session, site_id=site.id)
        ]
        allow_private = allows_private_targets(session, site_id=site.id)
    body = {"site": slug, "allow_private_targets": allow_private, "webhooks": hooks}
    return _json(body, 200)


@bp.get("/<webhook_id>")
def read(slug: str, webhook_id: str) -> Response:
    """One webhook (moderator), with its ``ETag``."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        out = WebhookOut.of(get_webhook(session, site_id=site.id, webhook_id=hook_id), site=slug)
    return _answer(out)


@bp.patch("/<webhook_id>")
def change(slug: str, webhook_id: str) -> Response:
    """Change a webhook (admin) if ``If-Match`` names its current ``ETag``: 428 without
    it, 412 (with the current ``ETag``) when stale."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    condition = if_match("send If-Match with the webhook's ETag (from GET)")
    data = parse(WebhookPatchIn, json_body(), "webhook")
    changes = WebhookChanges(
        url=data.url,
        events=data.events,
        enabled=data.enabled,
        set_description="description" in data.model_fields_set,
        description=data.description,
    )
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.admin)
        webhook = update_webhook(
            session,
            site_id=site.id,
            webhook_id=hook_id,
            changes=changes,
            expected_etags=None if condition.any_current else condition.tags,
            actor=actor,
            resolve_timeout=services().settings.dependency_timeout_seconds,
        )
        out = WebhookOut.of(webhook, site=slug)
    return _answer(out)


@bp.delete("/<webhook_id>")
def remove(slug: str, webhook_id: str) -> Response:
    """Delete a webhook and its delivery log (admin): 204. ``If-Match`` is optional;
    when sent it must name the current ``ETag`` (412 otherwise)."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    header = request.headers.get("If-Match")
    condition = parse_if_match(header) if header is not None else None
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.admin)
        delete_webhook(
            session,
            site_id=site.id,
            webhook_id=hook_id,
            expected_etags=None if condition is None or condition.any_current else condition.tags,
            actor=actor,
        )
    return Response(status=204)


@bp.post("/<webhook_id>/rotate-secret")
def rotate(slug: str, webhook_id: str) -> Response:
    """A new signing secret (admin), shown this once; the old one is honoured for
    ``keep_previous_seconds`` (body optional, default 0)."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    data = parse(RotateIn, json_body() if request.get_data(cache=True) else {}, "rotation")
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.admin)
        rotated = rotate_secret(
            session,
            site_id=site.id,
            webhook_id=hook_id,
            keep_previous=dt.timedelta(seconds=data.keep_previous_seconds),
            actor=actor,
            now=dt.datetime.now(dt.UTC),
        )
        out = WebhookOut.of(rotated.webhook, site=slug, secret=rotated.secret)
    return _answer(out)


@bp.get("/<webhook_id>/deliveries")
def deliveries(slug: str, webhook_id: str) -> Response:
    """The webhook's delivery log (moderator), newest first: ``?limit=&cursor=&state=``."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    args = request.args
    limit = _int_arg("limit", 20)
    state = _state_arg(args.get("state") or None)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        get_webhook(session, site_id=site.id, webhook_id=hook_id)
        page = list_deliveries(
            session,
            webhook_id=hook_id,
            limit=limit,
            cursor=args.get("cursor") or None,
            state=state,
        )
        items = [DeliveryOut.of(d, site=slug).model_dump(mode="json") for d in page.deliveries]
    links = {"self": request.full_path.rstrip("?")}
    if page.next_cursor:
        query = urlencode({**args.to_dict(), "cursor": page.next_cursor})
        links["next"] = (
            url_for("webhooks.deliveries", slug=slug, webhook_id=webhook_id) + "?" + query
        )
    body = {"deliveries": items, "next_cursor": page.next_cursor, "links": links}
    return _json(body, 200)


@bp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
def send_again(slug: str, webhook_id: str, delivery_id: str) -> Response:
    """Deliver an event again (admin): 202 with the new delivery (same event id, same
    body; attempts of its own), sent at once."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    number = _delivery_id(delivery_id)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.admin)
        get_webhook(session, site_id=site.id, webhook_id=hook_id)
        again = redeliver(
            session,
            webhook_id=hook_id,
            delivery_id=number,
            now=dt.datetime.now(dt.UTC),
            lease=webhook_lease(),
        )
        out = DeliveryOut.of(again, site=slug).model_dump(mode="json")
    send_after_commit([out["id"]])
    return _json(out, 202)


def _answer(out: WebhookOut, status: int = 200) -> Response:
    response = _json(out.body(), status)
    response.headers["ETag"] = webhook_etag(out.version)
    return response


def _json(body: dict[str, Any], status: int) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    # Secrets (once) and the site's configuration: never kept by a shared cache.
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _hook_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no webhook {value}") from None


def _delivery_id(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**63:
        raise NotFound(f"no delivery {value}")
    return int(value)


def _state_arg(value: str | None) -> DeliveryState | None:
    if value is None:
        return None
    try:
        return DeliveryState(value)
    except ValueError:
        raise InvalidInput(
            "invalid state",
            [FieldError("state", f"one of {', '.join(s.value for s in DeliveryState)}")],
        ) from None


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"invalid {name}", [FieldError(name, "must be an integer")]) from None
