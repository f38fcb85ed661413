"""The site policy: thresholds, rules and their precedence."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models import Status, Trust
from service.classifier.evaluation import Thresholds
from service.moderation.policy import (
    Decision,
    SitePolicy,
    count_links,
    decide,
    effective_thresholds,
    find_words,
)

T = Thresholds(hold=0.5, spam=0.9, discard=0.99)


def _decide(
    score: float, text: str = "nice post", trust: Trust = Trust.normal, **policy: object
) -> Decision:
    return decide(SitePolicy.model_validate(policy), T, score=score, text=text, trust=trust)


@pytest.mark.parametrize(
    ("score", "status", "discard"),
    [
        (0.0, Status.approved, False),
        (0.49, Status.approved, False),
        (0.5, Status.held, False),
        (0.89, Status.held, False),
        (0.9, Status.spam, False),
        (0.989, Status.spam, False),
        (0.99, Status.spam, True),
        (1.0, Status.spam, True),
    ],
)
def test_score_bands(score: float, status: Status, discard: bool) -> None:
    decision = _decide(score)
    assert (decision.status, decision.discard) == (status, discard)


def test_banned_author_is_spam_whatever_the_score() -> None:
    decision = _decide(0.01, trust=Trust.banned)
    assert decision.status is Status.spam
    assert decision.rules[0].feature == "rule:banned"


def test_blocked_word_makes_spam_case_insensitively_on_whole_words() -> None:
    decision = _decide(0.01, text="Buy VIAGRA now", blocked_words=["viagra"])
    assert decision.status is Status.spam
    assert decision.rules[0].phrase == "blocked word 'viagra'"
    assert _decide(0.01, text="viagrafalls", blocked_words=["viagra"]).status is Status.approved


def test_moderation_word_and_links_hold_what_would_be_approved() -> None:
    held = _decide(0.01, text="my crypto tips", moderation_words=["crypto"])
    assert held.status is Status.held
    assert held.rules[0].feature == "rule:moderation:crypto"
    links = "see http://a.example and http://b.example and www.c.example"
    too_many = _decide(0.01, text=links, max_links=2)
    assert too_many.status is Status.held
    assert too_many.rules[0].phrase == "3 links (the site allows 2)"
    assert _decide(0.01, text=links, max_links=3).status is Status.approved


def test_trusted_author_skips_the_hold_band_but_not_spam_or_rules() -> None:
    assert _decide(0.7, trust=Trust.trusted).status is Status.approved
    assert _decide(0.95, trust=Trust.trusted).status is Status.spam
    ruled = _decide(0.7, text="crypto", trust=Trust.trusted, moderation_words=["crypto"])
    assert ruled.status is Status.held


def test_site_thresholds_override_the_classifier_suggestion_and_stay_ordered() -> None:
    policy = SitePolicy(hold_threshold=0.3)
    assert effective_thresholds(policy, T) == Thresholds(0.3, 0.9, 0.99)
    lifted = effective_thresholds(SitePolicy(hold_threshold=0.95), T)
    assert lifted.hold <= lifted.spam <= lifted.discard
    assert lifted.spam == 0.95


def test_policy_refuses_unordered_thresholds_and_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        SitePolicy(hold_threshold=0.9, spam_threshold=0.5)
    with pytest.raises(ValidationError):
        SitePolicy.model_validate({"hold": 0.5})


def test_word_and_link_helpers() -> None:
    text = "WIN big: Free\n money! free money, winner"
    assert find_words(["free money", "win"], text) == ["win", "free money"]
    assert find_words([], text) == []
    assert count_links("no links here") == 0
    assert count_links("https://x.example/a?b=c www.y.example") == 2
