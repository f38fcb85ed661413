"""``GET /v1/sites/{site}/queue``: a site's comments in one status, for its moderators."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for

from service.api.context import authorize, credentials, services, transaction
from service.api.schemas import QueuePageOut, QueueQueryIn, iso_time
from service.api.spec import SITE, Access, Header, Reply, operation, query_of
from service.auth.roles import Role
from service.moderation.comments import comment_etag
from service.moderation.cursors import cursor_key
from service.moderation.queue import QueueItem, QueuePage, QueueQuery, queue_page

bp = Blueprint("queue", __name__, url_prefix="/v1/sites")


@bp.get("/<slug>/queue")
@operation(
    "Read the moderation queue",
    tag="moderation",
    access=Access.moderator,
    query=QueueQueryIn,
    path={"slug": SITE},
    responses={
        200: Reply(
            "A page of the site's comments in one status, and the counts per status.",
            QueuePageOut,
            headers=(
                Header(
                    "Cache-Control",
                    "`private, no-store`: private fields, never kept by a shared cache.",
                    required=True,
                ),
            ),
        )
    },
    errors={
        404: "unknown site",
        422: "a parameter out of range, or a cursor altered or made for another query",
    },
)
def get_queue(slug: str) -> Response:
    """One page of the queue with the next page's cursor and the counts per status."""
    token = credentials()
    query = query_of(QueueQueryIn).domain()
    key = cursor_key(services().settings.secret_key.get_secret_value())
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        page = queue_page(session, site_id=site.id, query=query, cursor_key=key)
    body = _render(slug, query, page)
    response = Response(json.dumps(body), status=200, mimetype="application/json")
    # A moderator's view of private fields: never stored by a shared cache.
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _render(slug: str, query: QueueQuery, page: QueuePage) -> dict[str, Any]:
    links = {"self": request.full_path.rstrip("?")}
    if page.next_cursor is not None:
        params = {
            "status": query.status.value,
            "sort": query.sort.value,
            **({"q": query.q} if query.q else {}),
            **({"author": str(query.author_id)} if query.author_id is not None else {}),
            **({"thread": query.thread} if query.thread is not None else {}),
            "limit": str(query.limit),
            "cursor": page.next_cursor,
        }
        links["next"] = f"{url_for('queue.get_queue', slug=slug)}?{urlencode(params)}"
    return {
        "site": slug,
        "status": query.status.value,
        "sort": query.sort.value,
        "counts": page.counts,
        "items": [_item(item) for item in page.items],
        "next_cursor": page.next_cursor,
        "links": links,
    }


def _item(item: QueueItem) -> dict[str, Any]:
    author = item.author
    return {
        "id": str(item.id),
        "thread": item.thread,
        "parent": None if item.parent_id is None else str(item.parent_id),
        "status": item.status.value,
        "discard": item.discard,
        "score": item.score,
        "reasons": item.reasons,
        "author_name": item.author_name,
        "author_email": item.author_email,
        "author": {
            "id": author.id,
            "issuer": author.issuer,
            "subject": author.subject,
            "display_name": author.display_name,
            "trust": author.trust.value,
            "banned_until": iso_time(author.banned_until),
            "approved_count": author.approved_count,
            "spam_count": author.spam_count,
        },
        "content": item.content,
        "created_at": iso_time(item.created_at),
        "version": item.version,
        "etag": comment_etag(item.version),
        "links": {"self": url_for("comments.get_comment", comment_id=str(item.id))},
    }
