"""Marking a verdict's spam words in a comment's text."""

from __future__ import annotations

from typing import Any

from service.ui.highlight import Segment, highlight, spam_terms


def test_the_words_that_pushed_towards_spam_or_a_hold() -> None:
    reasons: list[dict[str, Any]] = [
        {"phrase": "the word 'cheap'", "weight": 1.2, "feature": "word:cheap"},
        {"phrase": "the word 'thanks'", "weight": -0.8, "feature": "word:thanks"},
        {"phrase": "the phrase 'buy now'", "weight": 0.9, "feature": "phrase:buy now"},
        {"phrase": "blocked word 'casino'", "feature": "rule:blocked:casino"},
        {"phrase": "moderation word 'crypto'", "feature": "rule:moderation:crypto"},
        {"phrase": "a link", "weight": 2.0, "feature": "word:xurl"},
        {"phrase": "'click' before a link", "weight": 0.5, "feature": "phrase:click xurl"},
        {"phrase": "2 links", "weight": 1.0, "feature": "stat:links"},
        {"phrase": "moderation pattern", "feature": "rule:pattern:bit\\.ly"},
    ]
    assert spam_terms(reasons) == ["cheap", "buy now", "casino", "crypto"]


def test_whole_words_any_case_phrases_across_white_space() -> None:
    text = "Cheap pills! cheapest <b>BUY\n now</b> crypto-casino"
    segments = highlight(text, ["cheap", "buy now", "casino", "crypto"])
    assert "".join(s.text for s in segments) == text
    assert [s.text for s in segments if s.marked] == ["Cheap", "BUY\n now", "crypto", "casino"]
    assert Segment(" pills! cheapest <b>", False) in segments


def test_nothing_to_mark() -> None:
    assert highlight("plain", []) == [Segment("plain", False)]
    assert highlight("", ["x"]) == []
    # Terms are text, never patterns.
    assert highlight("a.b axb", ["a.b"]) == [Segment("a.b", True), Segment(" axb", False)]
    assert highlight("one two", [".*"]) == [Segment("one two", False)]
