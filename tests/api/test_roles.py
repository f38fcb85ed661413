"""Roles scoped per site: read from the configured claim, checked by the reusable
``authorize`` dependency (403 ``insufficient_scope``), and a role x endpoint matrix for
the endpoints that exist."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models import Comment, Site, Status
from service.api.context import authorize, credentials, services, transaction
from service.app import create_app
from service.auth.roles import Role, site_roles
from service.moderation.sites import create_site
from service.settings import Settings
from tests.api.conftest import TokenFactory
from tests.support.oidc import RESOURCE, OidcProvider

# --- reading roles from claims ---------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "claims", "expected"),
    [
        ("scope", {"scope": "comments commentguard:blog:moderator"}, {"moderator"}),
        ("scope", {"scope": ["commentguard:blog:operator"]}, {"operator"}),
        ("roles", {"roles": ["commentguard:blog:admin"]}, {"admin", "moderator", "operator"}),
        ("roles", {"roles": "commentguard:blog:moderator"}, {"moderator"}),
        ("groups", {"groups": ["staff", "commentguard:blog:operator"]}, {"operator"}),
        # Another site, another prefix, an unknown role, a malformed value, another claim:
        ("roles", {"roles": ["commentguard:other:admin"]}, set()),
        ("roles", {"roles": ["acme:blog:admin"]}, set()),
        ("roles", {"roles": ["commentguard:blog:owner"]}, set()),
        ("roles", {"roles": ["commentguard:blog:admin:extra", "commentguard:blog"]}, set()),
        ("roles", {"groups": ["commentguard:blog:admin"]}, set()),
        ("scope", {"scope": 42}, set()),
    ],
)
def test_roles_come_from_the_configured_claim_for_this_site_only(
    claim: str, claims: dict[str, Any], expected: set[str]
) -> None:
    assert site_roles(claims, claim=claim, site_slug="blog", prefix="commentguard") == expected


# --- through the API ---------------------------------------------------------------------


def _guarded(app: Flask) -> None:
    """A view needing the operator role, as the next issue's views will use ``authorize``."""

    def operator_only(slug: str) -> Response:
        token = credentials()
        with transaction() as session:
            site = services().sites.get(session, slug=slug)
            identity = authorize(session, site, token, role=Role.operator)
        return Response(identity.subject, status=200)

    app.add_url_rule("/test/operator/<slug>", view_func=operator_only)


@pytest.fixture
def app(api_settings: Settings, rolled_back_sessions: sessionmaker[Session]) -> Flask:
    app = create_app(api_settings, sessions=rolled_back_sessions)
    _guarded(app)
    return app


@pytest.fixture
def other_site(db_session: Session) -> Site:
    return create_site(
        db_session, slug="other", name="Another blog", url="https://other.example", audiences=[]
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client: FlaskClient, token: str, content: str) -> Any:
    return client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/t", "content": content},
        headers=bearer(token),
    )


#: Who calls, with which role claims (dev tokens carry them in ``roles``).
CALLERS: dict[str, tuple[str, list[str]]] = {
    "author": ("alice", []),
    "commenter": ("bob", []),
    "moderator": ("mod", ["commentguard:blog:moderator"]),
    "operator": ("op", ["commentguard:blog:operator"]),
    "admin": ("boss", ["commentguard:blog:admin"]),
    "moderator of another site": ("mod-b", ["commentguard:other:moderator"]),
}

#: The matrix: caller -> (POST /v1/comments, GET /v1/comments/{alice's}, operator view).
MATRIX: dict[str, tuple[int, int, int]] = {
    "author": (202, 200, 403),
    "commenter": (202, 404, 403),
    "moderator": (202, 200, 403),
    "operator": (202, 404, 200),
    "admin": (202, 200, 200),
    "moderator of another site": (202, 404, 403),
}


