"""Plain values the domain passes around (no ORM objects cross these boundaries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as proven by a verified token: identity is (issuer, subject).

    ``name``, ``email`` and ``email_verified`` come from the token's claims; ``roles`` are
    the roles the token grants (empty for a plain commenter).
    """

    issuer: str
    subject: str
    name: str | None = None
    email: str | None = None
    email_verified: bool = False
    roles: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict)
