"""Feature extraction: total on hostile input, deterministic, and faithful to the text."""

from __future__ import annotations

import numpy as np
import pytest

from service.classifier.features import (
    ANONYMOUS,
    STAT_NAMES,
    ContentText,
    FeatureConfig,
    RecordStats,
    author_text,
    build_features,
    content_text,
    is_self_link,
    link_hosts,
    record_stats,
    repair_text,
    url_shape,
)
from service.classifier.types import CommentRecord

EDGE_CASES = {
    "empty": "",
    "64kb": "spam " * (64 * 1024 // 5),
    "emoji": "😀🔥👍💯" * 10,
    "rtl": "مرحبا بكم في مدونتي، شكرا على المقال",
    "lone_surrogate": "hello \ud800 world \udfff",
    "html": '<p>Nice <b>post</b></p><a href="http://bit.ly/x">click</a><script>x()</script>',
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_give_finite_features(name: str) -> None:
    record = CommentRecord(content=EDGE_CASES[name], author_name=EDGE_CASES[name])
    stats = record_stats(record)
    assert len(stats) == len(STAT_NAMES)
    assert all(np.isfinite(s.value) and 0.0 <= s.value <= 1.0 for s in stats)
    text = content_text(record)
    text.encode("utf-8")  # valid Unicode whatever came in
    assert len(text) <= 4000


def test_lone_surrogate_becomes_replacement_character() -> None:
    assert repair_text("a\ud800b") == "a\ufffdb"
    assert repair_text("\ud83d\ude00") == "😀"  # a pair written as two code units is joined
    assert repair_text("plain") == "plain"


def test_links_are_found_in_text_and_html() -> None:
    assert link_hosts("see http://www.Example.com/a and bit.ly/x") == ["example.com", "bit.ly"]
    assert link_hosts('<a href="https://t.co/abc">here</a>') == ["t.co"]
    stats = dict(
        zip(
            STAT_NAMES,
            record_stats(CommentRecord("go http://bit.ly/x http://1.2.3.4/")),
            strict=True,
        )
    )
    assert stats["links"].raw == 2
    assert stats["shortener"].raw == 1.0
    assert stats["ip_host"].raw == 1.0


def test_content_text_normalises_links_digits_and_tags() -> None:
    record = CommentRecord("Call 555-1234<br/>visit https://spam.example.com/x?y=1")
    assert content_text(record) == "Call 000-0000 visit xurl spam.example.com xpathx xqueryy"
    assert content_text(record, url_shapes=False) == "Call 000-0000 visit xurl spam.example.com"


@pytest.mark.parametrize(
    ("url", "shape"),
    [
        ("https://www.youtube.com/watch?v=abc&t=3s", "xpathwatch xqueryt xqueryv"),
        ("http://youtu.be/CevxZvSJLk8", "xpathid"),
        ("cheap-pills.biz", "xpathnone"),
        ("https://example.com/", "xpathnone"),
        (
            "http://shop.example.com/user/Bob?ref=7&REF=8&utm_source=x",
            "xpathuser xqueryref xqueryother",
        ),
        ("http://example.com/a?=1&&b", "xpatha xqueryb"),
        ("http://[::1/x", "xpathid"),
    ],
)
def test_url_shape(url: str, shape: str) -> None:
    assert url_shape(url) == shape


def test_content_transformer_of_an_old_artifact_keeps_its_normalisation() -> None:
    # skops restores saved attributes without __init__: a ContentText saved before links
    # had shape words has no url_shapes attribute and must read the class default.
    old = ContentText.__new__(ContentText)
    record = CommentRecord(
        "see http://example.com/watch?v=1... http://example.com/p1",
        permalink="http://example.com/p1",
    )
    assert old.transform([record]) == ["see xurl example.com xurl example.com"]
    assert ContentText().transform([record]) == ["see xurl example.com xpathwatch xqueryv xself"]
    old_stats = RecordStats.__new__(RecordStats)
    assert old_stats._raw([record])[0, STAT_NAMES.index("links")] == 2 / 5


VIDEO = "https://www.youtube.com/watch?v=9bZkp7q19f0"
POST = "https://blog.example.com/2024/05/why-we-moved/"


@pytest.mark.parametrize(
    ("url", "page", "own"),
    [
        ("http://youtu.be/9bZkp7q19f0", VIDEO, True),  # the site's own short host
        ("https://youtu.be/9bZkp7q19f0?si=x1", VIDEO, True),
        ("https://m.youtube.com/watch?v=9bZkp7q19f0&t=2m19s", VIDEO, True),
        ("http://youtu.be/9bZkp7q19f0.", VIDEO, True),  # the sentence's full stop
        ("https://www.youtube.com/watch?v=KQ6zr6kCPj8", VIDEO, False),  # another video
        ("https://www.youtube.com/user/someone", VIDEO, False),
        ("http://spam.example/9bZkp7q19f0", VIDEO, False),  # the id, elsewhere
        (f"{POST}#comment-3", POST, True),
        ("blog.example.com/2024/05/why-we-moved?utm_source=feed", POST, True),
        ("https://blog.example.com/", POST, False),  # the same site, another page
        ("https://blog.example.com/2024/05/other-post/", POST, False),
        ("https://evil.example/2024/05/why-we-moved/", POST, False),
        # A permalink without an id-like token: the same path and query.
        ("https://blog.example.com/?p=123&utm_medium=x", "https://blog.example.com/?p=123", True),
        ("https://blog.example.com/?p=124", "https://blog.example.com/?p=123", False),
        ("http://youtu.be/9bZkp7q19f0", None, False),
        ("http://youtu.be/9bZkp7q19f0", "", False),
        ("http://[::1/x", "http://[::1/x", False),
    ],
)
def test_is_self_link(url: str, page: str | None, own: bool) -> None:
    assert is_self_link(url, page) is own


def test_a_link_to_the_page_itself_is_no_outbound_link() -> None:
    text = "PSY - GANGNAM STYLE M/V: http://youtu.be/9bZkp7q19f0 and http://bit.ly/x"
    record = CommentRecord(text, permalink=VIDEO)
    assert content_text(record) == "PSY - GANGNAM STYLE M/V: xself and xurl bit.ly xpathx"
    stats = dict(zip(STAT_NAMES, record_stats(record), strict=True))
    assert (stats["links"].raw, stats["link_domains"].raw) == (1, 1)
    # Without the page, or with self_links off (an older artifact), it is a link.
    assert "xurl youtu.be" in content_text(CommentRecord(text))
    assert "xurl youtu.be" in content_text(record, self_links=False)
    assert record_stats(record, self_links=False)[STAT_NAMES.index("links")].raw == 2


def test_punctuation_runs_are_parted_from_words() -> None:
    record = CommentRecord("so close to 14,000,000 subscribers...come on!!! e.g. 3.5")
    assert content_text(record) == "so close to 00,000,000 subscribers ... come on !!! e.g. 0.0"
    assert content_text(record, split_punctuation=False) == (
        "so close to 00,000,000 subscribers...come on!!! e.g. 0.0"
    )


def test_author_text_tokens() -> None:
    record = CommentRecord(
        "hi",
        author_name="Cheap Pills 24",
        author_email="x@Mail.RU",
        author_url="http://www.pills.biz/",
    )
    assert author_text(record) == "name:cheap name:pills name:00 email:mail.ru site:pills.biz"
    assert author_text(CommentRecord("hi")) == ANONYMOUS


def test_shape_features() -> None:
    stats = dict(zip(STAT_NAMES, record_stats(CommentRecord("BUY NOW!!! 😀😀")), strict=True))
    assert stats["upper_share"].raw == 1.0
    assert stats["emoji"].raw == 2
    assert stats["repeats"].raw == 1
    assert stats["exclamations"].raw == 3


def test_history_features_are_log_scaled_and_capped() -> None:
    few = dict(zip(STAT_NAMES, record_stats(CommentRecord("x", approved_count=3)), strict=True))
    many = dict(
        zip(STAT_NAMES, record_stats(CommentRecord("x", approved_count=10**6)), strict=True)
    )
    assert 0.0 < few["history_approved"].value < many["history_approved"].value == 1.0


def test_union_is_deterministic_and_handles_edge_cases() -> None:
    records = [CommentRecord(text) for text in EDGE_CASES.values()] * 2
    a = build_features(FeatureConfig(min_df=1)).fit_transform(records)
    b = build_features(FeatureConfig(min_df=1)).fit_transform(records)
    assert (a != b).nnz == 0
    assert np.all(np.isfinite(a.data))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello World 2024!",
        "".join(map(chr, range(128))),
        "ÉCOLE été 12 ٣٤ Ⅻ ① ＡＢ",
        "😀 CHECK OUT 42",
        *EDGE_CASES.values(),
    ],
)
def test_letters_capitals_and_digits_are_counted_as_str_methods_count_them(text: str) -> None:
    from service.classifier.features import _letters_upper_digits

    assert _letters_upper_digits(text) == (
        sum(c.isalpha() for c in text),
        sum(c.isupper() for c in text),
        sum(c.isdigit() for c in text),
    )


