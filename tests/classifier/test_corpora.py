"""The corpora manifest: files checked by sha256 before they are read, clear errors naming
what is missing and where it comes from, pooling and weighing sources for training.

The fixtures are written here (a small CSV, SMS file and mail directory); the published
corpora themselves are never part of the tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from service.classifier.corpora import (
    CorpusError,
    load_corpora,
    read_manifest,
    train_on,
    training_set,
    tree_digest,
)
from tests.support.labelled import labelled_comments

SMS = b"ham\tOk lar... Joking wif u oni...\nspam\tFREE entry! Text WIN to 80086 now\n"
SPAM_MAIL = b"Subject: cheap pills\n\nBuy now at http://pills.example\n"
HAM_MAIL = b"Subject: re: meeting\n\nSee you at ten.\n"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layout(root: Path) -> dict[str, Any]:
    """Writes two corpora under ``root``; returns their manifest."""
    (root / "sms").mkdir()
    (root / "sms" / "SMSSpamCollection").write_bytes(SMS)
    mail = root / "mail" / "spam"
    mail.mkdir(parents=True)
    (mail / "0001.txt").write_bytes(SPAM_MAIL)
    (mail / "0002.txt").write_bytes(SPAM_MAIL.replace(b"cheap", b"great"))
    ham = root / "mail" / "ham"
    ham.mkdir()
    (ham / "0001.txt").write_bytes(HAM_MAIL)
    return {
        "format": "commentguard.corpora/1",
        "corpora": [
            {
                "name": "sms",
                "domain": "SMS",
                "comment_like": True,
                "thresholds": True,
                "provenance": {"repository": "someone/sms", "commit": "abc", "path": "SMS"},
                "sources": [
                    {
                        "name": "sms",
                        "parts": [{"path": "sms/SMSSpamCollection", "sha256": _digest(SMS)}],
                    }
                ],
            },
            {
                "name": "mail",
                "domain": "email",
                "comment_like": False,
                "sources": [
                    {
                        "name": "mail",
                        "parts": [
                            {
                                "path": "mail/spam",
                                "glob": "*.txt",
                                "label": "spam",
                                "files": 2,
                                "sha256": tree_digest(
                                    root / "mail" / "spam", sorted(mail.glob("*.txt"))
                                ),
                            },
                            {
                                "path": "mail/ham",
                                "glob": "*.txt",
                                "label": "ham",
                                "files": 1,
                                "sha256": tree_digest(ham, [ham / "0001.txt"]),
                            },
                        ],
                    }
                ],
            },
        ],
    }


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_layout(tmp_path)))
    return path


def test_corpora_are_checked_and_read(manifest: Path) -> None:
    loaded = load_corpora(manifest)
    assert loaded["sms"]["sms"].labels == [0, 1]
    assert loaded["mail"]["mail"].labels == [1, 1, 0]
    assert loaded["mail"]["mail"].format == "email"
    assert [c.comment_like for c in read_manifest(manifest)] == [True, False]
    assert [c.thresholds for c in read_manifest(manifest)] == [True, False]


def test_a_missing_file_names_the_corpus_and_where_it_comes_from(manifest: Path) -> None:
    (manifest.parent / "sms" / "SMSSpamCollection").unlink()
    with pytest.raises(CorpusError) as caught:
        load_corpora(manifest)
    message = str(caught.value)
    assert "SMSSpamCollection: missing" in message
    assert "someone/sms at commit abc" in message


def test_changed_bytes_are_refused(manifest: Path) -> None:
    (manifest.parent / "sms" / "SMSSpamCollection").write_bytes(SMS.replace(b"Ok", b"OK"))
    with pytest.raises(CorpusError, match="differs from the manifest's"):
        load_corpora(manifest)


def test_a_changed_or_extra_file_in_a_directory_is_refused(manifest: Path) -> None:
    spam = manifest.parent / "mail" / "spam"
    (spam / "0002.txt").write_bytes(SPAM_MAIL)
    with pytest.raises(CorpusError, match="differs from the manifest's"):
        load_corpora(manifest)
    (spam / "0003.txt").write_bytes(SPAM_MAIL)
    with pytest.raises(CorpusError, match=r"3 files match '\*.txt', the manifest lists 2"):
        load_corpora(manifest)


def test_a_root_can_be_given_per_corpus(manifest: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (manifest.parent / "sms").rename(elsewhere / "sms")
    with pytest.raises(CorpusError):
        load_corpora(manifest, only=["sms"])
    assert len(load_corpora(manifest, roots={"sms": elsewhere}, only=["sms"])) == 1
    with pytest.raises(CorpusError, match="no corpus named"):
        read_manifest(manifest, roots={"nope": tmp_path})


def test_a_manifest_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"format": "other"}')
    with pytest.raises(CorpusError, match=r"not a commentguard\.corpora/1 manifest"):
        read_manifest(path)
    with pytest.raises(CorpusError, match="no such manifest"):
        read_manifest(tmp_path / "none.json")


def test_a_training_set_leaves_out_what_is_held_out(manifest: Path) -> None:
    corpora = read_manifest(manifest)
    loaded = load_corpora(manifest)
    data = training_set(loaded, corpora, leave_out=["sms/sms"])
    assert data.sources == ["mail/mail"] * 3
    assert data.threshold_on == [False] * 3
    everything = training_set(loaded, corpora)
    assert everything.threshold_on == [True, True, False, False, False]


def test_train_on_chooses_thresholds_on_the_sources_marked_for_it() -> None:
    # Three sources that choose the thresholds (each held out in turn) and one that does
    # not: the thresholds and the cv_ figures count the first three only.
    parts = [labelled_comments(120, seed=s) for s in range(4)]
    records = [r for p in parts for r in p.records]
    labels = [y for p in parts for y in p.labels]
    sources = [f"c/{i}" for i, p in enumerate(parts) for _ in p.records]
    flags = [not s.endswith("3") for s in sources]
    from service.classifier.corpora import TrainingSet

    data = TrainingSet(records, labels, sources, flags)
    classifier = train_on(data, seed=0)
    assert classifier.metadata["metrics"]["cv_n"] == 360
    assert classifier.metadata["notes"]["grouped_folds"] is True
    t = classifier.thresholds
    assert 0.0 < t.hold <= t.spam <= t.discard <= 1.0
