"""The webhook endpoints: admins register, change, delete and rotate; moderators read;
every bad input is a problem (never a 500, never a half-written row)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from models import AuditEntry, Comment, Site, Status, Webhook, WebhookDelivery
from service.cli import main
from service.moderation.sites import create_site
from service.moderation.webhooks import MAX_WEBHOOKS_PER_SITE, allow_private_targets
from service.settings import Settings
from tests.api.conftest import TokenFactory
from tests.api.test_actions import make_comment
from tests.support.env import settings_env
from tests.support.webhooks import add_hook

PUBLIC = "https://1.1.1.1/hooks/commentguard"
BASE = "/v1/sites/blog/webhooks"


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.fixture
def admin(token: TokenFactory) -> str:
    return token("root", roles=["admin"])


@pytest.fixture
def moderator(token: TokenFactory) -> str:
    return token("mod", roles=["moderator"])


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["type"] == f"urn:commentguard:problem:{slug}"
    return body


def _create(client: FlaskClient, admin: str, **fields: Any) -> Any:
    return client.post(BASE, json={"url": PUBLIC, **fields}, headers=bearer(admin))


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_an_admin_registers_a_webhook_and_sees_its_secret_once(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    response = _create(client, admin, description="production blog")

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["url"] == PUBLIC
    assert body["events"] == ["comment.classified", "comment.moderated"]
    assert (body["enabled"], body["description"], body["version"]) == (True, "production blog", 1)
    assert response.headers["ETag"] == '"w1"' == body["etag"]
    assert response.headers["Location"] == f"{BASE}/{body['id']}" == body["links"]["self"]
    assert response.headers["Cache-Control"] == "private, no-store"
    assert db_session.get_one(Webhook, uuid.UUID(body["id"])).secret == secret

    again = client.get(f"{BASE}/{body['id']}", headers=bearer(admin))
    assert again.status_code == 200
    assert "secret" not in again.get_json()
    assert secret not in again.get_data(as_text=True)
    listed = client.get(BASE, headers=bearer(admin)).get_json()
    assert listed["site"] == "blog"
    assert listed["allow_private_targets"] is False
    assert [h["id"] for h in listed["webhooks"]] == [body["id"]]
    assert secret not in json.dumps(listed)


def test_moderators_read_and_only_admins_change(
    client: FlaskClient, site: Site, admin: str, moderator: str, token: TokenFactory
) -> None:
    hook = _create(client, admin).get_json()
    one = f"{BASE}/{hook['id']}"
    assert client.get(BASE, headers=bearer(moderator)).status_code == 200
    assert client.get(one, headers=bearer(moderator)).status_code == 200
    assert client.get(f"{one}/deliveries", headers=bearer(moderator)).status_code == 200

    commenter = token("alice")
    operator = token("op", roles=["operator"])
    elsewhere = token("admin-b", roles=["commentguard:other:admin"])
    for who in (moderator, commenter, operator, elsewhere):
        for method, url, body in (
            ("post", BASE, {"url": PUBLIC + "/2"}),
            ("patch", one, {"enabled": False}),
            ("delete", one, None),
            ("post", f"{one}/rotate-secret", {}),
            ("post", f"{one}/deliveries/1/redeliver", None),
        ):
            response = getattr(client, method)(
                url, json=body, headers=bearer(who, **{"If-Match": '"w1"'})
            )
            _problem(response, 403, "forbidden")
    for who in (commenter, operator):
        _problem(client.get(BASE, headers=bearer(who)), 403, "forbidden")
    _problem(client.get(BASE), 401, "unauthorized")
    _problem(client.get(one, headers=bearer("not-a-token")), 401, "unauthorized")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://1.1.1.1/hook", "must be an https URL"),
        ("https://user:secret@1.1.1.1/hook", "must not hold credentials"),
        ("https://1.1.1.1/hook#frag", "must not have a fragment"),
        ("https://[1.1.1.1/hook", "not a valid URL"),
        ("https://127.0.0.1/hook", "127.0.0.1 is loopback"),
        ("https://localhost/hook", "localhost resolves to 127.0.0.1, which is loopback"),
        ("https://10.0.0.8/hook", "10.0.0.8 is private"),
        ("https://192.168.0.1:8443/hook", "is private"),
        ("https://169.254.169.254/latest/meta-data", "is link-local"),
        ("https://100.64.1.1/", "not globally routable"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.251/", "multicast"),
        ("https://[::1]/hook", "::1 is loopback"),
        ("https://[fd00::1]/hook", "is private"),
        ("https://[fe80::1]/hook", "is link-local"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        ("https://[::ffff:a00:1]/hook", "private (IPv4 10.0.0.1 inside IPv6)"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
        ("ftp://1.1.1.1/", "must be an https URL"),
        ("https://1.1.1.1/" + "a" * 2100, "at most 2048"),
        ("", "at least 1 character"),
        ("https://1.1.1.1/\x00", "control characters"),
    ],
)
def test_a_url_that_may_not_be_a_target_is_refused(
    client: FlaskClient, site: Site, admin: str, db_session: Session, url: str, message: str
) -> None:
    body = _problem(_create(client, admin, url=url), 422, "invalid-input")
    [error] = body["errors"]
    assert error["field"] == "url"
    assert message in error["message"]
    assert _count(db_session, Webhook) == 0


def test_private_targets_and_http_need_the_sites_permission(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    url = "http://localhost:8080/hook"
    _problem(_create(client, admin, url=url), 422, "invalid-input")
    allow_private_targets(db_session, site_id=site.id, allow=True)

    response = _create(client, admin, url=url)

    assert response.status_code == 201, response.get_json()
    assert client.get(BASE, headers=bearer(admin)).get_json()["allow_private_targets"] is True
    # Still no credentials, even then.
    _problem(_create(client, admin, url="http://u:p@localhost/x"), 422, "invalid-input")


@pytest.mark.parametrize(
    ("body", "status", "slug", "field"),
    [
        ({"url": PUBLIC, "events": []}, 422, "invalid-input", "events"),
        ({"url": PUBLIC, "events": ["comment.deleted"]}, 422, "invalid-input", "events.0"),
        ({"url": PUBLIC, "enabled": "yes"}, 422, "invalid-input", "enabled"),
        ({"url": PUBLIC, "description": "x" * 201}, 422, "invalid-input", "description"),
        ({"url": PUBLIC, "description": "a\x00b"}, 422, "invalid-input", "description"),
        ({"url": PUBLIC, "secret": "mine"}, 422, "invalid-input", "secret"),
        ({"events": ["comment.classified"]}, 422, "invalid-input", "url"),
        ({"url": 7}, 422, "invalid-input", "url"),
    ],
)
def test_bad_fields_are_problems(
    client: FlaskClient,
    site: Site,
    admin: str,
    db_session: Session,
    body: dict[str, Any],
    status: int,
    slug: str,
    field: str,
) -> None:
    problem = _problem(client.post(BASE, json=body, headers=bearer(admin)), status, slug)
    assert field in [e["field"] for e in problem["errors"]]
    assert _count(db_session, Webhook) == 0


def test_bad_bodies_are_problems(client: FlaskClient, site: Site, admin: str) -> None:
    headers = bearer(admin)
    _problem(client.post(BASE, data="url=x", headers=headers), 415, "unsupported-media-type")
    _problem(
        client.post(BASE, data="{", headers={**headers, "Content-Type": "application/json"}),
        400,
        "malformed-request",
    )
    _problem(client.post(BASE, json=[PUBLIC], headers=headers), 400, "malformed-request")
    _problem(
        client.post(
            BASE, data=b"\xff\xfe", headers={**headers, "Content-Type": "application/json"}
        ),
        400,
        "malformed-request",
    )
    _problem(
        client.post(BASE, json={"url": "x" * 300_000}, headers=headers), 413, "payload-too-large"
    )
    _problem(
        client.post("/v1/sites/nope/webhooks", json={"url": PUBLIC}, headers=headers),
        404,
        "not-found",
    )
    _problem(client.put(BASE, json={}, headers=headers), 405, "method-not-allowed")


def test_one_url_once_per_site_and_a_bounded_number_of_hooks(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    assert _create(client, admin).status_code == 201
    _problem(_create(client, admin), 409, "conflict")
    for n in range(MAX_WEBHOOKS_PER_SITE - 1):
        assert _create(client, admin, url=f"{PUBLIC}/{n}").status_code == 201
    body = _problem(_create(client, admin, url=f"{PUBLIC}/last"), 409, "conflict")
    assert "the most allowed" in body["detail"]
    assert _count(db_session, Webhook) == MAX_WEBHOOKS_PER_SITE


def test_a_change_needs_the_current_etag(client: FlaskClient, site: Site, admin: str) -> None:
    hook = _create(client, admin).get_json()
    one = f"{BASE}/{hook['id']}"
    _problem(
        client.patch(one, json={"enabled": False}, headers=bearer(admin)),
        428,
        "precondition-required",
    )

    changed = client.patch(
        one,
        json={"enabled": False, "events": ["comment.moderated"], "description": "paused"},
        headers=bearer(admin, **{"If-Match": '"w1"'}),
    )

    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["enabled"], body["events"], body["description"]) == (
        False,
        ["comment.moderated"],
        "paused",
    )
    assert changed.headers["ETag"] == '"w2"'
    assert "secret" not in body
    stale = client.patch(one, json={"enabled": True}, headers=bearer(admin, **{"If-Match": '"w1"'}))
    assert _problem(stale, 412, "precondition-failed")
    assert stale.headers["ETag"] == '"w2"'
    cleared = client.patch(
        one, json={"description": None}, headers=bearer(admin, **{"If-Match": "*"})
    )
    assert cleared.get_json()["description"] is None
    assert cleared.headers["ETag"] == '"w3"'
    # Nothing changed: the version stays.
    same = client.patch(one, json={"enabled": False}, headers=bearer(admin, **{"If-Match": '"w3"'}))
    assert same.headers["ETag"] == '"w3"'


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": None}, "body"),
        ({"events": None}, "body"),
        ({"enabled": None}, "body"),
        ({"events": []}, "events"),
        ({"url": "https://127.0.0.1/"}, "url"),
        ({"url": "http://1.1.1.1/"}, "url"),
        ({"secret": "x"}, "secret"),
    ],
)
def test_a_bad_change_is_a_problem_and_changes_nothing(
    client: FlaskClient,
    site: Site,
    admin: str,
    db_session: Session,
    body: dict[str, Any],
    field: str,
) -> None:
    hook = _create(client, admin).get_json()
    response = client.patch(
        f"{BASE}/{hook['id']}", json=body, headers=bearer(admin, **{"If-Match": '"w1"'})
    )
    problem = _problem(response, 422, "invalid-input")
    assert field in [e["field"] for e in problem["errors"]]
    db_session.expire_all()
    stored = db_session.get_one(Webhook, uuid.UUID(hook["id"]))
    assert (stored.url, stored.version) == (PUBLIC, 1)


def test_a_change_to_a_url_taken_by_another_hook_is_a_conflict(
    client: FlaskClient, site: Site, admin: str
) -> None:
    _create(client, admin)
    other = _create(client, admin, url=PUBLIC + "/other").get_json()
    response = client.patch(
        f"{BASE}/{other['id']}", json={"url": PUBLIC}, headers=bearer(admin, **{"If-Match": "*"})
    )
    _problem(response, 409, "conflict")


def test_delete_removes_the_hook_and_its_log(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    hook = _create(client, admin).get_json()
    one = f"{BASE}/{hook['id']}"
    _add_deliveries(db_session, uuid.UUID(hook["id"]), 2)
    _problem(
        client.delete(one, headers=bearer(admin, **{"If-Match": '"w9"'})),
        412,
        "precondition-failed",
    )

    assert client.delete(one, headers=bearer(admin)).status_code == 204

    _problem(client.get(one, headers=bearer(admin)), 404, "not-found")
    _problem(client.delete(one, headers=bearer(admin)), 404, "not-found")
    assert _count(db_session, WebhookDelivery) == 0


def test_unknown_and_foreign_hooks_are_not_found(
    client: FlaskClient, site: Site, admin: str, db_session: Session, token: TokenFactory
) -> None:
    create_site(db_session, slug="other", name="Other", url="https://other.example")
    theirs = client.post(
        "/v1/sites/other/webhooks",
        json={"url": PUBLIC},
        headers=bearer(token("root-b", site="other", roles=["admin"])),
    ).get_json()
    for hook_id in (theirs["id"], str(uuid.uuid4()), "not-a-uuid", "%00"):
        _problem(client.get(f"{BASE}/{hook_id}", headers=bearer(admin)), 404, "not-found")
        _problem(
            client.get(f"{BASE}/{hook_id}/deliveries", headers=bearer(admin)), 404, "not-found"
        )
        _problem(
            client.post(f"{BASE}/{hook_id}/rotate-secret", headers=bearer(admin)), 404, "not-found"
        )


def test_rotation_shows_a_new_secret_once_and_may_keep_the_old_one_a_while(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    hook = _create(client, admin).get_json()
    rotate = f"{BASE}/{hook['id']}/rotate-secret"

    plain = client.post(rotate, headers=bearer(admin))
    assert plain.status_code == 200, plain.get_json()
    first = plain.get_json()
    assert first["secret"] != hook["secret"]
    assert first["secret"].startswith("whsec_")
    assert first["previous_secret_expires_at"] is None
    assert plain.headers["ETag"] == '"w2"'

    kept = client.post(
        rotate, json={"keep_previous_seconds": 3600}, headers=bearer(admin)
    ).get_json()
    assert kept["secret"] not in (first["secret"], hook["secret"])
    assert kept["previous_secret_expires_at"] is not None
    stored = db_session.get_one(Webhook, uuid.UUID(hook["id"]))
    assert (stored.secret, stored.previous_secret) == (kept["secret"], first["secret"])
    assert (
        client.get(f"{BASE}/{hook['id']}", headers=bearer(admin)).get_json()[
            "previous_secret_expires_at"
        ]
        == kept["previous_secret_expires_at"]
    )

    for body in ({"keep_previous_seconds": -1}, {"keep_previous_seconds": 604801}, {"keep": 1}):
        _problem(client.post(rotate, json=body, headers=bearer(admin)), 422, "invalid-input")
    assert db_session.get_one(Webhook, uuid.UUID(hook["id"])).secret == kept["secret"]


def test_changes_are_audited_without_secrets(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    hook = _create(client, admin).get_json()
    one = f"{BASE}/{hook['id']}"
    client.patch(one, json={"enabled": False}, headers=bearer(admin, **{"If-Match": "*"}))
    rotated = client.post(f"{one}/rotate-secret", headers=bearer(admin)).get_json()
    client.delete(one, headers=bearer(admin))

    trail = client.get("/v1/sites/blog/audit", headers=bearer(admin)).get_json()["entries"]
    actions = [e["action"] for e in trail if e["target_type"] == "webhook"]
    assert actions == ["webhook_delete", "webhook_rotate", "webhook_update", "webhook_create"]
    assert all(e["target_id"] == hook["id"] and e["actor"]["subject"] == "root" for e in trail)
    update = next(e for e in trail if e["action"] == "webhook_update")
    assert update["details"]["before"]["enabled"] is True
    assert update["details"]["after"]["enabled"] is False
    everything = json.dumps(trail)
    assert hook["secret"] not in everything
    assert rotated["secret"] not in everything


def _add_deliveries(session: Session, webhook_id: uuid.UUID, count: int) -> list[int]:
    rows = [
        WebhookDelivery(
            webhook_id=webhook_id,
            event_id=uuid.uuid4(),
            event_type="comment.classified",
            body=json.dumps({"id": str(n), "type": "comment.classified", "data": {}}),
        )
        for n in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def test_the_delivery_log_pages_newest_first(
    client: FlaskClient, site: Site, admin: str, moderator: str, db_session: Session
) -> None:
    hook = _create(client, admin).get_json()
    ids = _add_deliveries(db_session, uuid.UUID(hook["id"]), 5)
    log = f"{BASE}/{hook['id']}/deliveries"

    first = client.get(f"{log}?limit=2", headers=bearer(moderator))

    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert [d["id"] for d in body["deliveries"]] == ids[::-1][:2]
    item = body["deliveries"][0]
    assert item["event"] == "comment.classified"
    assert (item["state"], item["attempts"], item["last_status_code"]) == ("pending", 0, None)
    assert item["payload"]["type"] == "comment.classified"
    assert item["links"]["redeliver"] == f"{log}/{item['id']}/redeliver"
    for key in ("event_id", "last_error", "next_attempt_at", "delivered_at", "created_at"):
        assert key in item
    second = client.get(body["links"]["next"], headers=bearer(moderator)).get_json()
    assert [d["id"] for d in second["deliveries"]] == ids[::-1][2:4]
    assert (
        client.get(f"{log}?state=delivered", headers=bearer(moderator)).get_json()["deliveries"]
        == []
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("state=lost", "state"),
        ("cursor=bm9wZQ", "cursor"),
        ("cursor=%00", "cursor"),
    ],
)
def test_a_bad_log_query_is_a_problem(
    client: FlaskClient, site: Site, admin: str, query: str, field: str
) -> None:
    hook = _create(client, admin).get_json()
    response = client.get(f"{BASE}/{hook['id']}/deliveries?{query}", headers=bearer(admin))
    assert field in [e["field"] for e in _problem(response, 422, "invalid-input")["errors"]]


def test_blank_log_parameters_count_as_absent(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    hook = _create(client, admin).get_json()
    ids = _add_deliveries(db_session, uuid.UUID(hook["id"]), 3)
    log = f"{BASE}/{hook['id']}/deliveries"

    response = client.get(f"{log}?limit=&state=&cursor=", headers=bearer(admin))

    assert response.status_code == 200, response.get_json()
    assert [d["id"] for d in response.get_json()["deliveries"]] == ids[::-1]
    assert response.headers["Cache-Control"] == "private, no-store"


def test_redeliver_sends_the_same_event_again(
    client: FlaskClient, site: Site, admin: str, db_session: Session
) -> None:
    hook = _create(client, admin).get_json()
    [original] = _add_deliveries(db_session, uuid.UUID(hook["id"]), 1)
    base = f"{BASE}/{hook['id']}/deliveries"

    response = client.post(f"{base}/{original}/redeliver", headers=bearer(admin))

    assert response.status_code == 202, response.get_json()
    again = response.get_json()
    first = db_session.get_one(WebhookDelivery, original)
    assert again["redelivery_of"] == original
    assert again["event_id"] == str(first.event_id)
    assert (again["state"], again["attempts"]) == ("pending", 0)
    for bad in ("999999999", "0", "-1", "x", "99999999999999999999"):
        _problem(client.post(f"{base}/{bad}/redeliver", headers=bearer(admin)), 404, "not-found")
    client.patch(
        f"{BASE}/{hook['id']}", json={"enabled": False}, headers=bearer(admin, **{"If-Match": "*"})
    )
    _problem(client.post(f"{base}/{original}/redeliver", headers=bearer(admin)), 409, "conflict")


def test_an_action_whose_delivery_cannot_be_written_changes_nothing(
    client: FlaskClient, site: Site, admin: str, moderator: str, db_session: Session
) -> None:
    _create(client, admin)
    comment = make_comment(db_session, site)
    db_session.execute(
        text(
            "CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'no deliveries today'; END $$"
        )
    )
    db_session.execute(
        text(
            "CREATE TRIGGER refuse_delivery BEFORE INSERT ON webhook_deliveries"
            " FOR EACH ROW EXECUTE FUNCTION refuse_delivery()"
        )
    )

    response = client.post(
        f"/v1/comments/{comment.id}/actions",
        json={"action": "spam"},
        headers=bearer(moderator, **{"If-Match": '"v1"'}),
    )

    _problem(response, 500, "internal")
    db_session.expire_all()
    assert db_session.get_one(Comment, comment.id).status is Status.held
    assert (
        db_session.scalars(select(AuditEntry).where(AuditEntry.comment_id == comment.id)).all()
        == []
    )


def test_an_action_writes_its_deliveries_with_it(
    client: FlaskClient, site: Site, admin: str, moderator: str, db_session: Session
) -> None:
    hook = _create(client, admin, events=["comment.moderated"]).get_json()
    comments = [make_comment(db_session, site, subject=f"s{n}") for n in range(3)]

    single = client.post(
        f"/v1/comments/{comments[0].id}/actions",
        json={"action": "approve"},
        headers=bearer(moderator, **{"If-Match": '"v1"'}),
    )
    bulk = client.post(
        "/v1/sites/blog/actions",
        json={"action": "spam", "ids": [str(c.id) for c in comments[1:]]},
        headers=bearer(moderator),
    )

    assert single.status_code == 200
    assert bulk.status_code == 200
    log = client.get(f"{BASE}/{hook['id']}/deliveries", headers=bearer(moderator)).get_json()
    statuses = {
        d["payload"]["data"]["comment"]["id"]: d["payload"]["data"]["comment"]["status"]
        for d in log["deliveries"]
    }
    assert statuses == {
        str(comments[0].id): "approved",
        str(comments[1].id): "spam",
        str(comments[2].id): "spam",
    }


def test_an_operator_sets_private_targets_with_the_cli(
    settings: Settings, committed: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    env = {**os.environ, **settings_env(settings)}

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env)

    created = run("site", "create", "--slug", "hooked", "--name", "H", "--url", "https://h.example")
    assert created.exit_code == 0, created.output
    assert run("site", "webhooks", "hooked").output == "site hooked: private targets refused\n"

    allowed = run("site", "webhooks", "hooked", "--allow-private-targets")

    assert allowed.exit_code == 0, allowed.output
    assert allowed.output == "site hooked: private targets allowed\n"
    with committed.begin() as session:
        site = session.scalars(select(Site).where(Site.slug == "hooked")).one()
        assert site.webhooks_allow_private is True
        hook = add_hook(session, site, "http://127.0.0.1:9/in", allow_private=False)
    listed = run("site", "webhooks", "hooked", "--no-allow-private-targets").output
    assert listed.splitlines() == [
        "site hooked: private targets refused",
        f"{hook.webhook.id}  enabled   comment.classified,comment.moderated  http://127.0.0.1:9/in",
    ]
    assert run("site", "webhooks", "nope").exit_code != 0
