"""The spam classifier: one scikit-learn pipeline, a compiled fast path, and reasons.

The pipeline is ``Pipeline([("features", FeatureUnion), ("linear", LogisticRegression)])``
whose probabilities are already calibrated: training fits a Platt sigmoid
``p = expit(a * d + b)`` on out-of-fold decision values ``d = w.x + c`` and folds it into
the model (``w <- a w``, ``c <- a c + b``), which is exact because both maps are affine
in log-odds. So ``pipeline.predict_proba`` is the calibrated probability, and every
coefficient times its feature value is that feature's contribution to the calibrated
log-odds: the reasons add up, with the intercept, to the score.

Scoring one comment through scikit-learn costs milliseconds of validation and sparse
matrix assembly, so :class:`Classifier` compiles the fitted pipeline into plain dicts
(n-gram -> idf and weight) and scores in pure Python, with the same analyzers and the
same arithmetic; a test holds the two paths equal to 1e-9.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline

from service.classifier.artifacts import ArtifactMetadata, load_artifact, save_artifact
from service.classifier.datasets import dataset_fingerprint
from service.classifier.evaluation import Thresholds, choose_thresholds, compute_metrics
from service.classifier.features import (
    ANONYMOUS,
    LINK_MARK,
    STAT_NAMES,
    FeatureConfig,
    author_text,
    build_features,
    content_text,
    describe_stat,
    record_stats,
)
from service.classifier.types import CommentRecord, Reason, Score

__all__ = [
    "BUNDLED_PATH",
    "Classifier",
    "ModelConfig",
    "load_classifier",
    "save_classifier",
    "train",
]

MAX_REASONS: Final = 5
"""Reasons reported per direction."""

MIN_REASON_WEIGHT: Final = 0.01
"""Contributions smaller than this (in log-odds) are noise, not reasons."""

_GRAM_CACHE_SIZE: Final = 100_000
_WHITESPACE: Final = re.compile(r"\s\s+")
_EDGE_PUNCT: Final = re.compile(r"^\W+|\W+$")
_LETTER: Final = re.compile(r"[^\W\d_]")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Training knobs. ``c`` is the inverse L2 strength of the logistic regression;
    ``folds`` the cross-validation folds for calibration and thresholds; ``max_fpr`` the
    false-positive rate the spam threshold targets on out-of-fold scores; ``hold_recall``,
    ``hold_margin`` and ``hold_floor`` place the hold threshold (see
    :func:`~service.classifier.evaluation.choose_thresholds`). From ``large``
    comments on, ``large_folds`` folds suffice (the calibration has two parameters and
    plenty of out-of-fold scores), which keeps training on 100,000 comments within a
    minute. ``n_jobs`` parallelises the folds (None: one core); results do not depend on
    it."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    c: float = 20.0
    folds: int = 5
    max_fpr: float = 0.01
    hold_recall: float = 0.98
    hold_margin: float = 0.25
    hold_floor: float = 0.2
    discard_fpr: float = 0.001
    max_iter: int = 3000
    large: int = 50_000
    large_folds: int = 3
    n_jobs: int | None = None


def _sigmoid(x: float) -> float:
    # The numerically safe logistic, as scipy's expit computes it.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _ngram_table(
    vec: TfidfVectorizer, coef: np.ndarray, weight: float
) -> dict[str, tuple[float, float]]:
    """term -> (idf, weight * coefficient) for one fitted vectorizer's block of columns."""
    idf = vec.idf_.tolist()
    w = (coef * weight).tolist()
    return {term: (idf[i], w[i]) for term, i in vec.vocabulary_.items()}


def _display(word: str) -> str:
    stripped = _EDGE_PUNCT.sub("", word)
    return stripped or word


def _word_phrase(key: str) -> str:
    if key == LINK_MARK:
        return "a link"
    if _LETTER.search(key):
        return f"the word '{key}'"
    digits = sum(ch.isdigit() for ch in key)
    if digits:
        return f"a {digits}-digit number"
    return f"the characters '{key}'"


