"""The classifier: determinism, fast path == scikit-learn path, reasons, artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.classifier.features import FeatureConfig
from service.classifier.model import (
    WEAK_EVIDENCE_FEATURE,
    Classifier,
    ModelConfig,
    load_classifier,
    save_classifier,
    train,
)
from service.classifier.types import CommentRecord
from tests.support.labelled import labelled_comments

SPAM = [
    "CHECK OUT MY CHANNEL http://bit.ly/xyz subscribe!!!",
    "subscribe to my channel please http://goo.gl/abc",
    "check out my new video and subscribe http://tinyurl.com/q",
    "Make money fast http://bit.ly/cash click here",
    "please subscribe to me, i make videos too",
    "visit my website http://cheap-pills.biz now",
    "FREE GIFT CARDS http://is.gd/free subscribe",
    "check out my channel for more music",
] * 3
HAM = [
    "I love this song, the chorus is beautiful",
    "this video never gets old",
    "the best song of the year, no doubt",
    "who is still listening in 2015?",
    "her voice is amazing in this one",
    "the dance at the end is so funny",
    "I remember when this came out",
    "great lyrics and a great beat",
] * 3


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    records = [CommentRecord(t) for t in SPAM + HAM]
    corpus = labelled_comments(300, seed=1)
    return train(records + corpus.records, [1] * len(SPAM) + [0] * len(HAM) + corpus.labels, seed=3)


EDGE = [
    "",
    "x" * 65536,
    "😀🔥👍",
    "مرحبا بكم في مدونتي",
    "lone \ud800 surrogate",
    '<a href="http://bit.ly/x">hi</a><br/>',
]


def test_fast_path_equals_sklearn_path(classifier: Classifier) -> None:
    records = [CommentRecord(t, author_name="Jo Smith") for t in SPAM + HAM + EDGE]
    records += labelled_comments(100, seed=9).records
    fast = np.array(classifier.model_probabilities(records))
    reference = classifier.sklearn_probabilities(records)
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-9)
    # score(), score_many() and probabilities() are the model's probabilities but where
    # the weak-evidence rule lowers a would-be spam verdict into the hold band.
    weak = np.array([classifier._contributions(r).weak() for r in records])
    lowered = weak & (reference >= classifier.thresholds.spam)
    expected = np.where(lowered, classifier._weak_cap, reference)
    scored = [s.probability for s in classifier.score_many(records)]
    np.testing.assert_allclose(scored, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(classifier.probabilities(records), expected, rtol=0, atol=1e-9)
    one = [classifier.score(r).probability for r in records]
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-9)


def test_reasons_add_up_to_the_log_odds(classifier: Classifier) -> None:
    record = CommentRecord("check out my song http://bit.ly/a")
    contributions = classifier._contributions(record)
    score = classifier.score(record)
    # The weak-evidence reason, when there is one, is part of the sum.
    lowered = sum(r.weight for r in score.reasons if r.feature == WEAK_EVIDENCE_FEATURE)
    logit = classifier._intercept + contributions.total + lowered
    assert score.probability == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-12)


def test_obvious_spam_has_spam_reasons(classifier: Classifier) -> None:
    score = classifier.score(CommentRecord("CHECK OUT MY CHANNEL http://bit.ly/xyz subscribe!!!"))
    assert score.probability > classifier.thresholds.spam
    phrases = " | ".join(r.phrase for r in score.spam_reasons)
    assert "subscribe" in phrases or "shortener" in phrases
    weights = [r.weight for r in score.spam_reasons]
    assert weights == sorted(weights, reverse=True)
    assert score.reasons[: len(score.spam_reasons)] == score.spam_reasons
    assert len(score.spam_reasons) <= 5
    assert len(score.ham_reasons) <= 5


def test_obvious_ham_has_ham_reasons(classifier: Classifier) -> None:
    score = classifier.score(CommentRecord("I love this song, her voice is beautiful"))
    assert score.probability < classifier.thresholds.hold
    assert score.ham_reasons
    assert score.ham_reasons[0].weight < 0
    weights = [r.weight for r in score.ham_reasons]
    assert weights == sorted(weights)


@pytest.mark.parametrize("text", EDGE)
def test_edge_cases_score(classifier: Classifier, text: str) -> None:
    score = classifier.score(CommentRecord(text, author_name=text or None))
    assert 0.0 <= score.probability <= 1.0


def test_training_is_deterministic(classifier: Classifier) -> None:
    records = [CommentRecord(t) for t in SPAM + HAM]
    corpus = labelled_comments(300, seed=1)
    again = train(
        records + corpus.records, [1] * len(SPAM) + [0] * len(HAM) + corpus.labels, seed=3
    )
    probe = [CommentRecord(t) for t in SPAM[:8] + HAM[:8]]
    assert again.probabilities(probe) == classifier.probabilities(probe)
    assert again.metadata["thresholds"] == classifier.metadata["thresholds"]


def test_metadata_and_thresholds(classifier: Classifier) -> None:
    t = classifier.thresholds
    assert 0.0 <= t.hold <= t.spam <= t.discard <= 1.0
    assert t.spam >= 0.5
    meta = classifier.metadata
    assert meta["training_size"] == len(SPAM) + len(HAM) + 300
    assert len(meta["training_fingerprint"]) == 64
    assert 0.0 <= meta["metrics"]["cv_f1"] <= 1.0


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        train([CommentRecord("a"), CommentRecord("b")], [1, 1])


def test_artifact_round_trip(classifier: Classifier, tmp_path: Path) -> None:
    path = tmp_path / "c.skops"
    save_classifier(classifier, path)
    loaded = load_classifier(path)
    probe = [CommentRecord(t) for t in SPAM[:8] + HAM[:8] + EDGE]
    assert loaded.probabilities(probe) == classifier.probabilities(probe)
    assert loaded.thresholds == classifier.thresholds


def test_a_hold_band_exists(classifier: Classifier) -> None:
    t = classifier.thresholds
    assert 0.2 <= t.hold < t.spam


def _varied_records() -> list[CommentRecord]:
    corpus = labelled_comments(300, seed=11).records
    texts = SPAM[:8] + HAM[:8] + EDGE
    texts += [
        "Check out my channel http://bit.ly/abc and www.youtube.com/watch?v=1 !!!",
        "[url=http://traffic-buy-coin.shop]buy youtube views[/url]",
        "call 555-0100 now, http://192.168.0.1/x and http://bit.ly/y",
        "xurl is not a link but http://example.org is",
        "ok",
    ]
    people = [
        CommentRecord(t, author_name="Jo Smith", author_url="http://jo.example.com") for t in texts
    ]
    return corpus + [CommentRecord(t) for t in texts] + people


def test_score_many_equals_score(classifier: Classifier) -> None:
    records = _varied_records()
    batch = classifier.score_many(records)
    fresh = Classifier(classifier.pipeline, classifier.metadata)  # cold caches
    one_by_one = [fresh.score(r) for r in records]
    assert len(batch) == len(one_by_one) == len(records)
    for got, want in zip(batch, one_by_one, strict=True):
        assert got.probability == pytest.approx(want.probability, abs=1e-9)
        assert [r.phrase for r in got.reasons] == [r.phrase for r in want.reasons]
        assert got == want


BATCH_EDGES = [
    "",
    " ",
    "😀🔥👍",
    "😀 😀 😀",
    "x" * 65536,
    "word " * 20000,
    "<p>Nice <b>post</b> &amp; thanks</p><br/>",
    '<a href="http://bit.ly/x">hi</a> <a href="https://www.example.com/watch?v=1">there</a>',
    "http://a.com http://b.com/watch?v=1&ref=2 http://bit.ly/x www.c.xyz http://192.168.0.1/x",
    "buy buy buy buy cheap cheap pills pills pills http://bit.ly/a http://bit.ly/a",
    "the the the the the the",
    "aaaaaaaa aaaaaaaa aaaaaaaa",
    "xurl xurl xpathwatch xurl",
    "lone \ud800 surrogate",
    "a",
]


def test_a_batch_scores_as_one_by_one(classifier: Classifier) -> None:
    # score_many weighs a batch's char n-grams together (in chunks); each record must come
    # out exactly as score() makes it alone: edge cases, next to each other and among
    # ordinary comments, across a chunk boundary, and in a batch with no n-grams at all.
    from service.classifier.model import _BATCH

    edges = [CommentRecord(t) for t in BATCH_EDGES]
    corpus = labelled_comments(_BATCH + 40, seed=5).records
    mixed = corpus[:7] + edges + corpus[7:] + edges
    assert len(mixed) > _BATCH
    empty = [CommentRecord(t) for t in ("", " ", "😀", "", "!!")]
    fresh = Classifier(classifier.pipeline, classifier.metadata)
    for batch in (edges, mixed, empty, mixed[: _BATCH - 3], [edges[4]]):
        got = fresh.score_many(batch)
        want = [Classifier(classifier.pipeline, classifier.metadata).score(r) for r in batch]
        assert got == want
        assert fresh.probabilities(batch) == [s.probability for s in want]
    assert fresh.score_many([]) == []
    assert fresh.probabilities([]) == []


def test_scoring_from_threads_is_safe(classifier: Classifier) -> None:
    from concurrent.futures import ThreadPoolExecutor

    records = _varied_records()
    expected = classifier.score_many(records)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(classifier.score, records * 3))
        batches = list(pool.map(classifier.score_many, [records[i::3] for i in range(3)] * 2))
    assert got == expected * 3
    assert batches == [expected[i::3] for i in range(3)] * 2


def test_each_fact_is_one_reason(classifier: Classifier) -> None:
    merged_away = {
        "no linked domains",
        "no URL shortener",
        "no IP-address link",
        "not a very short text",
        "the author gave a website",
    }
    for record in _varied_records():
        reasons = classifier.score(record).reasons
        phrases = [r.phrase for r in reasons]
        assert len(set(phrases)) == len(phrases), phrases
        assert not merged_away & set(phrases), phrases
        assert sum(p.startswith("no links") for p in phrases) <= 1
        if record.author_url:
            assert not any(p == "no author website" for p in phrases)


def test_link_reasons_name_the_host_as_written(classifier: Classifier) -> None:
    record = CommentRecord("win big at http://bet182.xyz/go now http://bet182.xyz/b")
    score = classifier.score(record)
    features = {r.feature for r in score.reasons}
    assert "link:bet000.xyz" not in features
    link = [r for r in score.reasons if r.feature.startswith("link:")]
    assert link
    assert all(r.phrase == "a link to bet182.xyz" for r in link)
    # The link mark itself is no separate reason.
    assert not any(r.phrase == "a link" for r in score.reasons)


def test_a_links_shape_words_belong_to_its_reason(classifier: Classifier) -> None:
    record = CommentRecord("see http://www.example.com/watch?v=1&ref=2 and www.bet.xyz")
    contributions = classifier._contributions(record)
    assert not [k for k in contributions.weights if "xpath" in k or "xquery" in k]
    np.testing.assert_allclose(
        classifier.probabilities([record]), classifier.sklearn_probabilities([record]), atol=1e-9
    )


def test_a_model_without_url_shapes_scores_as_trained() -> None:
    records = [CommentRecord(t) for t in SPAM + HAM]
    config = ModelConfig(features=FeatureConfig(url_shapes=False), folds=3)
    plain = train(records, [1] * len(SPAM) + [0] * len(HAM), seed=0, config=config)
    probe = [CommentRecord("subscribe http://example.com/watch?v=1"), *records[:3]]
    np.testing.assert_allclose(
        plain.probabilities(probe), plain.sklearn_probabilities(probe), atol=1e-9
    )
    vocabulary = plain.pipeline.named_steps["features"].transformer_list[0][1]
    assert not [t for t in vocabulary.named_steps["tfidf"].vocabulary_ if "xpath" in t]


def test_a_link_to_the_page_itself_is_one_reason_of_its_own() -> None:
    page = "https://www.youtube.com/watch?v=9bZkp7q19f0"
    own = "Roar (Official): http://youtu.be/9bZkp7q19f0 love it"
    records = [CommentRecord(t) for t in SPAM + HAM] + [
        CommentRecord(own, permalink=page),
        CommentRecord(f"best part {page}&t=3m40s", permalink=page),
    ]
    labels = [1] * len(SPAM) + [0] * (len(HAM) + 2)
    model = train(records, labels, seed=0, config=ModelConfig(folds=3))
    record = CommentRecord(own, permalink=page)
    contributions = model._contributions(record)
    # The mark and the bigrams it is in ("v xself", "xself love") are one reason.
    assert not [k for k in contributions.weights if "xself" in k and k != "word:xself"]
    assert contributions.phrase("word:xself") == "a link to the page itself"
    assert not [k for k in contributions.weights if k.startswith("link:")]
    probe = [
        record,
        CommentRecord(own),
        CommentRecord("x http://youtu.be/9bZkp7q19f0.", permalink=page),
    ]
    np.testing.assert_allclose(
        model.probabilities(probe), model.sklearn_probabilities(probe), atol=1e-9
    )
    # Without the page the same text has an outbound link, and scores otherwise.
    assert model.score(CommentRecord(own)).probability != model.score(record).probability


def test_a_model_without_self_links_scores_as_trained() -> None:
    records = [CommentRecord(t, permalink="http://example.com/p1") for t in SPAM + HAM]
    config = ModelConfig(features=FeatureConfig(self_links=False, split_punctuation=False), folds=3)
    plain = train(records, [1] * len(SPAM) + [0] * len(HAM), seed=0, config=config)
    probe = [CommentRecord("so...good http://example.com/p1", permalink="http://example.com/p1")]
    np.testing.assert_allclose(
        plain.probabilities(probe), plain.sklearn_probabilities(probe), atol=1e-9
    )
    assert "link:example.com" in plain._contributions(probe[0]).weights


def test_odd_tokens_read_as_text(classifier: Classifier) -> None:
    from service.classifier.model import _display, _word_phrase

    assert _word_phrase(_display("views[/url]")) == "the text 'views[/url]'"
    assert _word_phrase(_display("hello!")) == "the word 'hello'"
    assert _word_phrase(_display("c'est")) == "the word 'c'est'"
    assert _word_phrase("x" * 50).endswith("…'")


def test_naive_bayes_blend_is_folded_into_one_linear_model(classifier: Classifier) -> None:
    notes = classifier.metadata["notes"]
    assert notes["nb_blend"] is True
    assert len(notes["calibration"]["weights"]) == 2
    # One linear model: the reasons and the intercept add up to the score.
    record = CommentRecord("subscribe to my channel http://bit.ly/x", author_name="Al")
    contributions = classifier._contributions(record)
    logit = classifier._intercept + contributions.total
    assert classifier.score(record).probability == pytest.approx(
        1 / (1 + np.exp(-logit)), abs=1e-12
    )
    np.testing.assert_allclose(
        classifier.probabilities([record]), classifier.sklearn_probabilities([record]), atol=1e-9
    )


def test_sources_must_match_the_records() -> None:
    with pytest.raises(ValueError, match="sources"):
        train([CommentRecord("a"), CommentRecord("b")], [1, 0], sources=["x"])


@pytest.mark.parametrize(
    "weights",
    [
        {},
        {"word:a": 0.5},
        {"word:a": 0.5, "word:b": -0.2, "word:c": 0.005},
        {f"word:{k}": 0.3 for k in "edcbazyx"} | {f"word:n{k}": -0.3 for k in "gfedcba"},
        {f"word:{k}": float(i % 3) - 1.0 for i, k in enumerate("abcdefghijklmnop")},
        {"word:a": 1.0, "word:b": 1.0, "word:c": 2.0, "word:d": 0.01, "word:e": -0.01},
    ],
)
def test_reasons_are_the_strongest_five_each_way_ties_by_key(weights: dict[str, float]) -> None:
    from service.classifier.model import _Contributions

    reasons = _Contributions(dict(weights), (0.0, 0.0) * 16, 0, 0).reasons()
    spam = sorted((-w, f) for f, w in weights.items() if w >= 0.01)[:5]
    ham = sorted((w, f) for f, w in weights.items() if w <= -0.01)[:5]
    assert [(r.feature, r.weight) for r in reasons] == [(f, -w) for w, f in spam] + [
        (f, w) for w, f in ham
    ]


def test_reasons_made_through_their_slots_are_reasons() -> None:
    from dataclasses import fields

    from service.classifier.model import _reason
    from service.classifier.types import Reason

    # _reason sets these three slots itself: a field added to Reason must be added there.
    assert [f.name for f in fields(Reason)] == ["phrase", "weight", "feature"]
    made = _reason("the word 'x'", -0.5, "word:x")
    assert made == Reason("the word 'x'", -0.5, "word:x")
    assert hash(made) == hash(Reason("the word 'x'", -0.5, "word:x"))
    assert made.direction == "ham"
    with pytest.raises(AttributeError):
        made.weight = 1.0  # type: ignore[misc]


def test_dense_and_author_reasons_are_shared_when_equal() -> None:
    from service.classifier.model import _Contributions
    from service.classifier.types import Reason

    # The reasons of the dense features and the author recur from comment to comment
    # with the same weight: one immutable Reason serves them all; word reasons are new.
    weights = {"stat:links": -0.5, "author:name:jo": 0.25, "word:cheap": 0.75}
    first = _Contributions(dict(weights), (0.0, 0.0) * 16, 0, 0).reasons()
    again = _Contributions(dict(weights), (0.0, 0.0) * 16, 0, 0).reasons()
    assert first == again
    assert [r.feature for r in first] == ["word:cheap", "author:name:jo", "stat:links"]
    assert first[0] is not again[0]
    assert first[1] is again[1]
    assert first[2] is again[2]
    assert first[2] == Reason("no links", -0.5, "stat:links")
    # Another phrase or weight is another reason.
    other = _Contributions({"stat:links": -0.5}, (0.2, 1, 0.2, 1) + (0.0, 0.0) * 14, 0, 0).reasons()
    assert other[0].phrase != "no links"
    assert other[0] is not first[2]


# --- never spam on weak evidence -------------------------------------------------------


def test_a_comment_unlike_the_training_data_is_held_not_marked_spam(
    classifier: Classifier,
) -> None:
    # Words the classifier never saw: whatever the char n-grams make of them, the
    # evidence is too thin to mark the comment spam; at most it is held.
    record = CommentRecord("Zxqv wlrbbl ghyyt!!! Zxqv wlrbbl!!! $$$ http://bit.ly/zz")
    contributions = classifier._contributions(record)
    assert contributions.weak()
    model = classifier.model_probabilities([record])[0]
    score = classifier.score(record)
    t = classifier.thresholds
    assert score.probability < t.spam
    if model >= t.spam:
        assert t.hold <= score.probability
        reason = next(r for r in score.reasons if r.feature == WEAK_EVIDENCE_FEATURE)
        assert reason.weight < 0
        assert "little evidence" in reason.phrase
        assert "words known" in reason.phrase
    else:
        assert score.probability == model


def test_weak_evidence_lowers_a_spam_score_into_the_hold_band() -> None:
    # A classifier whose spam threshold every blatant spam reaches; the rule is about
    # evidence, so a one-word comment cannot be spam even when its one word is.
    records = [CommentRecord(t) for t in SPAM + HAM]
    corpus = labelled_comments(300, seed=1)
    trained = train(
        records + corpus.records, [1] * len(SPAM) + [0] * len(HAM) + corpus.labels, seed=3
    )
    t = trained.thresholds
    one_word = CommentRecord("subscribe")
    assert trained._contributions(one_word).weak()
    score = trained.score(one_word)
    assert score.probability < t.spam
    full = CommentRecord("subscribe to my channel please http://goo.gl/abc")
    assert not trained._contributions(full).weak()
    assert trained.score(full).probability >= t.spam
    assert all(r.feature != WEAK_EVIDENCE_FEATURE for r in trained.score(full).reasons)


def test_missing_author_history_counts_for_nothing(classifier: Classifier) -> None:
    text = "I love this song, the chorus is beautiful"
    first_time = classifier.score(CommentRecord(text))
    assert all(not r.feature.startswith("stat:history") for r in first_time.reasons)
    # History may only count one way each: approved comments toward ham, spam toward spam.
    trusted = classifier.score(CommentRecord(text, approved_count=20))
    spammer = classifier.score(CommentRecord(text, spam_count=20))
    assert trusted.probability <= first_time.probability <= spammer.probability


def test_history_is_learnt_one_way_and_never_from_its_absence() -> None:
    # Training data where spam comes from authors without history: a model that centred
    # the history would learn "first-time author" as spam; this one cannot.
    records = [CommentRecord(t) for t in SPAM] + [CommentRecord(t, approved_count=5) for t in HAM]
    trained = train(records, [1] * len(SPAM) + [0] * len(HAM), seed=0)
    text = "the best song of the year, no doubt"
    assert trained.score(CommentRecord(text)).probability == pytest.approx(
        trained.score(CommentRecord(text, approved_count=0)).probability
    )
    stats = trained.pipeline.named_steps["features"].transformer_list[-1][1]
    assert stats.means_[-2:] == [0.0, 0.0]


def test_groups_are_held_out_one_at_a_time() -> None:
    corpus = labelled_comments(240, seed=2)
    groups = [f"g{i % 4}" for i in range(len(corpus))]
    trained = train(corpus.records, corpus.labels, seed=0, groups=groups)
    assert trained.metadata["notes"]["folds"] == 4
    assert trained.metadata["notes"]["grouped_folds"] is True


def test_thresholds_can_be_chosen_on_some_records_only() -> None:
    corpus = labelled_comments(240, seed=2)
    flags = [i % 2 == 0 for i in range(len(corpus))]
    trained = train(corpus.records, corpus.labels, seed=0, threshold_on=flags)
    assert trained.metadata["metrics"]["cv_n"] == 120
    with pytest.raises(ValueError, match="threshold_on"):
        train(corpus.records, corpus.labels, seed=0, threshold_on=flags[:10])
