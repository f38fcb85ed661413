"""The web UI in a real browser: Debian's headless Chromium, driven by Playwright's Python
package (which is told where that Chromium is and downloads none), against a live server
(real HTTP on 127.0.0.1, real PostgreSQL, comments classified by a real Celery worker),
with moderators logging in at the real OpenID Connect provider the suite starts.

The first test also takes a screenshot of the queue: into the test's temporary directory,
or, with ``COMMENTGUARD_UI_SCREENSHOT`` set to a path (``make screenshot`` sets
``docs/images/moderation-queue.png``, the one docs/moderation-ui.md shows), there; so a
test run leaves the checkout as it found it.
"""

from __future__ import annotations

import http.server
import os
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from models import AuditEntry, Author, Comment, Label, Status, Trust, UiSession
from service.app import create_app
from service.auth.dev_issuer import mint_dev_token
from service.moderation.policy import SitePolicy
from service.moderation.sites import UiClient, create_site, set_ui_client
from service.settings import Settings
from tests.support.oidc import OidcProvider
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker
from tests.ui.conftest import FirstForm

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
#: Known to work on these machines: no sandbox as root, no GPU, and nothing that would try
#: to reach the network outside this machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the queue's screenshot goes instead of the test's temporary directory.
SCREENSHOT_ENV = "COMMENTGUARD_UI_SCREENSHOT"
TIMEOUT_MS = 15_000

#: The site's policy makes every outcome a rule's, whatever the classifier scores: a
#: blocked word is spam, a moderation word is held, the rest approved (no score reaches 1).
POLICY = SitePolicy(
    hold_threshold=1.0,
    spam_threshold=1.0,
    discard_threshold=1.0,
    blocked_words=["casino"],
    moderation_words=["crypto", "giveaway", "forex"],
    flood_limit_per_minute=0,
)

HELD_TEXTS = [
    (
        "Dana",
        "Is the crypto section still accurate after the 2026 changes? Step 3 fails for me.",
    ),
    ("Eli", "Great write-up. We run a weekly giveaway for readers, link in my profile!"),
    ("Farid", "I trade forex for a living and this matches what I see: patience beats leverage."),
    ("Grace", "Thanks! The crypto wallet example finally made key derivation click for me."),
]
XSS_TEXT = (
    'crypto <script>alert("script")</script> <img src=x onerror=alert("img")> '
    '<a href="javascript:alert(\'link\')">click me</a> javascript:alert("bare")'
)


