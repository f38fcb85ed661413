"""Labelled data set readers: files on disk -> comment records and spam labels.

Three formats are read, each recognised from the file's contents (its first non-blank
line), never from its name:

``youtube``
    The UCI YouTube Spam Collection (Alberto, Lochter, Almeida, "TubeSpam: Comment Spam
    Filtering on YouTube", ICMLA 2015; CC BY 4.0): a CSV whose header is exactly
    ``COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS``. CLASS is 1 for spam, 0 for ham. DATE and
    COMMENT_ID are not read (DATE is empty on exactly the spam rows of one file).
``sms``
    The SMS Spam Collection: no header, one message per line, ``ham<TAB>text`` or
    ``spam<TAB>text``.
``csv``
    A generic CSV with a header holding at least ``content`` and ``label`` (``spam``/``ham``
    or ``1``/``0``, any case), and optionally the author columns of
    :class:`~service.classifier.types.CommentRecord` (``author_name``, ``author_email``,
    ``author_url``, ``user_ip``, ``user_agent``, ``referrer``, ``permalink``, ``lang``) and
    its history counts (``approved_count``, ``spam_count``). Other columns (an id, a date)
    are ignored.
``email``
    One mail message per file (RFC 5322: header lines, a blank line, the body), as the
    SpamAssassin public corpus and Ling-Spam store them; recognised by a first line that
    is a header field (``Subject: ...``, ``Received: ...``) or an mbox ``From `` line.
    The record's content is the subject and the message's text parts (an HTML part when
    there is no plain one); header fields are not read. A message carries no label, so
    its label is given by the caller (``label="spam"`` or ``"ham"``; the corpora's own
    layout says which, see :mod:`service.classifier.corpora`). Text is decoded by its
    declared charset, else as Latin-1 (which decodes any byte); a subject sent as raw
    8-bit bytes (old mail, the Enron-Spam files) is decoded as UTF-8 when it is UTF-8 and
    otherwise by the message's charset or Latin-1, as its text is, so that no byte of it
    turns into U+FFFD. A message with neither subject nor text is a malformed row.

Every reader accepts a UTF-8 byte order mark and CRLF line ends, and reports bytes that
are not UTF-8 by line instead of failing on them. A row that cannot be read (missing
content, bad label, wrong number of columns, undecodable bytes, broken quoting) is never
dropped silently: :func:`read_dataset` raises :class:`DatasetError` naming every such row
by the physical line it starts on, or, with ``skip_malformed=True``, skips it and lists it
in :attr:`Dataset.errors`.
"""

from __future__ import annotations

import csv
import email
import email.message
import email.policy
import hashlib
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from service.classifier.types import CommentRecord

__all__ = [
    "Dataset",
    "DatasetError",
    "RowError",
    "concat_datasets",
    "dataset_fingerprint",
    "read_dataset",
    "read_datasets",
]

_BOM: Final = b"\xef\xbb\xbf"
_YOUTUBE_HEADER: Final = ("comment_id", "author", "date", "content", "class")
_SMS_FIRST_LINE: Final = re.compile(r"(?i)^(ham|spam)\t")
# A header field of a mail message (RFC 5322 2.2: a name of printable ASCII but the colon,
# then a colon) or an mbox separator. A CSV header never has a colon right after its
# first name, and a field name never holds a tab, so this tells a message from the rest.
_MAIL_FIRST_LINE: Final = re.compile(
    r"^(?:From \S+|(?:Subject|From|Return-Path|Received|Delivered-To|Date|Message-I[Dd]"
    r"|X-[!-9;-~]+|[A-Z][!-9;-~]*): )"
)
# A raw byte that is not ASCII, as the mail parser keeps it in a header (surrogateescape).
_SURROGATES: Final = re.compile(r"[\udc80-\udcff]")
_CSV_LABELS: Final = {"spam": 1, "1": 1, "ham": 0, "0": 0}
_SMS_LABELS: Final = {"spam": 1, "ham": 0}
_OPTIONAL_TEXT_COLUMNS: Final = (
    "author_name",
    "author_email",
    "author_url",
    "user_ip",
    "user_agent",
    "referrer",
    "permalink",
    "lang",
)
_OPTIONAL_COUNT_COLUMNS: Final = ("approved_count", "spam_count")

