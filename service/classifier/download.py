"""Fetching the corpora of a manifest from the public repositories they were taken from.

The data files are not in Commentguard's repository (``data/README.md``). Each corpus of
``data/manifest.json`` names the repository and commit its files come from, and each part
the path in that repository (``origin``) that becomes the part's ``path``:
:func:`fetch_corpora` downloads the repository's archive at that commit (GitHub's
``codeload`` tarball by default), takes out those files only, checks every part against
the manifest's sha256 and file count, and only then moves the parts into place. A corpus
already in place is not downloaded again; a download that does not match the manifest
installs nothing and raises :class:`~service.classifier.corpora.CorpusError`.

Nothing else from an archive is kept: not its other files (the YouTube collection's
fifth video among them), not its code.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import IO, Final, Literal

from service.classifier.corpora import Corpus, CorpusError, Part, read_manifest, verify_part

__all__ = ["ARCHIVE_URL", "MAX_ARCHIVE_BYTES", "Fetched", "fetch_corpora"]

ARCHIVE_URL: Final = "https://codeload.github.com/{repository}/tar.gz/{commit}"
"""Where a repository's archive at a commit is downloaded from (``{repository}`` is
``owner/name``): GitHub's tarball of the commit, one top directory holding its tree."""

MAX_ARCHIVE_BYTES: Final = 1 << 30
"""The most an archive may be, downloaded or unpacked (the largest of the manifest's is
tens of MB): a larger one is refused rather than filling the disk."""

_CHUNK: Final = 1 << 16

