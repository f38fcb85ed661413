"""Roles: what a token lets its bearer do at one site, beyond commenting.

Any valid token for a site makes its bearer a commenter there. The other roles come from
one claim of the token, chosen by ``settings.roles_claim``:

* ``scope``: a space-separated string (RFC 9068 / RFC 8693 ``scope``), or a list;
* ``roles`` or ``groups``: a list of strings (a single string is read as a list of one).

A role is granted for one site by a value ``<prefix>:<site slug>:<role>``, with
``settings.roles_prefix`` (default ``commentguard``) as prefix: ``commentguard:blog:moderator``
makes a moderator of the site ``blog`` and of no other site, so a moderator of site A
sees nothing of site B. Values naming another prefix, another site or an unknown role
are ignored. Scoping in the value itself (rather than a mapping kept here) lets the
identity provider's administrators grant and revoke roles where they already manage
their users, and works the same in scopes, app roles and groups.

``admin`` includes the other two: an admin of a site is also its moderator and its
operator. ``moderator`` (works the queue) and ``operator`` (keeps the classifier) are
separate jobs and imply nothing of each other.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from service.moderation.errors import Forbidden
from service.moderation.types import Identity


class Role(enum.StrEnum):
    moderator = "moderator"
    operator = "operator"
    admin = "admin"


#: The roles each role brings with it (itself included).
IMPLIED: dict[Role, frozenset[Role]] = {
    Role.moderator: frozenset({Role.moderator}),
    Role.operator: frozenset({Role.operator}),
    Role.admin: frozenset(Role),
}


def _values(claim: Any) -> Iterable[str]:
    if isinstance(claim, str):
        return claim.split()
    if isinstance(claim, list):
        return (value for value in claim if isinstance(value, str))
    return ()


def site_roles(
    claims: Mapping[str, Any], *, claim: str, site_slug: str, prefix: str
) -> frozenset[str]:
    """The roles ``claims[claim]`` grants at ``site_slug``, with the roles they imply,
    as the strings of :class:`Role`."""
    granted: set[str] = set()
    for value in _values(claims.get(claim)):
        parts = value.split(":")
        if len(parts) != 3 or parts[0] != prefix or parts[1] != site_slug:
            continue
        try:
            role = Role(parts[2])
        except ValueError:
            continue
        granted.update(IMPLIED[role])
    return frozenset(granted)


def require_role(identity: Identity, role: Role, *, site_slug: str) -> Identity:
    """``identity`` when it holds ``role`` at the site it was authenticated for; else
    ``Forbidden`` (403 with ``WWW-Authenticate: Bearer error="insufficient_scope"``)."""
    if role.value not in identity.roles:
        raise Forbidden(f"this needs the {role.value} role at site '{site_slug}'")
    return identity
