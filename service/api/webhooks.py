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
from typing import Annotated, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for
from pydantic import Field

from service.api.conditional import if_match, parse_if_match
from service.api.context import authorize, credentials, json_body, services, transaction
from service.api.spec import (
    ETAG,
    IF_MATCH,
    LOCATION,
    SITE,
    Access,
    Header,
    PathParam,
    Reply,
    body_of,
    operation,
    query_of,
)
from service.api.webhook_schemas import (
    DeliveriesQueryIn,
    DeliveryOut,
    DeliveryPageOut,
    RotateIn,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
    WebhookPatchIn,
)
from service.auth.roles import Role
from service.moderation.deliveries import due_pairs, list_deliveries, redeliver
from service.moderation.errors import NotFound
from service.moderation.webhooks import (
    MAX_WEBHOOKS_PER_SITE,
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

WEBHOOK_ID = PathParam(uuid.UUID, "The webhook's id.")
HOOK = {"slug": SITE, "webhook_id": WEBHOOK_ID}
DELIVERY = {
    **HOOK,
    "delivery_id": PathParam(
        Annotated[int, Field(ge=1, le=2**63 - 1)], "The delivery's id (`id` in the log)."
    ),
}
NO_STORE = Header(
    "Cache-Control",
    "`private, no-store`: secrets (once) and the site's configuration, never kept by a cache.",
    required=True,
)
HOOK_HEADERS = (ETAG, NO_STORE)
IF_MATCH_OPTIONAL = Header(
    "If-Match",
    "Optional: when sent, the webhook's current ETag (or `*`); anything else is a 412.",
)
ADMIN_ONLY = (
    "the token does not grant the admin role at the site (moderators read webhooks, only "
    "admins change them)"
)
NO_HOOK = "unknown site, or no such webhook at the site"
REFUSED_URL = (
    "invalid fields, each named; a refused `url` (the reason in `errors`): not https, with "
    "credentials or a fragment, a host that does not resolve, or one that resolves to a "
    "loopback, private, link-local or other non-public address (http and those addresses "
    "only where the site allows private targets)"
)


def webhook_lease() -> dt.timedelta:
    """How long a new delivery is left to its task before the sweeper sends it."""
    return dt.timedelta(seconds=services().settings.webhook_lease_seconds)


def send_after_commit(deliveries: Sequence[int]) -> None:
    """Enqueue new deliveries (call once their transaction has committed); a broker
    failure leaves them to the webhook sweeper."""
    send_deliveries(services().queue, due_pairs(deliveries))


@bp.post("")
@operation(
    "Register a webhook",
    tag="webhooks",
    access=Access.admin,
    body=WebhookIn,
    body_name="webhook",
    path={"slug": SITE},
    responses={
        201: Reply(
            "The webhook, with its signing `secret` (shown this once).",
            WebhookOut,
            headers=(LOCATION, *HOOK_HEADERS),
        )
    },
    errors={
        403: ADMIN_ONLY,
        404: "unknown site",
        409: "the site has a webhook for this URL already, "
        f"or {MAX_WEBHOOKS_PER_SITE} webhooks (the most allowed)",
        422: REFUSED_URL,
    },
)
def create(slug: str) -> Response:
    """Register a webhook (admin): 201 with it, its ``secret`` (shown this once),
    ``Location`` and ``ETag``."""
    token = credentials()
    data = body_of(WebhookIn, json_body())
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
@operation(
    "List a site's webhooks",
    tag="webhooks",
    access=Access.moderator,
    path={"slug": SITE},
    responses={
        200: Reply(
            "The site's webhooks, oldest first, and whether it allows private targets.",
            WebhookListOut,
            headers=(NO_STORE,),
        )
    },
    errors={404: "unknown site"},
)
def index(slug: str) -> Response:
    """The site's webhooks (moderator), oldest first, never with a secret, and whether
    the site allows private targets."""
    token = credentials()
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        out = WebhookListOut(
            site=slug,
            allow_private_targets=allows_private_targets(session, site_id=site.id),
            webhooks=[WebhookOut.of(h, site=slug) for h in list_webhooks(session, site_id=site.id)],
        )
    body = {**out.model_dump(mode="json"), "webhooks": [h.body() for h in out.webhooks]}
    return _json(body, 200)


@bp.get("/<webhook_id>")
@operation(
    "Read a webhook",
    tag="webhooks",
    access=Access.moderator,
    path=HOOK,
    responses={200: Reply("The webhook (never its secret).", WebhookOut, headers=HOOK_HEADERS)},
    errors={404: NO_HOOK},
)
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
@operation(
    "Change a webhook",
    tag="webhooks",
    access=Access.admin,
    body=WebhookPatchIn,
    body_name="webhook",
    path=HOOK,
    headers=(IF_MATCH,),
    responses={
        200: Reply(
            "The webhook after the change (never its secret).", WebhookOut, headers=HOOK_HEADERS
        )
    },
    errors={
        403: ADMIN_ONLY,
        404: NO_HOOK,
        409: "another webhook of the site has this URL",
        412: "If-Match does not name the webhook's current ETag (the current one is sent)",
        422: REFUSED_URL + "; or null for `url`, `events` or `enabled`",
        428: "no If-Match",
    },
)
def change(slug: str, webhook_id: str) -> Response:
    """Change a webhook (admin) if ``If-Match`` names its current ``ETag``: 428 without
    it, 412 (with the current ``ETag``) when stale. The fields given change (a
    ``description`` of null clears it), the others stay; a change that changes nothing
    keeps the version."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    condition = if_match("send If-Match with the webhook's ETag (from GET)")
    data = body_of(WebhookPatchIn, json_body())
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
@operation(
    "Delete a webhook",
    tag="webhooks",
    access=Access.admin,
    path=HOOK,
    headers=(IF_MATCH_OPTIONAL,),
    responses={204: Reply("Deleted, with its delivery log (pending deliveries are dropped).")},
    errors={
        403: ADMIN_ONLY,
        404: NO_HOOK,
        412: "If-Match was sent and does not name the webhook's current ETag (the current "
        "one is sent)",
    },
)
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
@operation(
    "Rotate a webhook's secret",
    tag="webhooks",
    access=Access.admin,
    body=RotateIn,
    body_name="rotation",
    body_required=False,
    path=HOOK,
    responses={
        200: Reply(
            "The webhook with its new signing `secret` (shown this once).",
            WebhookOut,
            headers=HOOK_HEADERS,
        )
    },
    errors={
        403: ADMIN_ONLY,
        404: NO_HOOK,
        422: "invalid fields: an unknown one, or `keep_previous_seconds` out of range",
    },
)
def rotate(slug: str, webhook_id: str) -> Response:
    """A new signing secret (admin), shown this once; the old one is honoured for
    ``keep_previous_seconds`` (the body is optional; default 0: not at all)."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    data = body_of(RotateIn, json_body() if request.get_data(cache=True) else {})
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
@operation(
    "Read a webhook's delivery log",
    tag="webhooks",
    access=Access.moderator,
    query=DeliveriesQueryIn,
    path=HOOK,
    responses={
        200: Reply("A page of the log, newest first.", DeliveryPageOut, headers=(NO_STORE,))
    },
    errors={
        404: NO_HOOK,
        422: "a parameter out of range, an unknown state, or a cursor that was altered",
    },
)
def deliveries(slug: str, webhook_id: str) -> Response:
    """The webhook's delivery log (moderator), newest first, keyset-paginated: each
    delivery's state, attempts, last status and error, and the body sent."""
    token = credentials()
    hook_id = _hook_id(webhook_id)
    query = query_of(DeliveriesQueryIn)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        get_webhook(session, site_id=site.id, webhook_id=hook_id)
        page = list_deliveries(
            session,
            webhook_id=hook_id,
            limit=query.limit,
            cursor=query.cursor,
            state=query.state,
        )
        items = [DeliveryOut.of(d, site=slug).model_dump(mode="json") for d in page.deliveries]
    links = {"self": request.full_path.rstrip("?")}
    if page.next_cursor:
        params = urlencode({**request.args.to_dict(), "cursor": page.next_cursor})
        links["next"] = (
            url_for("webhooks.deliveries", slug=slug, webhook_id=webhook_id) + "?" + params
        )
    body = {"deliveries": items, "next_cursor": page.next_cursor, "links": links}
    return _json(body, 200)


@bp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
@operation(
    "Deliver an event again",
    tag="webhooks",
    access=Access.admin,
    path=DELIVERY,
    responses={
        202: Reply("The new delivery, pending, sent at once.", DeliveryOut, headers=(NO_STORE,))
    },
    errors={
        403: ADMIN_ONLY,
        404: "unknown site, no such webhook at the site, or no such delivery of it",
        409: "the webhook is disabled",
    },
)
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
