"""The ceiling the comment pipeline is measured against: the least an accepting endpoint
can do on this machine with this stack.

``create_app()`` is a bare Flask app with ``POST /ceiling``: parse the JSON body, one
INSERT into the scratch table :data:`SCRATCH_TABLE` (one transaction, through the same
engine factory and pool as the API), one enqueue through the same Celery app factory as
the API (a task no worker runs, on a queue no worker consumes, so that no worker time is
spent), then ``202`` with the id in JSON and ``Location``. ``POST /ceiling/check`` is
the same for an Akismet comment-check (``bench/akismet.py``): parse the form-encoded
body, the same INSERT, ``200 false`` in plain text, and no enqueue (a check enqueues
nothing). Nothing else: no authentication, validation, domain checks or logging. Run
under the same gunicorn options as the API by ``bench/pipeline.py`` and
``bench/akismet.py``, which create the table (:data:`SCRATCH_DDL`, or
:data:`SCRATCH_DDL_SQLITE` on the embedded default).
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable

from flask import Flask, Response, request
from sqlalchemy import text

from service.db import make_engine
from service.queue import make_celery
from service.settings import Settings

SCRATCH_TABLE = "bench_ceiling"
CEILING_QUEUE = "bench-ceiling"
CEILING_TASK = "bench.ceiling_noop"

#: Shaped like a comment row's hot columns, so that the INSERT writes about as much.
SCRATCH_DDL = f"""
CREATE TABLE {SCRATCH_TABLE} (
    id uuid PRIMARY KEY,
    site text NOT NULL,
    thread text NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

#: The same table on SQLite (the embedded default, ``bench/akismet.py``), which has no
#: ``now()`` and stores a uuid as text.
SCRATCH_DDL_SQLITE = f"""
CREATE TABLE {SCRATCH_TABLE} (
    id text PRIMARY KEY,
    site text NOT NULL,
    thread text NOT NULL,
    content text NOT NULL,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""

_INSERT = text(
    f"INSERT INTO {SCRATCH_TABLE} (id, site, thread, content) "  # noqa: S608  (constant)
    "VALUES (:id, :site, :thread, :content)"
)


def create_app() -> Flask:
    """The ceiling endpoint, configured from the environment like the API."""
    settings = Settings()
    # As the API: no ping on each checkout.
    engine = make_engine(settings, pool_pre_ping=False)
    celery = make_celery(settings)
    # sqlite3 binds no uuid objects.
    as_id: Callable[[uuid.UUID], object] = (
        (lambda value: value) if engine.dialect.name == "postgresql" else str
    )
    app = Flask("commentguard-bench-ceiling")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    @app.post("/ceiling")
    def accept() -> Response:
        body = json.loads(request.get_data())
        row_id = uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                _INSERT,
                {
                    "id": as_id(row_id),
                    "site": body["site"],
                    "thread": body["thread"],
                    "content": body["content"],
                },
            )
        celery.send_task(CEILING_TASK, args=[str(row_id)], queue=CEILING_QUEUE)
        response = Response(
            json.dumps({"id": str(row_id)}), status=202, mimetype="application/json"
        )
        response.headers["Location"] = f"/ceiling/{row_id}"
        return response

    @app.post("/ceiling/check")
    def check() -> Response:
        # What an Akismet comment-check cannot do without: parse the form, one INSERT in
        # one transaction, a plain-text answer. No enqueue: a check enqueues nothing.
        form = urllib.parse.parse_qs(request.get_data().decode("latin-1"))
        with engine.begin() as connection:
            connection.execute(
                _INSERT,
                {
                    "id": as_id(uuid.uuid4()),
                    "site": form["blog"][0],
                    "thread": form["permalink"][0],
                    "content": form["comment_content"][0],
                },
            )
        return Response("false", status=200, mimetype="text/plain")

    return app
