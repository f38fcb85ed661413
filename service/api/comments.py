"""``/v1/comments``: accept a comment (202) and read it back with its verdict."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from typing import Any

from flask import Blueprint, Response, request, url_for

from service.api.comment_detail import moderation_body
from service.api.context import (
    authenticate,
    check_text_size,
    credentials,
    json_body,
    require_broker,
    services,
    transaction,
)
from service.api.moderation_schemas import CommentReadOut
from service.api.schemas import CommentIn, CommentOut, ReasonOut, VerdictOut
from service.api.spec import (
    COMMENT_ID,
    ETAG,
    LOCATION,
    Access,
    Header,
    Reply,
    body_of,
    operation,
)
from service.auth.api_keys import is_api_key
from service.logs import request_id_var
from service.moderation.comments import CommentView, comment_etag, find_comment, read_comment
from service.moderation.errors import FieldError, InvalidInput, NotFound
from service.moderation.sites import SiteInfo
from service.moderation.submit import Accepted, CommentInput, submit_comment

log = logging.getLogger(__name__)

bp = Blueprint("comments", __name__, url_prefix="/v1/comments")

IDEMPOTENCY_KEY_MAX = 255

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Makes a retry safe: the same key (per author) with the same body returns the first "
    "answer and stores nothing; with another body, 422.",
    schema={"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
)
IDEMPOTENT_REPLAYED = Header(
    "Idempotent-Replayed",
    "`true` when this is the answer to an earlier request with the same Idempotency-Key.",
    schema={"type": "string", "enum": ["true"]},
)


@bp.post("")
@operation(
    "Accept a comment",
    tag="comments",
    access=Access.caller,
    body=CommentIn,
    body_name="comment",
    headers=(IDEMPOTENCY_KEY,),
    responses={
        202: Reply(
            "Accepted, pending classification; GET the Location for the verdict.",
            CommentOut,
            headers=(LOCATION, IDEMPOTENT_REPLAYED),
        )
    },
    errors={
        404: "unknown site",
        409: "the same text from the same author in the same thread within a day",
        413: "content over 64 KB of UTF-8, or a body over 256 KB",
        422: "invalid fields, a bad Idempotency-Key, or a key reused with another body",
        429: "the author sent more than the site's flood limit (trusted authors excepted)",
        503: "the database or the broker is down, or the issuer's keys cannot be fetched",
    },
)
def post_comment() -> Response:
    """Accept a comment for classification: ``202`` with the comment and a ``Location``."""
    settings = services().settings
    token = credentials()
    body = json_body()
    check_text_size(body, "content", settings.max_content_bytes)
    data = body_of(CommentIn, body)
    key = _idempotency_key()
    require_broker()

    # Without an Idempotency-Key, submit_comment writes with one statement; an API key
    # would add a second write (its last use); a token, JWT or introspected, adds none.
    with transaction(single_write=key is None and not is_api_key(token)) as session:
        site = services().sites.get(session, slug=data.site)
        identity = authenticate(session, site, token)
        accepted = submit_comment(
            session,
            site=site,
            identity=identity,
            # The fields as they are (all plain values): cheaper than model_dump.
            data=CommentInput(**{name: value for name, value in data if name != "site"}),
            idempotency_key=key,
            # Only a keyed request is ever compared with an earlier one.
            request_hash=_request_hash(body) if key is not None else None,
            now=dt.datetime.now(dt.UTC),
            outbox_timeout=dt.timedelta(seconds=settings.outbox_timeout_seconds),
        )
    if not accepted.replayed:
        _enqueue(accepted.id)

    # The answer is the acceptance itself; a replay gives the same answer, and
    # GET /v1/comments/{id} gives the current state.
    out = _accepted(accepted, site.slug)
    response = Response(json.dumps(out.body()), status=202, mimetype="application/json")
    response.headers["Location"] = out.links["self"]
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/<comment_id>")
@operation(
    "Read a comment and its verdict",
    tag="comments",
    access=Access.caller,
    path={"comment_id": COMMENT_ID},
    responses={
        200: Reply(
            "The comment; `moderation` only for a moderator of its site.",
            CommentReadOut,
            headers=(ETAG,),
        )
    },
    errors={404: "no such comment, or the caller is neither its author nor its moderator"},
)
def get_comment(comment_id: str) -> Response:
    """The comment's status, discard flag and latest verdict, for its author; for a
    moderator of its site also its ``moderation`` detail. ``ETag``: its version."""
    token = credentials()
    cid = _uuid_or_404(comment_id)
    with transaction() as session:
        comment, site = find_comment(session, comment_id=cid)
        reader = authenticate(session, SiteInfo.of(site), token)
        view = read_comment(session, comment=comment, site=site, reader=reader)
        body = _render(view).body()
        if view.detail is not None:
            body["moderation"] = moderation_body(comment, view.detail)
    response = Response(json.dumps(body), status=200, mimetype="application/json")
    response.headers["ETag"] = comment_etag(comment.version)
    return response


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise InvalidInput(
            "invalid Idempotency-Key",
            [FieldError("Idempotency-Key", f"1 to {IDEMPOTENCY_KEY_MAX} printable characters")],
        )
    return key


def _request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no comment {value}") from None


def _enqueue(comment_id: uuid.UUID) -> None:
    """Enqueue after commit (batched with the process's other comments: sent within
    ``enqueue_linger_ms``). A failure here or in the batch's send loses nothing: the
    outbox row is committed and the sweeper enqueues it after its timeout."""
    try:
        services().classifications.add(comment_id, request_id_var.get())
    except Exception:
        log.warning(
            "enqueue failed for comment %s; the sweeper will retry", comment_id, exc_info=True
        )


def _links(comment_id: uuid.UUID) -> dict[str, str]:
    return {"self": url_for("comments.get_comment", comment_id=str(comment_id))}


def _accepted(accepted: Accepted, site_slug: str) -> CommentOut:
    return CommentOut(
        id=accepted.id,
        site=site_slug,
        thread=accepted.thread,
        parent=accepted.parent,
        status="pending",
        discard=False,
        author_name=accepted.author_name,
        content=accepted.content,
        created_at=accepted.created_at,
        links=_links(accepted.id),
    )


def _render(view: CommentView) -> CommentOut:
    comment, verdict = view.comment, view.verdict
    return CommentOut(
        id=comment.id,
        site=view.site.slug,
        thread=comment.thread,
        parent=comment.parent_id,
        status=comment.status.value,
        discard=comment.discard,
        author_name=comment.author_name,
        content=comment.content,
        created_at=comment.created_at,
        verdict=None
        if verdict is None
        else VerdictOut(
            score=verdict.score,
            decision=verdict.decision,
            discard=verdict.discard,
            reasons=[ReasonOut.model_validate(r) for r in verdict.reasons],
            classifier_version=verdict.classifier_version,
            latency_ms=verdict.latency_ms,
            created_at=verdict.created_at,
        ),
        links=_links(comment.id),
    )
