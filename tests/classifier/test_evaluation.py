"""Metrics and thresholds against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from service.classifier.evaluation import choose_thresholds, compute_metrics


def test_metrics_on_a_hand_computed_example() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.7]
    m = compute_metrics(labels, scores, 0.5)
    # Predicted spam: 0.9, 0.8, 0.6, 0.7 -> tp 3, fp 1; missed 0.3 -> fn 1; tn 3.
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 1, 1, 3)
    assert m.precision == pytest.approx(0.75)
    assert m.recall == pytest.approx(0.75)
    assert m.f1 == pytest.approx(0.75)
    assert m.accuracy == pytest.approx(0.75)
    assert m.fpr == pytest.approx(0.25)
    # 16 spam/ham pairs; the spam scored 0.3 ranks below 0.6 and 0.4: 14/16 ordered.
    assert m.roc_auc == pytest.approx(14 / 16)
    # Average precision: recall steps at ranks 1, 2, 3 (0.7) and 6 (0.3 after 0.6, 0.4).
    assert m.pr_auc == pytest.approx((1 + 1 + 1 + 4 / 6) / 4)
    assert m.n == 8
    assert m.spam == 4


def test_single_class_has_no_auc_and_zero_rates() -> None:
    m = compute_metrics([0, 0], [0.1, 0.2], 0.5)
    assert m.roc_auc is None
    assert m.pr_auc is None
    assert m.precision == 0.0
    assert m.recall == 0.0
    assert m.fpr == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="labels"):
        compute_metrics([], [])
    with pytest.raises(ValueError, match="probabilities"):
        compute_metrics([1, 0], [0.5])


def test_thresholds_meet_their_targets() -> None:
    ham = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    spam = [0.5 + i / 200 for i in range(100)]  # 0.50 .. 0.995
    labels = [0] * 100 + [1] * 100
    t = choose_thresholds(labels, ham + spam, max_fpr=0.05, hold_recall=0.9, discard_fpr=0.0)
    assert sum(h >= t.spam for h in ham) <= 5
    assert sum(h >= t.spam for h in ham) == 5  # the lowest threshold that allows it
    assert sum(s >= t.hold for s in spam) >= 90
    assert all(h < t.discard for h in ham)
    assert t.hold <= t.spam <= t.discard


def test_hold_band_exists_when_spam_is_well_separated() -> None:
    # Every spam scores far above every ham: the recall rule alone would give hold == spam.
    labels = [0] * 1000 + [1] * 1000
    scores = [0.001] * 1000 + [0.999] * 1000
    t = choose_thresholds(labels, scores)
    assert t.spam == 0.5
    assert t.hold == pytest.approx(0.25)  # spam - hold_margin
    assert t.hold < t.spam


def test_hold_catches_the_recall_target_when_that_is_lower() -> None:
    labels = [0] * 100 + [1] * 100
    ham = [0.01] * 100
    spam = [0.22] * 5 + [0.9] * 95  # 98% recall needs hold <= 0.22
    t = choose_thresholds(labels, ham + spam)
    assert t.hold == pytest.approx(0.22)
    assert sum(s >= t.hold for s in spam) >= 98


def test_hold_never_drops_below_its_floor() -> None:
    labels = [0] * 100 + [1] * 100
    ham = [0.01] * 100
    spam = [0.02] * 10 + [0.9] * 90  # 98% recall would need hold <= 0.02
    t = choose_thresholds(labels, ham + spam)
    assert t.hold == pytest.approx(0.2)
    t = choose_thresholds(labels, ham + spam, hold_floor=0.1, hold_margin=0.3)
    assert t.hold == pytest.approx(0.1)
    assert t.hold <= t.spam <= t.discard


def test_spam_threshold_meets_the_target_on_each_source() -> None:
    # Pooled, 1% of 400 ham may reach the threshold; source "b" alone has all four high
    # ham, a 4% rate there. Per source, the threshold rises above them.
    ham_a = [0.01] * 200
    ham_b = [0.01] * 196 + [0.7, 0.72, 0.74, 0.76]
    spam = [0.95] * 100
    labels = [0] * 400 + [1] * 100
    scores = ham_a + ham_b + spam
    groups = ["a"] * 200 + ["b"] * 200 + ["a"] * 50 + ["b"] * 50
    pooled = choose_thresholds(labels, scores)
    assert sum(h >= pooled.spam for h in ham_b) == 4
    per_source = choose_thresholds(labels, scores, groups=groups)
    assert sum(h >= per_source.spam for h in ham_b) <= 2
    assert per_source.spam > pooled.spam
    assert per_source.hold <= per_source.spam <= per_source.discard


def test_a_source_too_small_to_measure_is_ignored() -> None:
    labels = [0] * 200 + [0] * 10 + [1] * 50
    scores = [0.01] * 200 + [0.9] * 10 + [0.95] * 50
    groups = ["big"] * 200 + ["tiny"] * 10 + ["big"] * 50
    t = choose_thresholds(labels, scores, max_fpr=0.05, groups=groups)
    assert t.spam == choose_thresholds(labels, scores, max_fpr=0.05).spam


def test_hold_is_raised_until_each_source_holds_at_most_max_held_of_its_ham() -> None:
    rng = np.random.default_rng(3)
    # Source "b"'s ham scores high: the plain hold rule would hold a fifth of it.
    ham_a = rng.uniform(0.0, 0.2, 500)
    ham_b = np.concatenate([rng.uniform(0.0, 0.2, 400), rng.uniform(0.3, 0.45, 100)])
    spam = rng.uniform(0.6, 1.0, 300)
    labels = [0] * 1000 + [1] * 300
    scores = np.concatenate([ham_a, ham_b, spam])
    groups = ["a"] * 500 + ["b"] * 500 + ["a"] * 300
    plain = choose_thresholds(labels, scores, groups=groups)
    capped = choose_thresholds(labels, scores, groups=groups, max_held=0.05)
    assert np.mean(ham_b >= plain.hold) > 0.05
    assert np.mean(ham_b >= capped.hold) <= 0.05
    assert np.mean(np.concatenate([ham_a, ham_b]) >= capped.hold) <= 0.05
    assert capped.hold <= capped.spam
    assert capped.spam == plain.spam
