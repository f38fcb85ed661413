"""``If-Match`` (RFC 9110, section 13.1.1), read once for every conditional write.

``*`` matches any current representation; a list of entity tags matches when any of them
is the current one, compared strongly, so that a weak tag (``W/"..."``) never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import request

from service.moderation.errors import PreconditionRequired

# One list member: an optional weak prefix and a quoted opaque tag, then a comma or the end.
_MEMBER = re.compile(r'[ \t]*(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


@dataclass(frozen=True, slots=True)
class IfMatch:
    """What ``If-Match`` accepts: ``any_current`` (``*``), else the strong ``tags``
    (quoted, as sent; empty when the header held only weak or malformed ones, which
    match nothing)."""

    any_current: bool
    tags: frozenset[str]

    def matches(self, etag: str) -> bool:
        return self.any_current or etag in self.tags


def if_match(required: str) -> IfMatch:
    """The request's ``If-Match``; ``PreconditionRequired`` (428) with ``required`` as
    its detail when the header is absent."""
    value = request.headers.get("If-Match")
    if value is None:
        raise PreconditionRequired(required)
    return parse_if_match(value)


def parse_if_match(value: str) -> IfMatch:
    """``value`` as :class:`IfMatch`. A header that is not ``*`` nor a list of entity tags
    matches nothing (the write is refused with 412, never done by mistake)."""
    value = value.strip(" \t")
    if value == "*":
        return IfMatch(any_current=True, tags=frozenset())
    tags: set[str] = set()
    position = 0
    while position < len(value):
        member = _MEMBER.match(value, position)
        if member is None or member.end() == position:
            return IfMatch(any_current=False, tags=frozenset())
        if member.group(1) is None:
            tags.add(member.group(2))
        position = member.end()
    return IfMatch(any_current=False, tags=frozenset(tags))
