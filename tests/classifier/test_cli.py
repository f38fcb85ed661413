"""The ``commentguard classifier`` commands, through click's runner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main

ROWS = [
    ("check out my channel http://bit.ly/x subscribe", 1),
    ("subscribe to me please", 1),
    ("visit my site http://spam.biz for money", 1),
    ("free gift cards here http://goo.gl/y", 1),
    ("I love this song so much", 0),
    ("the chorus is beautiful", 0),
    ("best video of the year", 0),
    ("her voice is amazing", 0),
] * 4


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["content", "label"])
        writer.writerows(ROWS)
    return path


def test_train_evaluate_score(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.skops"
    runner = CliRunner()
    result = runner.invoke(
        main, ["classifier", "train", "--data", str(data), "--out", str(out), "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert out.exists()
    assert "f1" in result.output
    assert "saved" in result.output

    result = runner.invoke(
        main, ["classifier", "evaluate", "--model", str(out), "--data", str(data), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {
        "n",
        "spam",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "roc_auc",
        "pr_auc",
        "fpr",
    }
    assert report["n"] == len(ROWS)
    assert report["spam"] == len(ROWS) // 2

    result = runner.invoke(
        main,
        ["classifier", "score", "--model", str(out), "subscribe to my channel http://bit.ly/z"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("probability ")


def test_missing_model_is_a_clean_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.skops"
    bogus.write_bytes(b"not an artifact")
    result = CliRunner().invoke(main, ["classifier", "score", "--model", str(bogus), "hi"])
    assert result.exit_code == 1
    assert "not a classifier artifact" in result.output


def test_evaluate_writes_a_report(tmp_path: Path) -> None:
    from tests.support.labelled import labelled_comments

    held_out = labelled_comments(400, seed=5)
    path = tmp_path / "held_out.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["content", "label"])
        writer.writerows(zip([r.content for r in held_out.records], held_out.labels, strict=True))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["classifier", "evaluate", "--data", str(path), "--json", "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert f"report written to {out / 'index.html'}" in result.stderr
    assert {p.name for p in out.iterdir()} == {
        "index.html",
        "report.json",
        "precision_recall.png",
        "roc.png",
        "histogram.png",
        "confusion.png",
        "calibration.png",
    }
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    series = report["series"][0]
    # The report measures what the command printed, on the same data.
    assert series["n"] == printed["n"] == 400
    assert series["metrics"]["roc_auc"] == printed["roc_auc"]
    assert series["metrics"]["f1"] == printed["f1"]
    assert report["meta"]["evaluated on"]["fingerprint"] == held_out.fingerprint
    assert report["meta"]["version"] == series["name"]
    assert "cv_f1" in report["extra_metrics"]


def test_evaluate_report_of_one_class_data(tmp_path: Path) -> None:
    path = tmp_path / "ham.csv"
    path.write_text("content,label\nlovely song,ham\nwhat a voice,ham\n", encoding="utf-8")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["classifier", "evaluate", "--data", str(path), "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert not (out / "roc.png").exists()
    assert "hold ham only" in (out / "index.html").read_text(encoding="utf-8")