# A directory holds data files and, often, their documentation: the documentation is
# recognised by name so that a data file of an unknown format still fails loudly.
_DATA_SUFFIXES: Final = {".csv", ".tsv", ".txt", ""}
_DOC_STEMS: Final = {"readme", "license", "licence", "notice", "citation", "changelog"}
# YouTube's export ends most comments with U+FEFF (a zero-width no-break space); it is an
# artefact of the export, not part of what the author wrote.
_STRIP_CHARS: Final = " \t\r\n\ufeff"


@dataclass(frozen=True, slots=True)
class RowError:
    """One row that could not be read: the file, the 1-based physical line the row starts
    on (a quoted CSV field may span several lines), and what is wrong with it."""

    line: int
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.source else f"line {self.line}"
        return f"{where}: {self.message}"


class DatasetError(Exception):
    """A data set could not be read. ``errors`` lists the malformed rows, if any (it is
    empty when the whole file is unusable: missing, empty, or of an unknown format)."""

    def __init__(self, message: str, errors: Sequence[RowError] = ()) -> None:
        super().__init__(message)
        self.errors: list[RowError] = list(errors)


@dataclass(frozen=True, slots=True)
class Dataset:
    """Labelled comments: ``labels[i]`` (1 spam, 0 ham) is the label of ``records[i]``.

    ``format`` names the reader ("youtube", "sms", "csv", "email", or "mixed" for a
    concatenation of several formats); ``source`` says where the rows came from;
    ``fingerprint`` is a sha256 over the labels and contents, in order, so that two data
    sets with the same labelled texts share it whatever their paths or author columns;
    ``errors`` lists the rows skipped with ``skip_malformed=True``.
    """

    records: list[CommentRecord]
    labels: list[int]
    format: str
    source: str
    fingerprint: str
    errors: list[RowError] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.records) != len(self.labels):
            raise ValueError(f"{len(self.records)} records but {len(self.labels)} labels")
        if any(label not in (0, 1) for label in self.labels):
            raise ValueError("labels must be 0 (ham) or 1 (spam)")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def spam_count(self) -> int:
        """How many records are labelled spam."""
        return sum(self.labels)

    @property
    def ham_count(self) -> int:
        """How many records are labelled ham."""
        return len(self.labels) - sum(self.labels)


