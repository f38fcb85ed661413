"""A site's rules: ``GET /v1/sites/{site}/rules`` (moderators) with an ``ETag``;
``PUT`` (replace) and ``PATCH`` (merge) for its admins, with ``If-Match``."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from service.api.conditional import if_match
from service.api.context import authorize, credentials, json_body, services, transaction
from service.api.moderation_schemas import RulesIn
from service.api.spec import ETAG, IF_MATCH, SITE, Access, Reply, body_of, operation
from service.auth.roles import Role
from service.moderation.policy import SitePolicy
from service.moderation.rules import Rules, change_rules, read_rules

bp = Blueprint("rules", __name__, url_prefix="/v1/sites/<slug>/rules")


RULES = Reply("The site's rules.", SitePolicy, headers=(ETAG,))
CHANGE_ERRORS = {
    404: "unknown site",
    412: "If-Match does not name the rules' current ETag (the current one is sent)",
    422: "invalid fields (each named), unordered thresholds, or a refused pattern",
    428: "no If-Match",
}


@bp.get("")
@operation(
    "Read a site's rules",
    tag="moderation",
    access=Access.moderator,
    path={"slug": SITE},
    responses={200: RULES},
    errors={404: "unknown site"},
)
def get_rules(slug: str) -> Response:
    token = credentials()
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        authorize(session, site, token, role=Role.moderator)
        rules = read_rules(session, site_id=site.id)
    return _answer(rules)


@bp.put("")
@operation(
    "Replace a site's rules",
    tag="moderation",
    access=Access.admin,
    body=RulesIn,
    body_name="rules change",
    path={"slug": SITE},
    headers=(IF_MATCH,),
    responses={200: RULES},
    errors=CHANGE_ERRORS,
)
def put_rules(slug: str) -> Response:
    """Replace the rules (fields left out take their defaults)."""
    return _change(slug, replace=True)


@bp.patch("")
@operation(
    "Change some of a site's rules",
    tag="moderation",
    access=Access.admin,
    body=RulesIn,
    body_name="rules change",
    path={"slug": SITE},
    headers=(IF_MATCH,),
    responses={200: RULES},
    errors=CHANGE_ERRORS,
)
def patch_rules(slug: str) -> Response:
    """Change the fields given, keep the others."""
    return _change(slug, replace=False)


def _change(slug: str, *, replace: bool) -> Response:
    token = credentials()
    condition = if_match("send If-Match with the rules' ETag (from GET)")
    raw = json_body()
    with transaction() as session:
        site = services().sites.get(session, slug=slug)
        actor = authorize(session, site, token, role=Role.admin)
        # After the role check, as before: a caller without it learns nothing of the rules.
        given = body_of(RulesIn, raw, root="rules")
        rules = change_rules(
            session,
            site_id=site.id,
            changes=given.model_dump(mode="json", exclude_unset=True, exclude={"note"}),
            replace=replace,
            actor=actor,
            expected_etags=None if condition.any_current else condition.tags,
            note=given.note,
        )
    # This process sees the change at once; the others within the directory's TTL.
    services().sites.forget(slug)
    return _answer(rules)


def _answer(rules: Rules) -> Response:
    body = json.dumps(rules.policy.model_dump(mode="json"))
    response = Response(body, status=200, mimetype="application/json")
    response.headers["ETag"] = rules.etag
    return response
