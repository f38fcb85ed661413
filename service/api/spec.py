"""What each HTTP operation takes and answers, declared next to its view.

A view's declaration (``@operation(...)``, under its route) names who may call it, its
request body model, its query-parameter model, its path parameters, the request headers
that matter, its responses per status (model and headers) and the errors it may answer.
The view validates its request with the declared models (:func:`body_of`,
:func:`query_of`: each refuses a model other than the declared one), and
``service/api/openapi.py`` builds the OpenAPI document from the same declarations, so
what the document says is what the view validates.

Errors the declaration implies are added to it: 401 (and 403 with a role) from who may
call, 400, 413, 415 and 422 from a body, 422 from a query, 503 for every operation that
reads the database (``Operation.reads_database``).
"""

from __future__ import annotations

import enum
import inspect
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, Field, ValidationError

from service.moderation.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)
View = TypeVar("View", bound=Callable[..., Any])


class Access(enum.Enum):
    """Who may call an operation."""

    #: Anyone, without credentials.
    public = "public"
    #: Any valid credential for the site: a reader's token or one of the site's API keys.
    caller = "caller"
    #: A token granting the role at the site (admin includes moderator and operator).
    moderator = "moderator"
    operator = "operator"
    admin = "admin"

    @property
    def role(self) -> str | None:
        return None if self in (Access.public, Access.caller) else self.value


@dataclass(frozen=True, slots=True)
class Header:
    """A request or response header worth documenting."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True, slots=True)
class PathParam:
    """A path parameter: ``type`` is any annotation pydantic turns into JSON Schema."""

    type: Any
    description: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One successful response: ``model`` for a JSON body (None: no body, or ``schema``
    for a body in another ``media_type``)."""

    description: str
    model: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    media_type: str = "application/json"
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation (a route and a method) as ``@operation`` declares it."""

    summary: str
    tag: str
    access: Access
    responses: Mapping[int, Reply]
    #: Error statuses beyond those the declaration implies, each with when it happens.
    errors: Mapping[int, str] = field(default_factory=dict)
    body: type[BaseModel] | None = None
    #: The body's name in validation errors' detail ("the comment has invalid fields").
    body_name: str = "body"
    #: False when the body may be left out (the view then validates ``{}``).
    body_required: bool = True
    query: type[BaseModel] | None = None
    path: Mapping[str, PathParam] = field(default_factory=dict)
    headers: tuple[Header, ...] = ()
    description: str = ""
    reads_database: bool = True

    def all_errors(self) -> dict[int, str]:
        """Every error status with its description: the implied ones, then the declared
        ones (which win, being more precise)."""
        implied: dict[int, str] = {}
        if self.access is not Access.public:
            implied[401] = "no credentials, or a bad token or API key"
        if self.access.role is not None:
            implied[403] = f"the token does not grant the {self.access.role} role at the site"
        if self.body is not None:
            implied[400] = "the body is not JSON, not UTF-8, or not an object"
            implied[413] = "the body (or a field with a size limit) is too large"
            implied[415] = "the body is not application/json"
            implied[422] = "invalid fields, each named in errors"
        if self.query is not None:
            implied[422] = "a query parameter is invalid (named in errors)"
        if self.reads_database:
            implied[503] = "the database or another dependency is unavailable"
        return dict(sorted({**implied, **self.errors}.items()))


#: Every declared operation, by its view function.
_DECLARED: dict[Callable[..., Any], Operation] = {}


def operation(
    summary: str,
    *,
    tag: str,
    access: Access,
    responses: Mapping[int, Reply],
    errors: Mapping[int, str] | None = None,
    body: type[BaseModel] | None = None,
    body_name: str = "body",
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    path: Mapping[str, PathParam] | None = None,
    headers: tuple[Header, ...] = (),
    reads_database: bool = True,
) -> Callable[[View], View]:
    """Declare the decorated view's operation (put it under the route decorator). The
    view's docstring becomes the operation's description. The view itself is returned
    unchanged: the declaration costs a request nothing but the lookups of
    :func:`body_of` and :func:`query_of`."""

    def declare(view: View) -> View:
        _DECLARED[view] = Operation(
            summary=summary,
            tag=tag,
            access=access,
            responses=responses,
            errors=dict(errors or {}),
            body=body,
            body_name=body_name,
            body_required=body_required,
            query=query,
            path=dict(path or {}),
            headers=headers,
            description=inspect.getdoc(view) or "",
            reads_database=reads_database,
        )
        return view

    return declare


def declared(view: Callable[..., Any]) -> Operation | None:
    """The operation declared for ``view``, or None."""
    return _DECLARED.get(view)


def current_operation() -> Operation:
    """The operation of the request being served (``LookupError`` when undeclared)."""
    view = current_app.view_functions.get(request.endpoint or "")
    found = _DECLARED.get(view) if view is not None else None
    if found is None:
        raise LookupError(f"no operation is declared for endpoint {request.endpoint!r}")
    return found


def body_of(model: type[M], raw: Mapping[str, Any], *, root: str = "body") -> M:
    """``raw`` (the request's JSON object) validated by ``model``, which must be the
    operation's declared body; ``InvalidInput`` (422) naming each bad field (``root``
    for an error about the whole body)."""
    op = current_operation()
    if op.body is not model:
        raise TypeError(f"{request.endpoint} declares body {op.body!r}, not {model!r}")
    return parse(model, raw, op.body_name, root=root)


def query_of(model: type[M]) -> M:
    """The request's query string validated by ``model``, which must be the operation's
    declared query model; ``InvalidInput`` (422) naming each bad parameter. A parameter
    given twice counts once, with its first value."""
    op = current_operation()
    if op.query is not model:
        raise TypeError(f"{request.endpoint} declares query {op.query!r}, not {model!r}")
    return parse(model, request.args.to_dict(), "query", root="query")


def parse(model: type[M], data: Mapping[str, Any], what: str, *, root: str = "body") -> M:
    """``data`` as ``model``, or ``InvalidInput`` naming each bad field (``root`` for an
    error about the whole)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or root, e["msg"]) for e in exc.errors()
        ]
        raise InvalidInput(f"the {what} has invalid fields", errors) from None


# What several operations share.

SITE = PathParam(
    Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")],
    "The site's slug.",
)
COMMENT_ID = PathParam(uuid.UUID, "The comment's id.")

IF_MATCH = Header(
    "If-Match",
    "The ETag the caller saw (RFC 9110: a list matches when any of its strong tags is the "
    "current one; `*` matches any; a weak tag never does). Without it: 428.",
    required=True,
)
ETAG = Header("ETag", "The representation's strong entity tag.", required=True)
LOCATION = Header("Location", "Where the created resource is read.", required=True)
