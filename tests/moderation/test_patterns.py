"""Moderation patterns: the static check refuses what can backtrack catastrophically,
accepts ordinary patterns, and the policy holds comments they match."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from models import Status, Trust
from service.classifier.evaluation import Thresholds
from service.moderation.patterns import (
    MATCH_TEXT_LIMIT,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    UnsafePattern,
    check_pattern,
    find_patterns,
)
from service.moderation.policy import SitePolicy, decide, effective_trust

T = Thresholds(hold=0.5, spam=0.9, discard=0.99)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a+)+", "nests a quantifier"),
        (r"(a*)*", "nests a quantifier"),
        (r"(\w+\s?)*$", "nests a quantifier"),
        (r"(x+x+)+y", "nests a quantifier"),
        (r"^(([a-z])+.)+[A-Z]([a-z])+$", "nests a quantifier"),
        (r"(.*a){12}", "nests a quantifier"),
        (r"(a|a)*", "empty alternative"),  # the parser factors it to a(?:|)
        (r"(a|ab)+", "empty alternative"),
        (r"(|x)*", "empty alternative"),
        (r"(ab|a.)+", "alternatives can match the same text"),
        (r"(\w|\d)+", "can match the same character"),
        (r"\d+\d+", "two unbounded quantifiers in a row"),
        (r"a*a*b", "two unbounded quantifiers in a row"),
        (r".*.*=.*", "two unbounded quantifiers in a row"),
        # The first .* slides over every "a" (or "now"): minutes on 8,000 characters.
        (r".*a.*b", "two unbounded quantifiers in a row"),
        (r"buy.*now.*cheap", "two unbounded quantifiers in a row"),
        (r".*a{2}.*b", "two unbounded quantifiers in a row"),
        (r".*(x.*)y", "two unbounded quantifiers in a row"),
        (r".*(?:a|b).*c", "two unbounded quantifiers in a row"),
        (r"(a)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "backreference"),
        (r"(a)?(?(1)b|c)", "backreference"),
        (r"(unclosed", "does not compile"),
        ("a" * (MAX_PATTERN_LENGTH + 1), f"over {MAX_PATTERN_LENGTH} characters"),
        ("", "must not be empty"),
    ],
)
def test_dangerous_or_broken_patterns_are_refused_saying_why(pattern: str, why: str) -> None:
    with pytest.raises(UnsafePattern, match=why.replace("(", r"\(")):
        check_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"viagra",
        r"\bfree\s+money\b",
        r"buy (cheap|discount) pills",
        r"https?://bit\.ly/\w+",
        r"(ab)+",
        r"(?:cat|dog)+s",
        r"\d+-\d+",
        r"[\w.-]+@[\w-]+\.com",
        r"casino\s*\d+",
        r".*foo",
        r"(?i)crypto",
        r"a{2,5}b",
        r"foo.*bar",
        r"\w+@\w+",
        r"\S+\s+\S+",
    ],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert check_pattern(pattern) == pattern


def test_the_policy_names_the_refused_entry() -> None:
    with pytest.raises(ValidationError) as caught:
        SitePolicy(moderation_patterns=["fine", r"(a+)+$"])
    (error,) = caught.value.errors()
    assert error["loc"] == ("moderation_patterns", 1)
    assert "nests a quantifier" in error["msg"]
    with pytest.raises(ValidationError):
        SitePolicy(moderation_patterns=["x"] * (MAX_PATTERNS + 1))


def test_patterns_hold_a_comment_and_say_which() -> None:
    policy = SitePolicy(moderation_patterns=[r"bit\.ly/\w+", r"\bcrypto\b"])
    decision = decide(policy, T, score=0.1, text="see BIT.LY/abc", trust=Trust.normal)
    assert decision.status is Status.held
    assert [r.feature for r in decision.rules] == [r"rule:pattern:bit\.ly/\w+"]
    assert decide(policy, T, score=0.1, text="nice post", trust=Trust.normal).rules == ()


def test_patterns_only_see_the_head_of_a_long_comment() -> None:
    text = "x" * MATCH_TEXT_LIMIT + " crypto"
    assert find_patterns(["crypto"], text) == []
    assert find_patterns(["crypto"], "crypto " + text) == ["crypto"]


def test_an_expired_ban_counts_as_normal() -> None:
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    assert effective_trust(Trust.banned, None, now) is Trust.banned
    assert effective_trust(Trust.banned, now + dt.timedelta(seconds=1), now) is Trust.banned
    assert effective_trust(Trust.banned, now, now) is Trust.normal
    assert effective_trust(Trust.banned, now.replace(tzinfo=None), now) is Trust.normal
    assert effective_trust(Trust.trusted, None, now) is Trust.trusted


def test_known_authors_skip_the_hold_band_only_where_the_site_says_so() -> None:
    on = SitePolicy(approve_known_authors=True)
    off = SitePolicy()

    def status(policy: SitePolicy, score: float, known: bool, text: str = "nice post") -> Status:
        return decide(
            policy, T, score=score, text=text, trust=Trust.normal, known_author=known
        ).status

    assert status(on, 0.6, known=True) is Status.approved
    assert status(on, 0.6, known=False) is Status.held
    assert status(off, 0.6, known=True) is Status.held
    # The spam band and the rules still apply.
    assert status(on, 0.95, known=True) is Status.spam
    links = "http://a.example http://b.example http://c.example"
    assert status(on, 0.1, known=True, text=links) is Status.held
