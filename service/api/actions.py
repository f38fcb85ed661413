"""Moderators' actions: ``POST /v1/comments/{id}/actions`` (one comment, conditional on
its ETag), ``POST /v1/sites/{site}/actions`` (up to 500 at once, per-item results) and
``GET /v1/sites/{site}/audit`` (the trail they leave)."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for

from service.api.conditional import if_match
from service.api.context import (
    authenticate,
    authorize,
    credentials,
    json_body,
    services,
    transaction,
)
from service.api.moderation_schemas import (
    ActedCommentOut,
    ActionIn,
    AuditOut,
    AuditPageOut,
    AuditQueryIn,
    BulkActionIn,
    BulkResultOut,
    ItemOut,
)
from service.api.schemas import iso_time
from service.api.spec import (
    COMMENT_ID,
    ETAG,
    IF_MATCH,
    SITE,
    Access,
    Reply,
    body_of,
    operation,
    query_of,
)
from service.api.webhooks import send_after_commit, webhook_lease
from service.auth.roles import Role
from service.moderation.actions import Item, act_on_comment, act_on_comments, require_moderator
from service.moderation.audit import list_audit
from service.moderation.comments import comment_etag, find_comment
from service.moderation.errors import (
    NotFound,
)
from service.moderation.sites import SiteInfo

bp = Blueprint("actions", __name__)

_ETAG = re.compile(r'^"v([1-9][0-9]{0,17})"$')


@bp.post("/v1/comments/<comment_id>/actions")
@operation(
    "Act on a comment",
    tag="moderation",
    access=Access.moderator,
    body=ActionIn,
    body_name="action",
    path={"comment_id": COMMENT_ID},
    headers=(IF_MATCH,),
    responses={200: Reply("The comment after the action.", ActedCommentOut, headers=(ETAG,))},
    errors={
        403: "the caller is the comment's author, not a moderator of its site",
        404: "no such comment, or the caller may not read it",
        409: "the action is not allowed from the comment's status",
        412: "If-Match does not name the current version (the current ETag is sent)",
        428: "no If-Match",
    },
)
def act(comment_id: str) -> Response:
    """One action on one comment, if it is still at the version ``If-Match`` names:
    200 with the comment's new state and ``ETag``; 428 without ``If-Match``, 412 with the
    current ``ETag`` when stale, 409 when the action is not allowed from its status."""
    token = credentials()
    cid = _uuid(comment_id)
    versions = _if_match_versions()
    data = body_of(ActionIn, json_body())
    with transaction() as session:
        comment, site = find_comment(session, comment_id=cid)
        actor = authenticate(session, SiteInfo.of(site), token)
        require_moderator(session, comment=comment, actor=actor)
        out: dict[str, Any] = {
            "id": str(comment.id),
            "site": site.slug,
            "thread": comment.thread,
            "parent": str(comment.parent_id) if comment.parent_id else None,
            "author_name": comment.author_name,
            "content": comment.content,
            "created_at": iso_time(comment.created_at),
        }
        done = act_on_comment(
            session,
            site_id=site.id,
            comment_id=cid,
            versions=versions,
            actor=actor,
            action=data.action,
            note=data.note,
            webhook_lease=webhook_lease(),
        )
    send_after_commit(done.deliveries)
    assert done.status is not None
    assert done.version is not None
    assert done.from_status is not None
    out.update(
        status=done.status.value,
        discard=done.discard,
        version=done.version,
        action={
            "action": data.action.value,
            "from": done.from_status.value,
            "to": done.status.value,
            "note": data.note,
            "audit_id": done.audit_id,
            "label": done.label.value if done.label else None,
        },
        links={"self": url_for("comments.get_comment", comment_id=str(cid))},
    )
    response = Response(json.dumps(out), status=200, mimetype="application/json")
    response.headers["ETag"] = comment_etag(done.version)
    return response


@bp.post("/v1/sites/<slug>/actions")
@operation(
    "Act on up to 500 comments",
    tag="moderation",
    access=Access.moderator,
    body=BulkActionIn,
    body_name="bulk action",
    path={"slug": SITE},
    responses={200: Reply("One result per comment, in order, and their counts.", BulkResultOut)},
    errors={404: "unknown site"},
)
def act_in_bulk(slug: str) -> Response:
    """One action on up to 500 comments of the site: 200 with one result per comment
    (``ok``, ``not_found``, ``conflict``, ``invalid_transition``) and their counts."""
    token = credentials()
    data = body_of(BulkActionIn, json_body())
    if data.items is not None:
        items = [Item(i.id, i.version) for i in data.items]
    else:
        items = [Item(i) for i in data.ids or ()]
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.moderator)
        results = act_on_comments(
            session,
            site_id=site.id,
            items=items,
            actor=actor,
            action=data.action,
            note=data.note,
            webhook_lease=webhook_lease(),
        )
    send_after_commit([d for result in results for d in result.deliveries])
    body = {
        "action": data.action.value,
        "counts": dict(Counter(r.outcome.value for r in results)),
        "results": [ItemOut.of(r).model_dump(mode="json", exclude_none=True) for r in results],
    }
    return Response(json.dumps(body), status=200, mimetype="application/json")


@bp.get("/v1/sites/<slug>/audit")
@operation(
    "Read the audit trail",
    tag="moderation",
    access=Access.moderator,
    query=AuditQueryIn,
    path={"slug": SITE},
    responses={200: Reply("A page of the trail, newest first.", AuditPageOut)},
    errors={404: "unknown site", 422: "a parameter out of range, or a cursor that was altered"},
)
def audit_trail(slug: str) -> Response:
    """The site's audit trail, newest first, keyset-paginated."""
    token = credentials()
    args = request.args
    query = query_of(AuditQueryIn)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        page = list_audit(
            session,
            site_id=site.id,
            limit=query.limit,
            cursor=query.cursor,
            action=query.action,
            actor_subject=query.actor,
            comment_id=query.comment,
        )
        entries = [AuditOut.of(e).model_dump(mode="json") for e in page.entries]
    links = {"self": request.full_path.rstrip("?")}
    if page.next_cursor:
        next_query = urlencode({**args.to_dict(), "cursor": page.next_cursor})
        links["next"] = url_for("actions.audit_trail", slug=slug) + "?" + next_query
    body = {"entries": entries, "next_cursor": page.next_cursor, "links": links}
    return Response(json.dumps(body), status=200, mimetype="application/json")


def _if_match_versions() -> frozenset[int] | None:
    """The comment versions ``If-Match`` names (RFC 9110: a list matches when any of its
    strong ETags ``"v<version>"`` is current, ``*`` (None here) whatever the version; weak
    or foreign tags match nothing): 428 without the header."""
    condition = if_match("send If-Match with the comment's ETag (from GET /v1/comments/{id})")
    if condition.any_current:
        return None
    return frozenset(
        int(match.group(1)) for tag in condition.tags if (match := _ETAG.match(tag)) is not None
    )


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no comment {value}") from None
