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
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GroupKFold,
    LeaveOneGroupOut,
    StratifiedKFold,
    cross_val_predict,
)
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline

from service.classifier.artifacts import (
    ArtifactMetadata,
    dump_artifact,
    load_artifact,
    load_artifact_bytes,
    save_artifact,
)
from service.classifier.datasets import dataset_fingerprint
from service.classifier.evaluation import Thresholds, choose_thresholds, compute_metrics
from service.classifier.features import (
    ANONYMOUS,
    LINK_MARK,
    PATH_MARK,
    QUERY_MARK,
    SELF_MARK,
    STAT_NAMES,
    FeatureConfig,
    PreparedRecords,
    StatValue,
    author_text,
    build_features,
    content_and_stat_pairs,
    describe_stat,
)
from service.classifier.types import CommentRecord, Reason, Score

__all__ = [
    "BUNDLED_PATH",
    "Classifier",
    "ModelConfig",
    "classifier_bytes",
    "load_classifier",
    "load_classifier_bytes",
    "save_classifier",
    "train",
]

MAX_REASONS: Final = 5
"""Reasons reported per direction."""

MIN_REASON_WEIGHT: Final = 0.01
"""Contributions smaller than this (in log-odds) are noise, not reasons."""

MIN_KNOWN_WORDS: Final = 3
MIN_KNOWN_SHARE: Final = 0.5
"""The evidence a comment needs before it may be marked spam: at least this many of its
word tokens (occurrences, links' marks and hosts included) in the classifier's word
vocabulary, and at least this share of them. A comment with less (a word or two, text
in a language or a register the training data never had) is unlike anything the
classifier learnt from, so its score says little: it is held for a person instead of
marked spam (see :meth:`Classifier.score`)."""

WEAK_EVIDENCE_FEATURE: Final = "evidence:weak"
"""The reason key of a score lowered for weak evidence."""

_GRAM_CACHE_SIZE: Final = 100_000
_REASON_CACHE_SIZE: Final = 20_000
_BATCH: Final = 32
"""Comments whose char n-grams go through numpy together in score_many(): enough that
the numpy calls cost a fraction per comment, few enough that what the batch holds
meanwhile does not set the garbage collector off more often."""
_SCRATCH_SIZE: Final = 1 << 19
"""Counts (of n-grams in comments) a thread's scratch array holds: as many comments'
char vocabularies side by side as fit, so that one pass counts several comments."""
_ONE: Final = np.intp(1)
_MAX_SHOWN: Final = 30
_LINK_BIGRAM: Final = LINK_MARK + " "
_SHAPE_PREFIXES: Final = (PATH_MARK, QUERY_MARK)
_WORDLIKE: Final = re.compile(r"^[^\W_]+(?:['’.\-][^\W_]+)*$")
_EDGE_PUNCT: Final = re.compile(r"^\W+|\W+$")
_LETTER: Final = re.compile(r"[^\W\d_]")

Progress = Callable[[str], None]
_Word = tuple[str, tuple[str, ...], "np.ndarray[Any, np.dtype[np.intp]]"]
"""Per distinct whitespace word: its reason key, its word tokens, its char n-gram columns."""

_Found = tuple[str, int, float]
"""A word n-gram found in a comment: its name (the term, or a phrase's reason key), its
count, its contribution before the norm."""

_Term = tuple[float, float, float, float, int, _Found]
"""Per word n-gram of the vocabulary: idf, weight (coefficient times block weight),
idf * idf (its value squared when it occurs once), idf * weight, its kind (below), and
its :data:`_Found` when it occurs once (made once, not per comment)."""

_UNIGRAM: Final = 0
_LINKED: Final = 1
_SHAPED: Final = 2
_PHRASE: Final = 3
"""Kinds of word n-gram: a unigram and a bigram that belongs to a link (its mark's bigram,
or one with a link's shape word) are credited to the words they sit in; any other bigram
is a reason of its own."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Training knobs. ``c`` is the inverse L2 strength of the logistic regression;
    ``folds`` the cross-validation folds for calibration and thresholds; ``max_fpr`` the
    false-positive rate the spam threshold targets on out-of-fold scores; ``hold_recall``,
    ``hold_margin``, ``hold_floor`` and ``max_held`` (the share of each source's ham the
    hold band may take) place the hold threshold (see
    :func:`~service.classifier.evaluation.choose_thresholds`); ``nb_blend`` stacks a
    multinomial naive Bayes (smoothing ``nb_alpha``) with the logistic regression (see
    :func:`train`). From ``large``
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
    max_held: float | None = 0.05
    discard_fpr: float = 0.001
    max_iter: int = 3000
    nb_blend: bool = True
    nb_alpha: float = 1.0
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


def _is_shape_bigram(bigram: str, marks: tuple[str, ...]) -> bool:
    first, _, second = bigram.partition(" ")
    return first.startswith(marks) or second.startswith(marks)


def _term_table(
    vec: TfidfVectorizer, coef: np.ndarray, weight: float, marks: tuple[str, ...]
) -> dict[str, _Term]:
    """term -> :data:`_Term` for the word block: everything the scoring loop needs that
    depends on the term alone, worked out once when the classifier is loaded."""
    idf = np.asarray(vec.idf_, dtype=np.float64)
    w = coef * weight
    # numpy's products are the same IEEE products the scoring loop would compute.
    columns = zip(idf.tolist(), w.tolist(), (idf * idf).tolist(), (idf * w).tolist(), strict=True)
    terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
    table: dict[str, _Term] = {}
    for term, (i, wi, ii, iw) in zip(terms, columns, strict=True):
        if " " not in term:
            table[term] = (i, wi, ii, iw, _UNIGRAM, (term, 1, iw))
        elif term.startswith(_LINK_BIGRAM):
            table[term] = (i, wi, ii, iw, _LINKED, (term, 1, iw))
        elif marks and _is_shape_bigram(term, marks):
            table[term] = (i, wi, ii, iw, _SHAPED, (term, 1, iw))
        else:
            table[term] = (i, wi, ii, iw, _PHRASE, (f"phrase:{term}", 1, iw))
    return table


class _Parsed(NamedTuple):
    """A comment scored but for its char n-grams (which a batch weighs at once): its
    words' entries and reason keys, their word n-gram totals, the weights of every other
    reason, and its dense features' (value, raw) pairs in one flat tuple. (A batch holds
    hundreds of these at once: few objects each, so that the garbage collector, which
    counts objects, is not set off by them.)"""

    entries: list[_Word]
    keys: list[str]
    totals: list[float]
    weights: dict[str, float]
    stats: tuple[float, ...]
    known: int
    tokens: int


class _WordCache(dict[str, _Word]):
    """Each distinct whitespace word's :data:`_Word`, made on first sight by ``make``;
    cleared when full. Its ``__getitem__`` is a dict lookup in C on a hit."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[str], _Word]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, word: str) -> _Word:
        entry = self._make(word)
        if len(self) >= _GRAM_CACHE_SIZE:
            self.clear()
        self[word] = entry
        return entry