Status = Literal["present", "fetched", "not fetchable"]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What :func:`fetch_corpora` did with one corpus (whose parts lie under ``root``):
    ``present`` (every part already
    matched the manifest; nothing downloaded), ``fetched`` (downloaded, checked and put in
    place) or ``not fetchable`` (the manifest does not say where every part comes from;
    ``detail`` says what to do)."""

    corpus: str
    status: Status
    files: int
    root: Path
    detail: str


def fetch_corpora(
    manifest: Path | str,
    *,
    roots: Mapping[str, Path | str] | None = None,
    only: Sequence[str] | None = None,
    archive_url: str = ARCHIVE_URL,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> list[Fetched]:
    """Puts every corpus of ``manifest`` (or those named in ``only``) in place under its
    root (``roots`` overrides a corpus's, as for :func:`~service.classifier.corpora.
    load_corpora`), downloading what is missing or differs. Returns one :class:`Fetched`
    per corpus, in manifest order.

    Guarantees: a part is installed only after every part of its corpus matched the
    manifest; an existing part is replaced only then; nothing but the parts' files is
    written under the root, and a failed download or check leaves no temporary files.
    Raises :class:`CorpusError` for an unreadable manifest, an unknown name in ``only``,
    a download that fails or is too large, or files that do not match the manifest."""
    corpora = read_manifest(manifest, roots=roots, only=only)
    say = progress or (lambda _message: None)
    return [_fetch_one(corpus, archive_url, timeout, say) for corpus in corpora]


def _fetch_one(
    corpus: Corpus, archive_url: str, timeout: float, say: Callable[[str], None]
) -> Fetched:
    parts = [part for source in corpus.sources for part in source.parts]
    where = f"corpus {corpus.name!r}"
    if _all_present(corpus.root, parts, where):
        return Fetched(
            corpus.name, "present", _count(parts), corpus.root, "every part matches the manifest"
        )
    repository = corpus.provenance.get("repository")
    commit = corpus.provenance.get("commit")
    unnamed = [part.path for part in parts if part.origin is None]
    if not repository or not commit or unnamed:
        return Fetched(
            corpus.name,
            "not fetchable",
            0,
            corpus.root,
            "the manifest names no repository, commit or origin for "
            + (", ".join(unnamed) if unnamed else "it")
            + "; lay it out by hand (data/README.md)",
        )
    try:
        url = archive_url.format(repository=repository, commit=commit)
    except (KeyError, IndexError, ValueError) as exc:
        raise CorpusError(
            f"archive address {archive_url!r}: {exc!r}; it may name only {{repository}} "
            "and {commit}"
        ) from None
    try:
        corpus.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".fetch-{corpus.name}-", dir=corpus.root))
    except OSError as exc:
        raise CorpusError(f"{corpus.root}: cannot put corpus {corpus.name!r} here: {exc}") from None
    try:
        archive = staging / "archive"
        say(f"{corpus.name}: downloading {url}")
        size = _download(url, archive, timeout)
        tree = staging / "tree"
        written = _unpack(archive, tree, parts, url)
        say(f"{corpus.name}: {size / 1e6:.1f} MB, {written} files taken out; checking")
        source = f"{repository} at commit {commit} ({url})"
        for part in parts:
            verify_part(tree, part, where=f"corpus {corpus.name!r} as downloaded from {source}")
        for path in dict.fromkeys(part.path for part in parts):
            try:
                _install(tree / path, corpus.root / path)
            except OSError as exc:
                target = corpus.root / path
                raise CorpusError(f"{target}: cannot put it in place: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Fetched(
        corpus.name, "fetched", _count(parts), corpus.root, f"from {repository} at {commit}"
    )


def _all_present(root: Path, parts: Sequence[Part], where: str) -> bool:
    try:
        for part in parts:
            verify_part(root, part, where=where)
    except CorpusError:
        return False
    return True


def _count(parts: Sequence[Part]) -> int:
    return sum(part.files for part in parts)


def _download(url: str, target: Path, timeout: float) -> int:
    """Streams ``url`` into ``target``; returns its size. Raises CorpusError on any
    failure or when it exceeds :data:`MAX_ARCHIVE_BYTES`."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CorpusError(f"{url}: only http and https archives are downloaded")
    # The scheme is checked above: no file: or custom-scheme URLs reach urlopen.
    request = urllib.request.Request(url, headers={"User-Agent": "commentguard"})  # noqa: S310
    size = 0
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout) as response,  # noqa: S310
            target.open("wb") as out,
        ):
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > MAX_ARCHIVE_BYTES:
                    raise CorpusError(f"{url}: larger than {MAX_ARCHIVE_BYTES} bytes; refused")
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise CorpusError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise CorpusError(f"{url}: download failed: {reason}") from None
    return size


def _unpack(archive: Path, tree: Path, parts: Sequence[Part], url: str) -> int:
    """Writes the archive's files that belong to a part under ``tree`` at the part's path;
    returns how many. Only regular files are taken; a name that would leave its part's
    directory is skipped."""
    written = total = 0
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                # The archive's one top directory is "<name>-<commit>/".
                inside = PurePosixPath(*PurePosixPath(member.name).parts[1:])
                dest = _destination(inside, parts)
                if dest is None:
                    continue
                total += member.size
                if total > MAX_ARCHIVE_BYTES:
                    raise CorpusError(f"{url}: unpacks to more than {MAX_ARCHIVE_BYTES} bytes")
                reader = tar.extractfile(member)
                if reader is None:
                    continue
                target = tree.joinpath(*dest.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy(reader, target)
                written += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CorpusError(f"{url}: not a readable tar archive: {exc}") from None
    return written


def _copy(reader: IO[bytes], target: Path) -> None:
    with reader, target.open("wb") as out:
        shutil.copyfileobj(reader, out, _CHUNK)


def _destination(inside: PurePosixPath, parts: Sequence[Part]) -> PurePosixPath | None:
    """Where the archive's file ``inside`` goes, relative to the corpus root: the path of
    the part whose origin it is (or lies under, matching the part's glob), else None."""
    if ".." in inside.parts or inside.is_absolute():
        return None
    for part in parts:
        if part.origin is None:
            continue
        origin = PurePosixPath(part.origin)
        if part.glob is None:
            if inside == origin:
                return PurePosixPath(part.path)
            continue
        if origin in inside.parents and _glob_match(inside.relative_to(origin), part.glob):
            return PurePosixPath(part.path) / inside.relative_to(origin)
    return None


def _glob_match(relative: PurePosixPath, glob: str) -> bool:
    """Whether ``relative`` matches ``glob`` as :meth:`Path.glob` would find it: as many
    components, each matching its pattern (``*`` never crosses a ``/``)."""
    patterns = glob.split("/")
    return len(patterns) == len(relative.parts) and all(
        fnmatchcase(name, pattern) for name, pattern in zip(relative.parts, patterns, strict=True)
    )


def _install(source: Path, target: Path) -> None:
    """Replaces ``target`` (a file or a directory) by ``source``, on the same filesystem."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    os.replace(source, target)
