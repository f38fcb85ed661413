"""Evaluation reports: the numbers and plots an operator reads before promoting a classifier.

:func:`report_data` computes every number of a report (metrics at the spam threshold, the
hold-band counts, precision-recall and ROC curves, score histograms, calibration) as one
JSON-ready dict, without drawing: the API can serve it as it is, and a registry can store
it. :func:`render_report` draws that dict with matplotlib into a directory
(``index.html``, ``report.json`` and one PNG per plot); :func:`write_report` is the two in
one; :func:`render_html` and :func:`render_plot` draw the page or one plot in memory, for
an endpoint. Because the plots are drawn from the dict alone, a stored report can be redrawn
later without the scores.

Several classifiers scored on the same labelled data (a candidate and the active version
on one held-out split) are reported side by side: the first series is the one the report
is about, the ``compare`` series share its curve and calibration axes and its tables.

Drawing uses :class:`matplotlib.figure.Figure` and the Agg canvas directly, never
``pyplot``: no global figure registry or backend switch, so reports may be drawn from
threads of a web process. matplotlib is imported only when drawing. The same input gives
the same bytes: no dates, no software version in the PNGs, curves and histograms are
computed deterministically.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from service.classifier.evaluation import Thresholds, Values, compute_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FORMAT",
    "ReportFiles",
    "Scored",
    "render_html",
    "render_plot",
    "render_report",
    "report_data",
    "write_report",
]

FORMAT: Final = "commentguard.report/1"
"""The ``format`` of :func:`report_data`'s dict; a renderer refuses any other."""

HISTOGRAM_BINS: Final = 50
CALIBRATION_BINS: Final = 10
MAX_CURVE_POINTS: Final = 200
"""Curves keep at most this many points (plus the ends): enough to draw them faithfully,
few enough to store and serve (a curve of 100,000 scores has up to 100,000 points)."""

BANDS: Final = ("approved", "held", "spam", "discard")
CLASSES: Final = ("ham", "spam")
PLOTS: Final = ("precision_recall", "roc", "histogram", "confusion", "calibration")
_DPI: Final = 100
_COLOURS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
_HAM_COLOUR: Final = "#1f77b4"
_SPAM_COLOUR: Final = "#d62728"
_THRESHOLD_STYLE: Final = {
    "hold": ("#ff7f0e", "--"),
    "spam": ("#d62728", "-"),
    "discard": ("#7f0000", ":"),
}


@dataclass(frozen=True, slots=True)
class Scored:
    """One classifier's spam probabilities for labelled comments (1 spam, 0 ham), and the
    thresholds it applies; ``None`` means those of the report's main series."""

    labels: Values
    scores: Values
    thresholds: Thresholds | None = None


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """What :func:`render_report` wrote. ``plots`` maps a plot name (of :data:`PLOTS`) to
    its PNG; a curve that is not defined (labels of one class only) has no file."""

    directory: Path
    html: Path
    json: Path
    plots: Mapping[str, Path]


# --- numbers --------------------------------------------------------------------------


def _arrays(name: str, labels: Values, scores: Values) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    p = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"{name}: {y.shape} labels but {p.shape} scores")
    if y.size == 0:
        raise ValueError(f"{name}: no labels, nothing to report")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{name}: labels must be 0 (ham) or 1 (spam)")
    if not np.all(np.isfinite(p)) or np.any(p < 0.0) or np.any(p > 1.0):
        raise ValueError(f"{name}: scores must be probabilities within [0, 1]")
    return y.astype(np.int64), p


def _check_thresholds(name: str, t: Thresholds) -> None:
    values = (t.hold, t.spam, t.discard)
    if not all(math.isfinite(v) for v in values) or not 0.0 <= t.hold <= t.spam <= t.discard <= 1:
        raise ValueError(f"{name}: thresholds must satisfy 0 <= hold <= spam <= discard <= 1")


