"""The real PyPI ``akismet`` client (``SyncClient``) against a live Commentguard: a real
HTTP server in this process, on the run's PostgreSQL, with committed data. The client is
pointed at it only through its own ``http_client`` argument (an ``httpx.Client`` whose
transport sends Akismet's host to the server); nothing of the client is patched.

Outcomes are made deterministic by each site's policy (a blocked word is spam;
thresholds no score reaches, or every score reaches), never by the bundled classifier."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import akismet
import httpx
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, Label, Status, Verdict
from service.app import create_app
from service.auth.api_keys import create_api_key
from service.auth.dev_issuer import mint_dev_token
from service.moderation.policy import SitePolicy
from service.moderation.retrain import gather_labels
from service.moderation.sites import create_site
from service.settings import Settings
from tests.support.akismet import (
    ALWAYS_DISCARD,
    BLOG,
    NEVER_BY_SCORE,
    CommentguardTransport,
    live_server,
)

COMMENT: dict[str, Any] = {
    "user_agent": "Mozilla/5.0",
    "comment_type": "comment",
    "comment_author": "Dana",
    "comment_author_email": "dana@example.org",
    "permalink": f"{BLOG}/posts/1",
}

SiteFactory = Callable[..., str]


@pytest.fixture
def server(api_settings: Settings, committed: sessionmaker[Session]) -> Iterator[str]:
    with live_server(create_app(api_settings, sessions=committed)) as base_url:
        yield base_url


@pytest.fixture
def make_site(committed: sessionmaker[Session]) -> SiteFactory:
    """``make_site(slug, **policy)``: a site at ``BLOG`` and a new API key of it."""

    def make(slug: str = "blog", **policy: Any) -> str:
        with committed.begin() as session:
            settings: dict[str, Any] = {**NEVER_BY_SCORE, "blocked_words": ["casino"], **policy}
            create_site(session, slug=slug, name="A blog", url=BLOG, policy=SitePolicy(**settings))
            return create_api_key(session, site_slug=slug, name="akismet client")[1]

    return make


def http_client(server: str, **options: Any) -> httpx.Client:
    """What the akismet client takes as ``http_client``: its own user agent, a timeout,
    and the transport to the live server."""
    return httpx.Client(
        transport=CommentguardTransport(server),
        headers={"User-Agent": akismet.USER_AGENT},
        timeout=10.0,
        **options,
    )


def client(server: str, key: str, blog: str = BLOG, **options: Any) -> akismet.SyncClient:
    return akismet.SyncClient.validated_client(
        config=akismet.Config(key=key, url=blog), http_client=http_client(server, **options)
    )


def scalar(sessions: sessionmaker[Session], statement: Any) -> Any:
    with sessions() as session:
        return session.scalar(statement)


def test_verify_key_valid_invalid_and_another_blog(server: str, make_site: SiteFactory) -> None:
    key = make_site()
    with akismet.SyncClient(
        config=akismet.Config(key=key, url=f"{BLOG}/"), http_client=http_client(server)
    ) as checked:
        assert checked.verify_key() is True
        assert checked.verify_key(key, "https://other.example") is False
        assert checked.verify_key("cg_0123456789abcdef_" + "A" * 43, BLOG) is False
    with pytest.raises(akismet.APIKeyError):
        client(server, "a-wrong-key")
    with pytest.raises(akismet.APIKeyError):
        client(server, key, blog="https://other.example")


def test_spam_and_ham_and_the_queue_shows_the_spam_with_its_reasons(
    server: str, make_site: SiteFactory, api_settings: Settings
) -> None:
    checker = client(server, make_site())
    assert (
        checker.comment_check("203.0.113.9", comment_content="Best casino bonus", **COMMENT)
        == akismet.CheckResponse.SPAM
    )
    assert (
        checker.comment_check("203.0.113.9", comment_content="Thanks, it helped!", **COMMENT)
        == akismet.CheckResponse.HAM
    )

    moderator = mint_dev_token(api_settings, subject="mia", site="blog", roles=["moderator"])
    headers = {"Authorization": f"Bearer {moderator}"}
    queue = httpx.get(
        f"{server}/v1/sites/blog/queue", params={"status": "spam"}, headers=headers
    ).json()
    (item,) = queue["items"]
    assert item["content"] == "Best casino bonus"
    assert (queue["counts"]["spam"], queue["counts"]["approved"]) == (1, 1)
    detail = httpx.get(f"{server}{item['links']['self']}", headers=headers).json()
    (verdict,) = detail["moderation"]["verdicts"]
    assert verdict["reasons"][-1] == {
        "phrase": "blocked word 'casino'",
        "weight": None,
        "feature": "rule:blocked:casino",
    }


def test_spam_past_the_discard_threshold_is_discard(server: str, make_site: SiteFactory) -> None:
    checker = client(server, make_site(**ALWAYS_DISCARD))
    verdict = checker.comment_check("203.0.113.9", comment_content="Anything at all", **COMMENT)
    assert verdict == akismet.CheckResponse.DISCARD


def test_a_test_check_stores_nothing(
    server: str, make_site: SiteFactory, committed: sessionmaker[Session]
) -> None:
    checker = client(server, make_site())
    verdict = checker.comment_check(
        "203.0.113.9", comment_content="casino", is_test=True, **COMMENT
    )
    assert verdict == akismet.CheckResponse.SPAM
    assert scalar(committed, select(func.count()).select_from(Comment)) == 0
    assert scalar(committed, select(func.count()).select_from(Verdict)) == 0


def test_submit_spam_and_ham_are_moderator_labels_that_retraining_uses(
    server: str, make_site: SiteFactory, committed: sessionmaker[Session]
) -> None:
    checker = client(server, make_site())
    checker.comment_check("198.51.100.4", comment_content="I sell cheap watches", **COMMENT)
    assert checker.submit_spam("198.51.100.4", comment_content="I sell cheap watches", **COMMENT)
    assert checker.submit_ham("198.51.100.5", comment_content="A text never checked", **COMMENT)

    with committed() as session:
        status = session.scalar(select(Comment.status))
        labels = session.execute(select(Label.label, Label.comment_id).order_by(Label.id)).all()
        site_id = session.scalar(select(Comment.site_id))
        gathered = gather_labels(session, site_id=site_id, moderator_weight=3.0, import_weight=1.0)
    assert status is Status.spam
    assert [(label.value, comment is not None) for label, comment in labels] == [
        ("spam", True),
        ("ham", False),
    ]
    assert gathered.sources == ["moderator", "moderator"]
    assert gathered.weights == [3.0, 3.0]
    assert gathered.labels == [1, 0]


def test_usage_limit_and_key_sites(server: str, make_site: SiteFactory) -> None:
    key = make_site()
    checker = client(server, key)
    checker.comment_check("203.0.113.9", comment_content="casino", **COMMENT)
    checker.comment_check("203.0.113.9", comment_content="A thoughtful reply", **COMMENT)
    assert checker.usage_limit() == {
        "limit": "none",
        "usage": 2,
        "percentage": "0.00",
        "throttled": False,
    }

    # akismet 25.10 sends no api_key with key-sites; httpx's default parameters add it.
    sites = client(server, key, params={"api_key": key})
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    found = sites.key_sites()
    assert isinstance(found, dict)
    assert found[month] == [
        {
            "site": "blog.example",
            "api_calls": "2",
            "spam": "1",
            "ham": "1",
            "missed_spam": "0",
            "false_positives": "0",
            "is_revoked": False,
        }
    ]
    assert (found["limit"], found["offset"], found["total"]) == (500, 0, 1)
    csv_text = sites.key_sites(result_format="csv", month=month, limit=10)
    assert isinstance(csv_text, str)
    assert csv_text.splitlines()[1:] == [
        "Site,Total API Calls,Spam,Ham,Missed Spam,False Positives,Is Revoked",
        "blog.example,2,1,1,0,0,false",
    ]


def test_errors_a_bad_key_and_a_missing_field(
    server: str, make_site: SiteFactory, committed: sessionmaker[Session]
) -> None:
    key = make_site()
    unchecked = akismet.SyncClient(
        config=akismet.Config(key="cg_0123456789abcdef_" + "A" * 43, url=BLOG),
        http_client=http_client(server),
    )
    with pytest.raises(akismet.APIKeyError):
        unchecked.comment_check("203.0.113.9", comment_content="Hello", **COMMENT)
    with pytest.raises(akismet.APIKeyError):
        unchecked.submit_spam("203.0.113.9", comment_content="Hello", **COMMENT)

    # The client requires user_ip but sends an empty one as it is: Akismet's answer is
    # "invalid" with the reason in X-akismet-debug-help, which the client raises as a
    # key error (it reads every "invalid" so); the header says what was wrong.
    checker = client(server, key)
    with pytest.raises(akismet.APIKeyError):
        checker.comment_check("", comment_content="Hello", **COMMENT)
    raw = http_client(server).post(
        "https://rest.akismet.com/1.1/comment-check",
        data={"api_key": key, "blog": BLOG, "comment_content": "Hello"},
    )
    assert raw.text == "invalid"
    assert raw.headers["X-akismet-debug-help"] == 'Empty "user_ip" value'
    with pytest.raises(akismet.UnknownArgumentError):
        checker.comment_check("203.0.113.9", no_such_field="x")  # type: ignore[call-arg]
    assert scalar(committed, select(func.count()).select_from(Comment)) == 0


def test_a_check_is_one_autocommitted_statement_on_postgresql(
    server: str, make_site: SiteFactory, engine: Engine, committed: sessionmaker[Session]
) -> None:
    checker = client(server, make_site())
    writes: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH")):
            writes.append((statement.split()[0].upper(), bool(cursor.connection.autocommit)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        # A new author's first comment, then a known author's (the key's last use was
        # written by verify-key a moment ago: no write for it now).
        checker.comment_check("203.0.113.9", comment_content="First words", **COMMENT)
        checker.comment_check("203.0.113.9", comment_content="Second words", **COMMENT)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == [("WITH", True), ("WITH", True)]
    with committed() as session:
        assert session.scalar(select(func.count()).select_from(Verdict)) == 2
        assert session.scalar(select(Author.approved_count)) == 2
