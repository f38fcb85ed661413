"""Classifier quality: metrics at a threshold, and thresholds chosen from scored data.

Pure functions of labels and probabilities, so that training (on out-of-fold scores),
the CLI and the benchmarks all measure the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

Values: TypeAlias = Sequence[float] | Sequence[int] | np.ndarray[Any, Any]
"""Labels or probabilities: a sequence or a one-dimensional array."""

__all__ = ["Metrics", "Thresholds", "Values", "choose_thresholds", "compute_metrics"]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Confusion counts and the usual rates for "spam" = probability >= threshold.

    A rate whose denominator is zero is 0.0 (no predicted spam: precision 0; no spam:
    recall 0; no ham: false-positive rate 0). ``roc_auc`` and ``pr_auc`` are ``None``
    when the labels hold one class only, since neither is defined then.
    """

    n: int
    spam: int
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    fpr: float
    roc_auc: float | None
    pr_auc: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """All fields, JSON-ready."""
        return asdict(self)

    def finite(self, prefix: str = "") -> dict[str, float]:
        """The defined numbers as floats, keys prefixed, e.g. for artifact metadata."""
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items() if v is not None}


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def compute_metrics(labels: Values, probabilities: Values, threshold: float = 0.5) -> Metrics:
    """Metrics of ``probabilities`` (of spam) against ``labels`` (1 spam, 0 ham) when
    everything at or above ``threshold`` is called spam. Raises ``ValueError`` on empty
    input or mismatched lengths."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"{y.shape} labels but {p.shape} probabilities")
    if y.size == 0:
        raise ValueError("no labels")
    pred = p >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    both = len(set(y.tolist())) == 2
    return Metrics(
        n=int(y.size),
        spam=tp + fn,
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        precision=precision,
        recall=recall,
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        accuracy=(tp + tn) / y.size,
        fpr=_ratio(fp, fp + tn),
        roc_auc=float(roc_auc_score(y, p)) if both else None,
        pr_auc=float(average_precision_score(y, p)) if both else None,
    )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds on the spam probability, ``hold <= spam <= discard``: below
    ``hold`` approve, from ``hold`` hold for a moderator, from ``spam`` mark as spam, from
    ``discard`` drop without review."""

    hold: float
    spam: float
    discard: float

    def to_dict(self) -> dict[str, float]:
        """``{"hold": ..., "spam": ..., "discard": ...}``."""
        return {"hold": self.hold, "spam": self.spam, "discard": self.discard}


def _above(scores: np.ndarray[Any, Any], share: float) -> float:
    """The smallest threshold that lets at most ``share`` of ``scores`` reach it (scores
    strictly above the returned value are at most that share, ties included)."""
    ordered = np.sort(scores)[::-1]
    allowed = math.floor(share * ordered.size + 1e-9)
    if allowed >= ordered.size:
        return 0.0
    # The next representable float above the (allowed+1)-th highest score: that score and
    # every one tied with it fall below the threshold.
    return float(np.nextafter(ordered[allowed], 1.0))


def choose_thresholds(
    labels: Values,
    probabilities: Values,
    *,
    max_fpr: float = 0.01,
    hold_recall: float = 0.98,
    discard_fpr: float = 0.001,
    floor: float = 0.5,
    hold_margin: float = 0.25,
    hold_floor: float = 0.2,
    groups: Sequence[str] | None = None,
    max_held: float | None = None,
) -> Thresholds:
    """Thresholds from scored training data (use out-of-fold scores, never the scores of
    the data a model was fitted on, which are overconfident).

    ``spam`` is the lowest threshold at which at most ``max_fpr`` of the ham scores reach
    it, but never below ``floor`` (a comment more likely ham than spam is not spam). With
    ``groups`` (the source of each score: a site, a data set), ``spam`` is also high
    enough that at most ``max_fpr`` of each source's ham reaches it, for every source
    with at least ``1 / max_fpr`` ham (fewer cannot measure that rate): false positives
    are felt per site, and a pooled rate can hide one site's much higher rate.
    ``discard`` likewise for ``discard_fpr``, never below ``spam``.

    ``hold`` opens the band of comments a moderator should look at. It is the lower of

    * the highest threshold that still holds or catches ``hold_recall`` of the spam, and
    * ``spam - hold_margin``,

    but never below ``hold_floor`` (nor above ``spam``). The recall rule alone collapses
    the band whenever the training spam is well separated (with much data nearly every
    spam scores above ``spam``, so that rule gives ``hold == spam`` and nothing would
    ever be held by score); the margin keeps a band of uncertain comments, those within
    ``hold_margin`` of being called spam, for a human, which is where a new site's unseen
    kinds of spam land. The floor stops a long tail of low-scoring spam from dragging the
    band down over ordinary ham. With ``max_held``, ``hold`` is then raised (never above
    ``spam``) until at most that share of the ham reaches it, pooled and, with
    ``groups``, in each source with at least ``1 / max_held`` ham: a moderator's queue
    should hold the uncertain comments, not a tenth of a site's ordinary ones. Raises
    ``ValueError`` unless both classes are present.
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("thresholds need scored spam and ham")
    ham, spam = p[y == 0], p[y == 1]
    spam_t = max(_above(ham, max_fpr), floor)
    if groups is not None:
        source = np.asarray(list(groups), dtype=object)
        if source.shape != y.shape:
            raise ValueError(f"{source.shape} groups but {y.shape} labels")
        for name in sorted(set(source.tolist())):
            own = p[(source == name) & (y == 0)]
            if own.size * max_fpr >= 1.0 - 1e-9:
                spam_t = max(spam_t, _above(own, max_fpr))
    spam_t = min(spam_t, 1.0)
    discard_t = min(max(_above(ham, discard_fpr), spam_t), 1.0)
    missed = float(np.sort(spam)[math.floor((1.0 - hold_recall) * spam.size + 1e-9)])
    hold_t = min(max(min(missed, spam_t - hold_margin), hold_floor), spam_t)
    if max_held is not None:
        hold_t = max(hold_t, _above(ham, max_held))
        if groups is not None:
            for name in sorted(set(source.tolist())):
                own = p[(source == name) & (y == 0)]
                if own.size * max_held >= 1.0 - 1e-9:
                    hold_t = max(hold_t, _above(own, max_held))
        hold_t = min(hold_t, spam_t)
    return Thresholds(hold=hold_t, spam=spam_t, discard=discard_t)
