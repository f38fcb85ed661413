"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

Built from the operations' declarations (``service/api/spec.py``) and the routes of the
app's URL map: paths, methods and path parameters come from the routes, everything else
from the declarations, and every schema from the pydantic models the views validate
with (pydantic's JSON Schema, under ``#/components/schemas``). Built once per app, on
the first request for it; the same app always serves the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final

from flask import Blueprint, Flask, Response, current_app, request
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

from service.api.context import API_KEY_HEADER
from service.api.schemas import Problem
from service.api.spec import Access, Header, Operation, Reply, declared, operation
from service.errors import PROBLEM_JSON

bp = Blueprint("openapi", __name__)

#: The OpenAPI media type (registered by the OpenAPI Initiative), with the version.
OPENAPI_JSON: Final = "application/vnd.oai.openapi+json"
OPENAPI_VERSION: Final = "3.1.0"
_EXTENSION: Final = "commentguard.openapi"
_REF: Final = "#/components/schemas/{model}"
_METHODS: Final = ("get", "put", "post", "delete", "patch")
_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")

BEARER: Final = "bearerAuth"
API_KEY: Final = "apiKey"

SECURITY_SCHEMES: Final = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An access token (RFC 9068 JWT, or an OpenID Connect ID token) from an issuer "
            "the site trusts, for one of its audiences; or an opaque token where the site "
            "configures introspection; or one of the site's API keys (`cg_...`). Roles, "
            "listed per operation, come from the token's roles claim as "
            "`commentguard:<site>:<role>`; `admin` includes `moderator` and `operator`. "
            "API keys grant no role."
        ),
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "One of the site's API keys (`cg_...`), for blog backends.",
    },
}

WWW_AUTHENTICATE = Header(
    "WWW-Authenticate",
    'RFC 6750: `Bearer realm="commentguard"` without credentials; '
    '`error="invalid_token"` with a description for a bad one; '
    '`error="insufficient_scope"` for a missing role.',
    required=True,
)
RETRY_AFTER = Header(
    "Retry-After", "Seconds to wait before trying again.", {"type": "integer"}, required=True
)
_PROBLEM_HEADERS: Final = {
    401: (WWW_AUTHENTICATE,),
    403: (WWW_AUTHENTICATE,),
    412: (Header("ETag", "The current ETag, when there is one."),),
    429: (RETRY_AFTER,),
    503: (RETRY_AFTER,),
}

DESCRIPTION: Final = """\
Commentguard decides whether each comment a blog receives is fine, needs a human look, or
is spam; moderators work the queue it keeps; operators retrain its classifier.

Every error is `application/problem+json` (RFC 9457) with a stable `type`
(`urn:commentguard:problem:<slug>`); invalid input names each field in `errors`.
Nothing is written when a request fails.
"""

TAGS: Final = (
    ("comments", "Send a comment and read its verdict."),
    ("threads", "What a blog renders under a post (public)."),
    ("moderation", "The queue, actions, the audit trail, authors and rules."),
    ("classifier", "Retraining, versions, reports, promotion and rollback."),
    ("webhooks", "A site's signed webhooks, their secrets and their delivery logs."),
    ("health", "Liveness and readiness."),
    ("metrics", "Prometheus metrics, for monitoring (docs/metrics.md)."),
    ("meta", "This document."),
)


@dataclass(frozen=True, slots=True)
class Route:
    """One documented operation: a rule of the URL map, a method, its declaration."""

    rule: Rule
    method: str
    operation: Operation

    @property
    def path(self) -> str:
        return _ARGUMENT.sub(r"{\1}", self.rule.rule)


def routes(app: Flask) -> Iterator[Route]:
    """The app's declared operations, in the URL map's order."""
    for rule in app.url_map.iter_rules():
        op = declared(app.view_functions[rule.endpoint])
        if op is None:
            continue
        for method in _METHODS:
            if method.upper() in (rule.methods or ()):
                yield Route(rule, method, op)


