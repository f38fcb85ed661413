"""The published corpora the bundled classifier is built and measured on, as a manifest.

``data/manifest.json`` (format ``commentguard.corpora/1``) names every corpus, where its
files lie (relative to a root directory, by default the manifest's own directory; the
YouTube files to ``../shared/data/youtube-spam``, or ``data/youtube-spam`` without it),
which label each part carries, how many files each part has and a sha256 that the files
must match, and where the corpus comes from. The data files themselves are not in the
repository: :func:`load_corpora` checks each part against the manifest before reading it
and raises :class:`CorpusError` naming what is missing or different and where it comes
from (``make data`` fetches them: :mod:`service.classifier.download`).

A corpus's ``root`` may be a list of directories: the first that exists is read, else
the last is where the files belong (the YouTube files are read from the project's shared
data when it is beside the checkout, and fetched into ``data/youtube-spam`` when not).

A part is either one data file (``sha256`` is the file's own digest) or the files of a
directory that match a glob, all with one label (``sha256`` is :func:`tree_digest` of
them: the digest of their sorted relative paths and digests, so one changed, missing or
extra file changes it). Each part belongs to a *source*, a unit that is held out as a
whole in the leave-one-out measurements (a corpus, or one video of the YouTube
collection); sources belong to corpora.

Nothing here changes what a record looks like: a corpus's name, path or digest is never
turned into a feature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from service.classifier.datasets import Dataset, DatasetError, concat_datasets, read_datasets
from service.classifier.features import FeatureConfig
from service.classifier.model import Classifier, ModelConfig, Progress, train
from service.classifier.types import CommentRecord

__all__ = [
    "CORPORA_CONFIG",
    "MANIFEST_FORMAT",
    "Corpus",
    "CorpusError",
    "Part",
    "Source",
    "TrainingSet",
    "load_corpora",
    "read_manifest",
    "train_on",
    "training_set",
    "tree_digest",
    "verify_part",
]

MANIFEST_FORMAT: Final = "commentguard.corpora/1"


class CorpusError(Exception):
    """A corpus of the manifest is missing, incomplete or not the published bytes, or the
    manifest itself is unreadable. The message names the files and where they come from."""


@dataclass(frozen=True, slots=True)
class Part:
    """Files of one source with one label (``None``: the files carry their labels).
    ``origin`` is the path in the corpus's repository (at its provenance commit) that
    ``path`` is a copy of, for :func:`~service.classifier.download.fetch_corpora`."""

    path: str
    glob: str | None
    label: str | None
    files: int
    sha256: str
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """A unit held out whole: its name and its parts."""

    name: str
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Corpus:
    """One published corpus: its name, domain, whether its texts are comment-like (short
    messages people write to each other or under a post), whether the classifier's
    thresholds are chosen on it (comments under a post, as a blog's), the root its paths
    are under, its sources, and its provenance (repository, commit, licence, citation)."""

    name: str
    domain: str
    comment_like: bool
    thresholds: bool
    root: Path
    sources: tuple[Source, ...]
    provenance: Mapping[str, Any]


def tree_digest(root: Path, files: Sequence[Path]) -> str:
    """sha256 over ``"<path relative to root>\\t<sha256 of the file>\\n"`` for each file,
    sorted by path: the digest of a set of files, their names included."""
    lines = sorted(f"{f.relative_to(root).as_posix()}\t{_file_digest(f)}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _part_files(root: Path, part: Part) -> list[Path]:
    base = root / part.path
    if part.glob is None:
        return [base] if base.is_file() else []
    return sorted(p for p in base.glob(part.glob) if p.is_file()) if base.is_dir() else []


def verify_part(root: Path, part: Part, *, where: str) -> list[Path]:
    """The part's files, checked against the manifest; raises :class:`CorpusError` naming
    the part, what is wrong and ``where`` the files come from."""
    files = _part_files(root, part)
    target = root / part.path
    if not files:
        raise CorpusError(f"{target}: missing ({_what(part)}); {where}")
    if len(files) != part.files:
        raise CorpusError(
            f"{target}: {len(files)} files match {part.glob!r}, the manifest lists "
            f"{part.files}; {where}"
        )
    digest = _file_digest(files[0]) if part.glob is None else tree_digest(target, files)
    if digest != part.sha256:
        raise CorpusError(
            f"{target}: sha256 {digest} differs from the manifest's {part.sha256} "
            f"(not the published bytes); {where}"
        )
    return files


def _what(part: Part) -> str:
    if part.glob is None:
        return "a data file"
    return f"{part.files} files matching {part.glob!r}"


def read_manifest(
    path: Path | str,
    *,
    roots: Mapping[str, Path | str] | None = None,
    only: Sequence[str] | None = None,
) -> list[Corpus]:
    """The corpora a manifest lists (those named in ``only``, when given; an unknown name
    is an error). ``roots`` maps a corpus name to the directory its paths are under,
    overriding the manifest's (e.g. the YouTube files elsewhere)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such manifest") from None
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: unreadable manifest: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
        raise CorpusError(f"{path}: not a {MANIFEST_FORMAT} manifest")
    overrides = {name: Path(root) for name, root in (roots or {}).items()}
    corpora: list[Corpus] = []
    try:
        for entry in raw["corpora"]:
            name = str(entry["name"])
            root = overrides.get(name) or _root(path.parent, entry.get("root", "."))
            sources = tuple(
                Source(
                    name=str(source["name"]),
                    parts=tuple(
                        Part(
                            path=str(part["path"]),
                            glob=part.get("glob"),
                            label=part.get("label"),
                            files=int(part.get("files", 1)),
                            sha256=str(part["sha256"]),
                            origin=None if part.get("origin") is None else str(part["origin"]),
                        )
                        for part in source["parts"]
                    ),
                )
                for source in entry["sources"]
            )
            corpora.append(
                Corpus(
                    name=name,
                    domain=str(entry["domain"]),
                    comment_like=bool(entry["comment_like"]),
                    thresholds=bool(entry.get("thresholds", False)),
                    root=root,
                    sources=sources,
                    provenance=dict(entry.get("provenance", {})),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorpusError(f"{path}: malformed manifest entry: {exc!r}") from exc
    unknown = (set(overrides) | set(only or ())) - {c.name for c in corpora}
    if unknown:
        raise CorpusError(f"{path}: no corpus named {sorted(unknown)}")
    return corpora if only is None else [c for c in corpora if c.name in only]


def _root(base: Path, given: Any) -> Path:
    """A corpus's root: ``given`` is a directory relative to the manifest's, or a list of
    them, of which the first that exists is taken, else the last (where
    :func:`~service.classifier.download.fetch_corpora` puts the files)."""
    candidates = [base / str(c) for c in (given if isinstance(given, list) else [given])]
    if not candidates:
        raise ValueError("an empty list of roots")
    return next((c for c in candidates if c.is_dir()), candidates[-1])


def _where(corpus: Corpus) -> str:
    p = corpus.provenance
    repo, commit, files = p.get("repository"), p.get("commit"), p.get("path")
    origin = f"{repo} at commit {commit}, {files}" if repo else "see data/README.md"
    return (
        f"corpus {corpus.name!r} comes from {origin} (`make data` fetches it; "
        "data/README.md says how to lay it out)"
    )


def load_corpora(
    path: Path | str,
    *,
    roots: Mapping[str, Path | str] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, Dataset]]:
    """Every corpus of the manifest, checked and read: corpus name -> source name -> its
    records. ``only`` restricts to the named corpora. Raises :class:`CorpusError` when a
    file is missing or differs from the manifest, or a file does not read cleanly."""
    corpora = read_manifest(path, roots=roots, only=only)
    loaded: dict[str, dict[str, Dataset]] = {}
    for corpus in corpora:
        where = _where(corpus)
        sources: dict[str, Dataset] = {}
        for source in corpus.sources:
            pieces: list[Dataset] = []
            for part in source.parts:
                files = verify_part(corpus.root, part, where=where)
                try:
                    pieces.append(read_datasets(files, label=part.label))
                except DatasetError as exc:
                    raise CorpusError(f"{corpus.root / part.path}: {exc}") from exc
            sources[source.name] = concat_datasets(pieces)
        loaded[corpus.name] = sources
    return loaded


CORPORA_CONFIG: Final = ModelConfig(
    c=1.5, features=FeatureConfig(author_weight=0.0, stats_weight=0.0)
)
"""The model of the bundled classifier: words, their char n-grams and the links' hosts,
nothing else. Stronger regularisation than a site's retrain (``ModelConfig().c`` is
20), chosen on the inner leave-one-source-out figures of the quality bench
(docs/classifier-quality.md): across corpora, fewer and broader weights carry over
better.

No author block: of the corpora only the YouTube files name their authors, so "no
author name" would only say "not YouTube" (mostly ham), and on a blog, where every
commenter has a name, it would push every comment toward spam.

No dense block (length, link count and share, capitals, digits, exclamations, ...):
across these corpora those numbers say which corpus a text comes from more than
whether it is spam (mail ham is long and ends in list footers full of links; SMS spam
is full of digits; video spam is short and linked), and a held-out corpus's ham paid for
it: 29 % of SpamAssassin's ham was marked spam, the link count alone adding up to 4.3
to the log-odds. Without them 14 % was, and the inner leave-one-video-out F1 rose on
six of the seven splits (docs/classifier-quality.md). A link still counts, as its host
(a word), and a site's own retrain (:class:`~service.classifier.model.ModelConfig`'s
defaults) keeps the dense block, where the author history and the site's own link
habits mean something."""


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """Records pooled from sources, with what training needs to know of each: its label,
    its source (``corpus/source``) and whether its corpus chooses the thresholds."""

    records: list[CommentRecord]
    labels: list[int]
    sources: list[str]
    threshold_on: list[bool]


def training_set(
    loaded: Mapping[str, Mapping[str, Dataset]],
    corpora: Sequence[Corpus],
    *,
    leave_out: Sequence[str] = (),
) -> TrainingSet:
    """Every source of ``loaded`` but those named in ``leave_out`` (``corpus/source``),
    pooled in manifest order."""
    chooses = {corpus.name: corpus.thresholds for corpus in corpora}
    records: list[CommentRecord] = []
    labels: list[int] = []
    sources: list[str] = []
    flags: list[bool] = []
    for corpus_name, named in loaded.items():
        for source_name, dataset in named.items():
            name = f"{corpus_name}/{source_name}"
            if name in leave_out:
                continue
            records += dataset.records
            labels += dataset.labels
            sources += [name] * len(dataset)
            flags += [chooses[corpus_name]] * len(dataset)
    return TrainingSet(records, labels, sources, flags)


def train_on(data: TrainingSet, *, seed: int = 0, progress: Progress | None = None) -> Classifier:
    """The classifier as ``make classifier`` builds it from corpora
    (:data:`CORPORA_CONFIG`): cross-validated leaving one source out at a time, and its
    thresholds chosen on the out-of-fold scores of the sources of the corpora marked
    ``thresholds`` (comments under a post), each such source's false-positive rate kept
    within the target (see :func:`~service.classifier.model.train`)."""
    return train(
        data.records,
        data.labels,
        seed=seed,
        groups=data.sources,
        sources=data.sources,
        config=CORPORA_CONFIG,
        threshold_on=data.threshold_on if any(data.threshold_on) else None,
        progress=progress,
    )
