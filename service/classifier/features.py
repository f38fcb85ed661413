"""Feature extraction: comment records -> the texts and numbers the linear model reads.

Everything here is deterministic and total: any ``str`` (empty, 64 KB, emoji only,
right-to-left, HTML, lone UTF-16 surrogates) is turned into features without raising.

The scikit-learn side is plain components plus three small transformers defined here
(:class:`ContentText`, :class:`AuthorText`, :class:`RecordStats`), which hold only simple
attributes so that skops can save and load them with an allow-list of
``service.classifier.*``, ``sklearn``, ``numpy`` and ``scipy`` types. The same module-level
functions (:func:`content_text`, :func:`author_text`, :func:`record_stats`) serve both the
scikit-learn pipeline and the classifier's fast path, so that the two cannot drift apart.
"""

from __future__ import annotations

import functools
import html
import math
import operator
import re
import string
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from service.classifier.types import CommentRecord

__all__ = [
    "ANONYMOUS",
    "LINK_MARK",
    "MAX_NGRAM_CHARS",
    "PATH_MARK",
    "QUERY_MARK",
    "SELF_MARK",
    "STAT_NAMES",
    "UNCENTRED",
    "AuthorText",
    "CompactTfidfVectorizer",
    "ContentText",
    "FeatureConfig",
    "PreparedRecords",
    "RecordStats",
    "StatValue",
    "author_text",
    "build_features",
    "content_and_stat_pairs",
    "content_text",
    "describe_stat",
    "is_self_link",
    "link_hosts",
    "record_stats",
    "repair_text",
    "url_shape",
]

MAX_NGRAM_CHARS: Final = 1500
"""Only the first characters of a comment feed the n-grams: a 64 KB comment costs no more
than a long one, and its size still shows in the shape features, which read all of it."""

ANONYMOUS: Final = "anonymous"
"""The author token of a record with no name, email or website."""

LINK_MARK: Final = "xurl"
"""Stands for a link in the normalised text; the link's host follows it as one word."""

PATH_MARK: Final = "xpath"
QUERY_MARK: Final = "xquery"
"""Prefixes of the words that give a link's shape after its host (see :func:`url_shape`)."""

SELF_MARK: Final = "xself"
"""Stands for a link to the page the comment is on (see :func:`is_self_link`): a reader
pointing at the page itself (a video's share link, a jump to a section of the post) sends
nobody elsewhere, so such a link is this word, not an outbound link."""

_TAG: Final = re.compile(
    r"<a\s[^>]{0,500}?href\s*=\s*[\"']?([^\"'>\s]+)[^>]{0,500}>|<[^<>]{0,500}>", re.IGNORECASE
)
#: The top-level domains that make a bare ``name.tld`` a link.
_LINK_TLDS: Final = "com|net|org|info|biz|ly|gl|be|co|tk|me|us|io|ru|tv|xyz|top|club|online|site"
_URL: Final = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+"
    r"|\b[a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63})*"
    rf"\.(?:{_LINK_TLDS})\b"
    r"(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
_URL_HINT: Final = re.compile(rf"://|www\.|\.(?:{_LINK_TLDS})\b", re.IGNORECASE)
"""What every match of :data:`_URL` contains (its scheme's ``://``, ``www.`` or its
top-level domain): a text without it has no link, and this scan costs a fraction of
:data:`_URL`'s, which tries a host at every word."""
_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_SHAPE_WORD: Final = re.compile(r"^[a-z]{1,12}$")
_IP_HOST: Final = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$|^\[?[0-9a-f:]+:[0-9a-f:]*\]?$")
_DIGIT: Final = re.compile(r"\d")
_EMOJI: Final = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_PUNCTUATION_RUN: Final = re.compile(r"(?<=\w)([.!?,;:]{2,})")
_PUNCTUATION_PAIR: Final = re.compile(r"[.!?,;:]{2}")
"""What every match of :data:`_PUNCTUATION_RUN` contains: a quick test before it."""
_REPEAT: Final = re.compile(r"(.)\1{2,}", re.DOTALL)
_INVISIBLE: Final = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad]")
"""Invisible characters (all outside ASCII), which become spaces."""

SHORTENERS: Final = frozenset(
    {
        "bit.ly", "bitly.com", "goo.gl", "tinyurl.com", "t.co", "ow.ly", "is.gd", "buff.ly",
        "adf.ly", "tiny.cc", "j.mp", "cutt.ly", "rebrand.ly", "shorturl.at", "lnkd.in",
        "rb.gy", "t.ly", "v.gd", "bl.ink", "s.id", "shorte.st", "clck.ru", "qr.ae",
    }
)  # fmt: skip
"""Hosts whose links hide where they lead; spammers use them to dodge domain block lists."""

FIRST_PARTY_SHORT_HOSTS: Final = {
    "youtu.be": "youtube.com",
    "redd.it": "reddit.com",
    "flic.kr": "flickr.com",
    "instagr.am": "instagram.com",
    "amzn.to": "amazon.com",
    "fb.me": "facebook.com",
}
"""Short-link hosts that belong to the site they lead to (unlike :data:`SHORTENERS`): a
``youtu.be/<id>`` link is a link to ``youtube.com``."""