def _display(word: str) -> str:
    """How a whitespace word is named in its feature key and phrase: without the
    punctuation at its edges when what remains reads as a word, else whole."""
    stripped = _EDGE_PUNCT.sub("", word)
    if stripped and _WORDLIKE.match(stripped):
        return stripped
    return word


def _quoted(text: str) -> str:
    return f"'{text}'" if len(text) <= _MAX_SHOWN else f"'{text[: _MAX_SHOWN - 1]}…'"


def _word_phrase(key: str) -> str:
    if key == LINK_MARK:
        return "a link"
    if key == SELF_MARK:
        return "a link to the page itself"
    if _WORDLIKE.match(key) and _LETTER.search(key):
        return f"the word {_quoted(key)}"
    if _LETTER.search(key):
        return f"the text {_quoted(key)}"
    digits = sum(ch.isdigit() for ch in key)
    if digits:
        return f"a {digits}-digit number"
    return f"the characters {_quoted(key)}"


def _phrase_phrase(bigram: str) -> str:
    first, _, second = bigram.partition(" ")
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


_LINK_STATS: Final = frozenset({"links", "link_domains", "link_share", "shortener", "ip_host"})
_STAT_INDEX: Final = {name: i for i, name in enumerate(STAT_NAMES)}


def _stat_key(name: str, raw: float, site: str | None) -> str:
    """The reason a dense feature is reported under. Features that state one fact are
    merged, so a moderator never reads it twice: the link count, linked domains and link
    share (and, when absent, the shortener and IP-address flags) are one "links" reason;
    a very short text is a length; a given author website joins the reason of that
    website's host."""
    if name in _LINK_STATS:
        if name in ("shortener", "ip_host") and raw:
            return f"stat:{name}"
        return "stat:links"
    if name == "short":
        return "stat:length"
    if name == "author_url" and site is not None:
        return f"author:site:{site}"
    return f"stat:{name}"


def _fixed_stat_key(name: str) -> str | None:
    """:func:`_stat_key` of a dense feature whose key depends on neither its value nor the
    author; None for the others."""
    if name in ("shortener", "ip_host", "author_url"):
        return None
    return _stat_key(name, 0.0, None)


def _links_phrase(stats: Sequence[StatValue]) -> str:
    links = int(stats[_STAT_INDEX["links"]].raw)
    if not links:
        return "no links"
    domains = int(stats[_STAT_INDEX["link_domains"]].raw)
    share = stats[_STAT_INDEX["link_share"]].raw
    phrase = "1 link" if links == 1 else f"{links} links"
    if domains > 1:
        phrase += f" to {domains} domains"
    return f"{phrase}, {share:.0%} of the text"


def _stat_phrase(name: str, stats: Sequence[StatValue]) -> str:
    if name == "links":
        return _links_phrase(stats)
    if name == "length":
        short = stats[_STAT_INDEX["short"]]
        if short.value:
            return f"a very short text ({int(short.raw)} characters)"
    return describe_stat(name, stats[_STAT_INDEX[name]])


def _key_phrase(feature: str) -> str:
    """The phrase of a reason key that is not a dense feature's."""
    kind, _, value = feature.partition(":")
    if kind == "word":
        return _word_phrase(value)
    if kind == "link":
        return f"a link to {value}" if value else "a link"
    if kind == "phrase":
        return _phrase_phrase(value)
    if kind == "author":
        return _author_phrase(value)
    raise KeyError(feature)


_PHRASES: dict[str, str] = {}
"""Phrases of reason keys, built once per key (they depend on the key alone)."""

_NEW_REASON: Final = Reason.__new__
_SET_PHRASE: Final = vars(Reason)["phrase"].__set__
_SET_WEIGHT: Final = vars(Reason)["weight"].__set__
_SET_FEATURE: Final = vars(Reason)["feature"].__set__


def _reason(phrase: str, weight: float, feature: str) -> Reason:
    """``Reason(phrase, weight, feature)``: the same object, set through its slots rather
    than the frozen dataclass's ``__init__`` (three ``object.__setattr__`` calls), in
    half the time; about ten are made per comment scored. A test holds the two equal."""
    reason = _NEW_REASON(Reason)
    _SET_PHRASE(reason, phrase)
    _SET_WEIGHT(reason, weight)
    _SET_FEATURE(reason, feature)
    return reason


