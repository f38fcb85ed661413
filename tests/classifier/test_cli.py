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


def _blog_manifest(root: Path) -> Path:
    """A manifest of one corpus with three sources, written from the test fixtures."""
    import hashlib

    from tests.support.labelled import labelled_comments

    sources = []
    for i in range(3):
        data = labelled_comments(90, seed=i)
        path = root / f"blog{i}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["content", "label"])
            writer.writerows(
                (r.content, "spam" if y else "ham")
                for r, y in zip(data.records, data.labels, strict=True)
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        sources.append({"name": f"b{i}", "parts": [{"path": path.name, "sha256": digest}]})
    manifest = root / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "commentguard.corpora/1",
                "corpora": [
                    {
                        "name": "blog",
                        "domain": "blog comments",
                        "comment_like": True,
                        "thresholds": True,
                        "sources": sources,
                    }
                ],
            }
        )
    )
    return manifest


def test_train_on_a_manifest(tmp_path: Path) -> None:
    manifest = _blog_manifest(tmp_path)
    out = tmp_path / "model.skops"
    result = CliRunner().invoke(
        main, ["classifier", "train", "--manifest", str(manifest), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "data: blog/b0: 90 (36 spam, 54 ham)" in result.output
    assert "leave-one-source-out scores" in result.output
    assert out.exists()


def test_train_on_a_manifest_names_what_is_missing(tmp_path: Path) -> None:
    manifest = _blog_manifest(tmp_path)
    (tmp_path / "blog1.csv").unlink()
    out = tmp_path / "model.skops"
    result = CliRunner().invoke(
        main, ["classifier", "train", "--manifest", str(manifest), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "blog1.csv: missing" in result.output
    assert not out.exists()


def test_train_takes_data_or_a_manifest(data: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "m.skops")
    neither = CliRunner().invoke(main, ["classifier", "train", "--out", out])
    assert neither.exit_code == 2
    assert "either --data or --manifest" in neither.output
    both = CliRunner().invoke(
        main,
        ["classifier", "train", "--data", str(data), "--manifest", str(data), "--out", out],
    )
    assert both.exit_code == 2
    bad_root = CliRunner().invoke(
        main,
        ["classifier", "train", "--manifest", str(data), "--root", "youtube", "--out", out],
    )
    assert bad_root.exit_code == 2
    assert "expected CORPUS=DIR" in bad_root.output
