"""The ceiling the queue and thread view are measured against: the least a reading endpoint
can do on this machine with this stack.

``create_app()`` is a bare Flask app with ``GET /ceiling/<id>``: one SELECT of a comment
by primary key (one transaction, through the same engine factory and pool as the API),
its row as JSON, ``200``. No authentication, no validation, no logging. Run under the same
gunicorn options as the API by ``bench/queue.py``.
"""

from __future__ import annotations

import json
import uuid

from flask import Flask, Response
from sqlalchemy import text

from service.db import make_engine
from service.settings import Settings

_SELECT = text(
    "SELECT id, site_id, thread, status, score, content, created_at FROM comments WHERE id = :id"
)


def create_app() -> Flask:
    """The ceiling endpoint, configured from the environment like the API."""
    engine = make_engine(Settings())
    app = Flask("commentguard-bench-queue-ceiling")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    @app.get("/ceiling/<comment_id>")
    def read(comment_id: str) -> Response:
        with engine.begin() as connection:
            row = connection.execute(_SELECT, {"id": uuid.UUID(comment_id)}).one()
        body = {
            "id": str(row.id),
            "site_id": row.site_id,
            "thread": row.thread,
            "status": row.status,
            "score": row.score,
            "content": row.content,
            "created_at": row.created_at.isoformat(),
        }
        return Response(json.dumps(body), status=200, mimetype="application/json")

    return app
