"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work)."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response
from sqlalchemy import text

from service.api.context import services
from service.api.schemas import HealthOut, ReadyOut
from service.api.spec import Access, Header, Reply, operation

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation(
    "Is the process up",
    tag="health",
    access=Access.public,
    responses={200: Reply("The process answers.", HealthOut)},
    reads_database=False,
)
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@bp.get("/readyz")
@operation(
    "Can the process do its work",
    tag="health",
    access=Access.public,
    responses={
        200: Reply("The database, the broker and the classifier are ready.", ReadyOut),
        503: Reply(
            "Something is not ready: `checks` names what.",
            ReadyOut,
            headers=(Header("Retry-After", "Seconds.", {"type": "integer"}, required=True),),
        ),
    },
    reads_database=False,
)
def readyz() -> Response:
    """200 when the database answers, the broker answers and the classifier is loaded;
    otherwise 503 naming what is not ready (with ``Retry-After``)."""
    checks: dict[str, str] = {}
    try:
        with services().sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("readiness: database unavailable: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    checks["broker"] = "ok" if services().queue.ping() else "unavailable"
    classifier_ok, detail = services().classifier.ready()
    checks["classifier"] = detail if classifier_ok else f"unavailable: {detail}"
    ready = checks["database"] == "ok" and checks["broker"] == "ok" and classifier_ok
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    response = Response(json.dumps(body), status=200 if ready else 503, mimetype="application/json")
    if not ready:
        response.headers["Retry-After"] = "5"
    return response
