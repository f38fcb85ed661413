"""Training volume for the speed and retraining benches: real comments, repeated.

The comment-like corpora of ``data/manifest.json`` (the YouTube Spam Collection and the
SMS Spam Collection, about 7,200 labelled messages; data/README.md) are what a blog's
comments look like in length and kind. A bench that needs 100,000 comments takes them
in a fixed shuffled order and repeats them, each repeat a copy: the volume, lengths and
vocabulary are real, and no text is made up.
"""

from __future__ import annotations

import random
from pathlib import Path

from service.classifier.corpora import load_corpora, read_manifest
from service.classifier.types import CommentRecord

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO / "data" / "manifest.json"


def comments(
    n: int, *, seed: int = 0, manifest: Path = DEFAULT_MANIFEST, youtube: Path | None = None
) -> tuple[list[CommentRecord], list[int]]:
    """``n`` labelled comments from the comment-like corpora (checked against the
    manifest; :class:`~service.classifier.corpora.CorpusError` names what is missing),
    shuffled by ``seed`` and repeated as often as ``n`` needs."""
    roots = {"youtube": youtube} if youtube is not None else {}
    names = [c.name for c in read_manifest(manifest, roots=roots) if c.comment_like]
    loaded = load_corpora(manifest, roots=roots, only=names)
    pool = [
        (record, label)
        for named in loaded.values()
        for dataset in named.values()
        for record, label in zip(dataset.records, dataset.labels, strict=True)
    ]
    random.Random(seed).shuffle(pool)
    chosen = [pool[i % len(pool)] for i in range(n)]
    return [r for r, _ in chosen], [y for _, y in chosen]