_PHRASE_READS: Final = {
    "links": tuple(2 * _STAT_INDEX[n] + 1 for n in ("links", "link_domains", "link_share")),
    "length": (
        2 * _STAT_INDEX["short"],
        2 * _STAT_INDEX["short"] + 1,
        2 * _STAT_INDEX["length"] + 1,
    ),
    **{name: (2 * i + 1,) for i, name in enumerate(STAT_NAMES) if name not in ("links", "length")},
}
"""Where, in the flat (value, raw) pairs of the dense features, the numbers a dense
reason's phrase reads are (see :func:`_stat_phrase`)."""

_READERS: Final = {name: itemgetter(*reads) for name, reads in _PHRASE_READS.items()}
"""Per dense reason's name: the numbers its phrase reads, from the flat pairs."""

_STAT_PHRASES: dict[tuple[str, Any], str] = {}
"""Phrases of dense reasons, built once per name and numbers read."""

_SHARED_KINDS: Final = ("stat:", "author:")
_SHARED_REASONS: dict[tuple[str, float, str], Reason] = {}
"""Reasons of the dense features and of the author, which recur with the very same
weight and phrase in comment after comment (no links, a first-time author, the same
author's tokens: their weights depend on a few discrete numbers, not on the rest of the
comment), made once and shared: a :class:`Reason` is immutable. A comment's other
reasons are made anew. Each reason kept to the end of a batch is one more object for
the garbage collector's full passes to walk, and about half the reasons of a comment
are these."""


