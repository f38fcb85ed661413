"""Logging: stdout, one line per event, with the request id and the task id on every line.

The ids live in context variables, so that any logger anywhere (the domain, SQLAlchemy,
Celery) gets them without being handed them: the API binds ``request_id`` per request
(``install_request_ids``), the worker binds ``task_id`` per task (Celery's
``task_prerun``/``task_postrun`` signals, wired in ``workers/celery_app.py``). A line
logged outside a request or a task carries ``-``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import uuid
from typing import TYPE_CHECKING, Any

from service.settings import Settings

if TYPE_CHECKING:
    from flask import Flask, Response

#: The id of the HTTP request being served (or, in a worker, of the request that enqueued
#: the task being run), else None.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "commentguard_request_id", default=None
)
#: The id of the Celery task being run, else None.
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "commentguard_task_id", default=None
)

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed into logs and a response header: accept only short, plain ones.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HANDLER_NAME = "commentguard-stdout"
_G_ATTRIBUTE = "_commentguard_request_id_token"


def bind_request_id(value: str | None = None) -> contextvars.Token[str | None]:
    """Make ``value`` (or a fresh random id) the current request id.

    A ``value`` that is not 1-128 characters of ``[A-Za-z0-9._:-]`` is replaced by a fresh
    id. Returns the token to pass to ``request_id_var.reset`` when the request ends.
    """
    if value is None or not _ACCEPTABLE_REQUEST_ID.match(value):
        value = uuid.uuid4().hex
    return request_id_var.set(value)


def bind_task_id(value: str | None) -> contextvars.Token[str | None]:
    """Make ``value`` the current task id; reset with ``task_id_var.reset(token)``."""
    return task_id_var.set(value)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``task_id`` to every record that passes (``-`` if unbound).

    Installed on the handler rather than on a logger: handler filters see the records of
    every logger that propagates to the root, logger filters only their own logger's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        record.task_id = task_id_var.get() or "-"
        return True


TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s task_id=%(task_id)s %(message)s"
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, task_id, and
    ``exc_info`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "task_id": getattr(record, "task_id", "-"),
        }
        if record.exc_info:
            event["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(event, ensure_ascii=False, default=str)


class SingleLineFormatter(logging.Formatter):
    """The text format, with tracebacks folded onto the event's line (``\\n`` escaped), so
    that a line-oriented collector never splits one event into many."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def configure_logging(settings: Settings) -> None:
    """Send every logger's records to stdout, one line per event, at ``settings.log_level``.

    JSON lines when ``settings.log_json``, else ``TEXT_FORMAT``. Idempotent: calling it
    again (the API factory and a worker may both run in one test process) replaces this
    module's handler instead of adding a second one; handlers others installed on the root
    logger are left alone.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if settings.log_json else SingleLineFormatter(TEXT_FORMAT))

    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def install_request_ids(app: Flask) -> None:
    """Give each request of ``app`` an id: the caller's ``X-Request-ID`` when acceptable,
    else a fresh one. It is bound for the request's log lines (and passed on with the tasks
    the request enqueues) and echoed in the response's ``X-Request-ID`` header."""
    from flask import g, request

    def bind() -> None:
        setattr(g, _G_ATTRIBUTE, bind_request_id(request.headers.get(REQUEST_ID_HEADER)))

    def echo(response: Response) -> Response:
        current = request_id_var.get()
        if current is not None:
            response.headers[REQUEST_ID_HEADER] = current
        return response

    def unbind(_exc: BaseException | None) -> None:
        token = g.pop(_G_ATTRIBUTE, None)
        try:
            if token is not None:
                request_id_var.reset(token)
        except ValueError:
            # The token belongs to another context (an async view ran in its own): clear
            # the id instead so it cannot leak into whatever this thread serves next.
            request_id_var.set(None)

    app.before_request(bind)
    app.after_request(echo)
    app.teardown_request(unbind)
