"""A site's webhooks: registered, read, changed, deleted, their secrets rotated; every
change audited (never with a secret).

A webhook's URL is checked when it is set (``service/webhooks/targets.py``): https,
absolute, no credentials, no fragment, and a host whose every address is globally
routable, unless the site allows private targets (an operator's setting,
:func:`allow_private_targets`; never the API's, since it lets the service's requests
reach its own network). The signing secret is made here and returned once, at creation
and at each rotation; reading a webhook never shows it.

Locks: a URL is resolved before any row is locked (a resolver may take seconds), and the
rows changed are locked ``FOR NO KEY UPDATE``, which does not stop the inserts that
refer to them (a comment to its site, a delivery to its hook): registering or changing
a hook never holds up a comment or a verdict.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Site, Webhook, WebhookEvent
from service.moderation import audit
from service.moderation.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from service.moderation.types import Identity
from service.webhooks.signature import new_secret
from service.webhooks.targets import (
    ResolutionFailed,
    Resolver,
    TargetRefused,
    check_addresses,
    parse_url,
    resolve,
)

#: The most webhooks one site may have.
MAX_WEBHOOKS_PER_SITE = 20
#: The longest a rotated secret may stay valid beside the new one.
MAX_KEEP_PREVIOUS = dt.timedelta(days=7)


def webhook_etag(version: int) -> str:
    """The strong ETag of a webhook at ``version``: ``"w<version>"``."""
    return f'"w{version}"'


@dataclass(frozen=True, slots=True)
class WithSecret:
    """A webhook and its new signing secret (shown once)."""

    webhook: Webhook
    secret: str


@dataclass(frozen=True, slots=True)
class WebhookChanges:
    """What ``PATCH`` changes: the fields that are not None (and the description when
    ``set_description``, None clearing it)."""

    url: str | None = None
    events: Sequence[WebhookEvent] | None = None
    enabled: bool | None = None
    set_description: bool = False
    description: str | None = None


def check_url(
    url: str, *, allow_private: bool, resolve_timeout: float, resolver: Resolver | None = None
) -> str:
    """``url`` when a webhook may point there (see the module docstring); else
    ``InvalidInput`` on the field ``url`` saying why. Resolves the host (at most
    ``resolve_timeout`` seconds): a host that does not resolve is refused too, since
    nothing could be delivered to it."""
    try:
        target = parse_url(url, allow_private=allow_private)
        addresses = resolve(target.host, target.port, timeout=resolve_timeout, resolver=resolver)
        check_addresses(target.host, addresses, allow_private=allow_private)
    except TargetRefused as exc:
        raise InvalidInput("the webhook URL is refused", [FieldError("url", exc.reason)]) from None
    except ResolutionFailed as exc:
        raise InvalidInput("the webhook URL is refused", [FieldError("url", str(exc))]) from None
    return url


def _events(events: Sequence[WebhookEvent]) -> list[str]:
    chosen = list(dict.fromkeys(WebhookEvent(e).value for e in events))
    if not chosen:
        raise InvalidInput(
            "invalid webhook",
            [
                FieldError(
                    "events", f"name at least one of {', '.join(e.value for e in WebhookEvent)}"
                )
            ],
        )
    return chosen


def _site(session: Session, site_id: int, *, lock: bool = False) -> Site:
    query = select(Site).where(Site.id == site_id)
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    site = session.scalar(query)
    if site is None:
        raise NotFound(f"no site {site_id}")
    return site


def _taken(session: Session, site_id: int, url: str, but: uuid.UUID | None = None) -> None:
    query = select(Webhook.id).where(Webhook.site_id == site_id, Webhook.url == url)
    if but is not None:
        query = query.where(Webhook.id != but)
    if session.scalar(query) is not None:
        raise Conflict("the site has a webhook for this URL already")


def create_webhook(
    session: Session,
    *,
    site_id: int,
    url: str,
    events: Sequence[WebhookEvent],
    enabled: bool,
    description: str | None,
    actor: Identity,
    resolve_timeout: float,
    resolver: Resolver | None = None,
) -> WithSecret:
    """Register a webhook with a new secret. ``InvalidInput`` for a refused URL or no
    events; ``Conflict`` when the site has one for this URL already, or has
    :data:`MAX_WEBHOOKS_PER_SITE`. Audited as ``webhook_create``. Flushes; the caller
    commits."""
    chosen = _events(events)
    check_url(
        url,
        allow_private=_site(session, site_id).webhooks_allow_private,
        resolve_timeout=resolve_timeout,
        resolver=resolver,
    )
    _site(session, site_id, lock=True)  # one registration at a time per site: the count
    count = session.scalar(select(func.count()).where(Webhook.site_id == site_id)) or 0
    if count >= MAX_WEBHOOKS_PER_SITE:
        raise Conflict(f"the site has {count} webhooks, the most allowed; delete one first")
    _taken(session, site_id, url)
    secret = new_secret()
    webhook = Webhook(
        site_id=site_id,
        url=url,
        events=chosen,
        enabled=enabled,
        description=description,
        secret=secret,
        version=1,
    )
    session.add(webhook)
    session.flush()
    _audit(session, webhook, actor, "webhook_create", None, _shown(webhook))
    return WithSecret(webhook, secret)


def list_webhooks(session: Session, *, site_id: int) -> list[Webhook]:
    """The site's webhooks, oldest first."""
    return list(
        session.scalars(
            select(Webhook)
            .where(Webhook.site_id == site_id)
            .order_by(Webhook.created_at, Webhook.id)
        )
    )


