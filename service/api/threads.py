"""``GET /v1/sites/{site}/threads/{thread}/comments``: what a blog renders under a post.

Public: no token, approved comments only, no private field (email, IP, user agent,
referrer). The thread key is one path segment that may itself contain ``/``: send it
percent-encoded (``encodeURIComponent``: ``/posts/1`` as ``%2Fposts%2F1``); since servers
decode the path before routing, raw slashes work the same, as long as the key does not
contain ``?``, ``#`` or ``%``, which must be encoded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from pydantic import Field
from werkzeug.routing import BaseConverter

from service.api.context import services, transaction
from service.api.schemas import ThreadPageOut, ThreadQueryIn, iso_time
from service.api.spec import SITE, Access, Header, PathParam, Reply, operation, query_of
from service.moderation.cursors import cursor_key
from service.moderation.threads import ThreadComment, ThreadPage, thread_page

bp = Blueprint("threads", __name__, url_prefix="/v1/sites")

#: Shared caches and browsers may reuse a page this long, then revalidate with its ETag.
CACHE_CONTROL = "public, max-age=15"


class ThreadKeyConverter(BaseConverter):
    """Any thread key, slashes (leading, doubled, trailing) included."""

    regex = ".+?"
    part_isolating = False


def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("thread_key", ThreadKeyConverter)


# Recorded before the route, so the converter exists when the route is added.
bp.record_once(_register_converter)


THREAD_ETAG = Header("ETag", "A strong hash of the page.", required=True)


@bp.get("/<slug>/threads/<thread_key:thread>/comments", merge_slashes=False)
@operation(
    "Read a thread's approved comments",
    tag="threads",
    access=Access.public,
    query=ThreadQueryIn,
    path={
        "slug": SITE,
        "thread": PathParam(
            Annotated[str, Field(min_length=1)],
            "The thread key, percent-encoded (`/posts/1` as `%2Fposts%2F1`).",
        ),
    },
    headers=(Header("If-None-Match", "The page's ETag, as last read: 304 when it still matches."),),
    responses={
        200: Reply(
            "A page of top-level approved comments, oldest first, replies nested.",
            ThreadPageOut,
            headers=(
                THREAD_ETAG,
                Header("Cache-Control", "`public, max-age=15`.", required=True),
                Header("Access-Control-Allow-Origin", "`*`: any origin may read it."),
            ),
        ),
        304: Reply(
            "The page has not changed since the ETag in If-None-Match.",
            None,
            headers=(THREAD_ETAG,),
        ),
    },
    errors={404: "unknown site", 422: "a bad limit, or a cursor altered or of another thread"},
)
def get_thread(slug: str, thread: str) -> Response:
    """A page of the thread's approved comments with a strong ETag; 304 when it matches."""
    query = query_of(ThreadQueryIn)
    limit, cursor = query.limit, query.cursor
    key = cursor_key(services().settings.secret_key.get_secret_value())
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        page = thread_page(
            session, site_id=site.id, thread=thread, limit=limit, cursor=cursor, cursor_key=key
        )
    body = json.dumps(_render(slug, thread, limit, page)).encode()
    response = Response(body, status=200, mimetype="application/json")
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.headers["Cache-Control"] = CACHE_CONTROL
    # Public data read by browser widgets on the blog's own origin, without credentials.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "ETag"
    # 304 without a body when If-None-Match names this ETag (make_conditional changes
    # the response in place).
    response.make_conditional(request)
    return response


def _render(slug: str, thread: str, limit: int, page: ThreadPage) -> dict[str, Any]:
    path = f"/v1/sites/{quote(slug, safe='')}/threads/{quote(thread, safe='')}/comments"
    links = {"self": request.full_path.rstrip("?")}
    if page.next_cursor is not None:
        links["next"] = f"{path}?{urlencode({'limit': limit, 'cursor': page.next_cursor})}"
    return {
        "site": slug,
        "thread": thread,
        "total": page.total,
        "comments": [_comment(c) for c in page.comments],
        "next_cursor": page.next_cursor,
        "links": links,
    }


def _comment(comment: ThreadComment) -> dict[str, Any]:
    return {
        "id": str(comment.id),
        "parent": None if comment.parent_id is None else str(comment.parent_id),
        "author_name": comment.author_name,
        "author_url": comment.author_url,
        "content": comment.content,
        "created_at": iso_time(comment.created_at),
        "replies": [_comment(r) for r in comment.replies],
    }
