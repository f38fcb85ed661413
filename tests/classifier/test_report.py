"""Evaluation reports: the numbers against scikit-learn's, the files, the page, determinism.

The scores are real: the bundled classifier scores the hand-written test comments
(tests/support/labelled.py, which it was not trained on), and, as the series to compare
with, the same comments cut to their first 40 characters without any author signal (a
weaker classifier input, so that its curves and errors are far from perfect).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    roc_auc_score,
)

from service.classifier.evaluation import Thresholds
from service.classifier.model import BUNDLED_PATH, load_classifier
from service.classifier.report import (
    FORMAT,
    MAX_CURVE_POINTS,
    PLOTS,
    Scored,
    render_html,
    render_plot,
    render_report,
    report_data,
    write_report,
)
from service.classifier.types import CommentRecord
from tests.support.labelled import labelled_comments

THRESHOLDS = Thresholds(hold=0.25, spam=0.5, discard=0.9)


class HeldOut:
    def __init__(self) -> None:
        classifier = load_classifier(BUNDLED_PATH)
        data = labelled_comments(1500, seed=99)
        self.labels = data.labels
        self.scores = classifier.probabilities(data.records)
        self.weak = classifier.probabilities(
            [CommentRecord(content=r.content[:40]) for r in data.records]
        )
        self.thresholds = classifier.thresholds
        self.version = str(classifier.metadata["version"])


@pytest.fixture(scope="module")
def held_out() -> HeldOut:
    return HeldOut()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _series(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["series"] if s["name"] == name)


def test_numbers_match_scikit_learn(held_out: HeldOut) -> None:
    data = report_data(
        title="held out",
        labels=held_out.labels,
        scores=held_out.weak,
        thresholds=THRESHOLDS,
        name="weak",
    )
    assert data["format"] == FORMAT
    s = _series(data, "weak")
    y, p = np.asarray(held_out.labels), np.asarray(held_out.weak)
    assert s["n"] == 1500
    assert s["spam"] == 600
    assert s["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert s["roc"]["auc"] == s["metrics"]["roc_auc"]
    assert s["metrics"]["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert s["precision_recall"]["average_precision"] == s["metrics"]["pr_auc"]
    assert s["confusion"]["matrix"] == confusion_matrix(y, p >= THRESHOLDS.spam).tolist()
    assert s["calibration"]["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    rate, mean = calibration_curve(y, p, n_bins=10, strategy="uniform")
    assert [r for r in s["calibration"]["spam_rate"] if r is not None] == pytest.approx(rate)
    assert [m for m in s["calibration"]["mean_score"] if m is not None] == pytest.approx(mean)
    assert sum(s["calibration"]["count"]) == 1500
    # The weak series is far from perfect: the comparison above is not trivially 1.0.
    assert 0.9 < s["metrics"]["roc_auc"] < 0.995


def test_bands_histogram_and_operating_points(held_out: HeldOut) -> None:
    t = held_out.thresholds
    data = report_data(title="t", labels=held_out.labels, scores=held_out.weak, thresholds=t)
    s = data["series"][0]
    y, p = np.asarray(held_out.labels), np.asarray(held_out.weak)
    for k, cls in enumerate(("ham", "spam")):
        own = p[y == k]
        assert s["bands"][cls] == {
            "approved": int(np.sum(own < t.hold)),
            "held": int(np.sum((own >= t.hold) & (own < t.spam))),
            "spam": int(np.sum((own >= t.spam) & (own < t.discard))),
            "discard": int(np.sum(own >= t.discard)),
        }
        assert s["histogram"][cls] == np.histogram(own, bins=50, range=(0.0, 1.0))[0].tolist()
    # Predicted spam in the confusion matrix = the spam and discard bands.
    tn, fp = s["confusion"]["matrix"][0]
    assert fp == s["bands"]["ham"]["spam"] + s["bands"]["ham"]["discard"]
    assert tn == s["bands"]["ham"]["approved"] + s["bands"]["ham"]["held"]
    assert s["roc"]["at_spam"] == {"fpr": s["metrics"]["fpr"], "tpr": s["metrics"]["recall"]}
    assert s["precision_recall"]["at_spam"]["precision"] == s["metrics"]["precision"]


def test_curves_are_thinned_but_keep_their_ends() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20_000)
    scores = np.clip(labels * 0.3 + rng.random(20_000) * 0.7, 0.0, 1.0)
    s = report_data(title="t", labels=labels, scores=scores, thresholds=THRESHOLDS)["series"][0]
    for curve, x, y in (("roc", "fpr", "tpr"), ("precision_recall", "recall", "precision")):
        points = s[curve]
        assert 10 < len(points[x]) <= MAX_CURVE_POINTS + 2
        assert len(points[x]) == len(points[y]) == len(points["threshold"])
    assert (s["roc"]["fpr"][0], s["roc"]["tpr"][0]) == (0.0, 0.0)
    assert (s["roc"]["fpr"][-1], s["roc"]["tpr"][-1]) == (1.0, 1.0)
    assert s["roc"]["threshold"][0] is None
    assert s["precision_recall"]["recall"][0] == 1.0
    assert (s["precision_recall"]["recall"][-1], s["precision_recall"]["precision"][-1]) == (
        0.0,
        1.0,
    )


def test_write_report_files(held_out: HeldOut, tmp_path: Path) -> None:
    files = write_report(
        tmp_path / "report",
        title="Candidate vs active",
        labels=held_out.labels,
        scores=held_out.scores,
        thresholds=held_out.thresholds,
        name=held_out.version,
        compare={"content only": Scored(held_out.labels, held_out.weak, THRESHOLDS)},
        extra_metrics={"cv_f1": 0.99},
        meta={
            "version": held_out.version,
            "created": dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC),
            "training": {"moderator": 10, "import": 5},
        },
    )
    assert files.html == tmp_path / "report" / "index.html"
    assert set(files.plots) == set(PLOTS)
    for name, path in files.plots.items():
        png = path.read_bytes()
        width, height = _png_size(png)
        assert 500 <= width <= 1400, name
        assert 300 <= height <= 800, name
        pixels = imread(path)
        assert pixels.shape[:2] == (height, width)
        # Something was drawn: not one flat colour.
        assert float(np.std(pixels)) > 0.05, name
    stored = json.loads(files.json.read_text(encoding="utf-8"))
    assert [s["name"] for s in stored["series"]] == [held_out.version, "content only"]
    assert _series(stored, "content only")["thresholds"] == THRESHOLDS.to_dict()
    assert _series(stored, held_out.version)["thresholds"] == held_out.thresholds.to_dict()
    assert stored["meta"]["training"] == {"moderator": 10, "import": 5}
    assert stored["meta"]["created"] == "2026-11-25T15:00:00+00:00"
    page = files.html.read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == len(PLOTS)
    assert "content only" in page
    assert "cv_f1" in page
    # Self-contained: nothing is fetched from anywhere.
    assert "http://" not in page
    assert "https://" not in page
    assert 'src="data:' in page


def test_hostile_strings_are_escaped(held_out: HeldOut, tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>&"\''
    files = write_report(
        tmp_path,
        title=hostile,
        labels=held_out.labels,
        scores=held_out.scores,
        thresholds=THRESHOLDS,
        name=hostile,
        meta={hostile: hostile, "nested": {"k": hostile}},
        extra_metrics={hostile: 1.0},
    )
    page = files.html.read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;&#x27;" in page
    assert json.loads(files.json.read_text(encoding="utf-8"))["title"] == hostile


def test_same_input_same_bytes(held_out: HeldOut, tmp_path: Path) -> None:
    def run(out: Path) -> dict[str, bytes]:
        files = write_report(
            out,
            title="t",
            labels=held_out.labels,
            scores=held_out.scores,
            thresholds=held_out.thresholds,
            compare={"weak": Scored(held_out.labels, held_out.weak)},
            meta={"version": held_out.version},
        )
        return {p.name: p.read_bytes() for p in files.directory.iterdir()}

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    assert set(first) == {"index.html", "report.json", *(f"{name}.png" for name in PLOTS)}
    assert first == second
    for name in PLOTS:
        assert b"Software" not in first[f"{name}.png"]


def test_threads_draw_the_same_bytes(held_out: HeldOut, tmp_path: Path) -> None:
    """Reports drawn at once from threads of one process (as API requests would) neither
    fail nor disturb each other: each equals the report drawn alone."""
    data = report_data(
        title="t",
        labels=held_out.labels,
        scores=held_out.weak,
        thresholds=THRESHOLDS,
        compare={"bundled": Scored(held_out.labels, held_out.scores)},
    )
    alone = render_report(tmp_path / "alone", data)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda i: render_report(tmp_path / str(i), data), range(3)))
    for files in results:
        assert files.html.read_bytes() == alone.html.read_bytes()
        for name, path in files.plots.items():
            assert path.read_bytes() == alone.plots[name].read_bytes()


def test_redrawn_from_stored_json(held_out: HeldOut, tmp_path: Path) -> None:
    files = write_report(
        tmp_path / "a",
        title="t",
        labels=held_out.labels,
        scores=held_out.weak,
        thresholds=THRESHOLDS,
    )
    stored = json.loads(files.json.read_text(encoding="utf-8"))
    again = render_report(tmp_path / "b", stored)
    assert again.html.read_bytes() == files.html.read_bytes()
    with pytest.raises(ValueError, match="format"):
        render_report(tmp_path / "c", {**stored, "format": "something/9"})


def test_in_memory_page_and_plots_equal_the_files(held_out: HeldOut, tmp_path: Path) -> None:
    data = report_data(
        title="t", labels=held_out.labels, scores=held_out.weak, thresholds=THRESHOLDS
    )
    files = render_report(tmp_path, data)
    assert render_html(data) == files.html.read_text(encoding="utf-8")
    assert render_plot(data, "roc") == files.plots["roc"].read_bytes()
    with pytest.raises(ValueError, match="no plot 'pie'"):
        render_plot(data, "pie")
    one_class = report_data(title="t", labels=[0, 0], scores=[0.1, 0.2], thresholds=THRESHOLDS)
    assert render_plot(one_class, "roc") is None
    assert render_plot(one_class, "histogram") is not None


@pytest.mark.parametrize(("label", "other"), [(0, "ham"), (1, "spam")])
def test_one_class_has_no_curves(tmp_path: Path, label: int, other: str) -> None:
    labels = [label] * 40
    scores = [i / 40 for i in range(40)]
    files = write_report(tmp_path, title="t", labels=labels, scores=scores, thresholds=THRESHOLDS)
    assert set(files.plots) == {"histogram", "confusion", "calibration"}
    assert not (tmp_path / "roc.png").exists()
    stored = json.loads(files.json.read_text(encoding="utf-8"))
    s = stored["series"][0]
    assert s["roc"] is None
    assert s["precision_recall"] is None
    assert s["metrics"]["roc_auc"] is None
    assert f"hold {other} only" in s["note"]
    assert stored["notes"] == [f"classifier: {s['note']}"]
    assert f"hold {other} only" in files.html.read_text(encoding="utf-8")
    assert sum(s["bands"][other].values()) == 40


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([], [], "no labels"),
        ([1, 0], [0.5], "labels but"),
        ([1, 0], [0.5, 1.2], "within"),
        ([1, 0], [-0.1, 0.5], "within"),
        ([1, 0], [float("nan"), 0.5], "within"),
        ([1, 2], [0.5, 0.5], "0 \\(ham\\) or 1"),
    ],
)
def test_invalid_input_is_refused(
    tmp_path: Path, labels: list[int], scores: list[float], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        write_report(out, title="t", labels=labels, scores=scores, thresholds=THRESHOLDS)
    # Validation comes first: nothing was written.
    assert not out.exists()


def test_invalid_thresholds_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="hold <= spam"):
        report_data(
            title="t",
            labels=[0, 1],
            scores=[0.1, 0.9],
            thresholds=Thresholds(hold=0.6, spam=0.5, discard=0.9),
        )
    with pytest.raises(ValueError, match="two series"):
        report_data(
            title="t",
            labels=[0, 1],
            scores=[0.1, 0.9],
            thresholds=THRESHOLDS,
            name="a",
            compare={"a": Scored([0, 1], [0.2, 0.8])},
        )
    with pytest.raises(ValueError, match="b: scores must"):
        report_data(
            title="t",
            labels=[0, 1],
            scores=[0.1, 0.9],
            thresholds=THRESHOLDS,
            compare={"b": Scored([0, 1], [0.2, 1.8])},
        )
