"""A site's rules (its ``SitePolicy``) read and changed by its people, with an ETag so
that two admins editing at once cannot overwrite each other, and an audit row holding the
rules before and after each change."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Site
from service.moderation import audit
from service.moderation.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from service.moderation.policy import SitePolicy
from service.moderation.types import Identity


@dataclass(frozen=True, slots=True)
class Rules:
    policy: SitePolicy
    etag: str


def rules_etag(policy: SitePolicy) -> str:
    """The rules' strong ETag: a digest of their canonical JSON, so any change changes it
    (and the site needs no version column)."""
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return '"r' + hashlib.sha256(canonical.encode()).hexdigest()[:20] + '"'


def read_rules(session: Session, *, site_id: int) -> Rules:
    policy = SitePolicy.model_validate(_site(session, site_id, lock=False).policy or {})
    return Rules(policy, rules_etag(policy))


def change_rules(
    session: Session,
    *,
    site_id: int,
    changes: dict[str, Any],
    replace: bool,
    actor: Identity,
    expected_etags: frozenset[str] | None,
    note: str | None = None,
) -> Rules:
    """Replace the rules by ``changes`` (``replace``; fields left out take their
    defaults) or merge ``changes`` into them, if their ETag is one of ``expected_etags``
    (None: unconditionally, for the CLI and ``If-Match: *``). The result must validate
    as a whole (``InvalidInput`` naming each field, e.g. ``moderation_patterns.2``); a
    stale ETag is ``PreconditionFailed`` with the current one. Audited as ``rules`` with the rules
    before and after in ``details``. The site row is locked for the check-and-write."""
    site = _site(session, site_id, lock=True)
    before = SitePolicy.model_validate(site.policy or {})
    current = rules_etag(before)
    if expected_etags is not None and current not in expected_etags:
        raise PreconditionFailed("the rules have changed; read them again", etag=current)
    merged = dict(changes) if replace else {**before.model_dump(), **changes}
    try:
        after = SitePolicy.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(
            "invalid rules",
            [
                FieldError(".".join(str(p) for p in e["loc"]) or "rules", e["msg"])
                for e in exc.errors()
            ],
        ) from None
    site.policy = after.model_dump(mode="json")
    session.flush()
    audit.record(
        session,
        site_id=site.id,
        actor=actor,
        action="rules",
        target_type="site",
        target_id=site.slug,
        from_state=current.strip('"'),
        to_state=rules_etag(after).strip('"'),
        note=note,
        details={"before": before.model_dump(mode="json"), "after": after.model_dump(mode="json")},
    )
    return Rules(after, rules_etag(after))


def _site(session: Session, site_id: int, *, lock: bool) -> Site:
    query = select(Site).where(Site.id == site_id)
    site = session.scalar(query.with_for_update() if lock else query)
    if site is None:
        raise NotFound(f"no site {site_id}")
    return site