def repair_text(text: str) -> str:
    """``text`` as valid Unicode: surrogate pairs written as two code units are joined, and
    lone surrogates (which cannot be encoded, so would crash later steps) become U+FFFD."""
    if text.isascii():  # O(1); surrogates are not ASCII
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _visible_text(text: str) -> str:
    """Repaired, HTML-unescaped text with tags removed (a link tag leaves its target, so
    that ``<a href=...>`` counts as a link) and invisible characters turned into spaces."""
    text = html.unescape(repair_text(text))
    if "<" in text:  # every tag starts with one
        text = _TAG.sub(lambda m: f" {m.group(1) or ''} ", text)
    # isascii() is O(1); a regex scan is cheaper than translate() with a dict.
    return text if text.isascii() else _INVISIBLE.sub(" ", text)


def _host(url: str) -> str:
    if not _SCHEME.match(url):
        url = "http://" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed IPv6 literal or port
        host = ""
    return host.removeprefix("www.")


def url_shape(url: str) -> str:
    """The shape of a link as words: ``xpath<first path segment>`` (``xpathnone`` for a
    bare host, ``xpathid`` when the segment is not a short lower-case word, e.g. an opaque
    id) and ``xquery<key>`` per query key (at most five, sorted; ``xqueryother`` for a key
    that is not a short word). A watch page (``xpathwatch xqueryv``), a channel or user
    page (``xpathchannel``, ``xpathuser``), a referral link (``xqueryref``) or a bare
    landing domain (``xpathnone``) are kinds of link on any host, which carry over to
    sites and hosts never seen in training where the host name cannot."""
    if not _SCHEME.match(url):
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed IPv6 literal or port
        return f"{PATH_MARK}id"
    segment = parts.path.strip("/").partition("/")[0].lower()
    if not segment:
        words = [f"{PATH_MARK}none"]
    else:
        words = [PATH_MARK + (segment if _SHAPE_WORD.match(segment) else "id")]
    if parts.query:
        keys = sorted({pair.partition("=")[0].lower() for pair in parts.query.split("&")} - {""})
        words.extend(QUERY_MARK + (k if _SHAPE_WORD.match(k) else "other") for k in keys[:5])
    return " ".join(words)


_ID_LIKE: Final = re.compile(r"^(?![a-z]{1,12}$)(?!\d{1,4}$).{3,}$")
"""A URL token that names one page: not a plain short word ("watch", "posts") and not a
short number (a year or month of a dated permalink)."""
_TRAILING: Final = ".,;:!?)]}'\""
_TRACKING_KEYS: Final = re.compile(r"^(?:utm_\w*|fbclid|gclid|ref|source|feature|si)$")
_Page = tuple[str, frozenset[str], str, frozenset[str]]
"""What identifies a page (see :func:`_page`)."""


def _site(host: str) -> str:
    host = host.removeprefix("m.")
    return FIRST_PARTY_SHORT_HOSTS.get(host, host)


@functools.lru_cache(maxsize=4096)
def _page(permalink: str) -> _Page | None:
    """What identifies the page at ``permalink``: its site, the id-like tokens of its
    path and query, its path, and its query pairs (tracking keys left out); None for a
    permalink without a host."""
    host, tokens, path, pairs = _url_parts(permalink)
    if not host:
        return None
    return _site(host), frozenset(t for t in tokens if _ID_LIKE.match(t)), path, pairs


def _url_parts(url: str) -> tuple[str, frozenset[str], str, frozenset[str]]:
    if not _SCHEME.match(url):
        url = "http://" + url
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").removeprefix("www.")
    except ValueError:  # a malformed IPv6 literal or port
        return "", frozenset(), "", frozenset()
    pairs = frozenset(
        pair
        for pair in parts.query.split("&")
        if pair and not _TRACKING_KEYS.match(pair.partition("=")[0].lower())
    )
    segments = [s for s in parts.path.split("/") if s]
    values = [p.partition("=")[2] for p in pairs]
    return host, frozenset(s for s in segments + values if s), parts.path.rstrip("/"), pairs


def is_self_link(url: str, permalink: str | None) -> bool:
    """Whether the link ``url`` leads to the page at ``permalink`` (the page the comment
    is on). It must be on the same site (``www.`` and ``m.`` aside, and a site's own
    short host such as ``youtu.be`` counting as its site) and name the same page: carry
    every id-like token of the permalink (``9bZkp7q19f0`` of ``/watch?v=9bZkp7q19f0``,
    the slug of ``/2024/05/my-post/``) in its path or query, or, for a permalink without
    one, have its path and query (tracking keys aside). A link to another page of the
    same site is an ordinary link."""
    page = _page(permalink) if permalink else None
    return page is not None and _on_site(_host(url), page) and _names_page(url, page)


def _on_site(host: str, page: _Page) -> bool:
    return _site(host.rstrip(".")) == page[0]


def _names_page(url: str, page: _Page) -> bool:
    _, ids, path, pairs = page
    # Punctuation after a link ends the sentence, not the URL ("see youtu.be/x1y2z3.").
    _, tokens, link_path, link_pairs = _url_parts(url.rstrip(_TRAILING))
    if ids:
        return ids <= tokens
    return link_path == path and pairs <= link_pairs


