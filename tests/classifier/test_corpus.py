"""The bootstrap corpus: deterministic, varied, multilingual, and not trivially separable."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.classifier import corpus
from service.classifier.corpus import generate_corpus
from service.classifier.datasets import Dataset, dataset_fingerprint

REPO = Path(__file__).resolve().parents[2]
UNFILLED_SLOT = re.compile(r"\{[a-z_0-9]+\}")


@pytest.fixture(scope="module")
def big() -> Dataset:
    return generate_corpus(6000, seed=7)


def test_same_seed_same_corpus() -> None:
    first = generate_corpus(500, seed=3)
    second = generate_corpus(500, seed=3)
    assert first.records == second.records
    assert first.labels == second.labels
    assert first.fingerprint == second.fingerprint


def test_different_seed_different_corpus() -> None:
    first = generate_corpus(500, seed=3)
    other = generate_corpus(500, seed=4)
    assert first.fingerprint != other.fingerprint
    same = sum(a == b for a, b in zip(first.records, other.records, strict=True))
    assert same < 10


def test_global_random_state_is_neither_used_nor_disturbed() -> None:
    random.seed(1)
    first = generate_corpus(200, seed=5)
    state = random.getstate()
    random.seed(2)
    random.random()
    second = generate_corpus(200, seed=5)
    assert first.records == second.records
    random.seed(1)
    generate_corpus(200, seed=5)
    assert random.getstate() == state


def test_independent_of_hash_randomisation() -> None:
    code = (
        "from service.classifier.corpus import generate_corpus;"
        "print(generate_corpus(300, seed=11).fingerprint)"
    )
    outputs = set()
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout.strip())
    assert len(outputs) == 1
    assert outputs == {generate_corpus(300, seed=11).fingerprint}


def test_dataset_fields() -> None:
    dataset = generate_corpus(1000, seed=9, spam_ratio=0.25)
    assert len(dataset) == 1000
    assert dataset.spam_count == 250
    assert dataset.format == "bootstrap"
    assert dataset.source == "bootstrap:seed=9,n=1000"
    assert dataset.errors == []
    assert dataset.fingerprint == dataset_fingerprint(dataset.records, dataset.labels)
    # Shuffled: the spam is not all at one end.
    assert 0 < sum(dataset.labels[:500]) < 250


@pytest.mark.parametrize(("ratio", "spam"), [(0.0, 0), (1.0, 40), (0.5, 20)])
def test_spam_ratio_bounds(ratio: float, spam: int) -> None:
    assert generate_corpus(40, seed=1, spam_ratio=ratio).spam_count == spam


def test_empty_corpus() -> None:
    assert len(generate_corpus(0)) == 0


@pytest.mark.parametrize(
    ("n", "ratio", "words"),
    [(-1, 0.4, "n must be"), (10, 1.5, "spam_ratio"), (10, -0.1, "spam_ratio")],
)
def test_invalid_arguments(n: int, ratio: float, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        generate_corpus(n, spam_ratio=ratio)


def test_every_template_fills_in_every_language_and_topic() -> None:
    """Random sampling may miss a rare template; fill each one with each topic so that a
    slot missing from some vocabulary fails here rather than in a user's corpus."""
    rng = random.Random(0)
    for lang in corpus._LANG_LIST:
        templates = (
            lang.openers + lang.bodies + lang.questions + lang.closers + lang.short + lang.links
        )
        for topic in lang.topics.values():
            for template in templates:
                text = corpus._fill(rng, template, topic, lang.common, corpus._CODE_VOCAB)
                assert not UNFILLED_SLOT.search(text), (lang.code, template)
    for template in corpus._CODE_SENTENCES:
        corpus._fill(rng, template, corpus._EN_TOPICS["programming"], corpus._CODE_VOCAB)
    for _, templates, _ in corpus._SPAM_KINDS:
        for template in templates:
            assert not UNFILLED_SLOT.search(corpus._fill(rng, template, corpus._SPAM_VOCAB))
    for _, template in corpus._FOREIGN_SPAM_T:
        assert not UNFILLED_SLOT.search(corpus._fill(rng, template, corpus._SPAM_VOCAB))


def test_no_unfilled_slots_and_no_blank_content(big: Dataset) -> None:
    for record in big.records:
        assert record.content.strip()
        assert not UNFILLED_SLOT.search(record.content), record.content


def test_ham_is_multilingual(big: Dataset) -> None:
    ham = [r for r, label in zip(big.records, big.labels, strict=True) if label == 0]
    langs = {r.lang for r in ham}
    assert {"en", "fr", "de", "es", "pt", "ja", "ru", "ar"} <= langs
    text = "\n".join(r.content for r in ham)
    assert re.search(r"[\u3040-\u30ff]", text)  # kana
    assert re.search(r"[\u0400-\u04ff]", text)  # Cyrillic
    assert re.search(r"[\u0600-\u06ff]", text)  # Arabic
    assert "`" in text  # code in backticks


def test_spam_covers_its_kinds(big: Dataset) -> None:
    spam = "\n".join(r.content for r, label in zip(big.records, big.labels, strict=True) if label)
    lowered = spam.lower()
    for marker in (
        "whatsapp",
        "casino",
        "loan",
        "<a href=",
        "[url=",
        "subscribe",
        "telegram",
        "prescription",
        "bitcoin",
        "backlinks",
    ):
        assert marker in lowered, marker


def test_hard_negatives_and_hard_positives(big: Dataset) -> None:
    pairs = list(zip(big.records, big.labels, strict=True))
    ham_links = [r for r, label in pairs if label == 0 and "https://" in r.content]
    assert any("github.com" in r.content for r in ham_links)
    assert any("wikipedia.org" in r.content for r in ham_links)
    assert any("python.org" in r.content for r in ham_links)
    assert any("newsletter" in r.content for r, label in pairs if label == 0)
    # Spam with no link in its text, only in the author URL.
    linkless = [
        r
        for r, label in pairs
        if label == 1 and not re.search(r"https?://|www\.|\.com|@", r.content)
    ]
    assert len(linkless) > 100
    assert sum(r.author_url is not None for r in linkless) > len(linkless) / 2


def test_variety(big: Dataset) -> None:
    contents = [r.content for r in big.records]
    # Mostly unique texts; a few short ones ("Thanks!") repeat, as they do in real life.
    assert len(set(contents)) > 0.85 * len(contents)
    assert len({r.author_name for r in big.records}) > 500
    assert len({r.user_ip for r in big.records}) > 0.8 * len(big)
    assert len({r.user_agent for r in big.records}) > 50
    lengths = sorted(len(c) for c in contents)
    assert lengths[len(lengths) // 10] < 60 < lengths[len(lengths) * 9 // 10]


def test_author_history_differs_by_class_but_overlaps(big: Dataset) -> None:
    pairs = list(zip(big.records, big.labels, strict=True))
    spam = [r for r, label in pairs if label]
    ham = [r for r, label in pairs if not label]
    spam_approved = sum(r.approved_count > 0 for r in spam) / len(spam)
    ham_approved = sum(r.approved_count > 0 for r in ham) / len(ham)
    assert spam_approved < 0.15
    assert 0.5 < ham_approved < 0.9
    assert sum(r.spam_count > 0 for r in spam) > sum(r.spam_count > 0 for r in ham)
