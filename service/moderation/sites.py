"""Sites: create, list and find them (their rules change in ``moderation/rules.py``)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Site
from service.moderation.errors import Conflict, FieldError, InvalidInput, NotFound
from service.moderation.policy import SitePolicy

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class IntrospectionClient:
    """Where a site's opaque tokens are checked (RFC 7662), and the client credentials
    this service authenticates with there (client_secret_basic)."""

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class UiClient:
    """How the moderators' web UI logs in for a site: at this OpenID Connect issuer, as
    this client (authorization code + PKCE); ``client_secret`` is None for a public
    client (PKCE only, no client authentication at the token endpoint)."""

    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What accepting and classifying a comment need of a site, detached from any session.

    ``introspection`` is None when the site accepts no opaque tokens.
    """

    id: int
    slug: str
    trusted_issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    policy: SitePolicy
    introspection: IntrospectionClient | None = None
    #: None when the site's moderators have no web UI (no client configured).
    ui_client: UiClient | None = None
    #: The site's home URL (what Akismet clients send as ``blog``).
    url: str = ""

    @classmethod
    def of(cls, site: Site) -> SiteInfo:
        introspection = None
        if (
            site.introspection_endpoint
            and site.introspection_client_id
            and site.introspection_client_secret
        ):
            introspection = IntrospectionClient(
                site.introspection_endpoint,
                site.introspection_client_id,
                site.introspection_client_secret,
            )
        return cls(
            id=site.id,
            slug=site.slug,
            trusted_issuers=tuple(site.trusted_issuers or ()),
            audiences=tuple(site.audiences or ()),
            policy=site_policy_of(site),
            introspection=introspection,
            ui_client=ui_client_of(site),
            url=site.url,
        )


class SiteDirectory:
    """Sites by slug, read from the database at most once per ``ttl`` seconds per process.

    Every comment names its site; reading the site (and validating its policy) on each
    one was a seventh of the cost of accepting a comment. A changed policy or issuer list
    therefore takes effect within ``ttl`` seconds. Thread-safe.
    """

    def __init__(self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._sites: dict[str, tuple[float, SiteInfo]] = {}

    def get(self, session: Session, *, slug: str) -> SiteInfo:
        """The site with this slug, or ``NotFound`` (unknown slugs are never cached)."""
        now = self._clock()
        cached = self._sites.get(slug)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        info = SiteInfo.of(get_site(session, slug=slug))
        with self._lock:
            self._sites[slug] = (now, info)
        return info

    def forget(self, slug: str) -> None:
        """Drop the cached site, so that this process sees a change it made at once (other
        processes see it within ``ttl`` seconds)."""
        with self._lock:
            self._sites.pop(slug, None)


def get_site(session: Session, *, slug: str) -> Site:
    """The site with this slug, or ``NotFound``."""
    if not _SLUG.match(slug):
        # No site has such a slug (create_site refuses it); and PostgreSQL would refuse a
        # NUL in the parameter with an error, not an empty answer.
        raise NotFound(f"no site {slug!r}")
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
    introspection: IntrospectionClient | None = None,
) -> Site:
    """Add a site. ``Conflict`` if the slug is taken, ``InvalidInput`` for a bad slug.

    ``introspection``, when given, lets the site's readers use opaque tokens, checked at
    that RFC 7662 endpoint.
    """
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
        introspection_endpoint=introspection.endpoint if introspection else None,
        introspection_client_id=introspection.client_id if introspection else None,
        introspection_client_secret=introspection.client_secret if introspection else None,
    )
    session.add(site)
    session.flush()
    return site


def list_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.slug)))


def slugs_of(session: Session, *, site_ids: Collection[int]) -> dict[int, str]:
    """Site id -> slug, for the ids that exist among ``site_ids`` (one query; none for
    an empty collection)."""
    if not site_ids:
        return {}
    rows = session.execute(select(Site.id, Site.slug).where(Site.id.in_(list(site_ids))))
    return {row.id: row.slug for row in rows}


def ui_client_of(site: Site) -> UiClient | None:
    """The site's web UI client, or None when none is configured."""
    if not (site.ui_issuer and site.ui_client_id):
        return None
    return UiClient(site.ui_issuer, site.ui_client_id, site.ui_client_secret or None)


def set_ui_client(session: Session, *, slug: str, client: UiClient | None) -> Site:
    """Configure (or, with None, remove) the site's web UI client.

    The issuer must be an ``https`` URL (plain ``http`` only to this machine, for a
    development provider) without query or fragment, as OpenID Connect Discovery requires
    of an issuer identifier; the client id must be 1 to 255 printable characters and the
    secret, when given, non-empty. ``InvalidInput`` names each bad field; ``NotFound`` for
    an unknown site."""
    site = get_site(session, slug=slug)
    if client is not None:
        errors = _ui_client_errors(client)
        if errors:
            raise InvalidInput("invalid UI client", errors)
    site.ui_issuer = client.issuer if client else None
    site.ui_client_id = client.client_id if client else None
    site.ui_client_secret = client.client_secret if client else None
    session.flush()
    return site


def _ui_client_errors(client: UiClient) -> list[FieldError]:
    errors: list[FieldError] = []
    parts = urllib.parse.urlsplit(client.issuer)
    host = parts.hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        errors.append(
            FieldError("issuer", "an https URL (http only to localhost or a loopback address)")
        )
    elif parts.query or parts.fragment:
        errors.append(FieldError("issuer", "must have no query and no fragment"))
    if not 1 <= len(client.client_id) <= 255 or not client.client_id.isprintable():
        errors.append(FieldError("client_id", "1 to 255 printable characters"))
    if client.client_secret is not None and (
        not client.client_secret or not client.client_secret.isprintable()
    ):
        errors.append(FieldError("client_secret", "printable characters, or none at all"))
    return errors