def link_hosts(text: str) -> list[str]:
    """The hosts (lower case, without ``www.``) of the links in ``text``, in order; a link
    whose host cannot be parsed gives ``""``."""
    return [_host(m.group(0)) for m in _URL.finditer(_visible_text(text))]


_Link = tuple[int, int, str, bool]
"""A link in visible text: start, end, host, and whether it leads to the page itself."""


def _links(text: str, permalink: str | None) -> list[_Link]:
    """Each link in visible text, in order; a link counts as leading to the page itself
    only when a ``permalink`` is given and :func:`is_self_link` says so (its whole URL is
    read only when its host is the page's site)."""
    found: list[_Link] = []
    if not _URL_HINT.search(text):
        return found
    page = _page(permalink) if permalink else None
    for match in _URL.finditer(text):
        url = match.group(0)
        host = _host(url)
        own = page is not None and _on_site(host, page) and _names_page(url, page)
        found.append((match.start(), match.end(), host, own))
    return found


def _content_of(
    text: str, links: list[_Link], shape: bool, split: bool, digits: bool = True
) -> str:
    """The content text of visible ``text`` with its ``links``; ``digits`` False says
    that ``text`` has no digit (``str.isdigit``, which every ``\\d`` is)."""
    pieces: list[str] = []
    last = 0
    for start, end, host, own in links:
        pieces.append(text[last:start])
        if own:
            pieces.append(f" {SELF_MARK} ")
        else:
            pieces.append(f" {LINK_MARK} {host or 'link'} ")
            if shape:
                pieces.append(f"{url_shape(text[start:end])} ")
        last = end
    pieces.append(text[last:])
    text = "".join(pieces)
    if split and _PUNCTUATION_PAIR.search(text):
        text = _PUNCTUATION_RUN.sub(r" \1 ", text)
    if digits:
        text = _DIGIT.sub("0", text)
    # As re.sub(r"\s+", " ", text).strip(): \s, split() and strip() all take the characters
    # str.isspace() does.
    return " ".join(text.split())[:MAX_NGRAM_CHARS]


def _page_of(record: CommentRecord, self_links: bool) -> str | None:
    return record.permalink if self_links else None


def content_text(
    record: CommentRecord,
    *,
    url_shapes: bool = True,
    self_links: bool = True,
    split_punctuation: bool = True,
) -> str:
    """The normalised content that the n-gram vectorizers read.

    Links become ``xurl <host>`` followed, with ``url_shapes``, by the link's shape (see
    :func:`url_shape`; the path's words themselves are noise); with ``self_links`` a link
    to the comment's own page (its ``permalink``; see :func:`is_self_link`) becomes
    :data:`SELF_MARK` instead; with ``split_punctuation`` a run of punctuation glued to a
    word ("subscribers...come", "ROCK!!!!") becomes a word of its own, so that the word
    reads as itself; digits become ``0`` (a phone number or a view count is a shape, not
    a word), whitespace runs become one space, and only the first
    :data:`MAX_NGRAM_CHARS` characters are kept.
    """
    text = _visible_text(record.content[: MAX_NGRAM_CHARS * 4])
    links = _links(text, _page_of(record, self_links))
    return _content_of(text, links, url_shapes, split_punctuation)


def content_and_stat_pairs(
    record: CommentRecord,
    *,
    url_shapes: bool = True,
    self_links: bool = True,
    split_punctuation: bool = True,
) -> tuple[str, tuple[float, ...], list[str]]:
    """``(content_text(record), pairs, hosts)``, sharing their common work: ``pairs`` are
    :func:`record_stats` as one flat tuple of their ``(value, raw)`` pairs,
    ``(links.value, links.raw, link_domains.value, ...)`` (the same numbers, without
    sixteen :class:`StatValue` per comment); ``hosts`` are those of the outbound links,
    one per :data:`LINK_MARK` of the text, in order."""
    text = _visible_text(record.content)
    links = _links(text, _page_of(record, self_links))
    counts = _letters_upper_digits(text)
    if len(record.content) > MAX_NGRAM_CHARS * 4:
        content = content_text(
            record,
            url_shapes=url_shapes,
            self_links=self_links,
            split_punctuation=split_punctuation,
        )
    else:
        content = _content_of(text, links, url_shapes, split_punctuation, counts[2] > 0)
    hosts = [h for _, _, h, own in links if not own] if links else []
    return content, _stat_pairs(record, text, links, counts), hosts


def _email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower() if "@" in email else ""


def author_text(record: CommentRecord) -> str:
    """The author's identity as prefixed tokens: ``name:<word>`` per word of the name,
    ``email:<domain>`` and ``site:<host>``. Prefixes keep the three vocabularies apart."""
    tokens: list[str] = []
    if record.author_name:
        name = _DIGIT.sub("0", _visible_text(record.author_name).lower())
        tokens.extend(f"name:{word}" for word in re.findall(r"\w+", name)[:20])
    if record.author_email:
        domain = _email_domain(repair_text(record.author_email))
        if domain:
            tokens.append(f"email:{domain}")
    if record.author_url:
        host = _host(repair_text(record.author_url).strip())
        if host:
            tokens.append(f"site:{host}")
    # An absent identity is a token too, so the vocabulary is never empty (a data set
    # without author columns) and anonymity can carry its own weight.
    return " ".join(tokens) if tokens else ANONYMOUS


