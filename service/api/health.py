"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work)."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response
from sqlalchemy import text

from service.api.context import services

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@bp.get("/readyz")
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