def _phrase_phrase(bigram: str) -> str:
    first, _, second = bigram.partition(" ")
    if first == LINK_MARK:
        return f"a link to '{second}...'"
    if second == LINK_MARK:
        return f"'{first}' before a link"
    return f"the phrase '{bigram}'"


def _author_phrase(token: str) -> str:
    kind, _, value = token.partition(":")
    if token == ANONYMOUS:
        return "no author name"
    if kind == "name":
        return f"the author name '{value}'"
    if kind == "email":
        return f"an email address at {value}"
    if kind == "site":
        return f"the author's website {value}"
    return f"the author token '{token}'"


class _Contributions:
    """Accumulates contributions to the log-odds, grouped by a readable key."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.items: dict[str, list[Any]] = {}

    def add(self, feature: str, phrase: str | Callable[[], str], weight: float) -> None:
        self.total += weight
        entry = self.items.get(feature)
        if entry is None:
            self.items[feature] = [phrase, weight]
        else:
            entry[1] += weight

    def reasons(self) -> tuple[Reason, ...]:
        """The strongest contributions toward spam, then toward ham; a phrase given as a
        callable is only built when its reason is reported."""
        spam = sorted(
            ((w, f, p) for f, (p, w) in self.items.items() if w >= MIN_REASON_WEIGHT),
            key=lambda item: (-item[0], item[1]),
        )[:MAX_REASONS]
        ham = sorted(
            ((w, f, p) for f, (p, w) in self.items.items() if w <= -MIN_REASON_WEIGHT),
            key=lambda item: (item[0], item[1]),
        )[:MAX_REASONS]
        return tuple(Reason(p if isinstance(p, str) else p(), w, f) for w, f, p in spam + ham)


class Classifier:
    """A fitted pipeline plus what is known about it, scoring comments with reasons.

    ``pipeline`` and ``metadata`` are what an artifact stores; ``metadata`` holds
    ``thresholds`` (hold/spam/discard), ``metrics``, ``training_size``,
    ``training_fingerprint`` and ``notes``. Construction compiles the fast path, so a
    classifier is immutable in use: refit means a new instance.
    """

    def __init__(self, pipeline: Pipeline, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata
        features: FeatureUnion = pipeline.named_steps["features"]
        linear: LogisticRegression = pipeline.named_steps["linear"]
        coef = np.asarray(linear.coef_[0], dtype=np.float64)
        self._intercept = float(linear.intercept_[0])
        weights = features.transformer_weights or {}
        offset = 0
        tables: dict[str, dict[str, tuple[float, float]]] = {}
        for name, transformer in features.transformer_list:
            weight = float(weights.get(name, 1.0))
            if name == "stats":
                width = len(STAT_NAMES)
                self._stat_weights = (coef[offset : offset + width] * weight).tolist()
                self._stat_means: list[float] = list(transformer.means_)
            else:
                vec: TfidfVectorizer = transformer.named_steps["tfidf"]
                width = len(vec.vocabulary_)
                if name != "char":
                    tables[name] = _ngram_table(vec, coef[offset : offset + width], weight)
                if name == "word":
                    self._word_analyzer = vec.build_analyzer()
                    self._word_preprocess = vec.build_preprocessor()
                    self._word_token = re.compile(vec.token_pattern)
                elif name == "char":
                    self._char_preprocess = vec.build_preprocessor()
                    self._char_range: tuple[int, int] = vec.ngram_range
                    self._char_vocabulary: dict[str, int] = dict(vec.vocabulary_)
                    self._char_idf = np.asarray(vec.idf_, dtype=np.float64)
                    self._char_coef = coef[offset : offset + width] * weight
                else:
                    self._author_analyzer = vec.build_analyzer()
            offset += width
        if offset != coef.size:
            raise ValueError(f"the union has {offset} columns, the model {coef.size}")
        # Words recur across comments; their n-grams are computed once per word.
        self._gram_cache: dict[str, np.ndarray[Any, np.dtype[np.intp]]] = {}
        self._key_cache: dict[str, tuple[str, str]] = {}
        self._token_cache: dict[str, tuple[str, ...]] = {}
        self._word = tables["word"]
        self._author = tables["author"]

    @property
    def thresholds(self) -> Thresholds:
        """The decision thresholds chosen at training."""
        t = self.metadata["thresholds"]
        return Thresholds(hold=float(t["hold"]), spam=float(t["spam"]), discard=float(t["discard"]))

    # --- scoring ----------------------------------------------------------------------

    def score(self, record: CommentRecord) -> Score:
        """The calibrated spam probability of ``record`` with its strongest reasons toward
        spam (strongest first), then toward ham."""
        contributions = self._contributions(record)
        probability = _sigmoid(self._intercept + contributions.total)
        return Score(probability=probability, reasons=contributions.reasons())

    def score_many(self, records: Sequence[CommentRecord]) -> list[Score]:
        """:meth:`score` for each record, in order."""
        return [self.score(record) for record in records]

    def probabilities(self, records: Sequence[CommentRecord]) -> list[float]:
        """Probabilities only, through the fast path (no reasons are built)."""
        return [_sigmoid(self._intercept + self._contributions(r).total) for r in records]

    def sklearn_probabilities(self, records: Sequence[CommentRecord]) -> np.ndarray:
        """Probabilities through the scikit-learn pipeline itself: the reference the fast
        path must match, and the faster route for large offline batches."""
        return np.asarray(self.pipeline.predict_proba(list(records))[:, 1], dtype=np.float64)

    def _contributions(self, record: CommentRecord) -> _Contributions:
        out = _Contributions()
        text = content_text(record)
        lowered = _WHITESPACE.sub(" ", self._char_preprocess(text))
        keys = self._word_keys(lowered)
        self._add_words(text, lowered, keys, out)
        self._add_chars(lowered, keys, out)
        self._add_author(record, out)
        stats = record_stats(record)
        for name, stat, w, mean in zip(
            STAT_NAMES, stats, self._stat_weights, self._stat_means, strict=True
        ):
            contribution = w * (stat.value - mean)
            if contribution:
                out.add(f"stat:{name}", partial(describe_stat, name, stat), contribution)
        return out

    def _word_keys(self, lowered: str) -> list[tuple[str, str]]:
        """(feature key, phrase) per whitespace word of the lower-cased text; the word
        after a link mark is the link's host."""
        keys: list[tuple[str, str]] = []
        previous = ""
        cache = self._key_cache
        for word in lowered.split():
            if previous == LINK_MARK:
                keys.append((f"link:{word}", f"a link to {word}"))
            else:
                key = cache.get(word)
                if key is None:
                    shown = _display(word)
                    key = (f"word:{shown}", _word_phrase(shown))
                    if len(cache) >= _GRAM_CACHE_SIZE:
                        cache.clear()
                    cache[word] = key
                keys.append(key)
            previous = word
        return keys

    def _add_words(
        self, text: str, lowered: str, keys: list[tuple[str, str]], out: _Contributions
    ) -> None:
        counts = Counter(self._word_analyzer(text))
        table = self._word
        found: list[tuple[str, float]] = []
        square = 0.0
        for term, count in counts.items():
            entry = table.get(term)
            if entry is None:
                continue
            value = (1.0 + math.log(count)) * entry[0]
            square += value * value
            found.append((term, value * entry[1]))
        if not found:
            return
        norm = math.sqrt(square)
        per_token: dict[str, float] = {}
        for term, contribution in found:
            if " " in term:
                out.add(f"phrase:{term}", _phrase_phrase(term), contribution / norm)
            else:
                # A unigram's weight is shared among its occurrences, each credited to the
                # whitespace word it sits in, so "bit.ly" gathers "bit" and "ly".
                per_token[term] = contribution / norm / counts[term]
        if not per_token:
            return
        tokens_of = self._tokens_of
        for word, (key, phrase) in zip(lowered.split(), keys, strict=True):
            total = 0.0
            for token in tokens_of(word):
                share = per_token.get(token)
                if share is not None:
                    total += share
            if total:
                out.add(key, phrase, total)

    def _tokens_of(self, word: str) -> tuple[str, ...]:
        """The word analyzer's tokens inside one whitespace word (cached per word)."""
        tokens = self._token_cache.get(word)
        if tokens is None:
            tokens = tuple(self._word_token.findall(word))
            if len(self._token_cache) >= _GRAM_CACHE_SIZE:
                self._token_cache.clear()
            self._token_cache[word] = tokens
        return tokens

    def _add_chars(self, lowered: str, keys: list[tuple[str, str]], out: _Contributions) -> None:
        cache = self._gram_cache
        columns: list[np.ndarray[Any, np.dtype[np.intp]]] = []
        for word in lowered.split():
            cols = cache.get(word)
            if cols is None:
                cols = self._char_columns(word)
                if len(cache) >= _GRAM_CACHE_SIZE:
                    cache.clear()
                cache[word] = cols
            columns.append(cols)
        if not columns:
            return
        sizes = np.fromiter((c.size for c in columns), dtype=np.intp, count=len(columns))
        if not sizes.any():
            return
        every = np.concatenate(columns)
        unique, inverse, counts = np.unique(every, return_inverse=True, return_counts=True)
        values = (1.0 + np.log(counts)) * self._char_idf[unique]
        norm = math.sqrt(float(np.dot(values, values)))
        # Each n-gram's contribution is shared among its occurrences, each credited to
        # the word it lies in (char_wb n-grams never cross words).
        shares = (values * self._char_coef[unique] / counts / norm)[inverse]
        owner = np.repeat(np.arange(sizes.size), sizes)
        totals = np.bincount(owner, weights=shares, minlength=sizes.size)
        for size, total, (key, phrase) in zip(sizes.tolist(), totals.tolist(), keys, strict=True):
            if size:
                out.add(key, phrase, total)

    def _char_columns(self, word: str) -> np.ndarray[Any, np.dtype[np.intp]]:
        """The column indices of the in-vocabulary n-grams of sklearn's char_wb analyzer
        for one word (out-of-vocabulary n-grams count for nothing, not even in the norm)."""
        padded = f" {word} "
        size = len(padded)
        low, high = self._char_range
        vocabulary = self._char_vocabulary
        found: list[int] = []
        for n in range(low, high + 1):
            offset = 0
            while True:
                index = vocabulary.get(padded[offset : offset + n])
                if index is not None:
                    found.append(index)
                if offset + n >= size:
                    break
                offset += 1
            if offset == 0:
                break
        return np.array(found, dtype=np.intp)

    def _add_author(self, record: CommentRecord, out: _Contributions) -> None:
        counts = Counter(self._author_analyzer(author_text(record)))
        found: list[tuple[str, float]] = []
        square = 0.0
        for token, count in counts.items():
            entry = self._author.get(token)
            if entry is None:
                continue
            value = (1.0 + math.log(count)) * entry[0]
            square += value * value
            found.append((token, value * entry[1]))
        if found:
            norm = math.sqrt(square)
            for token, contribution in found:
                out.add(f"author:{token}", _author_phrase(token), contribution / norm)