def dataset_fingerprint(records: Iterable[CommentRecord], labels: Iterable[int]) -> str:
    """The sha256 (hex) of the labelled contents, in order.

    Each (label, content) pair is JSON-encoded on its own line, so that no two different
    sequences of pairs hash the same input; author columns do not take part, so the same
    labelled texts read from another format share the fingerprint.
    """
    digest = hashlib.sha256(b"commentguard-dataset-v1\n")
    for record, label in zip(records, labels, strict=True):
        digest.update(json.dumps([label, record.content], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def read_dataset(
    path: Path | str, *, skip_malformed: bool = False, label: str | None = None
) -> Dataset:
    """Read one data file, or every data file of a directory (sorted by name).

    ``label`` ("spam" or "ham") labels files whose format carries no label (mail
    messages); a file that carries its labels refuses it, and a mail message without it
    is an error. Raises :class:`DatasetError` when the path is missing, the file is empty, of an
    unknown format or holds no rows at all, or (unless ``skip_malformed``) any row is
    malformed; the message then lists every malformed row with its line number. With
    ``skip_malformed`` a file whose rows are all malformed gives an empty data set whose
    ``errors`` list them.
    """
    path = Path(path)
    if path.is_dir():
        return read_datasets(_data_files(path), skip_malformed=skip_malformed, label=label)
    return _read_file(path, skip_malformed=skip_malformed, label=label)


def read_datasets(
    paths: Iterable[Path | str], *, skip_malformed: bool = False, label: str | None = None
) -> Dataset:
    """Read several paths (files or directories) and concatenate them in the given order.

    Raises :class:`DatasetError` as :func:`read_dataset` does, and when ``paths`` is empty.
    With ``skip_malformed=False`` every file is read first, so that the error names the
    malformed rows of all of them at once.
    """
    datasets: list[Dataset] = []
    errors: list[RowError] = []
    for path in paths:
        try:
            datasets.append(read_dataset(path, skip_malformed=skip_malformed, label=label))
        except DatasetError as exc:
            if not exc.errors:
                raise
            errors.extend(exc.errors)
    if errors:
        raise DatasetError(_describe_errors(errors), errors)
    if not datasets:
        raise DatasetError("no data set paths given")
    return concat_datasets(datasets)


def concat_datasets(datasets: Sequence[Dataset]) -> Dataset:
    """One data set holding the rows of ``datasets`` in order; the fingerprint is that of
    the concatenated rows, the format is shared or "mixed", the sources are joined by
    "; ", and the skipped-row errors are kept."""
    if not datasets:
        raise DatasetError("no data sets to concatenate")
    if len(datasets) == 1:
        return datasets[0]
    records = [record for dataset in datasets for record in dataset.records]
    labels = [label for dataset in datasets for label in dataset.labels]
    formats = {dataset.format for dataset in datasets}
    return Dataset(
        records=records,
        labels=labels,
        format=formats.pop() if len(formats) == 1 else "mixed",
        source="; ".join(dataset.source for dataset in datasets),
        fingerprint=dataset_fingerprint(records, labels),
        errors=[error for dataset in datasets for error in dataset.errors],
    )


def _data_files(directory: Path) -> list[Path]:
    files = sorted(
        child
        for child in directory.iterdir()
        if child.is_file()
        and not child.name.startswith(".")
        and child.suffix.lower() in _DATA_SUFFIXES
        and child.stem.lower() not in _DOC_STEMS
    )
    if not files:
        raise DatasetError(f"{directory}: no data files in this directory")
    return files


@dataclass(slots=True)
class _Text:
    """A file decoded line by line: ``lines[i]`` is physical line ``i + 1`` (with CRLF
    turned into LF), ``undecodable`` maps line numbers to what was wrong with their bytes."""

    lines: list[str]
    undecodable: dict[int, str]


def _decode(data: bytes) -> _Text:
    data = data.removeprefix(_BOM)
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines: list[str] = []
    undecodable: dict[int, str] = {}
    # Decoding each line on its own keeps one bad byte from hiding the rest of the file;
    # splitting bytes on LF is safe because no multi-byte UTF-8 sequence holds 0x0A.
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            undecodable[number] = f"bytes that are not UTF-8 at column {exc.start + 1}"
            text = raw.decode("utf-8", errors="replace")
        lines.append(text.removesuffix("\r") + "\n")
    return _Text(lines, undecodable)


def _read_file(path: Path, *, skip_malformed: bool, label: str | None = None) -> Dataset:
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{source}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    text = _decode(data)
    first = next((line for line in text.lines if line.strip(_STRIP_CHARS)), None)
    if first is None:
        raise DatasetError(f"{source}: the file is empty")
    fmt = _detect_format(first)
    if fmt is None:
        raise DatasetError(
            f"{source}: unknown data set format; expected a YouTube Spam Collection CSV "
            "(header COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS), an SMS Spam Collection file "
            "(ham<TAB>text or spam<TAB>text), a CSV with 'content' and 'label' columns, or "
            f"a mail message (header lines); the first line is {first.strip()[:80]!r}"
        )
    if label is not None and label not in _SMS_LABELS:
        raise DatasetError(f"{source}: label must be 'spam' or 'ham', not {label!r}")
    if (fmt == "email") != (label is not None):
        raise DatasetError(
            f"{source}: a mail message carries no label: give one (spam or ham)"
            if fmt == "email"
            else f"{source}: this {fmt} file carries its own labels; give none"
        )
    rows: list[tuple[CommentRecord, int]] = []
    errors: list[RowError] = []
    if fmt == "email":
        assert label is not None
        _parse_email(data, source, _SMS_LABELS[label], rows, errors)
    elif fmt == "sms":
        _parse_sms(text, source, rows, errors)
    else:
        _parse_csv(text, source, fmt, rows, errors)
    if errors and not skip_malformed:
        raise DatasetError(_describe_errors(errors), errors)
    if not rows and not errors:
        raise DatasetError(f"{source}: no rows with a label and content")
    records = [record for record, _ in rows]
    labels = [value for _, value in rows]
    return Dataset(
        records=records,
        labels=labels,
        format=fmt,
        source=source,
        fingerprint=dataset_fingerprint(records, labels),
        errors=errors,
    )


def _detect_format(first_line: str) -> str | None:
    if _SMS_FIRST_LINE.match(first_line.lstrip("\ufeff")):
        return "sms"
    if _MAIL_FIRST_LINE.match(first_line):
        return "email"
    try:
        header = next(csv.reader([first_line]), [])
    except csv.Error:
        return None
    names = [name.strip(_STRIP_CHARS).lower() for name in header]
    if tuple(names) == _YOUTUBE_HEADER:
        return "youtube"
    if "content" in names and "label" in names:
        return "csv"
    return None


def _describe_errors(errors: Sequence[RowError]) -> str:
    lines = "\n".join(f"  {error}" for error in errors)
    return f"{len(errors)} malformed row(s); fix them or read with skip_malformed=True:\n{lines}"


def _parse_sms(
    text: _Text, source: str, rows: list[tuple[CommentRecord, int]], errors: list[RowError]
) -> None:
    for number, line in enumerate(text.lines, start=1):
        line = line.removesuffix("\n")
        if not line.strip(_STRIP_CHARS):
            continue
        if number in text.undecodable:
            errors.append(RowError(number, text.undecodable[number], source))
            continue
        label_text, tab, content = line.partition("\t")
        label = _SMS_LABELS.get(label_text.strip(_STRIP_CHARS).lower())
        if not tab:
            errors.append(
                RowError(number, "expected 'ham' or 'spam', a tab, then the text", source)
            )
        elif label is None:
            errors.append(
                RowError(number, f"bad label {label_text!r} (expected ham or spam)", source)
            )
        elif not content.strip(_STRIP_CHARS):
            errors.append(RowError(number, "missing content", source))
        else:
            rows.append((CommentRecord(content=content.strip(_STRIP_CHARS)), label))


def _parse_csv(
    text: _Text,
    source: str,
    fmt: str,
    rows: list[tuple[CommentRecord, int]],
    errors: list[RowError],
) -> None:
    # strict=True turns broken quoting (a quote inside an unquoted field, an unterminated
    # quoted field) into an error for that row instead of a silently merged row; the
    # reader then resumes on the next physical line.
    reader = csv.reader(iter(text.lines), strict=True)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(start, f"unreadable CSV: {exc}", source))
            continue
        end = reader.line_num
        if not any(cell.strip(_STRIP_CHARS) for cell in row):
            continue
        bad_bytes = [text.undecodable[n] for n in range(start, end + 1) if n in text.undecodable]
        if header is None:
            header = [name.strip(_STRIP_CHARS).lower() for name in row]
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates:
                raise DatasetError(f"{source}:{start}: duplicate columns {duplicates}")
            continue
        if bad_bytes:
            errors.append(RowError(start, bad_bytes[0], source))
            continue
        if len(row) != len(header):
            errors.append(RowError(start, f"{len(row)} columns, expected {len(header)}", source))
            continue
        cells = dict(zip(header, row, strict=True))
        parsed = _youtube_row(cells) if fmt == "youtube" else _generic_row(cells)
        if isinstance(parsed, str):
            errors.append(RowError(start, parsed, source))
        else:
            rows.append(parsed)


def _youtube_row(cells: dict[str, str]) -> tuple[CommentRecord, int] | str:
    label_text = cells["class"].strip(_STRIP_CHARS)
    if label_text not in ("0", "1"):
        return f"bad CLASS {cells['class']!r} (expected 0 or 1)"
    # The collection stores comments HTML-escaped (&#39;, &amp;, &quot;) as YouTube served
    # them; unescaped, they read as the text a commenter typed. Tags (<br />, <a>) stay,
    # as a blog's comment form would also receive them.
    content = html.unescape(cells["content"]).strip(_STRIP_CHARS)
    if not content:
        return "missing content"
    author = html.unescape(cells["author"]).strip(_STRIP_CHARS) or None
    return CommentRecord(content=content, author_name=author), int(label_text)


def _generic_row(cells: dict[str, str]) -> tuple[CommentRecord, int] | str:
    label = _CSV_LABELS.get(cells["label"].strip(_STRIP_CHARS).lower())
    if label is None:
        return f"bad label {cells['label']!r} (expected spam, ham, 1 or 0)"
    content = cells["content"].strip(_STRIP_CHARS)
    if not content:
        return "missing content"
    texts = {
        name: (cells.get(name) or "").strip(_STRIP_CHARS) or None for name in _OPTIONAL_TEXT_COLUMNS
    }
    counts: dict[str, int] = {}
    for name in _OPTIONAL_COUNT_COLUMNS:
        value = (cells.get(name) or "").strip(_STRIP_CHARS)
        if not value:
            counts[name] = 0
        elif value.isascii() and value.isdigit():
            counts[name] = int(value)
        else:
            return f"bad {name} {cells[name]!r} (expected a whole number >= 0)"
    return (
        CommentRecord(
            content=content,
            author_name=texts["author_name"],
            author_email=texts["author_email"],
            author_url=texts["author_url"],
            user_ip=texts["user_ip"],
            user_agent=texts["user_agent"],
            referrer=texts["referrer"],
            permalink=texts["permalink"],
            lang=texts["lang"],
            approved_count=counts["approved_count"],
            spam_count=counts["spam_count"],
        ),
        label,
    )


def _parse_email(
    data: bytes,
    source: str,
    label: int,
    rows: list[tuple[CommentRecord, int]],
    errors: list[RowError],
) -> None:
    """One mail message: its subject and text as one record, or an error for line 1."""
    message = email.message_from_bytes(data.removeprefix(_BOM), policy=email.policy.default)
    subject = _subject(message)
    parts: list[str] = []
    html_parts: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        text = _part_text(part)
        if part.get_content_subtype() == "html":
            html_parts.append(text)
        else:
            parts.append(text)
    body = "\n".join(parts or html_parts)
    content = f"{subject}\n{body}".strip(_STRIP_CHARS)
    if not content:
        errors.append(RowError(1, "a mail message with neither subject nor text", source))
        return
    rows.append((CommentRecord(content=content), label))


def _subject(message: email.message.EmailMessage) -> str:
    """The Subject field as text. The parser decodes encoded words (RFC 2047) and raw
    8-bit bytes that are UTF-8, but turns any other raw byte into U+FFFD; such a subject
    (a header sent unencoded, as old mail has it) is decoded from its bytes as the text of
    the message is: by the charset the message declares, else as Latin-1."""
    subject = str(message.get("subject", "") or "")
    raw = next((str(v) for k, v in message.raw_items() if k.lower() == "subject"), "")
    if not _SURROGATES.search(raw):
        return subject
    data = re.sub(r"\r?\n", "", raw).encode("ascii", errors="surrogateescape")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        charsets = (part.get_content_charset() for part in message.walk())
        return _decode_text(data, next((c for c in charsets if c), None))
    return subject


def _part_text(part: email.message.Message) -> str:
    """A text part's payload as text: its declared charset, else Latin-1 (which decodes
    any byte), never an error (old spam declares charsets that do not exist); CRLF line
    ends (the parser keeps them in a body) turned into LF, as in the other formats."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        text = str(part.get_payload())
    else:
        text = _decode_text(payload, part.get_content_charset())
    return text.replace("\r\n", "\n")


def _decode_text(data: bytes, charset: str | None) -> str:
    """``data`` decoded by ``charset`` (bad bytes replaced), or as Latin-1 when no charset
    is declared or the declared one does not exist."""
    try:
        return data.decode(charset or "latin-1", errors="replace")
    except LookupError:
        return data.decode("latin-1")
