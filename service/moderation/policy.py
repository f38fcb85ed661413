"""A site's moderation policy and the one function that turns a score into a decision."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from models import Status, Trust
from service.classifier.evaluation import Thresholds
from service.moderation.patterns import MAX_PATTERNS, check_pattern, find_patterns
from service.moderation.text import storable_text

_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)


class SitePolicy(BaseModel):
    """Thresholds and rules of one site. Stored as JSON on ``sites.policy``.

    A threshold left ``None`` falls back to the one the active classifier suggests.
    Scores are spam probabilities: below ``hold_threshold`` a comment is approved, from it
    up to ``spam_threshold`` held, from ``spam_threshold`` spam, and from
    ``discard_threshold`` spam that the blog may drop without showing anyone.
    """

    model_config = ConfigDict(extra="forbid")

    hold_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    spam_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    discard_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Words or phrases (case-insensitive, whole words) that make a comment spam.
    blocked_words: list[str] = Field(default_factory=list, max_length=1000)
    #: Words or phrases that send a comment to the queue for a human look.
    moderation_words: list[str] = Field(default_factory=list, max_length=1000)
    #: Regular expressions (case-insensitive, searched anywhere) that hold a comment, each
    #: checked by ``service.moderation.patterns.check_pattern`` (length, compiles, cannot
    #: backtrack catastrophically) and run on the comment's first 8,000 characters.
    moderation_patterns: list[Annotated[str, AfterValidator(check_pattern)]] = Field(
        default_factory=list, max_length=MAX_PATTERNS
    )
    #: More links than this holds the comment (WordPress's default is 2).
    max_links: int = Field(default=2, ge=0, le=1000)
    #: At most this many comments per author per minute; 0 turns flood control off.
    flood_limit_per_minute: int = Field(default=10, ge=0, le=10_000)
    #: Approve, like a trusted author's, the comments of authors who have an approved
    #: comment already (WordPress's "previously approved comment"): the hold band is
    #: skipped, the spam band and the rules still apply.
    approve_known_authors: bool = False

    @field_validator("blocked_words", "moderation_words")
    @classmethod
    def _storable(cls, words: list[str]) -> list[str]:
        # One pass over the whole list (the worker validates a site's policy with each
        # comment); the database refuses NUL and lone surrogates (see moderation/text.py).
        try:
            storable_text("".join(words))
        except ValueError:
            for i, word in enumerate(words):
                try:
                    storable_text(word)
                except ValueError as exc:
                    raise ValueError(f"entry {i} {exc}") from None
        return words

    @model_validator(mode="after")
    def _ordered(self) -> SitePolicy:
        given = (self.hold_threshold, self.spam_threshold, self.discard_threshold)
        present = [t for t in given if t is not None]
        if present != sorted(present):
            raise ValueError("thresholds must satisfy hold <= spam <= discard")
        return self


def effective_thresholds(policy: SitePolicy, suggested: Thresholds) -> Thresholds:
    """The site's thresholds, each falling back to the classifier's suggestion, kept ordered."""
    hold = policy.hold_threshold if policy.hold_threshold is not None else suggested.hold
    spam = policy.spam_threshold if policy.spam_threshold is not None else suggested.spam
    discard = (
        policy.discard_threshold if policy.discard_threshold is not None else suggested.discard
    )
    spam = max(spam, hold)
    return Thresholds(hold=hold, spam=spam, discard=max(discard, spam))


@dataclass(frozen=True, slots=True)
class RuleReason:
    """Why the policy moved a comment, in the same shape as a classifier reason."""

    phrase: str
    feature: str


@dataclass(frozen=True, slots=True)
class Decision:
    status: Status
    discard: bool
    rules: tuple[RuleReason, ...]


@lru_cache(maxsize=256)
def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    cleaned = [w.strip() for w in words if w.strip()]
    if not cleaned:
        return None
    # Longest first so "free money" wins over "free"; any run of white space matches a space.
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in w.split())
        for w in sorted(cleaned, key=len, reverse=True)
    )
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def find_words(words: list[str], text: str) -> list[str]:
    """The distinct listed words that occur in ``text`` as whole words, in order of appearance."""
    pattern = _word_pattern(tuple(words))
    if pattern is None:
        return []
    found: list[str] = []
    for match in pattern.finditer(text):
        word = " ".join(match.group(0).lower().split())
        if word not in found:
            found.append(word)
    return found


def count_links(text: str) -> int:
    """Links written in the text: ``http(s)://`` URLs and bare ``www.`` hosts."""
    return len(_URL.findall(text))


def effective_trust(trust: Trust, banned_until: dt.datetime | None, now: dt.datetime) -> Trust:
    """The trust that counts at ``now``: a ban whose end has passed counts as normal."""
    if trust is Trust.banned and banned_until is not None:
        if banned_until.tzinfo is None:
            # SQLite hands back naive timestamps; they are UTC.
            banned_until = banned_until.replace(tzinfo=dt.UTC)
        if banned_until <= now:
            return Trust.normal
    return trust


def decide(
    policy: SitePolicy,
    thresholds: Thresholds,
    *,
    score: float,
    text: str,
    trust: Trust,
    known_author: bool = False,
) -> Decision:
    """Apply the site's thresholds and rules to one scored comment.

    Precedence, strongest first: a banned author and blocked words make spam; then the
    score bands; then moderation words, moderation patterns and too many links hold what
    would be approved. A trusted author skips the hold band (a score between hold and
    spam is approved) but not the rules; so does a ``known_author`` (one with an approved
    comment already) where the site sets ``approve_known_authors``. ``trust`` is the
    effective trust (see :func:`effective_trust`).
    """
    if trust is Trust.banned:
        return Decision(Status.spam, False, (RuleReason("the author is banned", "rule:banned"),))
    blocked = find_words(policy.blocked_words, text)
    if blocked:
        return Decision(
            Status.spam,
            False,
            tuple(RuleReason(f"blocked word '{w}'", f"rule:blocked:{w}") for w in blocked),
        )

    if score >= thresholds.discard:
        return Decision(Status.spam, True, ())
    if score >= thresholds.spam:
        return Decision(Status.spam, False, ())

    rules: list[RuleReason] = []
    status = Status.approved
    if score >= thresholds.hold:
        if trust is Trust.trusted:
            rules.append(RuleReason("trusted author: hold band skipped", "rule:trusted"))
        elif known_author and policy.approve_known_authors:
            rules.append(
                RuleReason("author with an approved comment: hold band skipped", "rule:known")
            )
        else:
            status = Status.held
    for word in find_words(policy.moderation_words, text):
        rules.append(RuleReason(f"moderation word '{word}'", f"rule:moderation:{word}"))
        status = Status.held
    for pattern in find_patterns(policy.moderation_patterns, text):
        rules.append(RuleReason(f"moderation pattern /{pattern}/", f"rule:pattern:{pattern}"))
        status = Status.held
    links = count_links(text)
    if links > policy.max_links:
        rules.append(
            RuleReason(f"{links} links (the site allows {policy.max_links})", "rule:max_links")
        )
        status = Status.held
    return Decision(status, False, tuple(rules))
