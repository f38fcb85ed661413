"""The bundled classifier: what issue 18 asks of it, as behaviour, not exact scores.

Everyday short messages it was never tuned for are not spam; a first-time author is not
a reason for spam; a comment in a language it has no words for is never marked spam; it
was built from the published corpora, its thresholds chosen on held-out sources.
"""

from __future__ import annotations

import pytest

from service.classifier.model import WEAK_EVIDENCE_FEATURE, Classifier, load_classifier
from service.classifier.types import CommentRecord

EVERYDAY = [
    # The two messages of the issue, scored 0.94 and 0.79 by the classifier before it.
    "Ok ok take care. I can understand.",
    "Ok I'm gonna head up to usf in like fifteen minutes",
    "Great post, thanks for sharing the recipe.",
    "lol",
    "See you tomorrow at the station",
]


@pytest.fixture(scope="module")
def bundled() -> Classifier:
    return load_classifier()


@pytest.mark.parametrize("text", EVERYDAY)
@pytest.mark.parametrize("author", [None, "Jenny"])
def test_everyday_messages_are_not_spam(bundled: Classifier, text: str, author: str | None) -> None:
    score = bundled.score(CommentRecord(text, author_name=author))
    assert score.probability < bundled.thresholds.spam


def test_a_first_time_author_is_never_a_reason_for_spam(bundled: Classifier) -> None:
    for text in EVERYDAY:
        first = bundled.score(CommentRecord(text, approved_count=0, spam_count=0))
        assert not [r for r in first.spam_reasons if r.feature.startswith("stat:history")]
        assert first.probability == bundled.score(CommentRecord(text)).probability


def test_an_author_name_is_no_evidence_either_way(bundled: Classifier) -> None:
    # Of the corpora only one names its authors; the bundled classifier has no author
    # block, so a name, or none, changes nothing.
    text = "Ok ok take care. I can understand."
    assert bundled.score(CommentRecord(text, author_name="Jenny")).probability == (
        bundled.score(CommentRecord(text)).probability
    )


def test_text_in_an_unknown_script_is_never_marked_spam(bundled: Classifier) -> None:
    record = CommentRecord("ありがとうございます！とても参考になりました。また来ます")
    contributions = bundled._contributions(record)
    assert contributions.weak()
    assert bundled.score(record).probability < bundled.thresholds.spam


def test_blatant_spam_is_at_least_held(bundled: Classifier) -> None:
    score = bundled.score(
        CommentRecord("CHECK OUT MY CHANNEL http://bit.ly/abc subscribe subscribe!!! free views")
    )
    assert score.probability >= bundled.thresholds.hold
    assert all(r.feature != WEAK_EVIDENCE_FEATURE for r in score.reasons)


def test_it_was_built_from_the_corpora_with_held_out_thresholds(bundled: Classifier) -> None:
    meta = bundled.metadata
    assert meta["training_size"] == 16_099
    assert meta["notes"]["grouped_folds"] is True
    assert meta["notes"]["folds"] == 7
    assert meta["notes"]["per_source_thresholds"] is True
    t = bundled.thresholds
    assert 0.5 <= t.spam <= t.discard
    assert t.hold < t.spam