def _thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` + 1 points of the curve (x, y), evenly spaced along its
    length, the first and last included: a drawing of them is faithful where the curve
    bends, unlike every n-th point, which crowds its flat stretches."""
    if x.size <= limit + 1:
        return np.arange(x.size)
    steps = np.hypot(np.diff(x), np.diff(y))
    along = np.concatenate(([0.0], np.cumsum(steps)))
    if along[-1] == 0.0:
        return np.array([0, x.size - 1])
    targets = np.linspace(0.0, along[-1], limit)
    picked = np.searchsorted(along, targets, side="left")
    return np.unique(np.concatenate((picked, [0, x.size - 1])))


def _column(values: np.ndarray, digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


def _threshold_column(values: np.ndarray) -> list[float | None]:
    # scikit-learn opens ROC curves with a threshold above every score (inf, or max + 1
    # in older versions): "nothing is spam", which is no probability, hence null.
    return [round(float(v), 6) if math.isfinite(v) and v <= 1.0 else None for v in values]


def _curves(
    y: np.ndarray, p: np.ndarray, t: Thresholds, roc_auc: float | None, pr_auc: float | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if roc_auc is None or pr_auc is None:
        return None, None
    hold, spam = compute_metrics(y, p, t.hold), compute_metrics(y, p, t.spam)
    fpr, tpr, roc_t = roc_curve(y, p, drop_intermediate=True)
    keep = _thin(fpr, tpr)
    roc = {
        "auc": roc_auc,
        "fpr": _column(fpr[keep]),
        "tpr": _column(tpr[keep]),
        "threshold": _threshold_column(roc_t[keep]),
        "at_hold": {"fpr": hold.fpr, "tpr": hold.recall},
        "at_spam": {"fpr": spam.fpr, "tpr": spam.recall},
    }
    precision, recall, pr_t = precision_recall_curve(y, p)
    keep = _thin(recall, precision)
    # The last point (recall 0, precision 1) has no threshold of its own.
    pr_t = np.append(pr_t, np.inf)
    pr = {
        "average_precision": pr_auc,
        "precision": _column(precision[keep]),
        "recall": _column(recall[keep]),
        "threshold": _threshold_column(pr_t[keep]),
        "at_hold": {"precision": hold.precision, "recall": hold.recall},
        "at_spam": {"precision": spam.precision, "recall": spam.recall},
    }
    return roc, pr


def _bands(y: np.ndarray, p: np.ndarray, t: Thresholds) -> dict[str, dict[str, int]]:
    # The same bands as service.moderation.policy.decide: each threshold opens its band.
    band = np.searchsorted(np.array([t.hold, t.spam, t.discard]), p, side="right")
    return {
        cls: {name: int(np.sum((band == i) & (y == k))) for i, name in enumerate(BANDS)}
        for k, cls in enumerate(CLASSES)
    }


def _histogram(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    return {
        "edges": _column(edges),
        "ham": [int(c) for c in np.histogram(p[y == 0], bins=edges)[0]],
        "spam": [int(c) for c in np.histogram(p[y == 1], bins=edges)[0]],
    }


def _calibration(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    # Binned as scikit-learn's calibration_curve(strategy="uniform") bins, so that the two
    # agree: a score on an inner edge belongs to the bin below it.
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    ids = np.searchsorted(edges[1:-1], p)
    counts: list[int] = []
    mean_scores: list[float | None] = []
    spam_rates: list[float | None] = []
    ece = 0.0
    for i in range(CALIBRATION_BINS):
        inside = ids == i
        count = int(np.sum(inside))
        counts.append(count)
        if count:
            mean = float(np.mean(p[inside]))
            rate = float(np.mean(y[inside]))
            ece += count / y.size * abs(rate - mean)
            mean_scores.append(mean)
            spam_rates.append(rate)
        else:
            mean_scores.append(None)
            spam_rates.append(None)
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "ece": ece,
        "edges": _column(edges),
        "count": counts,
        "mean_score": mean_scores,
        "spam_rate": spam_rates,
    }


def _series(name: str, labels: Values, scores: Values, t: Thresholds) -> dict[str, Any]:
    y, p = _arrays(name, labels, scores)
    _check_thresholds(name, t)
    metrics = compute_metrics(y, p, t.spam)
    roc, pr = _curves(y, p, t, metrics.roc_auc, metrics.pr_auc)
    note = None
    if roc is None:
        only = "spam" if metrics.spam else "ham"
        note = (
            f"The labels hold {only} only: ROC and precision-recall curves, ROC AUC and "
            "average precision need both spam and ham, so there are none."
        )
    return {
        "name": name,
        "n": metrics.n,
        "spam": metrics.spam,
        "ham": metrics.n - metrics.spam,
        "thresholds": t.to_dict(),
        "metrics": metrics.to_dict(),
        "confusion": {
            "labels": list(CLASSES),
            "matrix": [[metrics.tn, metrics.fp], [metrics.fn, metrics.tp]],
        },
        "bands": _bands(y, p, t),
        "roc": roc,
        "precision_recall": pr,
        "histogram": _histogram(y, p),
        "calibration": _calibration(y, p),
        "note": note,
    }


def _jsonable(value: object) -> Any:
    """``value`` as plain JSON data: mappings (keys as strings, order kept), lists, and
    scalars; dates in ISO 8601, non-finite floats as null, anything else as its str."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset | np.ndarray):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    return str(value)


def report_data(
    *,
    title: str,
    labels: Values,
    scores: Values,
    thresholds: Thresholds,
    name: str = "classifier",
    compare: Mapping[str, Scored] | None = None,
    extra_metrics: Mapping[str, object] | None = None,
    meta: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Every number of the report on ``scores`` (spam probabilities) against ``labels``
    (1 spam, 0 ham) at ``thresholds``, as a JSON-ready dict (``json.dumps`` it with
    ``allow_nan=False``); nothing is drawn.

    ``name`` labels this series in tables and legends; ``compare`` adds other series by
    name (e.g. the active version scored on the same held-out split), each at its own
    thresholds or, without them, at ``thresholds``. ``meta`` (version id, creation time,
    training summary, ...) and ``extra_metrics`` (e.g. cross-validated figures from
    training) are shown as given; dates become ISO 8601 strings.

    The dict: ``format`` (:data:`FORMAT`), ``title``, ``meta``, ``extra_metrics``,
    ``notes`` (what the report could not show, and why) and ``series``, the main one
    first. Each series has ``name``, ``n``, ``spam``, ``ham``, ``thresholds``,
    ``metrics`` (:class:`~service.classifier.evaluation.Metrics` at the spam threshold),
    ``confusion`` (``matrix`` rows true ham/spam, columns predicted ham/spam, as
    ``sklearn.metrics.confusion_matrix``), ``bands`` (per true class, how many comments
    the thresholds approve, hold, mark spam and discard), ``roc`` (``fpr``, ``tpr``,
    ``threshold`` columns, ``auc``, the points at the hold and spam thresholds),
    ``precision_recall`` (likewise, with ``average_precision``), ``histogram`` (``edges``
    and per-class counts of 50 equal bins), ``calibration`` (10 equal bins as
    ``sklearn.calibration.calibration_curve`` makes them: ``count``, ``mean_score``,
    ``spam_rate``, null for an empty bin; ``brier`` score and expected calibration error
    ``ece``) and ``note``. Curves keep at most about :data:`MAX_CURVE_POINTS` points.
    ``roc`` and ``precision_recall`` are null when the labels hold one class only.

    Raises ``ValueError`` on empty input, lengths that differ, labels other than 0 and 1,
    scores outside [0, 1] or not finite, thresholds out of order, or a ``compare`` name
    equal to ``name``.
    """
    series = [_series(name, labels, scores, thresholds)]
    for other, scored in (compare or {}).items():
        if other == name or other in {s["name"] for s in series}:
            raise ValueError(f"two series named {other!r}")
        own = scored.thresholds if scored.thresholds is not None else thresholds
        series.append(_series(other, scored.labels, scored.scores, own))
    notes = [f"{s['name']}: {s['note']}" for s in series if s["note"]]
    return {
        "format": FORMAT,
        "title": title,
        "meta": _jsonable(meta or {}),
        "extra_metrics": _jsonable(extra_metrics or {}),
        "notes": notes,
        "series": series,
    }


# --- drawing ----------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No "Software" text chunk (it names the matplotlib version) and no date: same input,
    # same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


def _operating_points(
    ax: Axes, series: Sequence[Mapping[str, Any]], curve: str, x: str, y: str
) -> None:
    """Mark where each series' hold (square) and spam (disc) thresholds sit on the curve;
    one legend entry per marker shape, whatever the number of series."""
    for i, s in enumerate(series):
        if s[curve] is None:
            continue
        for key, marker in (("hold", "s"), ("spam", "o")):
            point = s[curve][f"at_{key}"]
            ax.plot(
                [point[x]],
                [point[y]],
                marker=marker,
                linestyle="none",
                markersize=7,
                markerfacecolor="white" if key == "hold" else _colour(i),
                markeredgecolor=_colour(i),
            )
    one = len(series) == 1
    for key, marker in (("hold", "s"), ("spam", "o")):
        ax.plot(
            [],
            [],
            marker=marker,
            linestyle="none",
            markersize=7,
            markerfacecolor="white" if key == "hold" else "black",
            markeredgecolor="black",
            label=f"{key} threshold" + (f" {series[0]['thresholds'][key]:.3g}" if one else ""),
        )


def _draw_precision_recall(data: Mapping[str, Any]) -> bytes | None:
    series = data["series"]
    if series[0]["precision_recall"] is None:
        return None
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    for i, s in enumerate(series):
        pr = s["precision_recall"]
        if pr is not None:
            ax.plot(
                pr["recall"],
                pr["precision"],
                drawstyle="steps-post",
                color=_colour(i),
                label=f"{s['name']} (average precision {pr['average_precision']:.4f})",
            )
    _operating_points(ax, series, "precision_recall", "recall", "precision")
    spam_share = series[0]["spam"] / series[0]["n"]
    ax.axhline(spam_share, color="grey", linestyle=":", label=f"chance ({spam_share:.2f})")
    ax.set(
        xlim=(0.0, 1.01),
        ylim=(0.0, 1.02),
        xlabel="recall (share of spam caught)",
        ylabel="precision (share of flagged that is spam)",
        title="Precision-recall curve",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return _png(fig)


def _draw_roc(data: Mapping[str, Any]) -> bytes | None:
    series = data["series"]
    if series[0]["roc"] is None:
        return None
    fig = _figure(11.0, 4.8)
    full, zoom = fig.subplots(1, 2)
    for ax, limit in ((full, 1.0), (zoom, 0.05)):
        for i, s in enumerate(series):
            roc = s["roc"]
            if roc is not None:
                ax.plot(
                    roc["fpr"],
                    roc["tpr"],
                    color=_colour(i),
                    label=f"{s['name']} (AUC {roc['auc']:.4f})",
                )
        _operating_points(ax, series, "roc", "fpr", "tpr")
        ax.plot([0.0, 1.0], [0.0, 1.0], color="grey", linestyle=":", label="chance")
        # A little room left of 0, where the best operating points sit.
        ax.set(xlim=(-0.01 * limit, limit), xlabel="false-positive rate (share of ham flagged)")
        ax.grid(alpha=0.3)
    full.set(ylim=(0.0, 1.02), ylabel="true-positive rate (recall)", title="ROC curve")
    # The zoom shows what operators set thresholds by: false-positive rates of a few %.
    # The zoom's floor: the recall each curve reaches before its first false positive.
    firsts = [
        max(tpr for fpr, tpr in zip(s["roc"]["fpr"], s["roc"]["tpr"], strict=True) if fpr == 0)
        for s in series
        if s["roc"] is not None
    ]
    floor = max(0.0, math.floor((min(firsts) - 0.02) * 50) / 50)
    zoom.set(ylim=(floor, 1.005), title="ROC, false-positive rates up to 5 %")
    full.legend(loc="lower right", fontsize="small")
    return _png(fig)


def _log_counts(ax: Axes) -> None:
    """A log scale for counts, labelled 1, 10, 100 rather than 10^0 or 9x10^-1."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _threshold_lines(ax: Axes, thresholds: Mapping[str, float], label: bool) -> None:
    for key, (colour, style) in _THRESHOLD_STYLE.items():
        ax.axvline(
            thresholds[key],
            color=colour,
            linestyle=style,
            linewidth=1.5,
            label=f"{key} threshold {thresholds[key]:.3g}" if label else None,
        )


def _draw_histogram(data: Mapping[str, Any]) -> bytes:
    s = data["series"][0]
    edges = np.asarray(s["histogram"]["edges"])
    fig = _figure(6.4, 5.6)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, cls, colour in zip(axes, CLASSES, (_HAM_COLOUR, _SPAM_COLOUR), strict=True):
        counts = s["histogram"][cls]
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colour, alpha=0.8)
        _threshold_lines(ax, s["thresholds"], label=cls == "ham")
        # Limits before the log scale: a class with no comments has no positive count to
        # autoscale a log axis from.
        ax.set_ylim(bottom=0.8, top=max([*counts, 5]) * 2.0)
        _log_counts(ax)
        if not s[cls]:
            ax.text(0.5, 0.5, f"no {cls}", transform=ax.transAxes, ha="center", va="center")
        ax.set_ylabel("comments (log scale)")
        ax.set_title(f"{cls}: {s[cls]} comments", fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(loc="upper center", fontsize="small")
    axes[1].set(xlim=(0.0, 1.0), xlabel="spam probability")
    fig.suptitle(f"Scores of {s['name']} by true class")
    return _png(fig)


def _matrix(ax: Axes, counts: np.ndarray, columns: Sequence[str], title: str) -> None:
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), count in np.ndenumerate(counts):
        ax.text(
            col,
            row,
            f"{count}\n{shares[row, col]:.1%}",
            ha="center",
            va="center",
            color="white" if shares[row, col] > 0.6 else "black",
        )
    ax.set_xticks(range(len(columns)), labels=list(columns))
    ax.set_yticks(range(len(CLASSES)), labels=[f"true {c}" for c in CLASSES])
    ax.set_title(title, fontsize="medium")


def _draw_confusion(data: Mapping[str, Any]) -> bytes:
    s = data["series"][0]
    t = s["thresholds"]
    fig = _figure(11.0, 3.8)
    left, right = fig.subplots(1, 2, width_ratios=[2, 4])
    _matrix(
        left,
        np.asarray(s["confusion"]["matrix"]),
        ("ham", "spam"),
        f"Predicted at spam threshold {t['spam']:.3g}",
    )
    left.set_xlabel("predicted")
    bands = np.asarray([[s["bands"][cls][b] for b in BANDS] for cls in CLASSES])
    _matrix(
        right,
        bands,
        (
            f"approved\n< {t['hold']:.3g}",
            f"held\n{t['hold']:.3g}–{t['spam']:.3g}",
            f"spam\n{t['spam']:.3g}–{t['discard']:.3g}",
            f"discard\n≥ {t['discard']:.3g}",
        ),
        "Where the thresholds send each comment",
    )
    right.set_xlabel("decision by score (share of the true class)")
    fig.suptitle(f"Confusion matrix of {s['name']}")
    return _png(fig)


def _draw_calibration(data: Mapping[str, Any]) -> bytes:
    series = data["series"]
    fig = _figure(6.4, 6.0)
    curve, counts = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    curve.plot([0.0, 1.0], [0.0, 1.0], color="grey", linestyle=":", label="perfectly calibrated")
    for i, s in enumerate(series):
        cal = s["calibration"]
        points = [
            (m, r)
            for m, r in zip(cal["mean_score"], cal["spam_rate"], strict=True)
            if m is not None
        ]
        curve.plot(
            [mean for mean, _ in points],
            [rate for _, rate in points],
            marker="o",
            color=_colour(i),
            label=f"{s['name']} (Brier {cal['brier']:.4f}, ECE {cal['ece']:.4f})",
        )
        edges = np.asarray(cal["edges"])
        width = np.diff(edges) / len(series)
        counts.bar(
            edges[:-1] + i * width,
            cal["count"],
            width=width,
            align="edge",
            color=_colour(i),
            alpha=0.8,
        )
    curve.set(
        xlim=(0.0, 1.0),
        ylim=(-0.02, 1.02),
        ylabel="observed share of spam",
        title="Calibration (reliability) curve",
    )
    curve.grid(alpha=0.3)
    curve.legend(loc="upper left", fontsize="small")
    most = max(max(s["calibration"]["count"]) for s in series)
    counts.set_ylim(bottom=0.8, top=max(most, 5) * 2.0)
    _log_counts(counts)
    counts.set(xlabel="predicted spam probability (10 bins)", ylabel="comments per bin")
    counts.grid(alpha=0.3, axis="y")
    return _png(fig)


_DRAW: Final = {
    "precision_recall": _draw_precision_recall,
    "roc": _draw_roc,
    "histogram": _draw_histogram,
    "confusion": _draw_confusion,
    "calibration": _draw_calibration,
}

_TITLES: Final = {
    "precision_recall": "Precision-recall curve",
    "roc": "ROC curve",
    "histogram": "Score histograms of spam and ham",
    "confusion": "Confusion matrix and decisions by true class",
    "calibration": "Calibration curve",
}

_CAPTIONS: Final = {
    "precision_recall": "Precision-recall curve. Markers: the hold (square) and spam (disc) "
    "thresholds.",
    "roc": "ROC curve, in full and for false-positive rates up to 5 %. Markers: the hold "
    "(square) and spam (disc) thresholds.",
    "histogram": "Spam probabilities of ham and of spam comments, with the thresholds.",
    "confusion": "At the spam threshold, and the four decisions the thresholds make, per "
    "true class.",
    "calibration": "Observed share of spam against the mean predicted probability, per bin "
    "(below: comments per bin).",
}


# --- the page ---------------------------------------------------------------------------

_STYLE: Final = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
  padding: 0 1rem; color: #1a1a1a; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left;
  vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
pre { margin: 0; white-space: pre-wrap; font-size: .85rem; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9rem; }
.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: .5rem .8rem; }
"""

_METRIC_ROWS: Final = (
    ("n", "comments"),
    ("spam", "of which spam"),
    ("threshold", "spam threshold"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("accuracy", "accuracy"),
    ("fpr", "false-positive rate"),
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "average precision (PR AUC)"),
    ("tp", "true positives"),
    ("fp", "false positives"),
    ("tn", "true negatives"),
    ("fn", "false negatives"),
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: object) -> str:
    if value is None:
        return "<td>n/a</td>"
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, Mapping | list):
            shown = json.dumps(value, indent=1, ensure_ascii=False)
            return f"<td><pre>{_e(shown)}</pre></td>"
        return f"<td>{_e(value)}</td>"
    shown = str(value) if isinstance(value, int) else f"{value:.4f}"
    return f'<td class="num">{_e(shown)}</td>'


def _key_values(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th>{_cell(v)}</tr>" for k, v in items.items())
    return f"<table>{rows}</table>"


def _series_table(series: Sequence[Mapping[str, Any]], rows: Sequence[tuple[str, str]]) -> str:
    head = "".join(f"<th>{_e(s['name'])}</th>" for s in series)
    body = "".join(
        f"<tr><th>{_e(label)}</th>{''.join(_cell(get(s)) for s in series)}</tr>"
        for label, get in ((label, _getter(path)) for path, label in rows)
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _getter(path: str) -> Any:
    def get(s: Mapping[str, Any]) -> object:
        value: Any = s
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    return get


def _band_table(s: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{_e(b)}</th>" for b in BANDS)
    rows = []
    for cls in CLASSES:
        counts = s["bands"][cls]
        total = sum(counts.values())
        cells = "".join(
            f'<td class="num">{counts[b]} ({counts[b] / total:.1%})</td>'
            if total
            else '<td class="num">0</td>'
            for b in BANDS
        )
        rows.append(f"<tr><th>true {_e(cls)}</th>{cells}</tr>")
    held = sum(s["bands"][cls]["held"] for cls in CLASSES)
    # What the thresholds cost the moderators: the share of all comments they must read.
    rows.append(
        f'<tr><th>held for moderators</th><td class="num" colspan="{len(BANDS)}">'
        f"{held} of {s['n']} comments ({held / s['n']:.2%})</td></tr>"
    )
    return f"<table><tr><th>{_e(s['name'])}</th>{head}</tr>{''.join(rows)}</table>"


def _page(data: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    series = data["series"]
    title = _e(data["title"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Everything is inline: the page opens from a file, an archive or an API response
        # alike, and may load nothing from anywhere.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
    ]
    parts += [f'<p class="note">{_e(note)}</p>' for note in data["notes"]]
    if data["meta"]:
        parts += ["<h2>About</h2>", _key_values(data["meta"])]
    parts += [
        "<h2>Metrics at the spam threshold</h2>",
        _series_table(series, [(f"metrics.{key}", label) for key, label in _METRIC_ROWS]),
        "<h2>Calibration</h2>",
        _series_table(
            series,
            [("calibration.brier", "Brier score"), ("calibration.ece", "expected calib. error")],
        ),
        "<h2>Thresholds</h2>",
        _series_table(series, [(f"thresholds.{k}", k) for k in ("hold", "spam", "discard")]),
        "<h2>Decisions by true class</h2>",
        "<p>approved: below hold; held for a moderator: from hold; spam: from spam; "
        "discarded without review: from discard.</p>",
        *(_band_table(s) for s in series),
    ]
    if data["extra_metrics"]:
        parts += ["<h2>Reported with the classifier</h2>", _key_values(data["extra_metrics"])]
    parts.append("<h2>Plots</h2>")
    for name in PLOTS:
        if name in images:
            encoded = base64.b64encode(images[name]).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(_TITLES[name])}">'
                f"<figcaption>{_e(_CAPTIONS[name])}</figcaption></figure>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _check_format(data: Mapping[str, Any]) -> None:
    if data.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} report: format {data.get('format')!r}")


def render_plot(data: Mapping[str, Any], name: str) -> bytes | None:
    """One plot of ``data`` (a dict from :func:`report_data`) as PNG bytes, or ``None``
    when that plot is not defined for it (a curve of labels of one class). Draws only that
    plot: what an endpoint serving one image needs. Raises ``ValueError`` for a plot name
    not in :data:`PLOTS` or a dict of another format."""
    _check_format(data)
    if name not in _DRAW:
        raise ValueError(f"no plot {name!r}; the plots are {', '.join(PLOTS)}")
    return _DRAW[name](data)


def render_html(data: Mapping[str, Any]) -> str:
    """The report page of ``data`` (a dict from :func:`report_data`): one HTML document
    with every defined plot embedded, loading nothing from elsewhere (its own
    Content-Security-Policy says so) and escaping every string it shows. Raises
    ``ValueError`` for a dict of another format."""
    _check_format(data)
    images = {name: png for name in PLOTS if (png := _DRAW[name](data)) is not None}
    return _page(data, images)


def render_report(out_dir: Path, data: Mapping[str, Any]) -> ReportFiles:
    """Draw ``data`` (a dict from :func:`report_data`, possibly stored and read back) into
    ``out_dir`` (created if missing; files of the same names are replaced):
    ``report.json`` (``data`` itself), ``<plot>.png`` for each plot of :data:`PLOTS` that is
    defined, and ``index.html``, the page of :func:`render_html` (the same plots,
    embedded). Raises ``ValueError`` for a dict of another format."""
    _check_format(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    plots: dict[str, Path] = {}
    for name in PLOTS:
        png = _DRAW[name](data)
        if png is None:
            continue
        images[name] = png
        plots[name] = out_dir / f"{name}.png"
        plots[name].write_bytes(png)
    json_path = out_dir / "report.json"
    json_path.write_text(
        json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    html_path = out_dir / "index.html"
    html_path.write_text(_page(data, images), encoding="utf-8")
    return ReportFiles(directory=out_dir, html=html_path, json=json_path, plots=plots)


def write_report(
    out_dir: Path,
    *,
    title: str,
    labels: Values,
    scores: Values,
    thresholds: Thresholds,
    name: str = "classifier",
    compare: Mapping[str, Scored] | None = None,
    extra_metrics: Mapping[str, object] | None = None,
    meta: Mapping[str, object] | None = None,
) -> ReportFiles:
    """:func:`report_data` drawn by :func:`render_report` into ``out_dir``; the arguments
    and errors are theirs. Validation runs before anything is written."""
    data = report_data(
        title=title,
        labels=labels,
        scores=scores,
        thresholds=thresholds,
        name=name,
        compare=compare,
        extra_metrics=extra_metrics,
        meta=meta,
    )
    return render_report(out_dir, data)