class _Contributions:
    """Contributions to the log-odds, summed per reason key (``kind:value``). Phrases are
    only built for the reasons reported, from the key (and, for the dense features, from
    their values)."""

    __slots__ = ("known", "stats", "tokens", "total", "weights")

    def __init__(
        self, weights: dict[str, float], stats: tuple[float, ...], known: int, tokens: int
    ) -> None:
        self.weights = weights
        self.known = known
        """How many of the comment's word tokens the word vocabulary holds, of ``tokens``."""
        self.tokens = tokens
        self.stats = stats
        """The dense features' (value, raw) pairs, flattened."""
        # Exact whatever the order of the weights (fsum rounds the exact sum once).
        self.total = math.fsum(weights.values())

    def phrase(self, feature: str) -> str:
        """The moderator's phrase for one reason key."""
        if feature.startswith("stat:"):
            name = feature[5:]
            flat = self.stats
            read = (name, _READERS[name](flat))
            phrase = _STAT_PHRASES.get(read)
            if phrase is None:
                stats = [StatValue(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
                phrase = _stat_phrase(name, stats)
                if len(_STAT_PHRASES) >= _GRAM_CACHE_SIZE:
                    _STAT_PHRASES.clear()
                _STAT_PHRASES[read] = phrase
            return phrase
        phrase = _PHRASES.get(feature)
        if phrase is None:
            phrase = _key_phrase(feature)
            if len(_PHRASES) >= _GRAM_CACHE_SIZE:
                _PHRASES.clear()
            _PHRASES[feature] = phrase
        return phrase

    def weak(self) -> bool:
        """Whether the comment has too little evidence to be marked spam (see
        :data:`MIN_KNOWN_WORDS`)."""
        return self.known < MIN_KNOWN_WORDS or self.known < MIN_KNOWN_SHARE * self.tokens

    def reasons(self) -> tuple[Reason, ...]:
        """The strongest contributions toward spam, then toward ham (ties by key)."""
        weights = self.weights
        # Only weights at least as strong as the fifth strongest either way can be
        # reported; sorting the floats first (in C) leaves few tuples to build and sort.
        high, low = MIN_REASON_WEIGHT, -MIN_REASON_WEIGHT
        if len(weights) > MAX_REASONS:
            ordered = sorted(weights.values())
            high = max(high, ordered[-MAX_REASONS])
            low = min(low, ordered[MAX_REASONS - 1])
        items = weights.items()
        spam = sorted([(-w, f) for f, w in items if w >= high])[:MAX_REASONS]
        ham = sorted([(w, f) for f, w in items if w <= low])[:MAX_REASONS]
        reason = self.reason
        return (*[reason(f, -w) for w, f in spam], *[reason(f, w) for w, f in ham])

    def reason(self, feature: str, weight: float) -> Reason:
        """The :class:`Reason` of one key and its weight (shared, for the kinds of
        :data:`_SHARED_REASONS`)."""
        phrase = self.phrase(feature)
        if not feature.startswith(_SHARED_KINDS):
            return _reason(phrase, weight, feature)
        key = (phrase, weight, feature)
        made = _SHARED_REASONS.get(key)
        if made is None:
            made = _reason(phrase, weight, feature)
            if len(_SHARED_REASONS) >= _REASON_CACHE_SIZE:
                _SHARED_REASONS.clear()
            _SHARED_REASONS[key] = made
        return made


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
        # How the text blocks normalise links: set by the word block, checked by the rest.
        self._url_shapes = self._self_links = self._split_punctuation = False
        for name, transformer in features.transformer_list:
            weight = float(weights.get(name, 1.0))
            if name == "stats":
                width = len(STAT_NAMES)
                self._stats = list(
                    zip(
                        STAT_NAMES,
                        (coef[offset : offset + width] * weight).tolist(),
                        [float(mean) for mean in transformer.means_],
                        map(_fixed_stat_key, STAT_NAMES),
                        strict=True,
                    )
                )
                if bool(transformer.self_links) != self._self_links:
                    raise ValueError("the stats and n-gram blocks count links differently")
            else:
                vec: TfidfVectorizer = transformer.named_steps["tfidf"]
                width = len(vec.vocabulary_)
                if name == "author":
                    tables[name] = _ngram_table(vec, coef[offset : offset + width], weight)
                if name == "word":
                    self._url_shapes = bool(transformer.named_steps["text"].url_shapes)
                    self._self_links = bool(transformer.named_steps["text"].self_links)
                    self._split_punctuation = bool(
                        transformer.named_steps["text"].split_punctuation
                    )
                    word_block = (vec, coef[offset : offset + width], weight)
                    self._word_token = re.compile(vec.token_pattern)
                    if vec.ngram_range != (1, 2) or vec.analyzer != "word":
                        raise ValueError(f"unsupported word n-grams {vec.ngram_range}")
                elif name == "char":
                    text = transformer.named_steps["text"]
                    if (
                        bool(text.url_shapes),
                        bool(text.self_links),
                        bool(text.split_punctuation),
                    ) != (self._url_shapes, self._self_links, self._split_punctuation):
                        raise ValueError("the word and char blocks normalise links differently")
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
        # Words standing for a link's shape or for a link to the page itself: a bigram
        # holding one is credited to that word's reason, not reported as a phrase.
        self._marks = (_SHAPE_PREFIXES if self._url_shapes else ()) + (
            (SELF_MARK,) if self._self_links else ()
        )
        self._terms = _term_table(*word_block, self._marks)
        # Words recur across comments (and across the comments of a batch): each distinct
        # whitespace word's key, word tokens and char n-gram columns are computed once.
        self._word_cache = _WordCache(self._new_entry)
        self._entry: Callable[[str], _Word] = self._word_cache.__getitem__
        self._scratch = threading.local()
        self._slots = max(1, _SCRATCH_SIZE // self._char_idf.size)
        self._author_cache: dict[
            tuple[str | None, str | None, str | None],
            tuple[tuple[tuple[str, float], ...], str | None],
        ] = {}
        self._author = tables["author"]
        # The weak-evidence rule (see score()): what reaches the spam threshold is lowered
        # to the middle of the hold band.
        thresholds = self.thresholds
        self._spam_cut = thresholds.spam
        self._weak_cap = (
            (thresholds.hold + thresholds.spam) / 2
            if thresholds.hold < thresholds.spam
            else float(np.nextafter(thresholds.spam, 0.0))
        )
        self._weak_log_odds = math.log(self._weak_cap / (1.0 - self._weak_cap))

    @property
    def thresholds(self) -> Thresholds:
        """The decision thresholds chosen at training."""
        t = self.metadata["thresholds"]
        return Thresholds(hold=float(t["hold"]), spam=float(t["spam"]), discard=float(t["discard"]))

    # --- scoring ----------------------------------------------------------------------

    def score(self, record: CommentRecord) -> Score:
        """The calibrated spam probability of ``record`` with its strongest reasons toward
        spam (strongest first), then toward ham.

        A comment with weak evidence (see :data:`MIN_KNOWN_WORDS`) is never scored at or
        above the spam threshold: a probability that would reach it is lowered to the
        middle of the hold band (between the hold and spam thresholds), so the comment
        is held for a person, and the reason "little evidence" says so with the amount
        it was lowered by (in log-odds; the reasons still add up to the score)."""
        return self._score(self._contributions(record))

    def score_many(self, records: Sequence[CommentRecord]) -> list[Score]:
        """:meth:`score` for each record, in order (identical results; the per-word caches
        make a batch cheaper per comment than scoring its comments one by one cold, and
        the char n-grams of a batch are weighed in one numpy pass)."""
        return [self._score(c) for c in self._contributions_of(records)]

    def probabilities(self, records: Sequence[CommentRecord]) -> list[float]:
        """:meth:`score`'s probabilities, through the fast path (no reasons are built)."""
        intercept, cap, weak_cap = self._intercept, self._spam_cut, self._weak_cap
        found = []
        for c in self._contributions_of(records):
            p = _sigmoid(intercept + c.total)
            found.append(weak_cap if p >= cap and c.weak() else p)
        return found

    def model_probabilities(self, records: Sequence[CommentRecord]) -> list[float]:
        """The model's own calibrated probabilities through the fast path, without the
        weak-evidence rule (equal to :meth:`sklearn_probabilities`)."""
        intercept = self._intercept
        return [_sigmoid(intercept + c.total) for c in self._contributions_of(records)]

    def _score(self, c: _Contributions) -> Score:
        log_odds = self._intercept + c.total
        probability = _sigmoid(log_odds)
        if probability < self._spam_cut or not c.weak():
            return Score(probability, c.reasons())
        lowered = _reason(
            f"little evidence: {c.known} of {c.tokens} words known to the classifier "
            "(held for a person, not marked spam)",
            self._weak_log_odds - log_odds,
            WEAK_EVIDENCE_FEATURE,
        )
        reasons = c.reasons()
        spam = [r for r in reasons if r.weight > 0]
        return Score(self._weak_cap, (*spam, lowered, *reasons[len(spam) :]))

    def sklearn_probabilities(self, records: Sequence[CommentRecord]) -> np.ndarray:
        """Probabilities through the scikit-learn pipeline itself: the reference the fast
        path must match, and the faster route for large offline batches."""
        return np.asarray(self.pipeline.predict_proba(list(records))[:, 1], dtype=np.float64)

    def _new_entry(self, word: str) -> _Word:
        return (
            f"word:{_display(word)}",
            tuple(self._word_token.findall(word)),
            self._char_columns(word),
        )

    def _contributions(self, record: CommentRecord) -> _Contributions:
        parsed = self._parse(record)
        return self._combine(parsed, self._char_sums_one(parsed.entries))

    def _contributions_of(self, records: Sequence[CommentRecord]) -> Iterator[_Contributions]:
        """:meth:`_contributions` of each record, in order; the char n-grams of up to
        :data:`_BATCH` records at a time are weighed together."""
        parse, combine = self._parse, self._combine
        for start in range(0, len(records), _BATCH):
            parsed = [parse(record) for record in records[start : start + _BATCH]]
            sums = self._char_sums([p.entries for p in parsed])
            for one, chars in zip(parsed, sums, strict=True):
                yield combine(one, chars)

    def _parse(self, record: CommentRecord) -> _Parsed:
        """Everything of ``record``'s contributions but its char n-grams (:class:`_Parsed`)."""
        weights: dict[str, float] = {}
        text, stats, hosts = content_and_stat_pairs(
            record,
            url_shapes=self._url_shapes,
            self_links=self._self_links,
            split_punctuation=self._split_punctuation,
        )
        # The word and char vectorizers lower-case alike; content_text has already made
        # every whitespace run one space, so split() gives the words both analyzers see.
        words = self._char_preprocess(text).split()
        entry = self._entry
        entries = [entry(word) for word in words]
        keys = [e[0] for e in entries]
        if hosts and LINK_MARK in text:
            # A link is one reason: its mark and its host both count for "a link to
            # host", named by the host as written (the text has its digits as 0s). The
            # marks are the links in order; a text that spells "xurl" itself keeps the
            # normalised host.
            marks = [i for i in range(len(words) - 1) if words[i] == LINK_MARK]
            shown = hosts if len(marks) == len(hosts) else [words[i + 1] for i in marks]
            for i, host in zip(marks, shown, strict=True):
                keys[i] = keys[i + 1] = f"link:{host}"
                # The link's shape words belong to the link too.
                j = i + 2
                while j < len(words) and words[j].startswith(_SHAPE_PREFIXES):
                    keys[j] = keys[i]
                    j += 1
        totals = [0.0] * len(words)
        known, tokens = self._add_words(entries, totals, weights)
        # The author's and the dense features' reasons never share a key with a word's,
        # a link's or a phrase's, so adding them before the words' char n-grams changes
        # no sum, only the order of the keys.
        site = self._add_author(record, weights)
        given = site if record.author_url else None
        for (name, w, mean, fixed), value, raw in zip(
            self._stats, stats[::2], stats[1::2], strict=True
        ):
            contribution = w * (value - mean)
            if contribution:
                key = fixed or _stat_key(name, raw, given)
                weights[key] = weights.get(key, 0.0) + contribution
        return _Parsed(entries, keys, totals, weights, stats, known, tokens)

    def _combine(self, parsed: _Parsed, chars: list[float]) -> _Contributions:
        """The contributions of a parsed comment, given its words' char n-gram sums."""
        _, keys, totals, weights, stats, known, tokens = parsed
        for key, total, char in zip(keys, totals, chars, strict=True):
            if char:
                total += char
            if total:
                weights[key] = weights.get(key, 0.0) + total
        return _Contributions(weights, stats, known, tokens)

    def _add_words(
        self, entries: list[_Word], totals: list[float], weights: dict[str, float]
    ) -> tuple[int, int]:
        """Word unigrams and bigrams (sklearn's analyzer: tokens of ``token_pattern``,
        which never cross whitespace, so the text's tokens are its words' tokens in
        order). A unigram's weight is shared among its occurrences, each credited to the
        whitespace word it sits in, so "bit.ly" gathers "bit" and "ly"; a bigram is a
        reason of its own, except that a link mark's bigram belongs to the link. Returns
        how many token occurrences the vocabulary holds, and how many there are."""
        tokens = [token for e in entries for token in e[1]]
        if not tokens:
            return 0, 0
        known = 0
        # Counted in C, tokens first, then bigrams (in order of first occurrence, as
        # sklearn's analyzer lists them), which fixes the order the norm is summed in.
        counts = Counter(chain(tokens, map(" ".join, pairwise(tokens))))
        lookup = self._terms.get
        shared: list[_Found] = []
        phrases: list[_Found] = []
        square = 0.0
        link_bigrams = shape_bigrams = False
        for term, count in counts.items():
            hit = lookup(term)
            if hit is None:
                continue
            if hit[4] == _UNIGRAM:
                known += count
            if count == 1:
                # The common case: sublinear tf is 1, so value = idf; no log, no product.
                square += hit[2]
                found = hit[5]
            else:
                value = (1.0 + math.log(count)) * hit[0]
                square += value * value
                found = (hit[5][0], count, value * hit[1])
            kind = hit[4]
            if kind == _UNIGRAM:
                shared.append(found)
            elif kind == _PHRASE:
                phrases.append(found)
            else:
                shared.append(found)
                link_bigrams = link_bigrams or kind == _LINKED
                shape_bigrams = shape_bigrams or kind == _SHAPED
        evidence = known, len(tokens)
        if not (shared or phrases):
            return evidence
        norm = math.sqrt(square)
        for key, _, contribution in phrases:
            weights[key] = weights.get(key, 0.0) + contribution / norm
        if not shared:
            return evidence
        shares = {term: contribution / norm / count for term, count, contribution in shared}
        get = shares.get
        for i, e in enumerate(entries):
            for token in e[1]:
                share = get(token)
                if share is not None:
                    totals[i] += share
        if link_bigrams:
            # Each occurrence of "xurl <token>" is credited to its link mark's word.
            mark = -1
            for i, e in enumerate(entries):
                for token in e[1]:
                    if mark >= 0:
                        share = get(f"{LINK_MARK} {token}")
                        if share is not None:
                            totals[mark] += share
                    mark = i if token == LINK_MARK else -1
        if shape_bigrams:
            # A bigram with a link's shape word in it is credited to that word (whose
            # reason is its link's); one with the page's own link mark, to that mark.
            marks = self._marks
            before, owner = "", -1
            for i, e in enumerate(entries):
                for token in e[1]:
                    shaped = token.startswith(marks)
                    if owner >= 0 and (shaped or before.startswith(marks)):
                        share = get(f"{before} {token}")
                        if share is not None:
                            totals[i if shaped else owner] += share
                    before, owner = token, i
        return evidence

    def _char_sums(self, batch: Sequence[Sequence[_Word]]) -> list[list[float]]:
        """Per comment of ``batch`` (its words' entries), per word: the contribution of
        the comment's char n-grams credited to that word.

        As sklearn's char_wb TF-IDF computes it, comment by comment: an n-gram's value
        is ``(1 + log count) * idf``, L2-normalised over the comment's distinct n-grams;
        its contribution (value times coefficient over the norm) is shared among its
        occurrences, each credited to the word it lies in (char_wb n-grams never cross
        words). The whole batch goes through numpy at once; only the counts (a few
        comments per pass) and each comment's norm are worked out per comment, with the
        same operations in the same order, so a comment's figures do not depend on the
        batch it is in."""
        arrays = [e[2] for entries in batch for e in entries]
        sizes = np.fromiter(map(len, arrays), dtype=np.intp, count=len(arrays))
        if not sizes.any():
            return [[0.0] * len(entries) for entries in batch]
        every = np.concatenate(arrays)
        # Where each comment's words and n-gram occurrences start and end.
        word_bounds = np.zeros(len(batch) + 1, dtype=np.intp)
        np.cumsum([len(entries) for entries in batch], out=word_bounds[1:])
        starts = np.zeros(len(arrays) + 1, dtype=np.intp)
        np.cumsum(sizes, out=starts[1:])
        bounds = starts[word_bounds].tolist()
        counts = self._counts(every, bounds)
        values = (1.0 + np.log(counts)) * self._char_idf[every]
        # The L2 norm over distinct n-grams: an n-gram seen k times adds k * value**2 / k.
        scaled = values / counts
        dot = np.dot
        norms = [
            math.sqrt(float(dot(values[lo:hi], scaled[lo:hi]))) if hi > lo else 1.0
            for lo, hi in pairwise(bounds)
        ]
        shares = values * self._char_coef[every] / counts / np.repeat(norms, np.diff(bounds))
        owner = np.repeat(np.arange(len(arrays)), sizes)
        sums = np.bincount(owner, weights=shares, minlength=len(arrays)).tolist()
        return [sums[lo:hi] for lo, hi in pairwise(word_bounds.tolist())]

    def _char_sums_one(self, entries: Sequence[_Word]) -> list[float]:
        """``_char_sums([entries])[0]``, the same operations without the batch's
        bookkeeping (fewer numpy calls: this is what one score() pays)."""
        sizes = [e[2].size for e in entries]
        if not any(sizes):
            return [0.0] * len(sizes)
        every = np.concatenate([e[2] for e in entries])
        counts = self._counts(every, [0, every.size])
        values = (1.0 + np.log(counts)) * self._char_idf[every]
        norm = math.sqrt(float(np.dot(values, values / counts)))
        shares = values * self._char_coef[every] / counts / norm
        owner = np.repeat(np.arange(len(sizes)), sizes)
        sums: list[float] = np.bincount(owner, weights=shares, minlength=len(sizes)).tolist()
        return sums

    def _counts(
        self, every: np.ndarray[Any, np.dtype[np.intp]], bounds: list[int]
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Each n-gram occurrence's count within its comment (comment ``i`` is
        ``every[bounds[i]:bounds[i + 1]]``), through a per-thread scratch array of counts
        (zero between calls), which is cheaper than sorting: ``slots`` comments at a time,
        each counting in its own stretch of the scratch array."""
        width, slots = self._char_idf.size, self._slots
        scratch = self._scratch.__dict__.get("counts")
        if scratch is None:
            scratch = self._scratch.counts = np.zeros(width * slots, dtype=np.intp)
        comments = len(bounds) - 1
        keys = every
        if slots > 1 and comments > 1:
            keys = every + np.repeat(np.arange(comments) % slots * width, np.diff(bounds))
        counts = np.empty(every.size, dtype=np.float64)
        edges = [*bounds[:-1:slots], bounds[-1]]
        try:
            for lo, hi in pairwise(edges):
                part = keys[lo:hi]
                np.add.at(scratch, part, _ONE)
                counts[lo:hi] = scratch[part]
                scratch[part] = 0
        except BaseException:
            scratch.fill(0)
            raise
        return counts

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

    def _add_author(self, record: CommentRecord, weights: dict[str, float]) -> str | None:
        """Adds the author tokens' contributions; returns the author website's host, if
        any, whose reason the dense "author gave a website" feature joins. Authors recur,
        so each distinct (name, email, website) is worked out once."""
        identity = (record.author_name, record.author_email, record.author_url)
        cache = self._author_cache
        known = cache.get(identity)
        if known is None:
            known = self._author_contributions(record)
            if len(cache) >= _GRAM_CACHE_SIZE:
                cache.clear()
            cache[identity] = known
        contributions, site = known
        for key, contribution in contributions:
            weights[key] = weights.get(key, 0.0) + contribution
        return site

    def _author_contributions(
        self, record: CommentRecord
    ) -> tuple[tuple[tuple[str, float], ...], str | None]:
        counts = Counter(self._author_analyzer(author_text(record)))
        site = next((t[5:] for t in counts if t.startswith("site:")), None)
        found: list[tuple[str, float]] = []
        square = 0.0
        for token, count in counts.items():
            entry = self._author.get(token)
            if entry is None:
                continue
            value = (1.0 + math.log(count)) * entry[0]
            square += value * value
            found.append((token, value * entry[1]))
        if not found:
            return (), site
        norm = math.sqrt(square)
        return tuple((f"author:{token}", c / norm) for token, c in found), site


# --- training -------------------------------------------------------------------------


MAX_GROUP_FOLDS: Final = 10
"""Up to this many groups, each is held out on its own in the cross-validation."""


def _folds(labels: np.ndarray, groups: Sequence[str] | None, n_folds: int, seed: int) -> list[Any]:
    """Cross-validation splits: by group when there are at least three groups (scores on
    an unseen group mimic a new site or a new kind of comment): each group held out on
    its own when there are at most :data:`MAX_GROUP_FOLDS`, else ``n_folds`` folds of
    groups; else stratified and shuffled by ``seed``."""
    smallest = int(min(np.sum(labels == 0), np.sum(labels == 1)))
    if groups is not None and len(set(groups)) >= 3:
        if len(set(groups)) <= MAX_GROUP_FOLDS:
            return list(LeaveOneGroupOut().split(labels, labels, groups=list(groups)))
        splitter = GroupKFold(n_splits=min(n_folds, len(set(groups))))
        return list(splitter.split(labels, labels, groups=list(groups)))
    k = max(2, min(n_folds, smallest))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(labels, labels))


def _calibrate(
    decisions: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[list[float], float]:
    """Weights ``a`` and intercept ``b`` such that ``expit(decisions @ a + b)`` is
    calibrated on these out-of-fold decisions (one column: Platt scaling; two: a stacked
    blend of the models, calibrated at once)."""
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(decisions, labels, sample_weight=weights)
    return [float(v) for v in fit.coef_[0]], float(fit.intercept_[0])


def _nb_log_odds(nb: MultinomialNB) -> tuple[np.ndarray, float]:
    """A fitted naive Bayes' log-odds of spam as a linear function: (weights, intercept).
    Exact: log P(spam|x) - log P(ham|x) = x . (log theta_spam - log theta_ham) + prior."""
    weights = nb.feature_log_prob_[1] - nb.feature_log_prob_[0]
    return np.asarray(weights, dtype=np.float64), float(
        nb.class_log_prior_[1] - nb.class_log_prior_[0]
    )


def train(
    records: Sequence[CommentRecord],
    labels: Sequence[int],
    *,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    config: ModelConfig | None = None,
    progress: Progress | None = None,
    sample_weight: Sequence[float] | None = None,
    threshold_on: Sequence[bool] | None = None,
) -> Classifier:
    """Fit a classifier on ``records`` and ``labels`` (1 spam, 0 ham).

    The same data, seed and config give identical probabilities. Out-of-fold decision
    values (``config.folds`` folds; by ``groups`` when given, e.g. the site or source of
    each record) calibrate the model and choose its thresholds, and their metrics at the
    spam threshold are returned in ``metadata["metrics"]`` (prefixed ``cv_``): nothing is
    measured on data the final model was fitted on. The vocabulary and idf are fitted on
    all the data before the folds; they use no labels. Raises ``ValueError`` unless both
    classes are present.

    With ``config.nb_blend`` the model is a calibrated stack of the logistic regression
    and a multinomial naive Bayes on the n-gram blocks: both are linear in the features,
    so the blend ``a1 * lr + a2 * nb + b`` (weights fitted on their out-of-fold log-odds)
    is folded into one coefficient vector, and every reason stays an exact share of the
    log-odds. ``sources`` (one name per record, e.g. the data set or site it came from)
    makes the spam threshold meet ``max_fpr`` on each source's out-of-fold ham, not only
    on the pooled ham (see :func:`~service.classifier.evaluation.choose_thresholds`).

    ``sample_weight`` (one positive number per record) weighs each record in every fit
    (the folds, the blend's calibration, the final model), e.g. so that a moderator's
    label counts more than an imported one; thresholds and metrics count records
    unweighted, since they are rates of comments.

    ``threshold_on`` (one flag per record) restricts the records whose out-of-fold
    scores choose the thresholds and give the ``cv_`` metrics, e.g. to the comment-like
    corpora when mail corpora are in the training data too: the thresholds are for
    comments, and how one mail corpus scores after training on another says little
    about them. Every record still trains and calibrates the model.
    """
    cfg = config or ModelConfig()
    say = progress or (lambda _message: None)
    y = np.asarray(labels, dtype=np.int64)
    if len(records) != y.size:
        raise ValueError(f"{len(records)} records but {y.size} labels")
    if sources is not None and len(sources) != y.size:
        raise ValueError(f"{len(sources)} sources but {y.size} labels")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("training needs both spam and ham")
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weights is not None and (weights.shape != y.shape or not np.all(weights > 0)):
        raise ValueError("sample_weight needs one positive weight per record")
    fit_params = {} if weights is None else {"sample_weight": weights}
    started = time.perf_counter()
    features_cfg = cfg.features
    if y.size < 50 * features_cfg.min_df:
        # On a handful of comments min_df would prune nearly every n-gram.
        features_cfg = FeatureConfig(**{**_fields(features_cfg), "min_df": 1})
    union = build_features(features_cfg)
    say(f"extracting features from {y.size} comments")
    # Each comment's content text and dense features are worked out once, not once per
    # block that reads them.
    prepared = PreparedRecords(
        records,
        url_shapes=features_cfg.url_shapes,
        self_links=features_cfg.self_links,
        split_punctuation=features_cfg.split_punctuation,
    )
    matrix = union.fit_transform(prepared).tocsr()
    del prepared  # its texts and features are not needed for the fits that follow
    # The dense block comes last; naive Bayes reads the non-negative n-gram blocks.
    text_columns = matrix.shape[1] - len(STAT_NAMES)
    say(f"{matrix.shape[1]} features; cross-validating")
    folds = _folds(y, groups, cfg.folds if y.size < cfg.large else cfg.large_folds, seed)
    linear = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter)
    columns = [
        np.asarray(
            cross_val_predict(
                linear,
                matrix,
                y,
                cv=folds,
                method="decision_function",
                n_jobs=cfg.n_jobs,
                params=fit_params,
            )
        )
    ]
    nb = MultinomialNB(alpha=cfg.nb_alpha)
    # The n-gram columns naive Bayes reads, sliced once for its folds and its final fit.
    ngrams = matrix[:, :text_columns] if cfg.nb_blend else None
    if ngrams is not None:
        log_proba = cross_val_predict(
            nb, ngrams, y, cv=folds, method="predict_log_proba", params=fit_params
        )
        columns.append(np.asarray(log_proba[:, 1] - log_proba[:, 0]))
    decisions = np.column_stack(columns)
    a, b = _calibrate(decisions, y, weights)
    oof = 1.0 / (1.0 + np.exp(-(decisions @ np.asarray(a) + b)))
    chosen = np.ones(y.size, dtype=bool) if threshold_on is None else np.asarray(threshold_on)
    if chosen.shape != y.shape or not (np.any(y[chosen] == 1) and np.any(y[chosen] == 0)):
        raise ValueError("threshold_on needs one flag per record, and spam and ham flagged")
    thresholds = choose_thresholds(
        y[chosen],
        oof[chosen],
        max_fpr=cfg.max_fpr,
        hold_recall=cfg.hold_recall,
        hold_margin=cfg.hold_margin,
        hold_floor=cfg.hold_floor,
        max_held=cfg.max_held,
        discard_fpr=cfg.discard_fpr,
        groups=None
        if sources is None
        else [s for s, on in zip(sources, chosen, strict=True) if on],
    )
    metrics = compute_metrics(y[chosen], oof[chosen], thresholds.spam)
    say("fitting the final model")
    linear.fit(matrix, y, **fit_params)
    coef = linear.coef_ * a[0]
    intercept = linear.intercept_ * a[0] + b
    if ngrams is not None:
        nb.fit(ngrams, y, **fit_params)
        nb_weights, nb_intercept = _nb_log_odds(nb)
        coef[0, :text_columns] += a[1] * nb_weights
        intercept = intercept + a[1] * nb_intercept
    # The author history may only count one way: approved comments toward ham, earlier
    # spam toward spam (the columns are not centred, so no history counts for nothing).
    stats_at = text_columns
    approved = stats_at + STAT_NAMES.index("history_approved")
    spammed = stats_at + STAT_NAMES.index("history_spam")
    coef[0, approved] = min(float(coef[0, approved]), 0.0)
    coef[0, spammed] = max(float(coef[0, spammed]), 0.0)
    linear.coef_ = coef
    linear.intercept_ = intercept
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
            "calibration": {"weights": a, "intercept": b},
            "nb_blend": cfg.nb_blend,
            "per_source_thresholds": sources is not None,
            "weighted": weights is not None,
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


def _new_metadata(classifier: Classifier) -> ArtifactMetadata:
    meta = classifier.metadata
    return ArtifactMetadata.create(
        training_size=int(meta["training_size"]),
        training_fingerprint=str(meta["training_fingerprint"]),
        metrics=meta["metrics"],
        thresholds=meta["thresholds"],
        notes=meta.get("notes", {}),
    )


def save_classifier(
    classifier: Classifier, path: Path | str, *, signing_key: bytes | None = None
) -> ArtifactMetadata:
    """Write ``classifier`` as an artifact (pipeline + metadata); returns the metadata
    written, whose ``version`` is new."""
    metadata = _new_metadata(classifier)
    save_artifact(path, classifier.pipeline, metadata, signing_key=signing_key)
    return metadata


def classifier_bytes(
    classifier: Classifier, *, signing_key: bytes | None = None
) -> tuple[bytes, ArtifactMetadata]:
    """:func:`save_classifier` into memory: the artifact's bytes and its (new) metadata."""
    metadata = _new_metadata(classifier)
    return dump_artifact(classifier.pipeline, metadata, signing_key=signing_key), metadata


def load_classifier_bytes(
    data: bytes, *, name: str = "<artifact>", signing_key: bytes | None = None
) -> Classifier:
    """:func:`load_classifier` for an artifact held in memory (a registry row)."""
    estimator, metadata = load_artifact_bytes(data, name=name, signing_key=signing_key)
    return Classifier(estimator, metadata.to_dict())


def load_classifier(
    path: Path | str | None = None, *, signing_key: bytes | None = None
) -> Classifier:
    """Load an artifact (the bundled classifier when ``path`` is None) and compile its
    fast path. Raises the :class:`~service.classifier.artifacts.ArtifactError` subclasses
    of :func:`~service.classifier.artifacts.load_artifact`."""
    estimator, metadata = load_artifact(path or BUNDLED_PATH, signing_key=signing_key)
    return Classifier(estimator, metadata.to_dict())
