"""A new site: the bundled classifier's cold start, then a retrain on its first labels.

Each YouTube video of data/manifest.json plays a new site in turn, one the classifier
never saw:

1. **Cold start**: the classifier as ``make classifier`` builds it, trained on every
   other source (``service.classifier.corpora.train_on``: the other videos, SMS and mail).
2. **Moderators label N of the site's comments** (a random N: the order in which they
   arrive is not in the files), for N = 50, 100, 200.
3. **A retrain as the service runs it** (``service.moderation.retrain``): the N labels
   with their author fields, weighed as moderators' labels, 20 % held out
   (``split_holdout``), a candidate trained on the rest (``train``, the site retrain's
   defaults), the candidate and the cold-start classifier scored on those held-out labels
   with the weak-evidence rule, and the **quality gate** (``quality_gate``, default
   margins) deciding which serves. Too few labels of one class and the retrain fails:
   the cold start keeps serving.
4. **Measured on the site's other comments** (never labelled, never trained on): ham
   marked spam (FPR at the serving classifier's own spam threshold), ham held, spam
   recall and F1, for the classifier that serves after the gate, the cold start and the
   candidate alone; with the candidate's oracle recall at 1 % FPR (the best any of its
   thresholds does, read off the measured labels: the ceiling of its ranking).

Five draws of the N labels per video and N (seeds 0-4), averaged; deterministic. No bar:
it says what a site meets after moderating N comments and retraining. Usage:
``.venv/bin/python -m bench.site_adaptation [--manifest data/manifest.json] [--youtube
DIR] [--labels 50 100 200] [--draws 5]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.classifier_quality import DEFAULT_MANIFEST, oracle_recall
from service.classifier.corpora import (
    CorpusError,
    load_corpora,
    read_manifest,
    train_on,
    training_set,
)
from service.classifier.datasets import Dataset
from service.classifier.evaluation import compute_metrics
from service.classifier.model import Classifier, train
from service.classifier.types import CommentRecord
from service.moderation.registry import quality_gate
from service.moderation.retrain import SEED, RetrainOptions, split_holdout

VIDEOS_CORPUS = "youtube"
SERVING, COLD, CANDIDATE = "serving after the gate", "cold start", "candidate alone"


@dataclass(frozen=True, slots=True)
class Figures:
    """One classifier on one site's unlabelled comments."""

    fpr: float
    held: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class Draw:
    """One draw of N labels: each classifier's figures, whether the gate promoted the
    candidate, and the candidate's oracle recall (None when the retrain failed)."""

    figures: dict[str, Figures]
    promoted: bool
    oracle: float | None


def as_labelled(record: CommentRecord) -> CommentRecord:
    """The record as a label stores it (``gather_labels``): text, author fields, page."""
    return CommentRecord(
        content=record.content,
        author_name=record.author_name,
        author_email=record.author_email,
        author_url=record.author_url,
        permalink=record.permalink,
    )


def figures(model: Classifier, records: Sequence[CommentRecord], y: np.ndarray) -> Figures:
    """What the service would decide: the probabilities with the weak-evidence rule, at
    the model's own thresholds."""
    p = np.asarray(model.probabilities(records))
    t = model.thresholds
    ham, spam = p[y == 0], p[y == 1]
    tp, fp = int(np.sum(spam >= t.spam)), int(np.sum(ham >= t.spam))
    fn = spam.size - tp
    return Figures(
        fpr=fp / max(ham.size, 1),
        held=float(np.mean((ham >= t.hold) & (ham < t.spam))) if ham.size else 0.0,
        recall=tp / max(spam.size, 1),
        f1=2 * tp / max(2 * tp + fp + fn, 1),
    )