@pytest.mark.parametrize("caller", list(MATRIX))
def test_role_by_endpoint_matrix(
    client: FlaskClient, site: Site, other_site: Site, token: TokenFactory, caller: str
) -> None:
    posted = post(client, token("alice"), "Alice's comment, for the matrix.")
    assert posted.status_code == 202
    subject, roles = CALLERS[caller]
    caller_token = token(subject, roles=roles)

    want_post, want_get, want_guarded = MATRIX[caller]
    assert post(client, caller_token, f"A comment by the {caller}.").status_code == want_post
    assert client.get(posted.headers["Location"], headers=bearer(caller_token)).status_code == (
        want_get
    )
    guarded = client.get("/test/operator/blog", headers=bearer(caller_token))
    assert guarded.status_code == want_guarded
    if want_guarded == 403:
        assert guarded.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
        assert guarded.get_json()["detail"] == "this needs the operator role at site 'blog'"
    # Health needs no token whoever calls.
    assert client.get("/healthz").status_code == 200


def test_a_role_for_another_site_gives_nothing_there(
    client: FlaskClient, site: Site, other_site: Site, token: TokenFactory
) -> None:
    # The admin of "other" holds a dev token for "other": it is not even valid at "blog".
    admin_of_other = token("boss-b", site="other", roles=["commentguard:other:admin"])
    assert client.get("/test/operator/other", headers=bearer(admin_of_other)).status_code == 200
    refused = client.get("/test/operator/blog", headers=bearer(admin_of_other))
    assert refused.status_code == 401


def test_no_token_is_401_not_403(client: FlaskClient, site: Site) -> None:
    response = client.get("/test/operator/blog")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="commentguard"'


# --- roles in a real provider's scope ------------------------------------------------------


def test_a_moderator_scope_from_the_provider_reads_any_comment_of_its_site(
    api_settings: Settings,
    rolled_back_sessions: sessionmaker[Session],
    db_session: Session,
    oidc_provider: OidcProvider,
    token: TokenFactory,
) -> None:
    settings = api_settings.model_copy(update={"roles_claim": "scope"})
    client = create_app(settings, sessions=rolled_back_sessions).test_client()
    create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        issuers=[oidc_provider.issuer],
        audiences=[RESOURCE],
    )
    posted = post(client, token("alice"), "Read by a moderator of the provider.")
    assert posted.status_code == 202

    moderator = oidc_provider.client_credentials(scope="comments commentguard:blog:moderator")
    elsewhere = oidc_provider.client_credentials(scope="comments commentguard:other:moderator")
    assert client.get(posted.headers["Location"], headers=bearer(moderator)).status_code == 200
    assert client.get(posted.headers["Location"], headers=bearer(elsewhere)).status_code == 404


# --- the moderation write side (actions, audit, authors, rules) ------------------------------

#: caller -> (act on alice's comment, bulk action, audit, read author, trust author,
#: read rules, change rules). Not a moderator of the comment's site: 404 as for reading,
#: but 403 for its author, who may read it.
WRITE_MATRIX: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "author": (403, 403, 403, 403, 403, 403, 403),
    "commenter": (404, 403, 403, 403, 403, 403, 403),
    "moderator": (200, 200, 200, 200, 200, 200, 403),
    "operator": (404, 403, 403, 403, 403, 403, 403),
    "admin": (200, 200, 200, 200, 200, 200, 200),
    "moderator of another site": (404, 403, 403, 403, 403, 403, 403),
}