class StatValue(NamedTuple):
    """One shape, link or history feature: ``value`` is what the model reads (scaled into
    [0, 1]); ``raw`` is the count or share a moderator reads. (A named tuple: sixteen are
    built per comment scored, and a tuple is several times cheaper to build than a
    frozen dataclass.)"""

    value: float
    raw: float


STAT_NAMES: Final = (
    "links",
    "link_domains",
    "shortener",
    "ip_host",
    "link_share",
    "length",
    "short",
    "upper_share",
    "digit_share",
    "repeats",
    "non_ascii_share",
    "emoji",
    "exclamations",
    "author_url",
    "history_approved",
    "history_spam",
)
"""The dense features, in column order."""


def record_stats(record: CommentRecord, *, self_links: bool = True) -> list[StatValue]:
    """The dense features of ``record``, in :data:`STAT_NAMES` order.

    Counts are capped and scaled into [0, 1] so that no single number can dominate the
    L2-normalised n-gram blocks; the author history is log-scaled because the tenth
    approved comment says less than the first. The link features count outbound links:
    with ``self_links``, a link to the comment's own page is not one of them.
    """
    text = _visible_text(record.content)
    links = _links(text, _page_of(record, self_links))
    return _stat_values(_stat_pairs(record, text, links, _letters_upper_digits(text)))


_ASCII_LETTERS: Final = string.ascii_letters.encode()
_ASCII_UPPER: Final = string.ascii_uppercase.encode()
_ASCII_DIGITS: Final = string.digits.encode()


def _letters_upper_digits(text: str) -> tuple[int, int, int]:
    """How many characters of ``text`` are letters, upper case, digits (``str.isalpha``,
    ``str.isupper``, ``str.isdigit``). Of ASCII characters exactly a-z A-Z, A-Z and 0-9
    are, so ASCII text (``isascii`` is O(1)) is counted by ``bytes.translate``, in C
    without a call per character."""
    if text.isascii():
        data = text.encode("ascii")
        n = len(data)
        return (
            n - len(data.translate(None, _ASCII_LETTERS)),
            n - len(data.translate(None, _ASCII_UPPER)),
            n - len(data.translate(None, _ASCII_DIGITS)),
        )
    # map() over str methods runs the per-character loop in C.
    return sum(map(str.isalpha, text)), sum(map(str.isupper, text)), sum(map(str.isdigit, text))


_LOG_4000: Final = math.log1p(4000)
_LOG_100: Final = math.log1p(100)