def one_draw(cold: Classifier, site: Dataset, n: int, draw: int) -> Draw:
    """Label a random ``n`` of the site's comments, retrain and gate as the service does,
    and measure on the rest."""
    options = RetrainOptions()
    order = np.random.default_rng(draw).permutation(len(site))
    labelled, rest = order[:n].tolist(), order[n:].tolist()
    records = [as_labelled(site.records[i]) for i in labelled]
    labels = [site.labels[i] for i in labelled]
    test = [site.records[i] for i in rest]
    y = np.asarray([site.labels[i] for i in rest])
    fit, held = split_holdout(n, options.holdout)
    fit_y = [labels[i] for i in fit]
    out = {COLD: figures(cold, test, y)}
    if 0 < sum(fit_y) < len(fit_y):
        candidate = train(
            [records[i] for i in fit],
            fit_y,
            seed=SEED,
            sources=["moderator"] * len(fit),
            sample_weight=[options.moderator_weight] * len(fit),
        )
        held_records = [records[i] for i in held]
        held_y = [labels[i] for i in held]
        gate = quality_gate(
            compute_metrics(
                held_y, candidate.probabilities(held_records), candidate.thresholds.spam
            ).to_dict(),
            compute_metrics(
                held_y, cold.probabilities(held_records), cold.thresholds.spam
            ).to_dict(),
            max_f1_drop=options.max_f1_drop,
            max_fpr_rise=options.max_fpr_rise,
        )
        out[CANDIDATE] = figures(candidate, test, y)
        out[SERVING] = out[CANDIDATE] if gate.passed else out[COLD]
        p = np.asarray(candidate.probabilities(test))
        return Draw(out, gate.passed, oracle_recall(p[y == 0], p[y == 1]))
    out[SERVING] = out[COLD]
    return Draw(out, False, None)


def _mean(draws: Sequence[Draw], model: str, name: str) -> str:
    values = [getattr(d.figures[model], name) for d in draws if model in d.figures]
    if not values:
        return "–"
    mean = float(np.mean(values))
    return f"{mean:.2%}" if name in ("fpr", "held") else f"{mean:.3f}"


def print_table(results: dict[tuple[str, int], list[Draw]]) -> None:
    print(
        "| site (video) | labelled | classifier | ham marked spam | ham held | spam recall "
        "| F1 | gate promoted | candidate's oracle recall at 1 % FPR |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (video, n), draws in results.items():
        promoted = sum(d.promoted for d in draws)
        oracles = [d.oracle for d in draws if d.oracle is not None]
        oracle = f"{np.mean(oracles):.3f}" if oracles else "–"
        for model in (SERVING, COLD, CANDIDATE):
            bold = "**" if model == SERVING else ""
            extra = f"{promoted} of {len(draws)} | {oracle}" if model == SERVING else " | "
            print(
                f"| {video} | {n} | {bold}{model}{bold} | {_mean(draws, model, 'fpr')} "
                f"| {_mean(draws, model, 'held')} | {_mean(draws, model, 'recall')} "
                f"| {_mean(draws, model, 'f1')} | {extra} |"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument(
        "--youtube", type=Path, default=None, help="the YouTube files' directory, if elsewhere"
    )
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args(argv)
    roots = {VIDEOS_CORPUS: args.youtube} if args.youtube else {}
    started = time.perf_counter()
    try:
        corpora = read_manifest(args.manifest, roots=roots)
        loaded = load_corpora(args.manifest, roots=roots)
    except CorpusError as exc:
        print(f"bench-adaptation: {exc}", file=sys.stderr)
        return 2
    results: dict[tuple[str, int], list[Draw]] = {}
    for video, site in loaded[VIDEOS_CORPUS].items():
        begun = time.perf_counter()
        held_out = f"{VIDEOS_CORPUS}/{video}"
        cold = train_on(training_set(loaded, corpora, leave_out=(held_out,)))
        print(f"{video}: cold start trained without it ({time.perf_counter() - begun:.0f} s)")
        for n in args.labels:
            if n >= len(site):
                continue
            begun = time.perf_counter()
            draws = [one_draw(cold, site, n, draw) for draw in range(args.draws)]
            results[(video, n)] = draws
            print(
                f"  {n} labelled: F1 served {_mean(draws, SERVING, 'f1')} "
                f"(cold {_mean(draws, COLD, 'f1')}, candidate {_mean(draws, CANDIDATE, 'f1')}), "
                f"ham marked spam served {_mean(draws, SERVING, 'fpr')}, gate promoted "
                f"{sum(d.promoted for d in draws)} of {len(draws)} "
                f"({time.perf_counter() - begun:.0f} s)",
                flush=True,
            )
    print()
    print_table(results)
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