@pytest.mark.parametrize("caller", list(WRITE_MATRIX))
def test_role_by_moderation_write_endpoint_matrix(
    client: FlaskClient,
    site: Site,
    other_site: Site,
    db_session: Session,
    token: TokenFactory,
    caller: str,
) -> None:
    posted = post(client, token("alice"), "Alice's comment, for the write matrix.")
    assert posted.status_code == 202
    comment_id = posted.get_json()["id"]
    # As the worker would leave it: held, version 2.
    db_session.execute(
        update(Comment).where(Comment.id == comment_id).values(status=Status.held, version=2)
    )
    author_id = db_session.scalar(select(Comment.author_id).where(Comment.id == comment_id))
    subject, roles = CALLERS[caller]
    headers = bearer(token(subject, roles=roles))
    rules_etag = client.get(
        "/v1/sites/blog/rules", headers=bearer(token("boss", roles=CALLERS["admin"][1]))
    ).headers["ETag"]

    got = (
        client.post(
            f"/v1/comments/{comment_id}/actions",
            json={"action": "approve"},
            headers={**headers, "If-Match": '"v2"'},
        ).status_code,
        client.post(
            "/v1/sites/blog/actions", json={"action": "spam", "ids": [comment_id]}, headers=headers
        ).status_code,
        client.get("/v1/sites/blog/audit", headers=headers).status_code,
        client.get(f"/v1/sites/blog/authors/{author_id}", headers=headers).status_code,
        client.post(
            f"/v1/sites/blog/authors/{author_id}/trust", json={"trust": "trusted"}, headers=headers
        ).status_code,
        client.get("/v1/sites/blog/rules", headers=headers).status_code,
        client.patch(
            "/v1/sites/blog/rules",
            json={"max_links": 3},
            headers={**headers, "If-Match": rules_etag},
        ).status_code,
    )
    assert got == WRITE_MATRIX[caller]


# --- the moderation read side (queue, moderator detail, public thread view) ------------------

#: caller -> (queue, a moderator's detail present in GET /v1/comments/{alice's}, public
#: thread view without a token, the thread view with the caller's token).
READ_MATRIX: dict[str, tuple[int, bool, int, int]] = {
    "author": (403, False, 200, 200),
    "commenter": (403, False, 200, 200),
    "moderator": (200, True, 200, 200),
    "operator": (403, False, 200, 200),
    "admin": (200, True, 200, 200),
    "moderator of another site": (403, False, 200, 200),
}


@pytest.mark.parametrize("caller", list(READ_MATRIX))
def test_role_by_moderation_read_endpoint_matrix(
    client: FlaskClient, site: Site, other_site: Site, token: TokenFactory, caller: str
) -> None:
    posted = post(client, token("alice"), "Alice's comment, for the read matrix.")
    assert posted.status_code == 202
    subject, roles = CALLERS[caller]
    headers = bearer(token(subject, roles=roles))
    read = client.get(posted.headers["Location"], headers=headers)
    got = (
        client.get("/v1/sites/blog/queue", headers=headers).status_code,
        read.status_code == 200 and "moderation" in read.get_json(),
        client.get("/v1/sites/blog/threads/%2Ft/comments").status_code,
        client.get("/v1/sites/blog/threads/%2Ft/comments", headers=headers).status_code,
    )
    assert got == READ_MATRIX[caller]


# --- the operators' classifier endpoints --------------------------------------------------

#: caller -> (queue a retrain of blog's version, list blog's versions, read a blog job,
#: roll back blog's version, of which none is active: 409 once allowed).
CLASSIFIER_MATRIX: dict[str, tuple[int, int, int, int]] = {
    "author": (403, 403, 403, 403),
    "commenter": (403, 403, 403, 403),
    "moderator": (403, 403, 403, 403),
    "operator": (202, 200, 200, 409),
    "admin": (202, 200, 200, 409),
    "moderator of another site": (403, 403, 403, 403),
}


@pytest.mark.parametrize("caller", list(CLASSIFIER_MATRIX))
def test_role_by_classifier_endpoint_matrix(
    client: FlaskClient, site: Site, other_site: Site, token: TokenFactory, caller: str
) -> None:
    admin = bearer(token("boss", roles=CALLERS["admin"][1]))
    job = client.post("/v1/classifier/retrain", json={"site": "blog"}, headers=admin)
    assert job.status_code == 202
    subject, roles = CALLERS[caller]
    headers = bearer(token(subject, roles=roles))
    got = (
        client.post("/v1/classifier/retrain", json={"site": "blog"}, headers=headers).status_code,
        client.get("/v1/classifier/versions?site=blog", headers=headers).status_code,
        client.get(job.headers["Location"], headers=headers).status_code,
        client.post("/v1/classifier/rollback", json={"site": "blog"}, headers=headers).status_code,
    )
    assert got == CLASSIFIER_MATRIX[caller]