@dataclass
class LiveServer:
    url: str
    settings: Settings

    def api(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            self.url + path,
            headers={"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})},
            timeout=10,
            **kwargs,
        )


@pytest.fixture(scope="module")
def live_server(api_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[LiveServer]:
    """The app served over real HTTP on 127.0.0.1 (a threaded server, as gunicorn's
    threads would be), on the run's database and broker."""
    app = create_app(api_settings, sessions=sessions)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", api_settings)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def ui_client(live_server: LiveServer, oidc_provider: OidcProvider) -> UiClient:
    """The UI's confidential client at the provider, registered for the live server."""
    client_id, secret = oidc_provider.register_client(
        redirect_uri=live_server.url + "/ui/callback",
        post_logout_redirect_uri=live_server.url + "/ui/",
    )
    return UiClient(oidc_provider.issuer, client_id, secret)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page and what it showed that it should not have: dialogs, console errors and
    warnings, uncaught errors."""

    page: Any
    dialogs: list[str]
    console: list[str]
    errors: list[str]


@pytest.fixture
def page(chromium: Any, live_server: LiveServer) -> Iterator[Watched]:
    live_url = live_server.url
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    watched = Watched(tab, [], [], [])

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)

    def on_console(message: Any) -> None:
        # The UI's pages only: the provider's login pages are not under test.
        if message.type in ("error", "warning") and message.location.get("url", "").startswith(
            live_url
        ):
            watched.console.append(f"{message.type}: {message.text} ({message.location})")

    tab.on("console", on_console)
    tab.on("pageerror", lambda e: watched.errors.append(str(e)))
    try:
        yield watched
    finally:
        context.close()


@dataclass
class Site:
    slug: str
    id: int


@pytest.fixture
def site(
    committed: sessionmaker[Session],
    ui_client: UiClient,
    oidc_provider: OidcProvider,
    running_worker: CeleryWorker,
) -> Site:
    """A new site (its own slug: the app caches sites for seconds) whose moderators log in
    at the provider; ``mia`` moderates it, ``ada`` administers it."""
    slug = f"ui-{secrets.token_hex(4)}"
    with committed.begin() as session:
        created = create_site(
            session, slug=slug, name="Field notes", url="https://notes.example", policy=POLICY
        )
        set_ui_client(session, slug=slug, client=ui_client)
        site_id = created.id
    oidc_provider.set_roles("mia", [f"commentguard:{slug}:moderator"])
    oidc_provider.set_roles("ada", [f"commentguard:{slug}:admin"])
    oidc_provider.set_roles("rex", [f"commentguard:{slug}:operator"])
    return Site(slug, site_id)


def post_comments(
    live: LiveServer,
    committed: sessionmaker[Session],
    site: Site,
    texts: list[tuple[str, str]],
    *,
    thread: str = "/posts/hello",
) -> list[uuid.UUID]:
    """Post each (author, text) through the live API as its own reader, then wait for the
    worker's verdicts; the ids, in the order posted."""
    ids = []
    for name, text in texts:
        token = mint_dev_token(live.settings, subject=name.lower(), site=site.slug)
        answer = live.api(
            "POST",
            "/v1/comments",
            token,
            json={"site": site.slug, "thread": thread, "author_name": name, "content": text},
        )
        assert answer.status_code == 202, answer.text
        ids.append(uuid.UUID(answer.json()["id"]))

    def classified() -> bool:
        with committed() as session:
            pending = session.scalar(
                select(func.count())
                .select_from(Comment)
                .where(Comment.id.in_(ids), Comment.status == Status.pending)
            )
            return pending == 0

    wait_until(classified, timeout=60, message="the worker's verdicts")
    return ids


def status_of(committed: sessionmaker[Session], comment_id: uuid.UUID) -> Status:
    with committed() as session:
        return session.get_one(Comment, comment_id).status


def log_in(page: Any, live: LiveServer, site: Site, login: str = "mia") -> None:
    """Open the site's UI and log in at the provider's (development) login and consent
    pages, as a moderator would."""
    page.goto(f"{live.url}/ui/{site.slug}/")
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', "any password")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/ui/" in url or "consent" in url or "interaction" in url)
    if "/ui/" not in page.url:
        page.click("button[type=submit]")  # the consent page's Continue
    page.wait_for_url(f"{live.url}/ui/{site.slug}/queue*")


def count_badge(page: Any, status: str) -> int:
    return int(page.text_content(f'[data-count="{status}"]'))


def test_a_moderator_works_the_queue_by_keyboard(
    page: Watched,
    live_server: LiveServer,
    committed: sessionmaker[Session],
    site: Site,
    tmp_path: Path,
) -> None:
    held = post_comments(live_server, committed, site, HELD_TEXTS)
    spam = post_comments(
        live_server, committed, site, [("Sly", "Best casino bonus, sign up today!")]
    )
    post_comments(live_server, committed, site, [("Hana", "Lovely post, thank you.")])
    assert [status_of(committed, i) for i in held] == [Status.held] * 4
    assert status_of(committed, spam[0]) is Status.spam
    tab = page.page

    log_in(tab, live_server, site)
    assert [count_badge(tab, s) for s in ("held", "spam", "approved")] == [4, 1, 1]
    items = tab.locator("li.comment")
    # Newest first, and the spam words the rules found are marked.
    assert items.first.get_attribute("data-id") == str(held[-1])
    assert tab.locator(f"#c-{held[0]} .content mark").first.text_content() == "crypto"
    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "moderation-queue.png")
    tab.screenshot(path=str(screenshot), full_page=False)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # j moves to the second comment, a approves it.
    tab.keyboard.press("j")
    second = items.nth(1).get_attribute("data-id")
    assert tab.locator("li.comment.current").get_attribute("data-id") == second
    tab.keyboard.press("a")
    tab.wait_for_selector(f"#c-{second}", state="hidden")
    assert count_badge(tab, "held") == 3
    assert count_badge(tab, "approved") == 2
    assert status_of(committed, uuid.UUID(second)) is Status.approved

    # x selects two, shift-S marks both as spam.
    visible = tab.locator("li.comment:not(.done)")
    first_id = visible.nth(0).get_attribute("data-id")
    third_id = visible.nth(1).get_attribute("data-id")
    tab.keyboard.press("k")
    tab.keyboard.press("x")
    tab.keyboard.press("j")
    tab.keyboard.press("x")
    assert tab.text_content("#selected-count") == "2 selected"
    tab.keyboard.press("Shift+S")
    tab.wait_for_selector(f"#c-{third_id}", state="hidden")
    assert count_badge(tab, "spam") == 3
    assert {status_of(committed, uuid.UUID(i)) for i in (first_id, third_id)} == {Status.spam}
    with committed() as session:
        labels = session.scalars(select(Label.label).where(Label.site_id == site.id)).all()
    assert sorted(str(v) for v in labels) == ["ham", "spam", "spam"]

    # u undoes the bulk spam: both are held again, their spam labels gone.
    tab.keyboard.press("u")
    tab.wait_for_selector(f"#c-{third_id}")
    assert tab.text_content("#notice").startswith("Undid the last action (2 undone")
    assert count_badge(tab, "held") == 3
    assert {status_of(committed, uuid.UUID(i)) for i in (first_id, third_id)} == {Status.held}
    with committed() as session:
        labels = session.scalars(select(Label.label).where(Label.site_id == site.id)).all()
    assert [str(v) for v in labels] == ["ham"]

    # Another moderator spams the first comment through the API; acting on it here is stale.
    other = mint_dev_token(
        live_server.settings, subject="omar", site=site.slug, roles=["moderator"]
    )
    current = tab.locator("li.comment.current")
    target = current.get_attribute("data-id")
    version = current.get_attribute("data-version")
    answer = live_server.api(
        "POST",
        f"/v1/comments/{target}/actions",
        other,
        json={"action": "spam"},
        headers={"If-Match": f'"v{version}"'},
    )
    assert answer.status_code == 200, answer.text
    tab.keyboard.press("a")
    message = tab.locator(f"#c-{target} .item-message")
    message.wait_for()
    assert "someone else acted on this comment first: it is now spam" in message.text_content()
    assert "had been changed by someone else first" in tab.text_content("#notice")
    assert status_of(committed, uuid.UUID(target)) is Status.spam
    with committed() as session:
        trail = session.scalars(
            select(AuditEntry.actor_subject).where(AuditEntry.comment_id == uuid.UUID(target))
        ).all()
    assert trail.count("omar") == 1
    assert "mia" not in trail[-1:]

    # d deletes the next one; t trusts its author.
    tab.keyboard.press("j")
    doomed = tab.locator("li.comment.current").get_attribute("data-id")
    author_id = tab.locator("li.comment.current").get_attribute("data-author")
    tab.keyboard.press("t")
    tab.wait_for_selector(f'li.comment[data-author="{author_id}"][data-trust="trusted"]')
    tab.keyboard.press("d")
    tab.wait_for_selector(f"#c-{doomed}", state="hidden")
    assert status_of(committed, uuid.UUID(doomed)) is Status.trash
    with committed() as session:
        assert session.get_one(Author, int(author_id)).trust is Trust.trusted

    assert page.dialogs == []
    assert page.errors == []
    assert page.console == []


def test_a_comment_with_markup_stays_text(
    page: Watched,
    live_server: LiveServer,
    committed: sessionmaker[Session],
    site: Site,
) -> None:
    (comment_id,) = post_comments(
        live_server, committed, site, [('<img src=x onerror=alert("name")>', XSS_TEXT)]
    )
    tab = page.page
    log_in(tab, live_server, site)
    item = tab.locator(f"#c-{comment_id}")
    content = item.locator(".content")
    assert content.text_content() == XSS_TEXT
    assert item.locator("script, img, iframe").count() == 0
    assert tab.locator('a[href^="javascript:"]').count() == 0
    assert '<img src=x onerror=alert("name")>' in item.locator(".author").text_content()
    # The only scripts on the page are the UI's own file.
    sources = tab.eval_on_selector_all("script", "els => els.map(e => e.src)")
    assert sources == [f"{live_server.url}/ui/static/ui.js"]
    # The detail page shows it as text as well.
    tab.goto(f"{live_server.url}/ui/{site.slug}/comments/{comment_id}")
    assert tab.locator("article .content").text_content() == XSS_TEXT
    assert tab.locator("article script, article img").count() == 0
    assert page.dialogs == []
    assert page.errors == []
    assert page.console == []


def test_a_forged_cross_origin_form_is_refused(
    page: Watched,
    live_server: LiveServer,
    committed: sessionmaker[Session],
    site: Site,
) -> None:
    (comment_id,) = post_comments(live_server, committed, site, [("Ivy", "crypto question")])
    tab = page.page
    log_in(tab, live_server, site)
    version = tab.locator(f"#c-{comment_id}").get_attribute("data-version")
    action = f"{live_server.url}/ui/{site.slug}/comments/{comment_id}/actions?version={version}"
    forged = (
        f'<form id="f" method="post" action="{action}">'
        '<input name="action" value="spam"><button id="go">win a prize</button></form>'
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(forged)

        def log_message(self, format: str, *args: Any) -> None:
            return

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        tab.goto(f"http://127.0.0.1:{evil.server_port}/")
        with tab.expect_navigation():
            tab.click("#go")
        assert "Request refused" in tab.content()
    finally:
        evil.shutdown()
    assert status_of(committed, comment_id) is Status.held


def test_a_non_moderator_is_turned_away_and_logout_ends_the_session_at_the_provider(
    page: Watched,
    live_server: LiveServer,
    committed: sessionmaker[Session],
    site: Site,
) -> None:
    tab = page.page
    tab.goto(f"{live_server.url}/ui/{site.slug}/")
    tab.fill('input[name="login"]', "rex")
    tab.fill('input[name="password"]', "any password")
    tab.click("button[type=submit]")
    tab.wait_for_url(lambda url: "/ui/callback" in url or "consent" in url or "interaction" in url)
    if "/ui/callback" not in tab.url:
        tab.click("button[type=submit]")
        tab.wait_for_url(lambda url: "/ui/callback" in url)
    assert "holds no moderator role at site" in tab.content()
    with committed() as session:
        assert session.scalars(select(UiSession).where(UiSession.site_id == site.id)).all() == []

    # A moderator logs in (the provider remembers the browser: a new login), then out.
    tab.context.clear_cookies()
    log_in(tab, live_server, site, login="mia")
    tab.click("#logout")
    # RP-initiated logout: the provider asks to confirm, then comes back to /ui/.
    tab.wait_for_selector("button[value=yes]")
    tab.click("button[value=yes]")
    tab.wait_for_url(f"{live_server.url}/ui/")
    with committed() as session:
        assert session.scalars(select(UiSession).where(UiSession.site_id == site.id)).all() == []
    tab.goto(f"{live_server.url}/ui/{site.slug}/queue")
    assert 'name="login"' in tab.content()  # the provider asks for a login again
    assert page.dialogs == []
    assert page.errors == []


def test_a_public_client_logs_in_with_pkce_alone(
    live_server: LiveServer,
    committed: sessionmaker[Session],
    oidc_provider: OidcProvider,
    site: Site,
) -> None:
    """Walked with an HTTP client, no browser: a UI client registered without a secret
    redeems its code with the PKCE verifier alone (token_endpoint_auth_method none)."""
    answer = requests.post(
        oidc_provider.url("/reg"),
        json={
            "redirect_uris": [live_server.url + "/ui/callback"],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        timeout=10,
    )
    answer.raise_for_status()
    with committed.begin() as session:
        public = UiClient(oidc_provider.issuer, answer.json()["client_id"])
        set_ui_client(session, slug=site.slug, client=public)
    # The app caches the site for seconds; a new site slug would be read afresh, so wait
    # for this one's cache instead of relying on it.
    browser = requests.Session()
    response = wait_until(
        lambda: (
            r
            if (r := browser.get(f"{live_server.url}/ui/{site.slug}/login", allow_redirects=False))
            and public.client_id in r.headers.get("Location", "")
            else None
        ),
        timeout=10,
        interval=0.5,
        message="the site's new UI client",
    )
    location = response.headers["Location"]
    assert "code_challenge_method=S256" in location
    for _ in range(10):
        response = browser.get(location, allow_redirects=False, timeout=10)
        if response.is_redirect:
            location = urllib.parse.urljoin(response.url, response.headers["Location"])
            if location.startswith(live_server.url + "/ui/callback"):
                break
            continue
        form = FirstForm()
        form.feed(response.text)
        fields = dict(form.fields)
        if fields.get("prompt") == "login":
            fields.update(login="mia", password="any")
        response = browser.post(
            urllib.parse.urljoin(response.url, str(form.action)),
            data=fields,
            allow_redirects=False,
            timeout=10,
        )
        location = urllib.parse.urljoin(response.url, response.headers["Location"])
        if location.startswith(live_server.url + "/ui/callback"):
            break
    landed = browser.get(location, timeout=10)
    assert landed.status_code == 200, landed.text
    assert landed.url == f"{live_server.url}/ui/{site.slug}/queue"
    assert "User mia" in landed.text
