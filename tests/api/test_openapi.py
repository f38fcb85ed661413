"""The OpenAPI document: generated from the views' declarations, valid OpenAPI 3.1, served
at ``/openapi.json``, covering every route, and unable to drift from what views validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Blueprint, Flask, Response
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from service.api.context import json_body
from service.api.openapi import OPENAPI_JSON, build_document, undeclared_rules
from service.api.spec import SITE, Access, Reply, body_of, operation
from service.app import create_app
from service.cli import main
from service.settings import Settings


def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    loaded: dict[str, Any] = json.loads(response.data)
    return loaded


def test_the_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    doc = document(client)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


#: Routes that are not part of the HTTP API, and why. Nothing else may go undeclared.
NOT_THE_API = {
    # The moderators' web UI: HTML pages and forms on a cookie session with CSRF tokens,
    # for browsers (docs/moderation-ui.md), not for API clients; tested in a real browser instead.
    "/ui",
    # The development issuer's login page (only with COMMENTGUARD_DEV_ISSUER, never in
    # production): an OAuth authorization endpoint for the UI's browser login.
    "/dev-issuer/",
    # Akismet's REST API (form bodies, text answers, Akismet's own headers and errors),
    # served for existing Akismet clients as Akismet documents it (docs/akismet.md).
    "/1.1/",
    "/1.2/",
}


def test_every_route_is_documented(app: Flask) -> None:
    # A route added without @operation fails here until it is declared (docs/openapi.md).
    undeclared = [
        rule
        for rule in undeclared_rules(app)
        if not rule.split("] ", 1)[1].startswith(tuple(NOT_THE_API))
    ]
    assert undeclared == []
    assert undeclared_rules(app, "/v1") == []
    doc = build_document(app)
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith(tuple(NOT_THE_API)):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        path = path.replace("{thread_key:", "{")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {rule.rule} is not documented"


def test_it_is_served_with_its_media_type_an_etag_and_the_same_bytes_every_time(
    client: FlaskClient, api_settings: Settings, rolled_back_sessions: sessionmaker[Session]
) -> None:
    first = client.get("/openapi.json")
    assert first.status_code == 200
    assert first.mimetype == OPENAPI_JSON
    assert first.headers["Content-Type"] == f"{OPENAPI_JSON};version=3.1"
    assert first.headers["ETag"]
    assert client.get("/openapi.json").data == first.data
    # Another app of the same code serves the same bytes: nothing depends on the process.
    other = create_app(api_settings, sessions=rolled_back_sessions)
    with other.test_client() as second_client:
        assert second_client.get("/openapi.json").data == first.data
    unchanged = client.get("/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304
    assert unchanged.data == b""


def test_schemas_are_pydantic_models_under_components(client: FlaskClient) -> None:
    doc = document(client)
    post = doc["paths"]["/v1/comments"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CommentIn"}
    comment_in = doc["components"]["schemas"]["CommentIn"]
    assert comment_in["additionalProperties"] is False
    assert set(comment_in["required"]) == {"site", "thread", "content"}
    accepted = post["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"]["$ref"].endswith("/CommentOut")
    assert accepted["headers"]["Location"]["required"] is True
    assert "Idempotent-Replayed" in accepted["headers"]
    assert [p["name"] for p in post["parameters"]] == ["Idempotency-Key"]
    # Every ref points at a schema that exists.
    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in doc["components"]["schemas"], name


def test_errors_are_problem_json_with_their_headers(client: FlaskClient) -> None:
    doc = document(client)
    act = doc["paths"]["/v1/comments/{comment_id}/actions"]["post"]
    statuses = set(act["responses"])
    assert {"200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "428"} <= (
        statuses
    )
    for status in statuses - {"200"}:
        content = act["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert act["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert act["responses"]["403"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "ETag" in act["responses"]["412"]["headers"]
    assert [p["name"] for p in act["parameters"]] == ["comment_id", "If-Match"]
    assert act["parameters"][1]["required"] is True
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    post = doc["paths"]["/v1/comments"]["post"]
    assert post["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    assert post["responses"]["503"]["headers"]["Retry-After"]["required"] is True


def test_security_schemes_roles_and_public_endpoints(client: FlaskClient) -> None:
    doc = document(client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-API-Key"}
    paths = doc["paths"]
    assert paths["/v1/comments"]["post"]["security"] == [{"bearerAuth": []}, {"apiKey": []}]
    assert paths["/v1/sites/{slug}/queue"]["get"]["security"] == [{"bearerAuth": ["moderator"]}]
    assert paths["/v1/sites/{slug}/rules"]["put"]["security"] == [{"bearerAuth": ["admin"]}]
    assert paths["/v1/classifier/retrain"]["post"]["security"] == [{"bearerAuth": ["operator"]}]
    for public in ("/v1/sites/{slug}/threads/{thread}/comments", "/healthz", "/readyz"):
        assert paths[public]["get"]["security"] == []
        assert "401" not in paths[public]["get"]["responses"]
    thread = paths["/v1/sites/{slug}/threads/{thread}/comments"]["get"]
    assert thread["responses"]["304"]["headers"]["ETag"]["required"] is True
    assert "If-None-Match" in [p["name"] for p in thread["parameters"]]


def test_query_models_become_query_parameters(client: FlaskClient) -> None:
    doc = document(client)
    queue = doc["paths"]["/v1/sites/{slug}/queue"]["get"]
    params = {p["name"]: p for p in queue["parameters"]}
    assert set(params) == {"slug", "status", "sort", "q", "author", "limit", "cursor", "thread"}
    assert params["limit"]["schema"] == {
        "default": 50,
        "maximum": 200,
        "minimum": 1,
        "type": "integer",
    }
    assert params["status"]["schema"] == {"$ref": "#/components/schemas/Status", "default": "held"}
    assert params["cursor"]["schema"] == {"minLength": 1, "type": "string"}


def test_webhooks_are_declared_with_their_secret_headers_and_errors(client: FlaskClient) -> None:
    doc = document(client)
    paths = doc["paths"]
    hooks = "/v1/sites/{slug}/webhooks"
    one = f"{hooks}/{{webhook_id}}"
    create = paths[hooks]["post"]
    assert create["security"] == [{"bearerAuth": ["admin"]}]
    assert paths[hooks]["get"]["security"] == [{"bearerAuth": ["moderator"]}]
    assert set(create["responses"]["201"]["headers"]) == {"Location", "ETag", "Cache-Control"}
    assert {"403", "404", "409", "422"} <= set(create["responses"])
    assert "private targets" in create["responses"]["422"]["description"]
    # The secret: a string when there, and never required (only two answers have it).
    webhook = doc["components"]["schemas"]["WebhookOut"]
    assert webhook["additionalProperties"] is False
    assert webhook["properties"]["secret"]["type"] == "string"
    assert "secret" not in webhook["required"]
    assert "only in the answers" in webhook["properties"]["secret"]["description"]
    patch = paths[one]["patch"]
    assert [(p["name"], p["required"]) for p in patch["parameters"]] == [
        ("slug", True),
        ("webhook_id", True),
        ("If-Match", True),
    ]
    assert {"409", "412", "428"} <= set(patch["responses"])
    delete = paths[one]["delete"]
    assert ("If-Match", False) in [(p["name"], p["required"]) for p in delete["parameters"]]
    assert "content" not in delete["responses"]["204"]
    assert "428" not in delete["responses"]
    rotate = paths[f"{one}/rotate-secret"]["post"]
    assert rotate["requestBody"]["required"] is False
    log = paths[f"{one}/deliveries"]["get"]
    assert [p["name"] for p in log["parameters"] if p["in"] == "query"] == [
        "limit",
        "cursor",
        "state",
    ]
    redeliver = paths[f"{one}/deliveries/{{delivery_id}}/redeliver"]["post"]
    assert redeliver["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DeliveryOut"
    }
    assert "409" in redeliver["responses"]
    assert {"webhooks"} == {
        op["tags"][0] for path, item in paths.items() if "/webhooks" in path for op in item.values()
    }


class Declared(BaseModel):
    name: str


class Other(BaseModel):
    name: str


def test_a_view_cannot_validate_with_a_model_it_did_not_declare(
    api_settings: Settings, rolled_back_sessions: sessionmaker[Session]
) -> None:
    app = create_app(api_settings, sessions=rolled_back_sessions)
    bp = Blueprint("drift", __name__)

    @bp.post("/v1/drift")
    @operation(
        "Drift", tag="meta", access=Access.public, body=Declared, responses={200: Reply("ok")}
    )
    def drift() -> Response:
        body_of(Other, json_body())
        return Response("{}", mimetype="application/json")

    app.register_blueprint(bp)
    with app.test_client() as client:
        response = client.post("/v1/drift", json={"name": "x"})
    assert response.status_code == 500


def test_an_undeclared_route_is_reported_and_left_out(
    api_settings: Settings, rolled_back_sessions: sessionmaker[Session]
) -> None:
    app = create_app(api_settings, sessions=rolled_back_sessions)
    bp = Blueprint("newcomer", __name__)

    # A route no view of the app has: the check must catch whatever is added next.
    @bp.get("/v1/sites/<slug>/newcomers")
    def newcomers(slug: str) -> Response:
        return Response("[]", mimetype="application/json")

    app.register_blueprint(bp)
    assert undeclared_rules(app, "/v1") == ["['GET'] /v1/sites/<slug>/newcomers"]
    assert "/v1/sites/{slug}/newcomers" not in build_document(app)["paths"]


def test_path_parameters_must_match_the_route(
    api_settings: Settings, rolled_back_sessions: sessionmaker[Session]
) -> None:
    app = create_app(api_settings, sessions=rolled_back_sessions)
    bp = Blueprint("mismatch", __name__)

    @bp.get("/v1/sites/<site>/things")
    @operation(
        "Things", tag="meta", access=Access.public, path={"slug": SITE}, responses={200: Reply("")}
    )
    def things(site: str) -> Response:
        return Response("[]", mimetype="application/json")

    app.register_blueprint(bp)
    with pytest.raises(ValueError, match="path parameters declared"):
        build_document(app)


def test_the_cli_prints_the_served_document(client: FlaskClient, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == document(client)
    out = tmp_path / "openapi.json"
    assert CliRunner().invoke(main, ["openapi", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == document(client)