def undeclared_rules(app: Flask, prefix: str = "/") -> list[str]:
    """The rules under ``prefix`` whose view declares no operation (``static`` aside)."""
    return [
        f"{sorted((rule.methods or set()) - {'HEAD', 'OPTIONS'})} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix)
        and rule.endpoint != "static"
        and declared(app.view_functions[rule.endpoint]) is None
    ]


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s declared operations."""
    found = list(routes(app))
    refs, schemas = _component_schemas(found)
    paths: dict[str, dict[str, Any]] = {}
    for route in found:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Commentguard",
            "version": _version(),
            "description": DESCRIPTION,
            "license": {"name": "Proprietary"},
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def offline_document() -> dict[str, Any]:
    """The document of an app that is built and never served: the same as any app
    serves, with no configuration needed (the document depends on the code only) and
    nothing connected to (the app's pools and clients connect on first use)."""
    from service.app import create_app
    from service.settings import Settings

    settings = Settings(
        environment="test",
        database_url="sqlite://",
        secret_key=SecretStr(secrets.token_urlsafe(36)),
    )
    return build_document(create_app(settings))


def document_bytes(app: Flask) -> bytes:
    """The document as served: built once per app."""
    cached = app.extensions.get(_EXTENSION)
    if not isinstance(cached, bytes):
        cached = json.dumps(build_document(app), indent=2, ensure_ascii=False).encode()
        app.extensions[_EXTENSION] = cached
    return cached


@bp.get("/openapi.json")
@operation(
    "This document",
    tag="meta",
    access=Access.public,
    responses={
        200: Reply(
            "The OpenAPI 3.1 document of this API.",
            media_type=OPENAPI_JSON,
            schema={"type": "object", "required": ["openapi", "info", "paths"]},
            headers=(Header("ETag", "A hash of the document.", required=True),),
        ),
        304: Reply("Unchanged since the ETag in If-None-Match."),
    },
    reads_database=False,
)
def openapi_json() -> Response:
    """The OpenAPI document, generated from the operations' declarations."""
    body = document_bytes(current_app)
    response = Response(body, mimetype=OPENAPI_JSON)
    response.headers["Content-Type"] = f"{OPENAPI_JSON};version=3.1"
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.make_conditional(request)
    return response


def _component_schemas(
    found: Iterable[Route],
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], str], dict[str, Any]]:
    """Every model the operations name, as JSON Schema under ``#/components/schemas``
    (request models in pydantic's validation mode, responses in serialization mode),
    and the reference of each (model, mode)."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
    for route in found:
        op = route.operation
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        if op.query is not None:
            wanted[(op.query, "validation")] = None
        for reply in op.responses.values():
            if reply.model is not None:
                wanted[(reply.model, "serialization")] = None
    keys, top = models_json_schema(list(wanted), ref_template=_REF)
    refs = {(model, mode): str(keys[(model, mode)]["$ref"]) for model, mode in wanted}
    defs: dict[str, Any] = top.get("$defs", {})
    return refs, dict(sorted(defs.items()))


def _operation(
    route: Route, refs: dict[tuple[type[BaseModel], JsonSchemaMode], str], schemas: dict[str, Any]
) -> Any:
    op = route.operation
    out: dict[str, Any] = {
        "operationId": route.rule.endpoint.replace(".", "_")
        + ("" if _single_method(route) else f"_{route.method}"),
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "security": _security(op.access),
    }
    if op.access.role is not None:
        out["x-required-role"] = op.access.role
    parameters = _path_parameters(route) + _query_parameters(op, refs, schemas)
    parameters += [_header_parameter(header) for header in op.headers]
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": {"$ref": refs[(op.body, "validation")]}}},
        }
    responses: dict[str, Any] = {}
    for status, reply in sorted(op.responses.items()):
        responses[str(status)] = _reply(reply, refs)
    for status, when in op.all_errors().items():
        responses[str(status)] = _problem(status, when, refs)
    out["responses"] = responses
    return out


def _single_method(route: Route) -> bool:
    methods = (route.rule.methods or set()) - {"HEAD", "OPTIONS"}
    return len(methods) == 1


def _security(access: Access) -> list[dict[str, list[str]]]:
    if access is Access.public:
        return []
    if access is Access.caller:
        return [{BEARER: []}, {API_KEY: []}]
    assert access.role is not None
    return [{BEARER: [access.role]}]


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    declared_names = set(route.operation.path)
    arguments = list(dict.fromkeys(_ARGUMENT.findall(route.rule.rule)))
    if declared_names != set(arguments):
        raise ValueError(
            f"{route.rule.rule}: path parameters declared {sorted(declared_names)}, "
            f"the route has {sorted(arguments)}"
        )
    out = []
    for name in arguments:
        param = route.operation.path[name]
        out.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": param.description,
                "schema": TypeAdapter(param.type).json_schema(ref_template=_REF),
            }
        )
    return out


def _query_parameters(
    op: Operation,
    refs: dict[tuple[type[BaseModel], JsonSchemaMode], str],
    schemas: dict[str, Any],
) -> list[dict[str, Any]]:
    """The query model's fields as query parameters (their schemas as in the model's
    component, which the document keeps too)."""
    if op.query is None:
        return []
    schema = schemas[refs[(op.query, "validation")].rsplit("/", 1)[1]]
    required = set(schema.get("required", ()))
    out = []
    for name, field in op.query.model_fields.items():
        key = field.alias or name
        prop = _without_null(schema["properties"][key])
        parameter: dict[str, Any] = {"name": key, "in": "query", "required": key in required}
        if field.description:
            parameter["description"] = field.description
        parameter["schema"] = prop
        out.append(parameter)
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: a parameter is absent or a string, never null, so the
    model's ``X | None = None`` is documented as an optional X."""
    out = {k: v for k, v in schema.items() if k != "title"}
    if out.get("default", 0) is None:
        del out["default"]
    variants = out.get("anyOf")
    if isinstance(variants, list):
        kept = [v for v in variants if v != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            out.update(kept[0])
        else:
            out["anyOf"] = kept
    return out


def _header_parameter(header: Header) -> dict[str, Any]:
    return {
        "name": header.name,
        "in": "header",
        "required": header.required,
        "description": header.description,
        "schema": dict(header.schema),
    }


def _headers(headers: Iterable[Header]) -> dict[str, Any]:
    return {
        h.name: {"description": h.description, "required": h.required, "schema": dict(h.schema)}
        for h in headers
    }


def _reply(reply: Reply, refs: dict[tuple[type[BaseModel], JsonSchemaMode], str]) -> Any:
    out: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        out["headers"] = _headers(reply.headers)
    if reply.model is not None:
        schema: Any = {"$ref": refs[(reply.model, "serialization")]}
        out["content"] = {reply.media_type: {"schema": schema}}
    elif reply.schema is not None:
        out["content"] = {reply.media_type: {"schema": dict(reply.schema)}}
    return out


def _problem(
    status: int, when: str, refs: dict[tuple[type[BaseModel], JsonSchemaMode], str]
) -> Any:
    out: dict[str, Any] = {"description": when[:1].upper() + when[1:] + "."}
    headers = _PROBLEM_HEADERS.get(status)
    if headers:
        out["headers"] = _headers(headers)
    out["content"] = {PROBLEM_JSON: {"schema": {"$ref": refs[(Problem, "serialization")]}}}
    return out


def _version() -> str:
    try:
        return metadata.version("commentguard")
    except metadata.PackageNotFoundError:
        return "0"
