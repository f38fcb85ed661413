"""A site's rules: ``GET /v1/sites/{site}/rules`` (moderators) with an ``ETag``;
``PUT`` (replace) and ``PATCH`` (merge) for its admins, with ``If-Match``."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from service.api.conditional import if_match
from service.api.context import authorize, credentials, json_body, services, transaction
from service.api.moderation_schemas import note_of
from service.auth.roles import Role
from service.moderation.rules import Rules, change_rules, read_rules

bp = Blueprint("rules", __name__, url_prefix="/v1/sites/<slug>/rules")


@bp.get("")
def get_rules(slug: str) -> Response:
    token = credentials()
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        rules = read_rules(session, site_id=site.id)
    return _answer(rules)


@bp.put("")
def put_rules(slug: str) -> Response:
    """Replace the rules (fields left out take their defaults)."""
    return _change(slug, replace=True)


@bp.patch("")
def patch_rules(slug: str) -> Response:
    """Change the fields given, keep the others."""
    return _change(slug, replace=False)


def _change(slug: str, *, replace: bool) -> Response:
    token = credentials()
    condition = if_match("send If-Match with the rules' ETag (from GET)")
    body = json_body()
    note = note_of(body)
    body.pop("note", None)
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.admin)
        rules = change_rules(
            session,
            site_id=site.id,
            changes=body,
            replace=replace,
            actor=actor,
            expected_etags=None if condition.any_current else condition.tags,
            note=note,
        )
    # This process sees the change at once; the others within the directory's TTL.
    services().sites.forget(slug)
    return _answer(rules)


def _answer(rules: Rules) -> Response:
    body = json.dumps(rules.policy.model_dump(mode="json"))
    response = Response(body, status=200, mimetype="application/json")
    response.headers["ETag"] = rules.etag
    return response
