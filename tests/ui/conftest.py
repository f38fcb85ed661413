"""The web UI on the run's database, logged in through the development issuer's
authorization endpoint (``/dev-issuer/authorize``) as a browser would walk it."""

from __future__ import annotations

import html.parser
import urllib.parse

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from models import Site
from service.auth.dev_issuer import DEV_ISSUER, DEV_UI_CLIENT_ID
from service.moderation.policy import SitePolicy
from service.moderation.sites import UiClient, create_site, set_ui_client

# The API's fixtures serve the UI's tests as they are (its app is the UI's app).
from tests.api.conftest import api_settings, app, client, rolled_back_sessions, token

__all__ = ["api_settings", "app", "client", "rolled_back_sessions", "token"]


@pytest.fixture
def site(db_session: Session) -> Site:
    """The ``blog`` site, whose moderators log in at the development issuer."""
    created = create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        audiences=["https://blog.example"],
        policy=SitePolicy(flood_limit_per_minute=0, blocked_words=["casino"]),
    )
    set_ui_client(db_session, slug="blog", client=UiClient(DEV_ISSUER, DEV_UI_CLIENT_ID))
    return created


class FirstForm(html.parser.HTMLParser):
    """The first ``<form>`` of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
            self._inside = True
        elif tag == "input" and self._inside and "name" in values:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def form_of(page: str) -> FirstForm:
    form = FirstForm()
    form.feed(page)
    return form


def dev_login(
    client: FlaskClient,
    *,
    slug: str = "blog",
    subject: str = "mia",
    role: str = "moderator",
    next_path: str | None = None,
) -> TestResponse:
    """Walk the UI's login at the development issuer as a browser would; the callback's
    answer (303 to the queue, with the session cookie, when the login succeeded)."""
    query = f"?next={urllib.parse.quote(next_path)}" if next_path else ""
    start = client.get(f"/ui/{slug}/login{query}")
    assert start.status_code == 303, start.text
    authorize = urllib.parse.urlsplit(start.headers["Location"])
    page = client.get(authorize.path + "?" + authorize.query)
    assert page.status_code == 200, page.text
    form = form_of(page.text)
    fields = {
        **form.fields,
        "subject": subject,
        "name": subject.title(),
        "role": role,
        "site": slug,
    }
    signed_in = client.post(str(form.action), data=fields)
    assert signed_in.status_code == 303, signed_in.text
    back = urllib.parse.urlsplit(signed_in.headers["Location"])
    assert back.path == "/ui/callback"
    return client.get(back.path + "?" + back.query)


def csrf_of(page: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def script_headers(client: FlaskClient, slug: str = "blog") -> dict[str, str]:
    """Log in (as mia, a moderator of ``slug``); the headers the page's script sends."""
    dev_login(client, slug=slug)
    token = csrf_of(client.get(f"/ui/{slug}/queue").text)
    return {"Accept": "application/json", "X-CSRF-Token": token}
