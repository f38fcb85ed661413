"""Sites: create, list, find, and change their policy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Site
from service.moderation.errors import Conflict, FieldError, InvalidInput, NotFound
from service.moderation.policy import SitePolicy

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def get_site(session: Session, *, slug: str) -> Site:
    """The site with this slug, or ``NotFound``."""
    site = session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise NotFound(f"no site '{slug}'")
    return site


def site_policy_of(site: Site) -> SitePolicy:
    """The site's policy as a validated object (the column holds what validation accepted)."""
    return SitePolicy.model_validate(site.policy or {})


def create_site(
    session: Session,
    *,
    slug: str,
    name: str,
    url: str,
    issuers: Sequence[str] = (),
    audiences: Sequence[str] = (),
    policy: SitePolicy | None = None,
) -> Site:
    """Add a site. ``Conflict`` if the slug is taken, ``InvalidInput`` for a bad slug."""
    if not _SLUG.match(slug):
        raise InvalidInput(
            "invalid site",
            [FieldError("slug", "lower-case letters, digits and '-', 1 to 64 characters")],
        )
    if session.scalar(select(Site.id).where(Site.slug == slug)) is not None:
        raise Conflict(f"a site '{slug}' exists already")
    site = Site(
        slug=slug,
        name=name,
        url=url,
        trusted_issuers=list(issuers),
        audiences=list(audiences),
        policy=(policy or SitePolicy()).model_dump(),
    )
    session.add(site)
    session.flush()
    return site


def list_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.slug)))


def update_policy(session: Session, *, slug: str, changes: dict[str, Any]) -> SitePolicy:
    """Merge ``changes`` into the site's policy; the result must validate as a whole."""
    site = get_site(session, slug=slug)
    merged = {**(site.policy or {}), **changes}
    try:
        policy = SitePolicy.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(
            "invalid policy",
            [
                FieldError(".".join(str(p) for p in e["loc"]) or "policy", e["msg"])
                for e in exc.errors()
            ],
        ) from exc
    site.policy = policy.model_dump()
    session.flush()
    return policy