def get_webhook(
    session: Session, *, site_id: int, webhook_id: uuid.UUID, lock: bool = False
) -> Webhook:
    """The site's webhook ``webhook_id``, or ``NotFound`` (another site's too)."""
    query = select(Webhook).where(Webhook.id == webhook_id, Webhook.site_id == site_id)
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    webhook = session.scalar(query)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook


def _check_version(webhook: Webhook, expected_etags: frozenset[str] | None) -> None:
    current = webhook_etag(webhook.version)
    if expected_etags is not None and current not in expected_etags:
        raise PreconditionFailed("the webhook has changed; read it again", etag=current)


def update_webhook(
    session: Session,
    *,
    site_id: int,
    webhook_id: uuid.UUID,
    changes: WebhookChanges,
    expected_etags: frozenset[str] | None,
    actor: Identity,
    resolve_timeout: float,
    resolver: Resolver | None = None,
) -> Webhook:
    """Change the fields ``changes`` gives, if the webhook's ETag is one of
    ``expected_etags`` (None: whatever it is); a new version when anything changed,
    audited as ``webhook_update`` with the fields before and after. ``PreconditionFailed``
    (with the current ETag) when stale; ``InvalidInput``, ``Conflict`` as
    :func:`create_webhook`. Flushes; the caller commits."""

    def check(url: str) -> None:
        allow_private = _site(session, site_id).webhooks_allow_private
        check_url(
            url, allow_private=allow_private, resolve_timeout=resolve_timeout, resolver=resolver
        )

    seen = get_webhook(session, site_id=site_id, webhook_id=webhook_id)
    _check_version(seen, expected_etags)
    checked = changes.url is not None and changes.url != seen.url
    if checked and changes.url is not None:
        check(changes.url)
    # Locked only now, and compared again: another change may have come meanwhile.
    webhook = get_webhook(session, site_id=site_id, webhook_id=webhook_id, lock=True)
    _check_version(webhook, expected_etags)
    before = _shown(webhook)
    if changes.url is not None and changes.url != webhook.url:
        if not checked:  # the URL was changed back meanwhile (rare): check it now
            check(changes.url)
        _taken(session, site_id, changes.url, but=webhook.id)
        webhook.url = changes.url
    if changes.events is not None:
        webhook.events = _events(changes.events)
    if changes.enabled is not None:
        webhook.enabled = changes.enabled
    if changes.set_description:
        webhook.description = changes.description
    after = _shown(webhook)
    if after != before:
        webhook.version += 1
        session.flush()
        _audit(session, webhook, actor, "webhook_update", before, after)
    return webhook