def _stat_values(pairs: tuple[float, ...]) -> list[StatValue]:
    """Flat ``(value, raw)`` pairs as :class:`StatValue`, in order."""
    return [StatValue(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]


def _stat_pairs(
    record: CommentRecord,
    text: str,
    every_link: list[_Link],
    counts: tuple[int, int, int],
) -> tuple[float, ...]:
    """The dense features of ``record`` (visible ``text``, its links, and its
    :func:`_letters_upper_digits`) as flat ``(value, raw)`` pairs in
    :data:`STAT_NAMES` order."""
    n = len(text)
    links = [link for link in every_link if not link[3]] if every_link else every_link
    letters, upper, digits = counts
    if text.isascii():  # O(1)
        non_ascii = emoji = 0
    else:
        non_ascii = n - len(text.encode("ascii", "ignore"))
        emoji = len(_EMOJI.findall(text))
    repeats = len(_REPEAT.findall(text))
    if links:
        hosts = [link[2] for link in links]
        link_chars = sum(end - start for start, end, _, _ in links)
        distinct = len({h for h in hosts if h})
        shortener = any(h in SHORTENERS for h in hosts)
        ip_host = any(_IP_HOST.match(h) for h in hosts if h)
    else:
        link_chars = distinct = 0
        shortener = ip_host = False
    approved = max(0, record.approved_count)
    spam = max(0, record.spam_count)
    upper_share = upper / letters if letters >= 4 else 0.0
    stripped = len(text.strip())
    exclamations = text.count("!")
    link_share = link_chars / n if n else 0.0
    non_ascii_share = non_ascii / n if n else 0.0
    author_url = float(bool(record.author_url))
    return (
        min(len(links), 5) / 5,
        len(links),
        min(distinct, 5) / 5,
        distinct,
        float(shortener),
        float(shortener),
        float(ip_host),
        float(ip_host),
        link_share,
        link_share,
        min(math.log1p(n) / _LOG_4000, 1.0),
        n,
        float(stripped < 25),
        stripped,
        upper_share,
        upper_share,
        digits / n if n else 0.0,
        digits,
        min(repeats, 5) / 5,
        repeats,
        non_ascii_share,
        non_ascii_share,
        min(emoji, 5) / 5,
        emoji,
        min(exclamations, 10) / 10,
        exclamations,
        author_url,
        author_url,
        min(math.log1p(approved) / _LOG_100, 1.0),
        approved,
        min(math.log1p(spam) / _LOG_100, 1.0),
        spam,
    )


def _plural(count: float, one: str, many: str) -> str:
    number = int(count)
    if number == 0:
        return f"no {many}"
    return f"{number} {one if number == 1 else many}"


def describe_stat(name: str, stat: StatValue) -> str:
    """A moderator-readable phrase for one dense feature's value."""
    raw = stat.raw
    if name == "links":
        return _plural(raw, "link", "links")
    if name == "link_domains":
        return _plural(raw, "linked domain", "linked domains")
    if name == "shortener":
        return "links to a URL shortener" if raw else "no URL shortener"
    if name == "ip_host":
        return "links to a bare IP address" if raw else "no IP-address link"
    if name == "link_share":
        return f"links make up {raw:.0%} of the text" if raw else "no links"
    if name == "length":
        return f"a text of {int(raw)} characters"
    if name == "short":
        return "a very short text" if raw < 25 else "not a very short text"
    if name == "upper_share":
        return f"capitals make up {raw:.0%} of the letters" if raw else "no capitals"
    if name == "digit_share":
        return _plural(raw, "digit", "digits")
    if name == "repeats":
        return _plural(raw, "run of repeated characters", "runs of repeated characters")
    if name == "non_ascii_share":
        return f"non-ASCII characters make up {raw:.0%} of the text" if raw else "only ASCII text"
    if name == "emoji":
        return _plural(raw, "emoji", "emoji")
    if name == "exclamations":
        return _plural(raw, "exclamation mark", "exclamation marks")
    if name == "author_url":
        return "the author gave a website" if raw else "no author website"
    if name == "history_approved":
        if not raw:
            return "a first-time author (no approved comments)"
        return "the author's " + _plural(raw, "approved comment", "approved comments")
    if name == "history_spam":
        if not raw:
            return "no earlier spam from the author"
        return "the author's " + _plural(raw, "earlier spam comment", "earlier spam comments")
    raise KeyError(name)


class PreparedRecords(list[CommentRecord]):
    """Records with their content texts (normalised as ``url_shapes``, ``self_links`` and
    ``split_punctuation`` say) and dense feature values worked out once, in one pass that
    shares the visible text and the link scan (:func:`content_and_stat_pairs`), for fitting or
    applying a feature union: its word and char blocks read the same content text, and the
    dense features the same text. :class:`ContentText` and :class:`RecordStats` take what
    was worked out when they normalise alike (else they work it out themselves); to
    anything else this is a plain list of the records. Not to be changed once made."""

    def __init__(
        self,
        records: Iterable[CommentRecord],
        *,
        url_shapes: bool = True,
        self_links: bool = True,
        split_punctuation: bool = True,
    ) -> None:
        super().__init__(records)
        self.normalised = (url_shapes, self_links, split_punctuation)
        self.contents: list[str] = []
        self.values: list[tuple[float, ...]] = []
        """Each record's dense feature values, in :data:`STAT_NAMES` order."""
        for record in self:
            content, pairs, _ = content_and_stat_pairs(
                record,
                url_shapes=url_shapes,
                self_links=self_links,
                split_punctuation=split_punctuation,
            )
            self.contents.append(content)
            self.values.append(pairs[::2])


class ContentText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Records -> :func:`content_text` strings (stateless)."""

    url_shapes: bool = False
    """Class-level default for artifacts saved before links had shape words: skops
    restores an instance's saved attributes without calling ``__init__``, so such a
    transformer reads this False and keeps normalising text as it was trained."""

    self_links: bool = False
    """Likewise for artifacts saved before links to the comment's own page became
    :data:`SELF_MARK`."""

    split_punctuation: bool = False
    """Likewise for artifacts saved before punctuation runs were split from words."""

    def __init__(
        self, url_shapes: bool = True, self_links: bool = True, split_punctuation: bool = True
    ) -> None:
        self.url_shapes = url_shapes
        self.self_links = self_links
        self.split_punctuation = split_punctuation

    def fit(self, records: Sequence[CommentRecord], y: Any = None) -> ContentText:
        """Nothing to learn; returns ``self``."""
        return self

    def transform(self, records: Iterable[CommentRecord]) -> list[str]:
        """One normalised content string per record."""
        if isinstance(records, PreparedRecords) and records.normalised == (
            self.url_shapes,
            self.self_links,
            self.split_punctuation,
        ):
            return list(records.contents)
        return [
            content_text(
                record,
                url_shapes=self.url_shapes,
                self_links=self.self_links,
                split_punctuation=self.split_punctuation,
            )
            for record in records
        ]


class AuthorText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Records -> :func:`author_text` strings (stateless)."""

    def fit(self, records: Sequence[CommentRecord], y: Any = None) -> AuthorText:
        """Nothing to learn; returns ``self``."""
        return self

    def transform(self, records: Iterable[CommentRecord]) -> list[str]:
        """One author token string per record."""
        return [author_text(record) for record in records]


UNCENTRED: Final = frozenset({"history_approved", "history_spam"})
"""Dense features that are not centred: an author without history reads 0 and so
contributes nothing at all (on a new site every author is first-time; centring on
training data where authors had history would make "no history" a signal)."""


def _means(raw: np.ndarray[Any, np.dtype[np.float64]]) -> list[float]:
    means = raw.mean(axis=0) if raw.shape[0] else np.zeros(len(STAT_NAMES))
    return [
        0.0 if name in UNCENTRED else float(v) for name, v in zip(STAT_NAMES, means, strict=True)
    ]


class RecordStats(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Records -> the dense :func:`record_stats` matrix, centred on the training means.

    Centring makes each column's contribution to the log-odds relative to a typical
    comment, so that a reason such as "a text of 51 characters" only appears when the
    length is unusual, and "no links" can count toward ham.
    """

    self_links: bool = False
    """As :attr:`ContentText.self_links`: False for artifacts saved before it existed."""

    def __init__(self, self_links: bool = True) -> None:
        self.self_links = self_links

    def fit(self, records: Sequence[CommentRecord], y: Any = None) -> RecordStats:
        """Learn the column means (``means_``, a plain list of floats; the author history
        columns keep 0, see :data:`UNCENTRED`)."""
        self.means_ = _means(self._raw(records))
        return self

    def transform(self, records: Iterable[CommentRecord]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """A ``(len(records), len(STAT_NAMES))`` float64 array, minus ``means_``."""
        return self._raw(records) - np.asarray(self.means_, dtype=np.float64)

    def fit_transform(
        self, records: Sequence[CommentRecord], y: Any = None, **params: Any
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """:meth:`fit` then :meth:`transform`, with the features extracted once."""
        raw = self._raw(records)
        self.means_ = _means(raw)
        return raw - np.asarray(self.means_, dtype=np.float64)

    def _raw(self, records: Iterable[CommentRecord]) -> np.ndarray[Any, np.dtype[np.float64]]:
        if isinstance(records, PreparedRecords) and records.normalised[1] == self.self_links:
            rows: list[Any] = records.values
        else:
            rows = [
                [stat.value for stat in record_stats(record, self_links=self.self_links)]
                for record in records
            ]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(STAT_NAMES))


_WORDS_PER_ANALYZER: Final = 50_000
"""Distinct words whose char n-grams one char_wb analyzer keeps (Zipf: the first ones
seen are most of the words read)."""


def _char_wb_ngrams(word: str, low: int, high: int) -> list[str]:
    """scikit-learn's char_wb n-grams of one word, in its order: the word padded with a
    space each side, its ``n``-grams for ``n`` from ``low`` to ``high``, except that a
    padded word no longer than ``n`` counts once, whole, and ends the word."""
    padded = f" {word} "
    size = len(padded)
    grams: list[str] = []
    for n in range(low, high + 1):
        if size <= n:
            grams.append(padded)
            break
        grams += [padded[i : i + n] for i in range(size - n + 1)]
    return grams


_DOCS_PER_COUNT: Final = 2_000
"""Documents whose n-gram occurrences are counted in one sparse pass: enough that
the pass's fixed cost is small per document, few enough that the occurrences (hundreds
per document, duplicates included) stay a few megabytes."""

_Ids = np.ndarray[Any, np.dtype[np.int64]]
_IdsOf = Callable[[Any, list[Any]], int]
"""Appends one document's n-gram ids to a list (as arrays, or as ints); returns how many."""

_NOT_NONE: Final = functools.partial(operator.is_not, None)


def _vocabulary_ids(vocabulary: dict[str, int], fixed: bool) -> Callable[[Iterable[str]], Any]:
    """An iterator over the vocabulary ids of n-grams, in order, without a Python step
    per n-gram: in a ``fixed`` vocabulary, those it holds (the others count for
    nothing); else every n-gram's, a new one added with the next id (``vocabulary`` is
    then a defaultdict whose default is its own length)."""
    if fixed:
        get = vocabulary.get
        return lambda grams: filter(_NOT_NONE, map(get, grams))
    getitem = vocabulary.__getitem__
    return lambda grams: map(getitem, grams)


class CompactTfidfVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """A TfidfVectorizer whose saved state holds its vocabulary as two numpy arrays.

    skops saves a dict entry by entry, which makes loading a 200,000-term vocabulary take
    seconds; arrays load in milliseconds. Behaviour is TfidfVectorizer's exactly; its
    char_wb analyzer works each distinct word's n-grams out once per pass over the
    documents, where scikit-learn's slices them again at every occurrence; its word
    analyzer joins n-grams with iterators; and its counting (see :meth:`_count_vocab`)
    adds up occurrences in scipy, where scikit-learn's loops over every occurrence.
    """

    def build_analyzer(self) -> Callable[[Any], list[str]]:
        """As TfidfVectorizer's (the same features in the same order), faster for char_wb
        and for word n-grams."""
        if self.analyzer == "word":
            return self._word_analyzer()
        if self.analyzer != "char_wb":
            return super().build_analyzer()  # type: ignore[no-any-return]
        decode, preprocess = self.decode, self.build_preprocessor()
        low, high = self.ngram_range
        words: dict[str, list[str]] = {}

        def analyze(doc: Any) -> list[str]:
            grams: list[str] = []
            # As scikit-learn: decode, preprocess, split on whitespace (its collapsing of
            # whitespace runs first changes nothing that split() sees).
            for word in preprocess(decode(doc)).split():
                found = words.get(word)
                if found is None:
                    found = _char_wb_ngrams(word, low, high)
                    if len(words) < _WORDS_PER_ANALYZER:
                        words[word] = found
                grams += found
            return grams

        return analyze

    def _word_analyzer(self) -> Callable[[Any], list[str]]:
        """scikit-learn's word analyzer (decode, preprocess, tokenize, drop stop words,
        n-grams), its n-grams joined by iterators rather than a Python loop."""
        super().build_analyzer()  # scikit-learn's checks of the settings, and its warnings
        decode, preprocess, tokenize = (
            self.decode,
            self.build_preprocessor(),
            self.build_tokenizer(),
        )
        stop_words = self.get_stop_words()
        low, high = self.ngram_range

        def analyze(doc: Any) -> list[str]:
            tokens: list[str] = tokenize(preprocess(decode(doc)))
            if stop_words is not None:
                tokens = [t for t in tokens if t not in stop_words]
            grams = tokens[:] if low == 1 else []
            for n in range(max(low, 2), min(high, len(tokens)) + 1):
                grams += map(" ".join, zip(*[tokens[k:] for k in range(n)], strict=False))
            return grams

        return analyze

    def _count_vocab(self, raw_documents: Iterable[Any], fixed_vocab: bool) -> tuple[Any, Any]:
        """As scikit-learn's: the vocabulary (grown unless ``fixed_vocab``) and the
        document-term counts, CSR with sorted indices and ``self.dtype`` values.

        Ids are given in the order scikit-learn gives them (the order in which n-grams
        are first met), by a dict lookup per n-gram run in C, not a Python loop; for
        char_wb, each distinct word's n-grams become ids once (a word's n-grams are the
        same wherever it occurs, and char_wb n-grams never cross words). scipy counts a
        few thousand documents' occurrences at a time, where scikit-learn adds them up
        one by one in a Python dict. Same vocabulary, same matrix, for every analyzer."""
        vocabulary: dict[str, int]
        if fixed_vocab:
            vocabulary = self.vocabulary_
        else:
            vocabulary = defaultdict()
            vocabulary.default_factory = vocabulary.__len__
        # What a document's ids are appended as: a char_wb word's arrays of a dozen or
        # more ids; a word n-gram's ids one by one (an array each would cost more).
        flatten: Callable[[list[Any]], _Ids]
        if self.analyzer == "char_wb":
            ids_of = self._char_wb_ids(vocabulary, fixed_vocab)
            flatten = np.concatenate
        else:
            ids_of = self._analyzer_ids(vocabulary, fixed_vocab)
            flatten = functools.partial(np.array, dtype=np.int64)

        counted: list[sp.csr_array] = []
        occurrences: list[Any] = []
        lengths: list[int] = []

        def count() -> None:
            indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            every = flatten(occurrences) if occurrences else np.zeros(0, np.int64)
            part = sp.csr_array(
                (np.ones(every.size, dtype=np.float64), every, indptr),
                shape=(len(lengths), max(1, len(vocabulary))),
            )
            part.sum_duplicates()  # sorts each row's indices and adds up repeats
            counted.append(part)
            occurrences.clear()
            lengths.clear()

        for doc in raw_documents:
            lengths.append(ids_of(doc, occurrences))
            if len(lengths) == _DOCS_PER_COUNT:
                count()
        if lengths or not counted:
            count()
        if not fixed_vocab and not vocabulary:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        data = np.concatenate([part.data for part in counted]).astype(self.dtype, copy=False)
        index_dtype = np.int32 if data.size <= np.iinfo(np.int32).max else np.int64
        indices = np.concatenate([part.indices for part in counted]).astype(index_dtype, copy=False)
        row_sizes = np.concatenate([np.diff(part.indptr) for part in counted])
        indptr = np.zeros(row_sizes.size + 1, dtype=index_dtype)
        np.cumsum(row_sizes, out=indptr[1:])
        matrix = sp.csr_array((data, indices, indptr), shape=(row_sizes.size, len(vocabulary)))
        matrix.has_sorted_indices = True
        return dict(vocabulary), _sparse_interface(matrix)

    def _char_wb_ids(self, vocabulary: dict[str, int], fixed_vocab: bool) -> _IdsOf:
        """Per document: appends its words' char_wb n-gram ids, returns how many."""
        decode, preprocess = self.decode, self.build_preprocessor()
        low, high = self.ngram_range
        known_ids = _vocabulary_ids(vocabulary, fixed_vocab)
        words: dict[str, _Ids] = {}

        def ids_of(doc: Any, out: list[_Ids]) -> int:
            size = 0
            # As scikit-learn: decode, preprocess, split on whitespace (its collapsing of
            # whitespace runs first changes nothing that split() sees).
            for word in preprocess(decode(doc)).split():
                ids = words.get(word)
                if ids is None:
                    ids = np.fromiter(known_ids(_char_wb_ngrams(word, low, high)), np.int64)
                    if len(words) < _WORDS_PER_ANALYZER:
                        words[word] = ids
                out.append(ids)
                size += ids.size
            return size

        return ids_of

    def _analyzer_ids(self, vocabulary: dict[str, int], fixed_vocab: bool) -> _IdsOf:
        """Per document: appends the ids (ints) of what :meth:`build_analyzer`'s analyzer
        makes of it, returns how many."""
        analyze = self.build_analyzer()
        known_ids = _vocabulary_ids(vocabulary, fixed_vocab)

        def ids_of(doc: Any, out: list[int]) -> int:
            before = len(out)
            out += known_ids(analyze(doc))
            return len(out) - before

        return ids_of

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            # The terms in id order as one UTF-8 byte array and their lengths: compact
            # whatever the longest term (a fixed-width string array is as wide as it,
            # four bytes a character: 60,000 terms padded to a 150-character one made
            # 36 MB to inflate at every load).
            encoded = [
                term.encode("utf-8", "surrogatepass")
                for term in sorted(vocabulary, key=vocabulary.__getitem__)
            ]
            state["vocabulary_utf8_"] = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
            state["vocabulary_lengths_"] = np.array([len(e) for e in encoded], dtype=np.int64)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        blob = state.pop("vocabulary_utf8_", None)
        lengths = state.pop("vocabulary_lengths_", None)
        if blob is not None and lengths is not None:
            data = blob.tobytes()
            ends = np.cumsum(lengths).tolist()
            starts = [0, *ends[:-1]]
            state["vocabulary_"] = {
                data[a:b].decode("utf-8", "surrogatepass"): i
                for i, (a, b) in enumerate(zip(starts, ends, strict=True))
            }
        # Artifacts saved before kept the terms as a fixed-width string array.
        terms = state.pop("vocabulary_terms_", None)
        if terms is not None:
            state["vocabulary_"] = {str(term): i for i, term in enumerate(terms.tolist())}
        super().__setstate__(state)


def _sparse_interface(matrix: sp.csr_array) -> Any:
    """``matrix`` as the sparse type scikit-learn's configuration asks its vectorizers to
    return (``sparse_interface``: scipy's arrays or its matrices; matrices before the
    setting existed)."""
    if get_config().get("sparse_interface", "spmatrix") == "sparray":
        return matrix
    return sp.csr_matrix(matrix)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """The knobs of the feature union. The weights scale each block's columns: the n-gram
    blocks are L2-normalised per comment, so the weights set how much each block may say
    relative to the others under the same regularisation. ``url_shapes`` follows each
    link's host with its shape words (:func:`url_shape`); ``self_links`` makes a link to
    the comment's own page :data:`SELF_MARK`, not an outbound link (:func:`is_self_link`);
    ``split_punctuation`` parts punctuation runs from the word they follow (see
    :func:`content_text`)."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 2
    max_word_features: int = 60_000
    max_char_features: int = 150_000
    max_author_features: int = 20_000
    word_weight: float = 1.0
    char_weight: float = 1.0
    author_weight: float = 0.5
    stats_weight: float = 1.0
    url_shapes: bool = True
    self_links: bool = True
    split_punctuation: bool = True


def build_features(config: FeatureConfig = FeatureConfig()) -> FeatureUnion:
    """An unfitted feature union with blocks ``word``, ``char``, ``author`` and ``stats``.

    The n-gram vectorizers use sublinear tf (a word said five times is not five times the
    evidence), ``char_wb`` n-grams (each n-gram lies inside one word, which lets the
    classifier attribute it to that word in its reasons), and a ``min_df`` plus a cap on
    the vocabulary to keep the artifact small.
    """

    def tfidf(**kwargs: Any) -> CompactTfidfVectorizer:
        return CompactTfidfVectorizer(sublinear_tf=True, dtype=np.float64, **kwargs)

    return FeatureUnion(
        [
            (
                "word",
                Pipeline(
                    [
                        (
                            "text",
                            ContentText(
                                config.url_shapes, config.self_links, config.split_punctuation
                            ),
                        ),
                        (
                            "tfidf",
                            tfidf(
                                ngram_range=config.word_ngrams,
                                min_df=config.min_df,
                                max_features=config.max_word_features,
                            ),
                        ),
                    ]
                ),
            ),
            (
                "char",
                Pipeline(
                    [
                        (
                            "text",
                            ContentText(
                                config.url_shapes, config.self_links, config.split_punctuation
                            ),
                        ),
                        (
                            "tfidf",
                            tfidf(
                                analyzer="char_wb",
                                ngram_range=config.char_ngrams,
                                min_df=config.min_df,
                                max_features=config.max_char_features,
                            ),
                        ),
                    ]
                ),
            ),
            (
                "author",
                Pipeline(
                    [
                        ("text", AuthorText()),
                        (
                            "tfidf",
                            tfidf(
                                token_pattern=r"\S+",  # noqa: S106 (a regex, not a secret)
                                min_df=config.min_df,
                                max_features=config.max_author_features,
                            ),
                        ),
                    ]
                ),
            ),
            ("stats", RecordStats(config.self_links)),
        ],
        transformer_weights={
            "word": config.word_weight,
            "char": config.char_weight,
            "author": config.author_weight,
            "stats": config.stats_weight,
        },
    )