WHITESPACE_AND_WORDS = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "a b  c\t\td\n\ne \u2003f\u00a0g\x1ch",
    "  leading and trailing  ",
    "Supercalifragilisticexpialidocious words",
    "xurl bit.ly xpathwatch xqueryv 000",
    "😀🔥👍 مرحبا Привет 日本語",
    "repeat repeat repeat REPEAT",
    "well-known e.g. foo_bar it's a-b-c x.y",
]


@pytest.mark.parametrize("ngrams", [(2, 5), (1, 3), (3, 3), (1, 1)])
@pytest.mark.parametrize("lowercase", [True, False])
def test_char_wb_analyzer_gives_sklearns_ngrams_in_its_order(
    ngrams: tuple[int, int], lowercase: bool
) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from service.classifier.features import CompactTfidfVectorizer

    params = {"analyzer": "char_wb", "ngram_range": ngrams, "lowercase": lowercase}
    fast = CompactTfidfVectorizer(**params).build_analyzer()
    reference = TfidfVectorizer(**params).build_analyzer()
    for text in WHITESPACE_AND_WORDS * 2:  # the second time from the analyzer's word cache
        assert fast(text) == reference(text), text


@pytest.mark.parametrize(
    "params",
    [
        {"ngram_range": (1, 2)},
        {"ngram_range": (1, 1), "lowercase": False},
        {"ngram_range": (2, 3)},
        {"ngram_range": (1, 3), "stop_words": ["and", "the"]},
        {"ngram_range": (1, 2), "token_pattern": r"\S+"},
    ],
)
def test_word_analyzer_gives_sklearns_ngrams_in_its_order(params: dict[str, object]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from service.classifier.features import CompactTfidfVectorizer

    fast = CompactTfidfVectorizer(**params).build_analyzer()
    reference = TfidfVectorizer(**params).build_analyzer()
    for text in [*WHITESPACE_AND_WORDS, *EDGE_CASES.values(), "the cat and the hat and"]:
        assert fast(text) == reference(text), text


@pytest.mark.parametrize(
    "params",
    [
        {
            "analyzer": "char_wb",
            "ngram_range": (2, 5),
            "min_df": 2,
            "max_features": 3000,
            "sublinear_tf": True,
        },
        {"analyzer": "char_wb", "ngram_range": (1, 3)},
        {"analyzer": "char_wb", "ngram_range": (3, 3), "lowercase": False, "max_features": 50},
        {"analyzer": "word", "ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
        {"analyzer": "word", "ngram_range": (1, 1)},
        {"analyzer": "word", "ngram_range": (2, 3), "lowercase": False, "max_features": 50},
        # Tokens that cross whitespace.
        {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"\S+(?: \S+)?"},
    ],
)
@pytest.mark.parametrize("interface", ["spmatrix", "sparray"])
def test_counting_gives_sklearns_vocabulary_and_matrix(
    params: dict[str, object], interface: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer

    from service.classifier import features
    from tests.support.labelled import labelled_comments

    texts = [*WHITESPACE_AND_WORDS, *EDGE_CASES.values()]
    texts += [r.content for r in labelled_comments(300, seed=5).records]
    # Unseen at fit: n-grams out of the vocabulary count for nothing.
    unseen = ["qqqzzz xxyyzz", "", "Zebra ZEBRA zebra", "😀 unseen"]
    with sklearn.config_context(sparse_interface=interface):
        reference = TfidfVectorizer(**params)
        fast = features.CompactTfidfVectorizer(**params)
        fitted = (reference.fit_transform(texts), fast.fit_transform(texts))
        assert fast.vocabulary_ == reference.vocabulary_
        assert np.array_equal(fast.idf_, reference.idf_)
        pairs = [fitted, (reference.transform(texts + unseen), fast.transform(texts + unseen))]
    # Small batches of documents, so that the counts are pieced together from several.
    monkeypatch.setattr(features, "_DOCS_PER_COUNT", 7)
    with sklearn.config_context(sparse_interface=interface):
        small = features.CompactTfidfVectorizer(**params)
        pairs.append((fitted[0], small.fit_transform(texts)))
    for expected, got in pairs:
        assert type(got) is type(expected)
        assert got.indices.dtype == expected.indices.dtype
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.data, expected.data)


def test_prepared_records_give_the_same_features() -> None:
    from service.classifier.features import PreparedRecords, RecordStats
    from tests.support.labelled import labelled_comments

    records = [CommentRecord(t) for t in [*EDGE_CASES.values(), *WHITESPACE_AND_WORDS]]
    records += labelled_comments(200, seed=4).records
    for url_shapes in (True, False):
        config = FeatureConfig(min_df=1, url_shapes=url_shapes)
        plain = build_features(config)
        a = plain.fit_transform(records)
        prepared = build_features(config)
        b = prepared.fit_transform(PreparedRecords(records, url_shapes=url_shapes))
        assert (a != b).nnz == 0
        assert a.shape == b.shape
        # Prepared the other way: the content text is worked out again, as it should be.
        c = prepared.transform(PreparedRecords(records, url_shapes=not url_shapes))
        assert (plain.transform(records) != c).nnz == 0
        pairs = zip(plain.transformer_list, prepared.transformer_list, strict=True)
        for (name, x), (_, y) in pairs:
            if name == "stats":
                assert x.means_ == y.means_
            else:
                assert x.named_steps["tfidf"].vocabulary_ == y.named_steps["tfidf"].vocabulary_
    once = RecordStats().fit_transform(records)
    assert np.array_equal(once, RecordStats().fit(records).transform(records))


SHORTCUT_CASES = [
    "",
    " \x1c a\x1db\u3000c\u2028d\xa0e\x85f \t\n",
    "١٢٣ digits ² ³ 4 and ٤٥",
    "Visit WWW.Example.COM/path?q=1 now!!! ok.. a..b ..x !! end?!",
    "HTTP://LOCALHOST:80/x and foo.CoM, bar.company, x.info.",
    "&nbsp;zero\u200bwidth\ufeffjoin\u00adsoft &lt;b&gt;",
    "<b>tag</b> then a < b > c",
    "lone \ud800 surrogate http://bit.ly/x",
    "no link here, just words. And sentences!",
]


def _reference_content(text: str) -> str:
    """content_text's normalisation of link-free ASCII or Unicode text, written with the
    regexes the shortcuts stand for."""
    import html
    import re

    from service.classifier.features import MAX_NGRAM_CHARS, repair_text

    text = html.unescape(repair_text(text))
    text = re.sub(r"<[^<>]{0,500}>", "  ", text)
    text = text.translate(dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), " "))
    text = re.sub(r"(?<=\w)([.!?,;:]{2,})", r" \1 ", text)
    text = re.sub(r"\d", "0", text)
    return re.sub(r"\s+", " ", text).strip()[:MAX_NGRAM_CHARS]