def delete_webhook(
    session: Session,
    *,
    site_id: int,
    webhook_id: uuid.UUID,
    expected_etags: frozenset[str] | None,
    actor: Identity,
) -> None:
    """Delete the webhook and its delivery log (pending deliveries are dropped), if its
    ETag is one of ``expected_etags`` (None: whatever it is). Audited as
    ``webhook_delete``. Flushes; the caller commits."""
    webhook = get_webhook(session, site_id=site_id, webhook_id=webhook_id, lock=True)
    _check_version(webhook, expected_etags)
    _audit(session, webhook, actor, "webhook_delete", _shown(webhook), None)
    session.delete(webhook)
    session.flush()


def rotate_secret(
    session: Session,
    *,
    site_id: int,
    webhook_id: uuid.UUID,
    keep_previous: dt.timedelta,
    actor: Identity,
    now: dt.datetime,
) -> WithSecret:
    """Give the webhook a new secret, returned once. For ``keep_previous`` (at most
    :data:`MAX_KEEP_PREVIOUS`) deliveries are signed with the old secret too, so the
    receiver can switch without refusing any; zero ends the old secret at once. A new
    version, audited as ``webhook_rotate``. Flushes; the caller commits."""
    if not dt.timedelta(0) <= keep_previous <= MAX_KEEP_PREVIOUS:
        raise InvalidInput(
            "invalid rotation",
            [
                FieldError(
                    "keep_previous_seconds",
                    f"0 to {int(MAX_KEEP_PREVIOUS.total_seconds())}",
                )
            ],
        )
    webhook = get_webhook(session, site_id=site_id, webhook_id=webhook_id, lock=True)
    secret = new_secret()
    if keep_previous:
        webhook.previous_secret = webhook.secret
        webhook.previous_secret_expires_at = now + keep_previous
    else:
        webhook.previous_secret = None
        webhook.previous_secret_expires_at = None
    webhook.secret = secret
    webhook.version += 1
    session.flush()
    audit.record(
        session,
        site_id=site_id,
        actor=actor,
        action="webhook_rotate",
        target_type="webhook",
        target_id=str(webhook.id),
        from_state=None,
        to_state=None,
        note=None,
        details={"keep_previous_seconds": int(keep_previous.total_seconds())},
    )
    return WithSecret(webhook, secret)


def allow_private_targets(session: Session, *, site_id: int, allow: bool) -> None:
    """Let the site's webhooks use http and non-public addresses (or stop letting
    them); deliveries check it at each attempt. An operator's decision: the CLI's
    ``commentguard site webhooks``, not the API. Flushes; the caller commits."""
    _site(session, site_id, lock=True).webhooks_allow_private = allow
    session.flush()


def allows_private_targets(session: Session, *, site_id: int) -> bool:
    """Whether the site allows private targets (:func:`allow_private_targets`)."""
    return _site(session, site_id).webhooks_allow_private


def _shown(webhook: Webhook) -> dict[str, Any]:
    """What the audit trail keeps of a webhook (never its secrets)."""
    return {
        "url": webhook.url,
        "events": list(webhook.events),
        "enabled": webhook.enabled,
        "description": webhook.description,
    }


def _audit(
    session: Session,
    webhook: Webhook,
    actor: Identity,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.record(
        session,
        site_id=webhook.site_id,
        actor=actor,
        action=action,
        target_type="webhook",
        target_id=str(webhook.id),
        from_state=None,
        to_state=None,
        note=None,
        details={"before": before, "after": after},
    )
