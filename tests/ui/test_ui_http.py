"""The web UI over HTTP without a browser: login through the development issuer, the
session cookie, CSRF, the security headers, roles, and what each page and action does."""

from __future__ import annotations

import datetime as dt
import re
from http.cookies import SimpleCookie
from typing import Any

from flask import Response
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from models import AuditEntry, Author, Comment, Label, Site, Status, Trust, UiSession
from service.settings import Settings
from service.ui.security import login_cookie_name, session_cookie_name, set_cookie
from tests.api.test_actions import make_comment
from tests.ui.conftest import csrf_of, dev_login, script_headers


def body(response: TestResponse) -> dict[str, Any]:
    found = response.get_json()
    assert isinstance(found, dict), response.text
    return found


def status(session: Session, comment: Comment) -> Status:
    session.refresh(comment)
    return comment.status


def cookies_set(response: object) -> dict[str, SimpleCookie]:
    found: dict[str, SimpleCookie] = {}
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


def test_login_sets_a_rotated_http_only_lax_cookie_on_the_ui_path_only(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    start = client.get("/ui/blog/login")
    pending_cookie = cookies_set(start)["cg_ui_login"]["cg_ui_login"]
    assert pending_cookie["path"] == "/ui"
    assert pending_cookie["httponly"]
    assert pending_cookie["samesite"] == "Lax"

    done = dev_login(client)
    assert done.status_code == 303
    assert done.headers["Location"] == "/ui/blog/queue"
    session_cookie = cookies_set(done)["cg_ui"]["cg_ui"]
    assert session_cookie["path"] == "/ui"
    assert session_cookie["httponly"]
    assert session_cookie["samesite"] == "Lax"
    assert not session_cookie["secure"]  # the test environment is not production
    assert session_cookie.value != pending_cookie.value
    # The pending login is gone: one row, the logged-in session, under the new token.
    rows = db_session.scalars(select(UiSession).where(UiSession.site_id == site.id)).all()
    assert len(rows) == 1
    assert rows[0].subject == "mia"
    assert rows[0].roles == ["moderator"]
    assert rows[0].login is None
    assert rows[0].id != session_cookie.value  # stored as a hash, never as the cookie

    page = client.get("/ui/blog/queue")
    assert page.status_code == 200
    assert "Mia" in page.text


def test_a_page_without_a_session_redirects_to_the_login_and_the_script_gets_401(
    client: FlaskClient, site: Site
) -> None:
    page = client.get("/ui/blog/queue?status=spam")
    assert page.status_code == 303
    assert page.headers["Location"] == "/ui/blog/login?next=%2Fui%2Fblog%2Fqueue%3Fstatus%3Dspam"
    script = client.get("/ui/blog/queue", headers={"Accept": "application/json"})
    assert script.status_code == 401
    assert script.mimetype == "application/problem+json"


def test_the_login_returns_to_the_page_asked_for_and_never_elsewhere(
    client: FlaskClient, site: Site
) -> None:
    back = dev_login(client, next_path="/ui/blog/queue?status=spam")
    assert back.headers["Location"] == "/ui/blog/queue?status=spam"
    for elsewhere in ("https://evil.example/", "//evil.example/ui/blog/", "/ui/other/queue"):
        back = dev_login(client, next_path=elsewhere)
        assert back.headers["Location"] == "/ui/blog/queue"


def test_a_login_without_the_moderator_role_is_403_and_leaves_no_session(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    refused = dev_login(client, role="operator")
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"
    assert "holds no moderator role at site" in refused.text
    assert "cg_ui" not in cookies_set(refused)
    assert db_session.scalars(select(UiSession)).all() == []
    assert client.get("/ui/blog/queue").status_code == 303


def test_the_queue_shows_a_tab_newest_first_with_counts_and_escaped_content(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    older = make_comment(db_session, site, content="first <b>bold</b> words")
    newer = make_comment(db_session, site, content="<script>alert(1)</script>", subject="bob")
    make_comment(db_session, site, status=Status.spam, content="casino")
    db_session.execute(
        update(Comment)
        .where(Comment.id == older.id)
        .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    )
    dev_login(client)
    page = client.get("/ui/blog/queue").text
    assert page.index(f'id="c-{newer.id}"') < page.index(f'id="c-{older.id}"')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', page))
    assert counts == {"held": "2", "spam": "1", "approved": "0"}
    spam = client.get("/ui/blog/queue?status=spam").text
    assert "casino" in spam
    assert "&lt;script&gt;" not in spam


def test_every_ui_answer_carries_the_security_headers(client: FlaskClient, site: Site) -> None:
    dev_login(client)
    for path in (
        "/ui/blog/queue",
        "/ui/",
        "/ui/static/ui.js",
        "/ui/blog/no/where",
        "/ui/blog/login",
    ):
        answer = client.get(path)
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/ui/blog/queue").headers["Cache-Control"] == "no-store"
    assert client.get("/ui/blog/no/where").status_code == 404
    assert client.get("/ui/blog/no/where").mimetype == "text/html"


def test_the_api_stays_cookie_free(client: FlaskClient, site: Site) -> None:
    dev_login(client)
    answer = client.get("/v1/sites/blog/queue")
    assert answer.status_code == 401  # the UI's cookie is no credential for the API
    assert "Set-Cookie" not in answer.headers
    assert "Content-Security-Policy" not in answer.headers


def test_a_state_changing_request_needs_the_sessions_csrf_token(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    comment = make_comment(db_session, site)
    dev_login(client)
    token = csrf_of(client.get("/ui/blog/queue").text)
    url = f"/ui/blog/comments/{comment.id}/actions?version={comment.version}"
    missing = client.post(url, data={"action": "approve"})
    assert missing.status_code == 403
    assert missing.mimetype == "text/html"
    wrong = client.post(url, data={"action": "approve", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    as_json = client.post(url, data={"action": "approve"}, headers={"Accept": "application/json"})
    assert as_json.status_code == 403
    assert as_json.mimetype == "application/problem+json"
    foreign = client.post(
        url,
        data={"action": "approve", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert status(db_session, comment) is Status.held
    assert db_session.scalars(select(AuditEntry)).all() == []

    done = client.post(
        url,
        data={"action": "approve"},
        headers={"Accept": "application/json", "X-CSRF-Token": token, "Origin": "http://localhost"},
    )
    assert done.status_code == 200, done.text
    assert body(done)["results"][0]["result"] == "ok"
    assert status(db_session, comment) is Status.approved


def test_an_action_without_a_session_is_refused_before_anything_else(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    comment = make_comment(db_session, site)
    answer = client.post(
        f"/ui/blog/comments/{comment.id}/actions?version=1", data={"action": "spam"}
    )
    assert answer.status_code == 403
    assert status(db_session, comment) is Status.held


def test_a_stale_action_says_someone_else_acted_first(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    comment = make_comment(db_session, site)
    dev_login(client)
    token = csrf_of(client.get("/ui/blog/queue").text)
    seen = comment.version
    db_session.execute(
        update(Comment).where(Comment.id == comment.id).values(version=Comment.version + 1)
    )
    answer = client.post(
        f"/ui/blog/comments/{comment.id}/actions?version={seen}",
        data={"action": "spam", "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    result = body(answer)["results"][0]
    assert result["result"] == "conflict"
    assert "someone else acted on this comment first" in result["detail"]
    assert "had been changed by someone else" in body(answer)["message"]
    # Without the script: back to the queue, which says so.
    plain = client.post(
        f"/ui/blog/comments/{comment.id}/actions?version={seen}",
        data={"action": "spam", "csrf_token": token, "next": "/ui/blog/queue"},
    )
    assert plain.status_code == 303
    assert "had been changed by someone else first" in client.get(plain.headers["Location"]).text


def test_bulk_spam_then_undo_puts_the_comments_back_and_takes_the_labels_back(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    first = make_comment(db_session, site, content="one")
    second = make_comment(db_session, site, content="two", subject="bob")
    headers = script_headers(client)
    done = client.post(
        "/ui/blog/actions",
        data={"action": "spam", "item": [f"{first.id}:1", f"{second.id}:1"]},
        headers=headers,
    )
    assert [r["result"] for r in body(done)["results"]] == ["ok", "ok"]
    assert body(done)["counts"]["spam"] == 2
    assert body(done)["counts"]["held"] == 0
    assert len(db_session.scalars(select(Label)).all()) == 2

    undone = client.post("/ui/blog/undo", headers=headers)
    assert body(undone)["undone"] == 2
    assert body(undone)["counts"]["held"] == 2
    for comment in (first, second):
        assert status(db_session, comment) is Status.held
    assert db_session.scalars(select(Label)).all() == []
    actions = [e.action for e in db_session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["spam", "spam", "hold", "hold"]
    again = client.post("/ui/blog/undo", headers=headers)
    assert body(again)["message"] == "There is nothing to undo."


def test_undo_after_someone_else_acted_changes_nothing_of_theirs(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    comment = make_comment(db_session, site)
    headers = script_headers(client)
    client.post(
        f"/ui/blog/comments/{comment.id}/actions?version=1",
        data={"action": "approve"},
        headers=headers,
    )
    db_session.execute(
        update(Comment)
        .where(Comment.id == comment.id)
        .values(version=Comment.version + 1, status=Status.spam)
    )
    undone = client.post("/ui/blog/undo", headers=headers)
    assert body(undone)["undone"] == 0
    assert body(undone)["stale"] == 1
    assert status(db_session, comment) is Status.spam


def test_trust_and_ban_an_author_and_undo_it(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    comment = make_comment(db_session, site)
    headers = script_headers(client)
    url = f"/ui/blog/authors/{comment.author_id}/trust"
    banned = client.post(url, data={"trust": "banned"}, headers=headers)
    assert banned.status_code == 200
    assert body(banned)["author"]["trust"] == "banned"
    author = db_session.get_one(Author, comment.author_id)
    db_session.refresh(author)
    assert author.trust is Trust.banned
    client.post("/ui/blog/undo", headers=headers)
    assert db_session.scalar(select(Author.trust).where(Author.id == author.id)) is Trust.normal
    actions = [e.action for e in db_session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["ban", "unban"]
    bad = client.post(url, data={"trust": "god"}, headers=headers)
    assert bad.status_code == 422
    assert bad.mimetype == "application/problem+json"


def test_the_comment_page_shows_its_audit_trail(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    comment = make_comment(db_session, site)
    dev_login(client)
    token = csrf_of(client.get("/ui/blog/queue").text)
    client.post(
        f"/ui/blog/comments/{comment.id}/actions?version=1",
        data={"action": "spam", "csrf_token": token},
    )
    page = client.get(f"/ui/blog/comments/{comment.id}")
    assert page.status_code == 200
    trail = page.text[page.text.index('id="audit-trail"') :]
    assert '<td class="action">spam</td>' in trail
    assert "mia" in trail
    assert client.get("/ui/blog/comments/not-a-uuid").status_code == 404


def test_rules_are_read_only_for_moderators_and_saved_by_admins_with_if_match(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    dev_login(client)
    page = client.get("/ui/blog/rules").text
    assert "<fieldset disabled>" in page
    token = csrf_of(page)
    refused = client.post("/ui/blog/rules", data={"csrf_token": token, "max_links": "5"})
    assert refused.status_code == 403

    dev_login(client, subject="ada", role="admin")
    page = client.get("/ui/blog/rules").text
    token = csrf_of(page)
    etag = re.search(r'name="etag" value="([^"]+)"', page)
    assert etag is not None
    fields = {
        "csrf_token": token,
        "etag": etag.group(1).replace("&#34;", '"'),
        "hold_threshold": "0.4",
        "spam_threshold": "0.8",
        "discard_threshold": "",
        "blocked_words": "casino\nviagra\n",
        "moderation_words": "crypto",
        "moderation_patterns": "",
        "max_links": "3",
        "flood_limit_per_minute": "5",
        "note": "tighter",
    }
    saved = client.post("/ui/blog/rules", data=fields)
    assert saved.status_code == 303, saved.text
    db_session.refresh(site)
    assert site.policy["blocked_words"] == ["casino", "viagra"]
    assert site.policy["hold_threshold"] == 0.4
    assert site.policy["max_links"] == 3
    assert "The rules were saved." in client.get(saved.headers["Location"]).text

    stale = client.post("/ui/blog/rules", data={**fields, "max_links": "9"})
    assert stale.status_code == 412
    assert "the rules have changed" in stale.text
    db_session.refresh(site)
    assert site.policy["max_links"] == 3

    current = re.search(r'name="etag" value="([^"]+)"', stale.text)
    assert current is not None
    fields["etag"] = current.group(1).replace("&#34;", '"')
    invalid = client.post(
        "/ui/blog/rules", data={**fields, "hold_threshold": "0.9", "max_links": "x"}
    )
    assert invalid.status_code == 422
    assert "max_links" in invalid.text


def test_logout_ends_the_session(client: FlaskClient, site: Site, db_session: Session) -> None:
    dev_login(client)
    token = csrf_of(client.get("/ui/blog/queue").text)
    assert client.post("/ui/blog/logout").status_code == 403  # CSRF applies to logout too
    out = client.post("/ui/blog/logout", data={"csrf_token": token})
    assert out.status_code == 200
    assert "You are logged out" in out.text
    assert "data-end-session" not in out.text  # the development issuer has no logout
    cleared = cookies_set(out)["cg_ui"]["cg_ui"]
    assert cleared.value == ""
    assert cleared["path"] == "/ui"
    assert db_session.scalars(select(UiSession)).all() == []
    assert client.get("/ui/blog/queue").status_code == 303
    # Logging out again, the session gone, is nothing to refuse.
    again = client.post("/ui/blog/logout", data={"csrf_token": token})
    assert again.status_code == 200
    assert "You are logged out" in again.text


def test_an_idle_or_expired_session_is_refused(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    dev_login(client)
    assert client.get("/ui/blog/queue").status_code == 200
    db_session.execute(
        update(UiSession).values(last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    )
    assert client.get("/ui/blog/queue").status_code == 303
    dev_login(client)
    db_session.execute(
        update(UiSession).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    assert client.get("/ui/blog/queue").status_code == 303


def test_a_session_is_for_its_own_site_only(
    client: FlaskClient, site: Site, db_session: Session
) -> None:
    from service.auth.dev_issuer import DEV_ISSUER, DEV_UI_CLIENT_ID
    from service.moderation.sites import UiClient, create_site, set_ui_client

    create_site(db_session, slug="other", name="Other", url="https://other.example")
    set_ui_client(db_session, slug="other", client=UiClient(DEV_ISSUER, DEV_UI_CLIENT_ID))
    dev_login(client)
    assert client.get("/ui/other/queue").status_code == 303
    assert client.get("/ui/nosuchsite/queue").status_code == 404


def test_in_production_the_cookie_is_secure_and_prefixed(settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production"})
    response = Response()
    set_cookie(
        response,
        production,
        name=session_cookie_name(production),
        value="v",
        path="/ui",
        max_age=60,
    )
    cookie = cookies_set(response)["__Secure-cg_ui"]["__Secure-cg_ui"]
    assert cookie["secure"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/ui"
    assert login_cookie_name(production) == "__Secure-cg_ui_login"