@pytest.mark.parametrize("text", SHORTCUT_CASES)
def test_shortcuts_change_no_feature(text: str) -> None:
    # The quick tests before each regex (a link's hint, a punctuation pair, a digit, a
    # tag's "<", ASCII text) and split()/join() for the whitespace runs leave every
    # feature as the plain regexes make it.
    from service.classifier.features import content_and_stat_pairs

    record = CommentRecord(text, permalink="http://example.com/watch?v=1")
    content, pairs, _ = content_and_stat_pairs(record)
    assert content == content_text(record)
    assert pairs == tuple(x for stat in record_stats(record) for x in stat)
    if not link_hosts(text):
        assert content == _reference_content(text)


def test_a_vectorizers_vocabulary_is_saved_compactly_and_restored() -> None:
    import numpy as np

    from service.classifier.features import CompactTfidfVectorizer

    docs = ["hello wörld " + "x" * 150, "another doc here", "ünïcode \U0001f600 text"]
    fitted = CompactTfidfVectorizer().fit(docs)
    state = fitted.__getstate__()
    # One byte per byte of UTF-8, not four per character of the longest term.
    assert state["vocabulary_utf8_"].dtype == np.uint8
    assert state["vocabulary_utf8_"].size == sum(len(t.encode()) for t in fitted.vocabulary_)
    restored = CompactTfidfVectorizer.__new__(CompactTfidfVectorizer)
    restored.__setstate__(state)
    assert restored.vocabulary_ == fitted.vocabulary_
    # An artifact saved before kept a fixed-width string array; it still loads.
    old = {k: v for k, v in state.items() if not k.startswith("vocabulary_")}
    old["vocabulary_terms_"] = np.array(
        sorted(fitted.vocabulary_, key=fitted.vocabulary_.__getitem__), dtype=np.str_
    )
    legacy = CompactTfidfVectorizer.__new__(CompactTfidfVectorizer)
    legacy.__setstate__(old)
    assert legacy.vocabulary_ == fitted.vocabulary_
    assert legacy.transform(docs).toarray().tolist() == fitted.transform(docs).toarray().tolist()
