"""Marking the words a verdict gave as reasons in a comment's text, safely.

The text is cut into :class:`Segment` s, plain or marked; the template escapes every
segment and wraps the marked ones in ``<mark>``, so that no part of a comment is ever
trusted as markup (``<script>`` shows as text, marked or not).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.classifier.features import LINK_MARK, SELF_MARK

#: Reason features whose value is a word or phrase of the text (``service/classifier`` and
#: ``service/moderation/policy.py`` name them so).
_TEXT_FEATURES = ("word:", "phrase:", "rule:blocked:", "rule:moderation:")
#: Placeholders the classifier puts for links; not words of the text.
_MARKS = frozenset({LINK_MARK, SELF_MARK})
#: Longest term looked for (longer ones are not words a moderator scans for).
_MAX_TERM = 100


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    marked: bool


def spam_terms(reasons: Iterable[Mapping[str, Any]]) -> list[str]:
    """The words and phrases of ``reasons`` that pushed towards spam or a hold: the
    classifier's words and phrases with a positive weight, and every blocked or
    moderation word of the site's rules."""
    terms: list[str] = []
    for reason in reasons:
        feature = str(reason.get("feature") or "")
        prefix = next((p for p in _TEXT_FEATURES if feature.startswith(p)), None)
        if prefix is None:
            continue
        weight = reason.get("weight")
        if prefix in ("word:", "phrase:") and not (isinstance(weight, int | float) and weight > 0):
            continue
        term = feature[len(prefix) :].strip()
        if not term or len(term) > _MAX_TERM or _MARKS.intersection(term.split()):
            continue
        if term not in terms:
            terms.append(term)
    return terms


def highlight(text: str, terms: Sequence[str]) -> list[Segment]:
    """``text`` cut into segments, the whole-word, case-insensitive occurrences of
    ``terms`` marked (a phrase matches across any run of white space). The segments
    joined give ``text`` back unchanged."""
    cleaned = [t for t in terms if t.split()]
    if not text or not cleaned:
        return [Segment(text, False)] if text else []
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in term.split())
        for term in sorted(cleaned, key=len, reverse=True)
    )
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    segments: list[Segment] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            segments.append(Segment(text[position : match.start()], False))
        segments.append(Segment(match.group(0), True))
        position = match.end()
    if position < len(text):
        segments.append(Segment(text[position:], False))
    return segments
