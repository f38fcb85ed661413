"""Logging: one line per event on stdout, with the request and task ids on every line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from service.logs import (
    REQUEST_ID_HEADER,
    bind_request_id,
    bind_task_id,
    configure_logging,
    install_request_ids,
    request_id_var,
    task_id_var,
)
from service.settings import Settings


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _settings(**changes: object) -> Settings:
    return Settings.model_validate(
        {"database_url": "sqlite://", "secret_key": "x" * 40, "environment": "test", **changes}
    )


def test_json_lines_carry_both_ids_and_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(_settings(log_json=True))
    request_token, task_token = bind_request_id("req-1"), bind_task_id("task-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("some.module").exception("it failed for %s", "comment-9")
    finally:
        task_id_var.reset(task_token)
        request_id_var.reset(request_token)
    logging.getLogger("other").warning("outside")

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "it failed for comment-9"
    assert (first["request_id"], first["task_id"]) == ("req-1", "task-1")
    assert first["logger"] == "some.module"
    assert first["level"] == "ERROR"
    assert "ValueError: boom" in first["exc_info"]
    assert (second["request_id"], second["task_id"]) == ("-", "-")


def test_text_lines_stay_one_line_and_configuring_twice_does_not_double(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(_settings())
    configure_logging(_settings(log_level="debug"))
    try:
        raise RuntimeError("two\nlines")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    logging.getLogger("x").debug("debug is on")

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "ERROR x request_id=- task_id=- failed\\nTraceback" in lines[0]
    assert lines[1].endswith("DEBUG x request_id=- task_id=- debug is on")


def test_requests_get_an_id_echoed_in_the_response_and_on_their_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(_settings())
    app = Flask("test")
    install_request_ids(app)

    @app.get("/")
    def index() -> str:
        logging.getLogger("view").info("serving")
        return request_id_var.get() or ""

    client = app.test_client()
    given = client.get("/", headers={REQUEST_ID_HEADER: "abc-123"})
    assert given.headers[REQUEST_ID_HEADER] == "abc-123" == given.text
    assert "request_id=abc-123 task_id=- serving" in capsys.readouterr().out

    fresh = client.get("/", headers={REQUEST_ID_HEADER: "<script>" * 3})
    assert fresh.headers[REQUEST_ID_HEADER] == fresh.text
    assert len(fresh.text) == 32
    assert fresh.text != "abc-123"

    assert request_id_var.get() is None
