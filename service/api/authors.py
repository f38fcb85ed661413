"""Authors of a site, for its moderators: ``GET /v1/sites/{site}/authors/{id}`` and
``POST /v1/sites/{site}/authors/{id}/trust`` (trust, ban for ever or until a time, unban)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from flask import Blueprint, Response
from pydantic import Field

from service.api.context import authorize, credentials, json_body, services, transaction
from service.api.moderation_schemas import AuthorOut, AuthorTrustIn
from service.api.spec import SITE, Access, PathParam, Reply, body_of, operation
from service.auth.roles import Role
from service.moderation.authors import get_author, set_trust
from service.moderation.errors import NotFound

bp = Blueprint("authors", __name__, url_prefix="/v1/sites/<slug>/authors")

AUTHOR_PATH = {
    "slug": SITE,
    "author_id": PathParam(Annotated[int, Field(ge=1)], "The author's id (`author.id`)."),
}


@bp.get("/<author_id>")
@operation(
    "Read an author",
    tag="moderation",
    access=Access.moderator,
    path=AUTHOR_PATH,
    responses={200: Reply("The author.", AuthorOut)},
    errors={404: "unknown site or author"},
)
def read_author(slug: str, author_id: str) -> Response:
    """The author's identity, trust (and the trust that counts now) and counts."""
    token = credentials()
    aid = _author_id(author_id)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        author = get_author(session, site_id=site.id, author_id=aid)
        out = AuthorOut.of(author, dt.datetime.now(dt.UTC))
    return Response(out.model_dump_json(), status=200, mimetype="application/json")


@bp.post("/<author_id>/trust")
@operation(
    "Trust, ban or unban an author",
    tag="moderation",
    access=Access.moderator,
    body=AuthorTrustIn,
    body_name="trust change",
    path=AUTHOR_PATH,
    responses={200: Reply("The author after the change.", AuthorOut)},
    errors={
        404: "unknown site or author",
        422: "invalid fields; `until` for a ban only, with a time zone, in the future",
    },
)
def change_trust(slug: str, author_id: str) -> Response:
    """Set the author's trust (``trusted``, ``normal``, or ``banned`` with an optional
    ``until``): 200 with the author; audited as trust, ban or unban."""
    token = credentials()
    aid = _author_id(author_id)
    data = body_of(AuthorTrustIn, json_body())
    now = dt.datetime.now(dt.UTC)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.moderator)
        author = set_trust(
            session,
            site_id=site.id,
            author_id=aid,
            trust=data.trust,
            until=data.until,
            note=data.note,
            actor=actor,
            now=now,
        )
        out = AuthorOut.of(author, now)
    return Response(
        json.dumps(out.model_dump(mode="json")), status=200, mimetype="application/json"
    )


def _author_id(value: str) -> int:
    # ASCII digits only: str.isdigit() also passes "²", which int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise NotFound(f"no author {value}")
    return int(value)
