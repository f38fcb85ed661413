"""Data set readers: the three formats, their malformed rows, and the real YouTube files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service.classifier.datasets import (
    Dataset,
    DatasetError,
    RowError,
    concat_datasets,
    read_dataset,
    read_datasets,
)
from service.classifier.types import CommentRecord

# The shared data lives beside the repository (../shared), never inside it.
YOUTUBE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "youtube-spam"
YOUTUBE_FILES = {
    "Youtube01-Psy.csv": (350, 175),
    "Youtube02-KatyPerry.csv": (350, 175),
    "Youtube03-LMFAO.csv": (438, 236),
    "Youtube04-Eminem.csv": (448, 245),
}
needs_youtube = pytest.mark.skipif(
    not YOUTUBE_DIR.is_dir(),
    reason=f"the UCI YouTube Spam Collection is not at {YOUTUBE_DIR}",
)

YOUTUBE_HEADER = b"COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- YouTube -------------------------------------------------------------------------


def test_youtube_quotes_commas_newlines_entities_and_empty_date(tmp_path: Path) -> None:
    data = (
        YOUTUBE_HEADER
        + b'id1,Ann,2013-11-07T06:20:48,"Huh, check ""this"" out\nsecond line",1\n'
        + b"id2,Bob,,I don&#39;t like it &amp; say so\xef\xbb\xbf,0\n"
        + b"id3,,2014-01-01,plain,0\n"
    )
    dataset = read_dataset(write(tmp_path, "yt.csv", data))
    assert dataset.format == "youtube"
    assert dataset.labels == [1, 0, 0]
    assert dataset.records[0] == CommentRecord(
        content='Huh, check "this" out\nsecond line', author_name="Ann"
    )
    # Entities are unescaped and the export's trailing U+FEFF is dropped.
    assert dataset.records[1].content == "I don't like it & say so"
    assert dataset.records[2].author_name is None
    assert dataset.errors == []
    assert dataset.source == str(tmp_path / "yt.csv")


def test_youtube_detected_from_contents_not_extension(tmp_path: Path) -> None:
    dataset = read_dataset(write(tmp_path, "comments.dat", YOUTUBE_HEADER + b"a,b,,hi,1\n"))
    assert dataset.format == "youtube"
    assert dataset.labels == [1]


def test_bom_and_crlf(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + YOUTUBE_HEADER.replace(b"\n", b"\r\n")
    data += b'a,A,,"two\r\nlines",0\r\nb,B,,spam here,1\r\n'
    dataset = read_dataset(write(tmp_path, "yt.csv", data))
    assert dataset.format == "youtube"
    assert [r.content for r in dataset.records] == ["two\nlines", "spam here"]


def test_malformed_rows_are_reported_with_their_starting_line(tmp_path: Path) -> None:
    data = (
        YOUTUBE_HEADER  # line 1
        + b"a,A,,fine,0\n"  # line 2
        + b'b,B,,"multi\nline\ncomment",2\n'  # lines 3-5: bad label, starts on 3
        + b"c,C,,,1\n"  # line 6: missing content
        + b"d,D,,too,many,1\n"  # line 7: wrong column count
        + b"e,E,,caf\xe9,0\n"  # line 8: Latin-1 byte
        + b"f,F,,also fine,1\n"  # line 9
    )
    path = write(tmp_path, "yt.csv", data)
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    assert [e.line for e in caught.value.errors] == [3, 6, 7, 8]
    message = str(caught.value)
    for line, words in [(3, "bad CLASS"), (6, "missing content"), (7, "6 columns"), (8, "UTF-8")]:
        assert f"{path}:{line}: " in message
        assert words in message

    dataset = read_dataset(path, skip_malformed=True)
    assert [r.content for r in dataset.records] == ["fine", "also fine"]
    assert [e.line for e in dataset.errors] == [3, 6, 7, 8]
    assert all(e.source == str(path) for e in dataset.errors)


def test_broken_quoting_is_a_row_error_and_reading_resumes(tmp_path: Path) -> None:
    data = YOUTUBE_HEADER + b'a,A,,"closed"junk,0\n' + b"b,B,,after,1\n"
    path = write(tmp_path, "yt.csv", data)
    dataset = read_dataset(path, skip_malformed=True)
    assert [e.line for e in dataset.errors] == [2]
    assert "unreadable CSV" in dataset.errors[0].message
    assert [r.content for r in dataset.records] == ["after"]


def test_unterminated_quote_is_reported_not_swallowed(tmp_path: Path) -> None:
    data = YOUTUBE_HEADER + b"a,A,,ok,0\n" + b'b,B,,"never closed,1\n' + b"c,C,,lost,0\n"
    with pytest.raises(DatasetError) as caught:
        read_dataset(write(tmp_path, "yt.csv", data))
    assert [e.line for e in caught.value.errors] == [3]


# --- SMS -----------------------------------------------------------------------------


def test_sms(tmp_path: Path) -> None:
    data = b'ham\tGo until jurong point, "crazy"\nspam\tWINNER!! Call 0906\tnow\r\n\nHAM\tok\n'
    dataset = read_dataset(write(tmp_path, "SMSSpamCollection", data))
    assert dataset.format == "sms"
    assert dataset.labels == [0, 1, 0]
    assert dataset.records[0].content == 'Go until jurong point, "crazy"'
    # Only the first tab separates the label; later tabs belong to the text.
    assert dataset.records[1].content == "WINNER!! Call 0906\tnow"


def test_sms_malformed(tmp_path: Path) -> None:
    data = b"ham\tfine\nno tab here\nmaybe\ttext\nspam\t \nham\t\xff\xfe\nspam\tlast\n"
    path = write(tmp_path, "sms.txt", data)
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    assert [e.line for e in caught.value.errors] == [2, 3, 4, 5]
    assert "tab" in caught.value.errors[0].message
    assert "bad label 'maybe'" in caught.value.errors[1].message
    assert "missing content" in caught.value.errors[2].message
    assert "UTF-8" in caught.value.errors[3].message
    assert read_dataset(path, skip_malformed=True).labels == [0, 1]


# --- generic CSV ---------------------------------------------------------------------


def test_generic_csv_with_author_columns(tmp_path: Path) -> None:
    data = (
        b"id,label,content,author_name,author_email,author_url,user_ip,user_agent,"
        b"referrer,permalink,lang,approved_count,spam_count\n"
        b"1,Spam,buy now,Bot,bot@x.test,http://x.test,10.0.0.1,curl/8,http://r.test,"
        b"http://b.test/p,en,0,7\n"
        b"2,HAM,nice post,,,,,,,,,,\n"
        b"3, 1 ,cheap pills,,,,,,,,,,\n"
        b"4,0,merci,,,,,,,,fr,3,\n"
    )
    dataset = read_dataset(write(tmp_path, "mine.csv", data))
    assert dataset.format == "csv"
    assert dataset.labels == [1, 0, 1, 0]
    assert dataset.records[0] == CommentRecord(
        content="buy now",
        author_name="Bot",
        author_email="bot@x.test",
        author_url="http://x.test",
        user_ip="10.0.0.1",
        user_agent="curl/8",
        referrer="http://r.test",
        permalink="http://b.test/p",
        lang="en",
        approved_count=0,
        spam_count=7,
    )
    assert dataset.records[1] == CommentRecord(content="nice post")
    assert dataset.records[3].lang == "fr"
    assert dataset.records[3].approved_count == 3


def test_generic_csv_minimal_and_malformed(tmp_path: Path) -> None:
    data = (
        b"content,label\n"
        b"hello,ham\n"
        b"hi,maybe\n"  # line 3
        b",spam\n"  # line 4
        b"x\n"  # line 5
        b"bye,SPAM\n"
    )
    path = write(tmp_path, "plain.csv", data)
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    assert [(e.line, e.message) for e in caught.value.errors] == [
        (3, "bad label 'maybe' (expected spam, ham, 1 or 0)"),
        (4, "missing content"),
        (5, "1 columns, expected 2"),
    ]
    assert read_dataset(path, skip_malformed=True).labels == [0, 1]


def test_generic_csv_bad_count_column(tmp_path: Path) -> None:
    data = b"content,label,spam_count\nhello,ham,-1\n"
    with pytest.raises(DatasetError, match=r":2: bad spam_count '-1'"):
        read_dataset(write(tmp_path, "c.csv", data))


def test_duplicate_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="duplicate columns"):
        read_dataset(write(tmp_path, "c.csv", b"content,label,Content\na,ham,b\n"))


# --- whole-file failures -------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file") as caught:
        read_dataset(tmp_path / "nope.csv")
    assert caught.value.errors == []


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DatasetError, match="empty"):
        read_dataset(write(tmp_path, "e.csv", data))


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"unknown data set format.*'text,score'"):
        read_dataset(write(tmp_path, "u.csv", b"text,score\nhello,3\n"))


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no rows"):
        read_dataset(write(tmp_path, "h.csv", b"content,label\n"))


# --- several files -------------------------------------------------------------------


def test_directory_reads_data_files_sorted_and_skips_docs(tmp_path: Path) -> None:
    write(tmp_path, "b.csv", b"content,label\nsecond,spam\n")
    write(tmp_path, "a.tsv", b"ham\tfirst\n")
    write(tmp_path, "README.md", b"# not data\n")
    write(tmp_path, "readme", b"not data either\n")
    write(tmp_path, ".hidden.csv", b"junk\n")
    dataset = read_dataset(tmp_path)
    assert [r.content for r in dataset.records] == ["first", "second"]
    assert dataset.labels == [0, 1]
    assert dataset.format == "mixed"
    assert dataset.source == f"{tmp_path / 'a.tsv'}; {tmp_path / 'b.csv'}"


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no data files"):
        read_dataset(tmp_path)


def test_read_datasets_collects_errors_of_every_file(tmp_path: Path) -> None:
    good = write(tmp_path, "good.csv", b"content,label\nok,ham\n")
    bad1 = write(tmp_path, "bad1.csv", b"content,label\nx,what\n")
    bad2 = write(tmp_path, "bad2.txt", b"ham\tok\nspam\n")
    with pytest.raises(DatasetError) as caught:
        read_datasets([good, bad1, bad2])
    assert [(e.source, e.line) for e in caught.value.errors] == [(str(bad1), 2), (str(bad2), 2)]
    dataset = read_datasets([good, bad1, bad2], skip_malformed=True)
    assert [r.content for r in dataset.records] == ["ok", "ok"]
    assert len(dataset.errors) == 2


def test_all_rows_malformed_with_skip_gives_empty_dataset(tmp_path: Path) -> None:
    dataset = read_dataset(write(tmp_path, "x.csv", b"content,label\na,b\n"), skip_malformed=True)
    assert len(dataset) == 0
    assert [e.line for e in dataset.errors] == [2]


def test_read_datasets_needs_paths() -> None:
    with pytest.raises(DatasetError, match="no data set paths"):
        read_datasets([])


# --- fingerprint and the Dataset type ------------------------------------------------


def test_fingerprint_depends_on_labelled_content_only(tmp_path: Path) -> None:
    csv_data = read_dataset(write(tmp_path, "a.csv", b"content,label,author_name\nhi,ham,X\n"))
    sms_data = read_dataset(write(tmp_path, "b.txt", b"ham\thi\n"))
    relabelled = read_dataset(write(tmp_path, "c.txt", b"spam\thi\n"))
    assert csv_data.fingerprint == sms_data.fingerprint
    assert csv_data.fingerprint != relabelled.fingerprint
    assert len(csv_data.fingerprint) == 64
    # Stable across runs and machines: pinned to a known value.
    expected = hashlib.sha256(b'commentguard-dataset-v1\n[0, "hi"]\n').hexdigest()
    assert csv_data.fingerprint == expected


def test_concat_fingerprint_matches_reading_together(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", b"content,label\none,ham\n")
    b = write(tmp_path, "b.csv", b"content,label\ntwo,spam\n")
    joined = concat_datasets([read_dataset(a), read_dataset(b)])
    together = read_dataset(write(tmp_path, "ab.csv", b"content,label\none,ham\ntwo,spam\n"))
    assert joined.fingerprint == together.fingerprint
    assert joined.format == "csv"


def test_dataset_validates_lengths_and_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        Dataset([CommentRecord("a")], [], "csv", "x", "f")
    with pytest.raises(ValueError, match="0 \\(ham\\) or 1"):
        Dataset([CommentRecord("a")], [2], "csv", "x", "f")


def test_row_error_str() -> None:
    assert str(RowError(4, "missing content", "f.csv")) == "f.csv:4: missing content"
    assert str(RowError(4, "missing content")) == "line 4: missing content"


# --- the real UCI YouTube Spam Collection ---------------------------------------------


@needs_youtube
@pytest.mark.parametrize(("name", "expected"), sorted(YOUTUBE_FILES.items()))
def test_real_youtube_files(name: str, expected: tuple[int, int]) -> None:
    dataset = read_dataset(YOUTUBE_DIR / name)
    assert dataset.format == "youtube"
    assert (len(dataset), dataset.spam_count) == expected
    assert dataset.errors == []
    assert all(record.content and record.author_name for record in dataset.records)


@needs_youtube
def test_no_data_set_is_recognised_by_its_digest_or_name(tmp_path: Path) -> None:
    # A published file reads as any other file of its format: nothing about the records
    # depends on which file, by digest or by name, they came from.
    published = read_dataset(YOUTUBE_DIR / "Youtube01-Psy.csv")
    assert {r.permalink for r in published.records} == {None}
    copy = write(tmp_path, "renamed.csv", (YOUTUBE_DIR / "Youtube01-Psy.csv").read_bytes())
    assert read_dataset(copy).records == published.records


def test_a_file_named_like_the_collection_is_read_by_its_content(tmp_path: Path) -> None:
    dataset = read_dataset(write(tmp_path, "Youtube01-Psy.csv", YOUTUBE_HEADER + b"i,A,,hi,0\n"))
    assert dataset.records[0].permalink is None


@needs_youtube
def test_real_youtube_directory() -> None:
    dataset = read_dataset(YOUTUBE_DIR)
    assert len(dataset) == sum(rows for rows, _ in YOUTUBE_FILES.values())
    assert dataset.spam_count == sum(spam for _, spam in YOUTUBE_FILES.values())
    assert dataset.format == "youtube"
    assert read_dataset(YOUTUBE_DIR).fingerprint == dataset.fingerprint


# --- mail messages (SpamAssassin, Ling-Spam) --------------------------------------------

MBOX_MESSAGE = (
    b"From someone@example.com  Thu Aug 22 12:36:23 2002\n"
    b"Return-Path: <someone@example.com>\n"
    b"Subject: Re: the new sequences window\n"
    b"Content-Type: text/plain; charset=us-ascii\n"
    b"\n"
    b"I can't reproduce this error.\n"
)
MULTIPART_MESSAGE = (
    b"Subject: =?utf-8?q?Cheap_pills_=E2=9C=93?=\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/alternative; boundary="b1"\n'
    b"\n"
    b"--b1\n"
    b"Content-Type: text/html; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"<p>Buy now, pay later =E9</p>\n"
    b"--b1--\n"
)


def test_a_mail_message_reads_as_subject_and_text(tmp_path: Path) -> None:
    dataset = read_dataset(write(tmp_path, "00001.abc", MBOX_MESSAGE), label="ham")
    assert dataset.format == "email"
    assert dataset.labels == [0]
    assert dataset.records[0].content == (
        "Re: the new sequences window\nI can't reproduce this error."
    )
    # Header fields other than the subject are not read.
    assert "Return-Path" not in dataset.records[0].content


def test_a_mail_message_decodes_its_subject_and_an_html_only_body(tmp_path: Path) -> None:
    dataset = read_dataset(write(tmp_path, "spmsga1.txt", MULTIPART_MESSAGE), label="spam")
    assert dataset.labels == [1]
    assert dataset.records[0].content == "Cheap pills \u2713\n<p>Buy now, pay later \u00e9</p>"


def test_a_ling_spam_message_is_detected_by_its_subject_line(tmp_path: Path) -> None:
    data = b"Subject: re : 2 . 882 s - > np np\n\n> date : sun , 15 dec 91\n"
    dataset = read_dataset(write(tmp_path, "3-1msg1.txt", data), label="ham")
    assert dataset.records[0].content.startswith("re : 2 . 882 s")


def test_a_directory_of_mail_messages_takes_one_label(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", MBOX_MESSAGE)
    write(tmp_path, "b.txt", MULTIPART_MESSAGE)
    dataset = read_dataset(tmp_path, label="spam")
    assert (len(dataset), dataset.labels) == (2, [1, 1])


def test_a_mail_message_needs_a_label_and_a_labelled_file_refuses_one(tmp_path: Path) -> None:
    message = write(tmp_path, "m.txt", MBOX_MESSAGE)
    with pytest.raises(DatasetError, match="carries no label"):
        read_dataset(message)
    with pytest.raises(DatasetError, match="'spam' or 'ham'"):
        read_dataset(message, label="maybe")
    sms = write(tmp_path, "sms.txt", b"ham\thello\n")
    with pytest.raises(DatasetError, match="carries its own labels"):
        read_dataset(sms, label="spam")


def test_an_empty_mail_message_is_a_malformed_row(tmp_path: Path) -> None:
    path = write(tmp_path, "m.txt", b"Subject: \n\n\n")
    with pytest.raises(DatasetError, match="neither subject nor text"):
        read_dataset(path, label="ham")
    skipped = read_dataset(path, label="ham", skip_malformed=True)
    assert len(skipped) == 0
    assert [(e.line, e.message) for e in skipped.errors] == [
        (1, "a mail message with neither subject nor text")
    ]


def test_an_enron_spam_message_reads_as_subject_and_text(tmp_path: Path) -> None:
    # Enron-Spam (preprocessed): a Subject line, then the text with no blank line between,
    # CRLF line ends in the published archives.
    data = b"Subject: re : cms deal booked\r\nnever did . . . but glad\r\nbt"
    dataset = read_dataset(write(tmp_path, "0001.2001-09-26.kitchen.ham.txt", data), label="ham")
    assert dataset.records[0].content == "re : cms deal booked\nnever did . . . but glad\nbt"


def test_a_subject_of_raw_bytes_is_decoded_as_the_text_is(tmp_path: Path) -> None:
    # Old mail sends 8-bit subjects unencoded; the parser alone would turn each byte that
    # is not UTF-8 into U+FFFD. They are decoded as the text is: as Latin-1 when the
    # message declares no charset, else by its charset; UTF-8 stays UTF-8.
    latin = b"Subject: multas de tr\xe2nsito\nveja tr\xe2nsito\n"
    record = read_dataset(write(tmp_path, "a.txt", latin), label="spam").records[0]
    assert record.content == "multas de tr\u00e2nsito\nveja tr\u00e2nsito"
    koi8 = (
        b"Subject: \xf0\xd2\xc9\xd7\xc5\xd4\r\n  again\n"
        b"Content-Type: text/plain; charset=koi8-r\n\nhi\n"
    )
    record = read_dataset(write(tmp_path, "b.txt", koi8), label="spam").records[0]
    assert record.content == "\u041f\u0440\u0438\u0432\u0435\u0442  again\nhi"
    utf8 = b"Subject: caf\xc3\xa9 =?utf-8?q?na=C3=AFve?=\n\nbody\n"
    record = read_dataset(write(tmp_path, "c.txt", utf8), label="ham").records[0]
    assert record.content == "caf\u00e9 na\u00efve\nbody"