# --- training -------------------------------------------------------------------------


def _folds(labels: np.ndarray, groups: Sequence[str] | None, n_folds: int, seed: int) -> list[Any]:
    """Cross-validation splits: by group when there are at least three groups (scores on
    an unseen group mimic a new site), else stratified and shuffled by ``seed``."""
    smallest = int(min(np.sum(labels == 0), np.sum(labels == 1)))
    if groups is not None and len(set(groups)) >= 3:
        splitter = GroupKFold(n_splits=min(n_folds, len(set(groups))))
        return list(splitter.split(labels, labels, groups=list(groups)))
    k = max(2, min(n_folds, smallest))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(labels, labels))


def _platt(decisions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(a, b) such that expit(a * d + b) is calibrated on these out-of-fold decisions."""
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(decisions.reshape(-1, 1), labels)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def train(
    records: Sequence[CommentRecord],
    labels: Sequence[int],
    *,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
) -> Classifier:
    """Fit a classifier on ``records`` and ``labels`` (1 spam, 0 ham).

    The same data, seed and config give identical probabilities. Out-of-fold decision
    values (``config.folds`` folds; by ``groups`` when given, e.g. the site or source of
    each record) calibrate the model and choose its thresholds, and their metrics at the
    spam threshold are returned in ``metadata["metrics"]`` (prefixed ``cv_``): nothing is
    measured on data the final model was fitted on. The vocabulary and idf are fitted on
    all the data before the folds; they use no labels. Raises ``ValueError`` unless both
    classes are present.
    """
    cfg = config or ModelConfig()
    say = progress or (lambda _message: None)
    y = np.asarray(labels, dtype=np.int64)
    if len(records) != y.size:
        raise ValueError(f"{len(records)} records but {y.size} labels")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("training needs both spam and ham")
    started = time.perf_counter()
    features_cfg = cfg.features
    if y.size < 50 * features_cfg.min_df:
        # On a handful of comments min_df would prune nearly every n-gram.
        features_cfg = FeatureConfig(**{**_fields(features_cfg), "min_df": 1})
    union = build_features(features_cfg)
    say(f"extracting features from {y.size} comments")
    matrix = union.fit_transform(list(records))
    say(f"{matrix.shape[1]} features; cross-validating")
    folds = _folds(y, groups, cfg.folds if y.size < cfg.large else cfg.large_folds, seed)
    linear = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter)
    decisions = cross_val_predict(
        linear, matrix, y, cv=folds, method="decision_function", n_jobs=cfg.n_jobs
    )
    a, b = _platt(np.asarray(decisions), y)
    oof = 1.0 / (1.0 + np.exp(-(a * decisions + b)))
    thresholds = choose_thresholds(
        y,
        oof,
        max_fpr=cfg.max_fpr,
        hold_recall=cfg.hold_recall,
        hold_margin=cfg.hold_margin,
        hold_floor=cfg.hold_floor,
        discard_fpr=cfg.discard_fpr,
    )
    metrics = compute_metrics(y, oof, thresholds.spam)
    say("fitting the final model")
    linear.fit(matrix, y)
    linear.coef_ = linear.coef_ * a
    linear.intercept_ = linear.intercept_ * a + b
    pipeline = Pipeline([("features", union), ("linear", linear)])
    metadata: dict[str, Any] = {
        "thresholds": thresholds.to_dict(),
        "metrics": metrics.finite("cv_"),
        "training_size": int(y.size),
        "training_fingerprint": dataset_fingerprint(records, [int(v) for v in y]),
        "notes": {
            "seed": seed,
            "folds": len(folds),
            "grouped_folds": groups is not None and len(set(groups)) >= 3,
            "features": int(matrix.shape[1]),
            "c": cfg.c,
            "platt": [a, b],
            "train_seconds": round(time.perf_counter() - started, 3),
        },
    }
    say(f"done in {metadata['notes']['train_seconds']} s")
    return Classifier(pipeline, metadata)


def _fields(config: FeatureConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__slots__}


# --- artifacts ------------------------------------------------------------------------

BUNDLED_PATH: Final = Path(__file__).with_name("bundled") / "classifier.skops"
"""The classifier shipped with Commentguard, built by ``make classifier``."""


def save_classifier(
    classifier: Classifier, path: Path | str, *, signing_key: bytes | None = None
) -> ArtifactMetadata:
    """Write ``classifier`` as an artifact (pipeline + metadata); returns the metadata
    written, whose ``version`` is new."""
    meta = classifier.metadata
    metadata = ArtifactMetadata.create(
        training_size=int(meta["training_size"]),
        training_fingerprint=str(meta["training_fingerprint"]),
        metrics=meta["metrics"],
        thresholds=meta["thresholds"],
        notes=meta.get("notes", {}),
    )
    save_artifact(path, classifier.pipeline, metadata, signing_key=signing_key)
    return metadata


def load_classifier(
    path: Path | str | None = None, *, signing_key: bytes | None = None
) -> Classifier:
    """Load an artifact (the bundled classifier when ``path`` is None) and compile its
    fast path. Raises the :class:`~service.classifier.artifacts.ArtifactError` subclasses
    of :func:`~service.classifier.artifacts.load_artifact`."""
    estimator, metadata = load_artifact(path or BUNDLED_PATH, signing_key=signing_key)
    return Classifier(estimator, metadata.to_dict())
