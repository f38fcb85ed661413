"""The Akismet API over plain HTTP (Flask's test client, the test's rolled-back
transaction): every field, every answer and header, what is stored, and every edge a
client library would not send (missing fields, charsets, sizes, methods, types)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ApiKey, AuditEntry, Author, Comment, Label, Site, Status, Verdict
from service.app import create_app
from service.auth.api_keys import API_KEY_ISSUER, create_api_key, revoke_api_key
from service.db import make_engine, make_sessionmaker
from service.moderation.akismet import AKISMET_ISSUER, blog_key, same_blog
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.settings import Settings
from tests.conftest import alembic_config
from tests.support.akismet import ALWAYS_DISCARD, BLOG, NEVER_BY_SCORE

CHECK = "/1.1/comment-check"


def make_site(db_session: Session, *, slug: str = "blog", **policy: Any) -> Site:
    settings: dict[str, Any] = {**NEVER_BY_SCORE, "blocked_words": ["casino"], **policy}
    return create_site(
        db_session, slug=slug, name="A blog", url=BLOG, policy=SitePolicy(**settings)
    )


@pytest.fixture
def key(db_session: Session) -> str:
    make_site(db_session, moderation_words=["crypto"], flood_limit_per_minute=3)
    return create_api_key(db_session, site_slug="blog", name="WordPress")[1]


def form(key: str, **fields: str) -> dict[str, str]:
    return {
        "api_key": key,
        "blog": BLOG,
        "user_ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "comment_type": "comment",
        "comment_author": "Dana",
        "comment_author_email": "Dana@Example.org",
        "comment_content": "Thanks, this helped me a lot.",
        "permalink": f"{BLOG}/posts/1",
        **fields,
    }


def post(client: FlaskClient, path: str, data: dict[str, str]) -> Any:
    return client.post(path, data=data)


def stored(db_session: Session) -> list[Comment]:
    db_session.expire_all()
    return list(db_session.scalars(select(Comment).order_by(Comment.created_at, Comment.id)))


def count(db_session: Session, model: Any) -> int:
    return int(db_session.scalar(select(func.count()).select_from(model)) or 0)


# --- blogs and keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "blog",
    [
        BLOG,
        f"{BLOG}/",
        "http://blog.example",
        "HTTPS://Blog.Example:443/",
        "https://blog.example./",
    ],
)
def test_a_blog_is_the_site_whatever_its_scheme_case_port_or_trailing_slash(blog: str) -> None:
    assert same_blog(BLOG, blog)


@pytest.mark.parametrize(
    "blog",
    [
        "https://www.blog.example",
        "https://blog.example/other",
        "https://blog.example:8443",
        "ftp://blog.example",
        "blog.example",
        "",
        "https://[::1",
    ],
)
def test_another_host_path_port_or_no_url_is_another_blog(blog: str) -> None:
    assert not same_blog(BLOG, blog)


def test_a_site_under_a_path_is_compared_with_its_path() -> None:
    assert blog_key("https://example.org/blog/") == ("example.org", "/blog")
    assert same_blog("https://example.org/blog", "http://example.org/blog/")


@pytest.mark.parametrize("field", ["api_key", "key"])
def test_verify_key_is_valid_for_the_keys_own_blog(
    client: FlaskClient, key: str, field: str
) -> None:
    response = post(client, "/1.1/verify-key", {field: key, "blog": f"{BLOG}/"})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "valid"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    ("fields", "help_text"),
    [
        ({"blog": "https://other.example"}, "is not the URL of this key's site"),
        ({"blog": ""}, 'Empty "blog" value'),
        ({"blog": "not a url"}, "unable to parse your blog URI"),
        ({"api_key": ""}, 'Empty "api_key" value'),
        ({"api_key": "cg_0123456789abcdef_" + "A" * 43}, "Invalid key"),
        ({"api_key": "12charakismt"}, "Invalid key"),
    ],
)
def test_verify_key_is_invalid_with_the_reason_in_the_debug_header(
    client: FlaskClient, key: str, fields: dict[str, str], help_text: str
) -> None:
    response = post(client, "/1.1/verify-key", {"api_key": key, "blog": BLOG, **fields})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "invalid"
    assert help_text in response.headers["X-akismet-debug-help"]


def test_a_revoked_key_is_invalid(client: FlaskClient, db_session: Session, key: str) -> None:
    prefix = key.split("_")[1]
    revoke_api_key(db_session, site_slug="blog", prefix=prefix, now=dt.datetime.now(dt.UTC))
    response = post(client, "/1.1/verify-key", {"api_key": key, "blog": BLOG})
    assert response.get_data(as_text=True) == "invalid"


def test_another_sites_blog_with_this_key_is_invalid(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    create_site(db_session, slug="other", name="Other", url="https://other.example")
    response = post(client, CHECK, form(key, blog="https://other.example"))
    assert response.get_data(as_text=True) == "invalid"
    assert stored(db_session) == []


# --- comment-check -----------------------------------------------------------------------


def test_a_blocked_word_is_spam_stored_with_its_verdict_and_reasons(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    response = post(client, CHECK, form(key, comment_content="Best casino bonus here"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "true"
    assert "X-akismet-pro-tip" not in response.headers
    assert response.headers["X-Commentguard-Status"] == "spam"
    guid = uuid.UUID(response.headers["X-akismet-guid"])

    (comment,) = stored(db_session)
    assert comment.id == guid
    assert comment.status is Status.spam
    assert comment.thread == f"{BLOG}/posts/1"
    assert comment.author_name == "Dana"
    assert comment.user_ip == "203.0.113.9"
    assert comment.extra["source"] == "akismet"
    assert comment.extra["akismet"]["comment_type"] == "comment"
    verdict = db_session.scalars(select(Verdict).where(Verdict.comment_id == guid)).one()
    assert verdict.decision == "spam"
    assert verdict.score == comment.score
    assert {
        "phrase": "blocked word 'casino'",
        "weight": None,
        "feature": "rule:blocked:casino",
    } in (verdict.reasons)
    author = db_session.get_one(Author, comment.author_id)
    assert (author.issuer, author.subject) == (AKISMET_ISSUER, "email:dana@example.org")
    assert (author.spam_count, author.approved_count) == (1, 0)


def test_every_documented_field_is_taken_and_kept(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    fields = form(
        key,
        referrer="https://search.example/?q=post",
        comment_author_url="https://dana.example",
        comment_date_gmt="2026-12-05T10:00:00Z",
        comment_post_modified_gmt="2026-12-01T09:00:00Z",
        blog_lang="pt_BR, en",
        blog_charset="UTF-8",
        user_role="subscriber",
        recheck_reason="edit",
        honeypot_field_name="hp_field",
        hp_field="",
        POST_comment_post_ID="1",
        HTTP_ACCEPT="text/html",
    )
    response = post(client, CHECK, fields)
    assert response.get_data(as_text=True) == "false"
    (comment,) = stored(db_session)
    assert comment.status is Status.approved
    assert comment.referrer == "https://search.example/?q=post"
    assert comment.author_url == "https://dana.example"
    assert comment.author_email == "Dana@Example.org"
    assert comment.user_agent == "Mozilla/5.0"
    assert comment.permalink == f"{BLOG}/posts/1"
    assert comment.lang == "pt-BR"
    assert comment.extra["akismet"] == {
        "comment_type": "comment",
        "comment_date_gmt": "2026-12-05T10:00:00Z",
        "comment_post_modified_gmt": "2026-12-01T09:00:00Z",
        "blog_lang": "pt_BR, en",
        "blog_charset": "UTF-8",
        "user_role": "subscriber",
        "recheck_reason": "edit",
        "honeypot_field_name": "hp_field",
        "honeypot_filled": False,
    }


def test_a_held_comment_answers_false_and_waits_in_the_queue(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    response = post(client, CHECK, form(key, comment_content="What about crypto?"))
    assert response.get_data(as_text=True) == "false"
    assert response.headers["X-Commentguard-Status"] == "held"
    (comment,) = stored(db_session)
    assert comment.status is Status.held
    author = db_session.get_one(Author, comment.author_id)
    assert (author.spam_count, author.approved_count) == (0, 0)


def test_spam_past_the_discard_threshold_carries_the_pro_tip(
    client: FlaskClient, db_session: Session
) -> None:
    make_site(db_session, **ALWAYS_DISCARD)
    key = create_api_key(db_session, site_slug="blog", name="k")[1]
    response = post(client, CHECK, form(key))
    assert response.get_data(as_text=True) == "true"
    assert response.headers["X-akismet-pro-tip"] == "discard"
    (comment,) = stored(db_session)
    assert (comment.status, comment.discard) == (Status.spam, True)


def test_is_test_decides_and_stores_nothing(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    response = post(client, CHECK, form(key, comment_content="casino", is_test="1"))
    assert response.get_data(as_text=True) == "true"
    assert uuid.UUID(response.headers["X-akismet-guid"])
    assert stored(db_session) == []
    assert count(db_session, Author) == 0
    assert count(db_session, Verdict) == 0
    assert db_session.scalars(select(ApiKey.last_used_at)).one() is None


def test_a_filled_honeypot_is_spam_with_its_reason(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    response = post(
        client, CHECK, form(key, honeypot_field_name="website2", website2="http://spam.example")
    )
    assert response.get_data(as_text=True) == "true"
    (comment,) = stored(db_session)
    verdict = db_session.scalars(select(Verdict)).one()
    assert comment.status is Status.spam
    assert verdict.reasons[-1] == {
        "phrase": "the honeypot field 'website2' was filled in",
        "weight": None,
        "feature": "rule:honeypot",
    }


@pytest.mark.parametrize("role", ["administrator", "editor,administrator"])
def test_an_administrator_is_never_spam(
    client: FlaskClient, db_session: Session, key: str, role: str
) -> None:
    response = post(client, CHECK, form(key, comment_content="casino", user_role=role))
    assert response.get_data(as_text=True) == "false"
    (comment,) = stored(db_session)
    assert comment.status is Status.approved
    features = [r["feature"] for r in db_session.scalars(select(Verdict.reasons)).one()]
    assert features[-2:] == ["rule:blocked:casino", "rule:administrator"]


def test_a_duplicate_is_answered_as_the_first_comment_is_now(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    first = post(client, CHECK, form(key, comment_content="Nice post!"))
    assert first.get_data(as_text=True) == "false"
    # A moderator marks it spam meanwhile; the re-check (WordPress re-checks) says so.
    (comment,) = stored(db_session)
    comment.status = Status.spam
    db_session.flush()
    again = post(client, CHECK, form(key, comment_content="nice  POST!", recheck_reason="edit"))
    assert again.get_data(as_text=True) == "true"
    assert again.headers["X-akismet-guid"] == first.headers["X-akismet-guid"]
    assert len(stored(db_session)) == 1
    assert count(db_session, Verdict) == 1


def test_a_flood_is_spam_not_an_http_error(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    answers = [
        post(client, CHECK, form(key, comment_content=f"Comment number {n}")) for n in range(4)
    ]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.get_data(as_text=True) for a in answers] == ["false", "false", "false", "true"]
    (flooded,) = [c for c in stored(db_session) if c.status is Status.spam]
    assert str(flooded.id) == answers[3].headers["X-akismet-guid"]
    reasons = db_session.scalars(select(Verdict.reasons).where(Verdict.comment_id == flooded.id))
    assert reasons.one()[-1]["feature"] == "rule:flood"


def test_an_author_without_email_is_known_by_ip(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    post(client, CHECK, form(key, comment_author_email=""))
    author = db_session.scalars(select(Author)).one()
    assert author.subject == "ip:203.0.113.9"


@pytest.mark.parametrize(
    ("fields", "help_text"),
    [
        ({"user_ip": ""}, 'Empty "user_ip" value'),
        ({"user_ip": "not-an-ip"}, 'Invalid "user_ip" value'),
        ({"api_key": ""}, 'Empty "api_key" value'),
        ({"api_key": "cg_0123456789abcdef_" + "B" * 43}, "Invalid key"),
        ({"blog": ""}, 'Empty "blog" value'),
        ({"blog_charset": "klingon"}, 'Unknown charset "klingon"'),
    ],
)
def test_a_check_missing_or_spoiling_a_field_is_invalid(
    client: FlaskClient, db_session: Session, key: str, fields: dict[str, str], help_text: str
) -> None:
    response = post(client, CHECK, form(key, **fields))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "invalid"
    assert help_text in response.headers["X-akismet-debug-help"]
    assert uuid.UUID(response.headers["X-akismet-guid"])
    assert stored(db_session) == []


def test_a_body_in_the_blogs_charset_is_decoded_in_it(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    body = urllib.parse.urlencode(
        form(key, comment_content="Très bien, café!", blog_charset="ISO-8859-1"),
        encoding="latin-1",
    )
    response = client.post(CHECK, data=body, content_type="application/x-www-form-urlencoded")
    assert response.get_data(as_text=True) == "false"
    assert stored(db_session)[0].content == "Très bien, café!"


def test_the_content_types_charset_wins(client: FlaskClient, db_session: Session, key: str) -> None:
    body = urllib.parse.urlencode(form(key, comment_content="Grüße"), encoding="latin-1")
    response = client.post(
        CHECK, data=body, content_type="application/x-www-form-urlencoded; charset=ISO-8859-1"
    )
    assert response.get_data(as_text=True) == "false"
    assert stored(db_session)[0].content == "Grüße"


def test_bytes_that_are_not_in_the_charset_are_invalid(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    body = urllib.parse.urlencode(form(key)) + "&comment_content=%FF%FE"
    response = client.post(CHECK, data=body, content_type="application/x-www-form-urlencoded")
    assert response.get_data(as_text=True) == "invalid"
    assert 'not valid "utf-8" text' in response.headers["X-akismet-debug-help"]
    assert stored(db_session) == []


def test_a_charset_that_yields_unstorable_text_is_invalid(client: FlaskClient, key: str) -> None:
    body = urllib.parse.urlencode(
        form(key, comment_content="\\ud800", blog_charset="unicode_escape")
    )
    response = client.post(CHECK, data=body, content_type="application/x-www-form-urlencoded")
    assert response.get_data(as_text=True) == "invalid"


def test_nul_characters_are_removed(client: FlaskClient, db_session: Session, key: str) -> None:
    response = post(client, CHECK, form(key, comment_content="Hel\x00lo there"))
    assert response.get_data(as_text=True) == "false"
    assert stored(db_session)[0].content == "Hello there"


def test_an_empty_content_is_checked(client: FlaskClient, db_session: Session, key: str) -> None:
    response = post(client, CHECK, form(key, comment_content="", comment_type="signup"))
    assert response.get_data(as_text=True) == "false"
    assert stored(db_session)[0].thread == f"{BLOG}/posts/1"


def test_too_many_fields_are_invalid(client: FlaskClient, key: str) -> None:
    body = urllib.parse.urlencode(form(key)) + "".join(f"&f{n}=x" for n in range(1100))
    response = client.post(CHECK, data=body, content_type="application/x-www-form-urlencoded")
    assert response.get_data(as_text=True) == "invalid"
    assert "More than 1000 fields" in response.headers["X-akismet-debug-help"]


def test_an_oversized_body_is_413_problem(client: FlaskClient, key: str) -> None:
    response = post(client, CHECK, form(key, comment_content="x" * 300_000))
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_an_oversized_content_is_413_problem(client: FlaskClient, key: str) -> None:
    response = post(client, CHECK, form(key, comment_content="é" * 40_000))
    assert response.status_code == 413
    assert response.get_json()["detail"] == "'comment_content' is over 65536 bytes"


def test_json_is_415_problem(client: FlaskClient, key: str) -> None:
    response = client.post(CHECK, json=form(key))
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", [CHECK, "/1.1/verify-key", "/1.1/submit-spam", "/1.1/submit-ham"])
def test_get_is_405_problem_with_allow(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "POST" in response.headers["Allow"]


def test_put_on_usage_limit_is_405(client: FlaskClient) -> None:
    response = client.put("/1.2/usage-limit")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_a_header_quoting_the_request_stays_a_valid_header(client: FlaskClient, key: str) -> None:
    response = post(
        client,
        "/1.1/verify-key",
        {"api_key": key, "blog": "https://evil.example/\r\nX-Injected: 1é"},
    )
    assert response.get_data(as_text=True) == "invalid"
    assert "X-Injected" not in response.headers
    assert "\n" not in response.headers["X-akismet-debug-help"]


# --- submit-spam and submit-ham ----------------------------------------------------------


def test_submit_spam_by_guid_moves_audits_and_labels_the_comment(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    checked = post(client, CHECK, form(key, comment_content="Looks fine to the model"))
    guid = checked.headers["X-akismet-guid"]
    response = post(client, "/1.1/submit-spam", form(key, comment_content="anything", guid=guid))
    assert response.get_data(as_text=True) == "Thanks for making the web a better place."

    (comment,) = stored(db_session)
    assert comment.status is Status.spam
    label = db_session.scalars(select(Label)).one()
    assert (label.comment_id, label.label.value, label.source.value) == (
        comment.id,
        "spam",
        "moderator",
    )
    assert label.content == "Looks fine to the model"
    entry = db_session.scalars(select(AuditEntry)).one()
    assert (entry.actor_issuer, entry.action, entry.from_state, entry.to_state) == (
        API_KEY_ISSUER,
        "spam",
        "approved",
        "spam",
    )
    assert entry.note == "Akismet submit-spam"
    assert label.audit_id == entry.id
    author = db_session.get_one(Author, comment.author_id)
    assert (author.approved_count, author.spam_count) == (0, 1)


def test_submit_ham_finds_the_comment_by_its_fields(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    post(client, CHECK, form(key, comment_content="casino night at the club was fun"))
    response = post(
        client, "/1.1/submit-ham", form(key, comment_content="casino night at the club was fun")
    )
    assert response.get_data(as_text=True) == "Thanks for making the web a better place."
    (comment,) = stored(db_session)
    assert comment.status is Status.approved
    assert db_session.scalars(select(Label.label)).one().value == "ham"


def test_a_report_on_a_comment_already_so_is_labelled_and_audited_all_the_same(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    checked = post(client, CHECK, form(key, comment_content="casino"))
    post(client, "/1.1/submit-spam", form(key, guid=checked.headers["X-akismet-guid"]))
    (comment,) = stored(db_session)
    assert comment.status is Status.spam
    entry = db_session.scalars(select(AuditEntry)).one()
    assert (entry.from_state, entry.to_state, entry.details) == ("spam", "spam", {"kept": True})
    assert db_session.scalars(select(Label)).one().comment_id == comment.id


def test_a_report_on_an_unknown_text_stores_the_text_as_a_label(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    response = post(client, "/1.1/submit-spam", form(key, comment_content="Never seen before"))
    assert response.get_data(as_text=True) == "Thanks for making the web a better place."
    assert stored(db_session) == []
    label = db_session.scalars(select(Label)).one()
    assert (label.comment_id, label.content, label.author_name) == (
        None,
        "Never seen before",
        "Dana",
    )
    assert label.source.value == "moderator"
    entry = db_session.scalars(select(AuditEntry)).one()
    assert (entry.target_type, entry.action, label.audit_id) == ("site", "spam", entry.id)


def test_a_test_report_stores_nothing(client: FlaskClient, db_session: Session, key: str) -> None:
    response = post(client, "/1.1/submit-ham", form(key, is_test="true"))
    assert response.get_data(as_text=True) == "Thanks for making the web a better place."
    assert count(db_session, Label) == 0
    assert count(db_session, AuditEntry) == 0


@pytest.mark.parametrize("path", ["/1.1/submit-spam", "/1.1/submit-ham"])
def test_a_report_with_a_bad_key_or_no_ip_is_invalid(
    client: FlaskClient, db_session: Session, key: str, path: str
) -> None:
    assert post(client, path, form("cg_nope", comment_content="x")).get_data(as_text=True) == (
        "invalid"
    )
    response = post(client, path, form(key, user_ip=""))
    assert response.get_data(as_text=True) == "invalid"
    assert response.headers["X-akismet-debug-help"] == 'Empty "user_ip" value'
    assert count(db_session, Label) == 0


# --- usage-limit and key-sites -----------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_usage_limit_counts_this_months_checks(client: FlaskClient, key: str, version: str) -> None:
    for n in range(2):
        post(client, CHECK, form(key, comment_content=f"Comment {n}"))
    post(client, CHECK, form(key, comment_content="a test", is_test="1"))
    by_get = client.get(f"/{version}/usage-limit", query_string={"api_key": key})
    by_post = client.post(f"/{version}/usage-limit", data={"api_key": key})
    expected = {"limit": "none", "usage": 2, "percentage": "0.00", "throttled": False}
    assert by_get.get_json() == expected
    assert by_post.get_json() == expected


def test_usage_limit_with_a_bad_key_is_invalid(client: FlaskClient, key: str) -> None:
    response = client.get("/1.2/usage-limit", query_string={"api_key": "nope"})
    assert response.get_data(as_text=True) == "invalid"
    assert response.headers["X-akismet-debug-help"] == "Invalid key"


def test_key_sites_counts_the_months_checks_and_reports(
    client: FlaskClient, db_session: Session, key: str
) -> None:
    ham = post(client, CHECK, form(key, comment_content="A fine comment"))
    post(client, CHECK, form(key, comment_content="casino", comment_author_email="x@spam.example"))
    post(
        client,
        CHECK,
        form(key, comment_content="casino again", comment_author_email="y@spam.example"),
    )
    post(client, "/1.1/submit-spam", form(key, guid=ham.headers["X-akismet-guid"]))
    post(
        client,
        "/1.1/submit-ham",
        form(key, comment_content="casino", comment_author_email="x@spam.example"),
    )
    post(client, "/1.1/submit-spam", form(key, comment_content="never checked"))

    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    response = client.get("/1.2/key-sites", query_string={"api_key": key})
    assert response.get_json() == {
        month: [
            {
                "site": "blog.example",
                "api_calls": "3",
                "spam": "2",
                "ham": "1",
                "missed_spam": "2",
                "false_positives": "1",
                "is_revoked": False,
            }
        ],
        "limit": 500,
        "offset": 0,
        "total": 1,
    }
    csv_text = client.post(
        "/1.2/key-sites", data={"api_key": key, "format": "csv", "limit": "10"}
    ).get_data(as_text=True)
    prefix = key.split("_")[1]
    assert csv_text.splitlines() == [
        f"Active sites for cg_{prefix} during {month} (limit:10, offset: 0, total: 1)",
        "Site,Total API Calls,Spam,Ham,Missed Spam,False Positives,Is Revoked",
        "blog.example,3,2,1,2,1,false",
    ]


def test_key_sites_of_another_month_or_filter_is_empty(client: FlaskClient, key: str) -> None:
    post(client, CHECK, form(key))
    last_year = client.get("/1.2/key-sites", query_string={"api_key": key, "month": "2000-01"})
    assert last_year.get_json()["2000-01"][0]["api_calls"] == "0"
    filtered = client.get("/1.2/key-sites", query_string={"api_key": key, "filter": "elsewhere"})
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    assert filtered.get_json() == {month: [], "limit": 500, "offset": 0, "total": 0}
    paged = client.get("/1.2/key-sites", query_string={"api_key": key, "offset": "1"})
    assert paged.get_json()[month] == []


@pytest.mark.parametrize(
    ("params", "help_text"),
    [
        ({"month": "2026-13"}, 'Invalid "month" value'),
        ({"order": "name"}, 'Invalid "order" value'),
        ({"limit": "-1"}, 'Invalid "limit" value'),
        ({"offset": "x"}, 'Invalid "offset" value'),
        ({"format": "xml"}, 'Invalid "format" value'),
        ({"api_key": ""}, 'Empty "api_key" value'),
    ],
)
def test_key_sites_with_a_bad_parameter_is_invalid(
    client: FlaskClient, key: str, params: dict[str, str], help_text: str
) -> None:
    response = client.get("/1.2/key-sites", query_string={"api_key": key, **params})
    assert response.get_data(as_text=True) == "invalid"
    assert help_text in response.headers["X-akismet-debug-help"]


# --- the embedded default ----------------------------------------------------------------


def test_the_whole_api_on_the_embedded_sqlite_default(
    api_settings: Settings, tmp_path: Path
) -> None:
    settings = api_settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'cg.db'}"})
    command.upgrade(alembic_config(settings), "head")
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    try:
        with sessions.begin() as session:
            make_site(session, flood_limit_per_minute=2)
            key = create_api_key(session, site_slug="blog", name="k")[1]
        with create_app(settings, sessions=sessions).test_client() as client:
            assert post(client, "/1.1/verify-key", {"key": key, "blog": BLOG}).text == "valid"
            spam = post(client, CHECK, form(key, comment_content="casino"))
            assert spam.text == "true"
            assert post(client, CHECK, form(key, comment_content="Fine")).text == "false"
            # The duplicate is found, and the flood counted, on SQLite's timestamps too.
            again = post(client, CHECK, form(key, comment_content="casino"))
            assert again.headers["X-akismet-guid"] == spam.headers["X-akismet-guid"]
            assert post(client, CHECK, form(key, comment_content="Third")).text == "true"
            ham = post(client, "/1.1/submit-ham", form(key, comment_content="casino"))
            assert ham.text == "Thanks for making the web a better place."
            usage = client.get("/1.2/usage-limit", query_string={"api_key": key}).get_json()
            sites = client.get("/1.2/key-sites", query_string={"api_key": key}).get_json()
        assert usage["usage"] == 3
        month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
        (row,) = sites[month]
        assert (row["api_calls"], row["spam"], row["ham"]) == ("3", "2", "1")
        assert (row["missed_spam"], row["false_positives"]) == ("0", "1")
        with sessions() as session:
            statuses = sorted(s.value for s in session.scalars(select(Comment.status)))
        assert statuses == ["approved", "approved", "spam"]
    finally:
        engine.dispose()
