"""Authors' trust (trust, ban until, unban) and site rules (ETag, If-Match, regex
validation) through the API, each change audited."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import AuditEntry, Author, Site, Trust
from service.cli import main
from service.moderation.sites import create_site
from service.settings import Settings
from tests.api.conftest import TokenFactory
from tests.api.test_actions import MODERATOR, bearer, make_comment
from tests.support.env import settings_env

ADMIN = ["commentguard:blog:admin"]


def trust(client: FlaskClient, token: str, author_id: int, **body: Any) -> Any:
    return client.post(
        f"/v1/sites/blog/authors/{author_id}/trust", json=body, headers=bearer(token)
    )


def test_ban_until_then_unban_then_trust_each_audited(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    author_id = make_comment(db_session, site).author_id
    mod = token("mod", roles=MODERATOR)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(microsecond=0)

    read = client.get(f"/v1/sites/blog/authors/{author_id}", headers=bearer(mod))
    assert read.status_code == 200
    assert read.get_json()["trust"] == "normal"
    assert read.get_json()["email"] is None

    banned = trust(client, mod, author_id, trust="banned", until=until.isoformat(), note="spam run")
    assert banned.status_code == 200, banned.get_json()
    assert banned.get_json()["trust"] == banned.get_json()["effective_trust"] == "banned"
    assert dt.datetime.fromisoformat(banned.get_json()["banned_until"]) == until
    assert trust(client, mod, author_id, trust="normal").get_json()["trust"] == "normal"
    assert trust(client, mod, author_id, trust="trusted").get_json()["trust"] == "trusted"

    entries = db_session.scalars(
        select(AuditEntry).where(AuditEntry.target_type == "author").order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.from_state, e.to_state) for e in entries] == [
        ("ban", "normal", "banned"),
        ("unban", "banned", "normal"),
        ("trust", "normal", "trusted"),
    ]
    assert entries[0].note == "spam run"
    assert entries[0].details["until"] == until.isoformat()
    assert entries[0].target_id == str(author_id)


def test_an_expired_ban_reads_as_normal(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    author = db_session.get_one(Author, make_comment(db_session, site).author_id)
    author.trust = Trust.banned
    author.banned_until = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    db_session.flush()
    body = client.get(
        f"/v1/sites/blog/authors/{author.id}", headers=bearer(token("mod", roles=MODERATOR))
    ).get_json()
    assert (body["trust"], body["effective_trust"]) == ("banned", "normal")


@pytest.mark.parametrize(
    "body",
    [
        {"trust": "royal"},
        {"trust": "trusted", "until": "2099-01-01T00:00:00Z"},
        {"trust": "banned", "until": "2001-01-01T00:00:00Z"},
        {"trust": "banned", "until": "2099-01-01T00:00:00"},
        {"trust": "banned", "until": "soon"},
        {"trust": "banned", "extra": True},
    ],
)
def test_an_invalid_trust_change_is_422(
    client: FlaskClient,
    site: Site,
    db_session: Session,
    token: TokenFactory,
    body: dict[str, Any],
) -> None:
    author_id = make_comment(db_session, site).author_id
    response = trust(client, token("mod", roles=MODERATOR), author_id, **body)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_authors_are_for_moderators_of_their_own_site(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    other = create_site(db_session, slug="other", name="Other", url="https://other.example")
    mine = make_comment(db_session, site).author_id
    theirs = make_comment(db_session, other, subject="zed").author_id
    mod = token("mod", roles=MODERATOR)
    assert client.get(f"/v1/sites/blog/authors/{theirs}", headers=bearer(mod)).status_code == 404
    assert client.get("/v1/sites/blog/authors/abc", headers=bearer(mod)).status_code == 404
    assert trust(client, mod, theirs, trust="banned").status_code == 404
    alice = token("alice")
    assert client.get(f"/v1/sites/blog/authors/{mine}", headers=bearer(alice)).status_code == 403
    assert trust(client, alice, mine, trust="trusted").status_code == 403


# --- rules ---------------------------------------------------------------------------------


def rules_call(
    client: FlaskClient, method: str, token: str, body: Any = None, etag: str | None = None
) -> Any:
    headers = bearer(token) if etag is None else bearer(token, **{"If-Match": etag})
    return client.open("/v1/sites/blog/rules", method=method, json=body, headers=headers)


def test_rules_are_read_with_an_etag_and_changed_under_if_match(
    client: FlaskClient, site: Site, db_session: Session, token: TokenFactory
) -> None:
    admin = token("boss", roles=ADMIN)
    read = rules_call(client, "GET", token("mod", roles=MODERATOR))
    assert read.status_code == 200
    assert read.get_json()["flood_limit_per_minute"] == 3
    assert read.get_json()["approve_known_authors"] is False
    etag = read.headers["ETag"]

    change = {
        "moderation_words": ["casino"],
        "moderation_patterns": [r"bit\.ly/\w+"],
        "approve_known_authors": True,
        "note": "a wave of short links",
    }
    patched = rules_call(client, "PATCH", admin, change, etag)
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["moderation_patterns"] == [r"bit\.ly/\w+"]
    assert patched.get_json()["flood_limit_per_minute"] == 3  # kept
    assert patched.headers["ETag"] != etag

    stale = rules_call(client, "PATCH", admin, {"max_links": 5}, etag)
    assert stale.status_code == 412
    assert stale.headers["ETag"] == patched.headers["ETag"]
    assert rules_call(client, "PATCH", admin, {"max_links": 5}).status_code == 428

    replaced = rules_call(client, "PUT", admin, {"max_links": 5}, patched.headers["ETag"])
    assert replaced.status_code == 200
    assert replaced.get_json()["moderation_patterns"] == []
    assert replaced.get_json()["flood_limit_per_minute"] == 10  # the default again

    entries = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "rules").order_by(AuditEntry.id)
    ).all()
    assert len(entries) == 2
    assert entries[0].note == "a wave of short links"
    assert entries[0].details["before"]["moderation_patterns"] == []
    assert entries[0].details["after"]["moderation_patterns"] == [r"bit\.ly/\w+"]
    assert (entries[0].actor_subject, entries[0].target_id) == ("boss", "blog")
    db_session.refresh(site)
    assert site.policy["max_links"] == 5


def test_rules_if_match_follows_rfc_9110(
    client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    admin = token("boss", roles=ADMIN)
    etag = rules_call(client, "GET", admin).headers["ETag"]
    for nothing in (f"W/{etag}", '"r0"', f'"r0" {etag}'):
        refused = rules_call(client, "PATCH", admin, {"max_links": 4}, nothing)
        assert refused.status_code == 412, nothing
        assert refused.headers["ETag"] == etag
    listed = rules_call(client, "PATCH", admin, {"max_links": 4}, f'W/"r0", "r1", {etag}')
    assert listed.status_code == 200
    assert listed.get_json()["max_links"] == 4
    star = rules_call(client, "PATCH", admin, {"max_links": 6}, "*")
    assert star.status_code == 200
    assert star.get_json()["max_links"] == 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"blocked_words": ["ok", "nul\x00"]}, "blocked_words"),
        ({"moderation_words": ["lone \ud800"]}, "moderation_words"),
        ({"moderation_patterns": ["a\x00b"]}, "moderation_patterns.0"),
        ({"note": "nul \x00"}, "note"),
        ({"note": "x" * 2001}, "note"),
        ({"note": 5}, "note"),
        ({"moderation_patterns": ["ok", r"(a+)+$"]}, "moderation_patterns.1"),
        ({"moderation_patterns": [r"(\w+\s?)*$"]}, "moderation_patterns.0"),
        ({"moderation_patterns": ["(unclosed"]}, "moderation_patterns.0"),
        ({"moderation_patterns": ["x" * 201]}, "moderation_patterns.0"),
        ({"moderation_patterns": ["x"] * 101}, "moderation_patterns"),
        ({"max_links": -1}, "max_links"),
        ({"hold_threshold": 0.9, "spam_threshold": 0.5}, "rules"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_invalid_rules_are_422_naming_the_entry(
    client: FlaskClient, site: Site, token: TokenFactory, change: dict[str, Any], field: str
) -> None:
    admin = token("boss", roles=ADMIN)
    etag = rules_call(client, "GET", admin).headers["ETag"]
    response = rules_call(client, "PATCH", admin, change, etag)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.get_json()["errors"]]


def test_only_admins_change_rules_and_only_moderators_read_them(
    client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    mod = token("mod", roles=MODERATOR)
    etag = rules_call(client, "GET", mod).headers["ETag"]
    assert rules_call(client, "PATCH", mod, {"max_links": 1}, etag).status_code == 403
    assert rules_call(client, "PUT", mod, {"max_links": 1}, etag).status_code == 403
    assert rules_call(client, "GET", token("bob")).status_code == 403
    operator = token("op", roles=["commentguard:blog:operator"])
    assert rules_call(client, "GET", operator).status_code == 403


def test_the_cli_changes_the_same_rules_validated_and_audited(
    settings: Settings, committed: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    env = {**os.environ, **settings_env(settings)}

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env)

    created = run("site", "create", "--slug", "ruled", "--name", "R", "--url", "https://r.example")
    assert created.exit_code == 0, created.output
    changed = run(
        "site", "policy", "ruled", "--moderation-pattern", r"bit\.ly/\w+",
        "--approve-known-authors", "--note", "from the shell",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output)["approve_known_authors"] is True
    refused = run("site", "policy", "ruled", "--moderation-pattern", "(a+)+")
    assert refused.exit_code == 1
    assert "moderation_patterns.0" in refused.output
    assert "nests a quantifier" in refused.output
    shown = run("site", "policy", "ruled")
    assert json.loads(shown.output)["moderation_patterns"] == [r"bit\.ly/\w+"]
    with committed() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "rules")).all()
    assert (entry.actor_issuer, entry.note, entry.target_id) == ("cli", "from the shell", "ruled")
    assert entry.details["after"]["moderation_patterns"] == [r"bit\.ly/\w+"]
