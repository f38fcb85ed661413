"""A live Commentguard API on a real HTTP server, and the PyPI ``akismet`` client pointed
at it the way the client supports: its ``http_client`` argument, an ``httpx.Client``
whose transport sends what the client addresses to Akismet's host to this server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from flask import Flask
from werkzeug.serving import make_server

#: The test sites' URL, what Akismet clients send as ``blog``.
BLOG = "https://blog.example"
#: Thresholds no score reaches: a check's outcome is the policy's rules', never the
#: classifier's (which other work changes).
NEVER_BY_SCORE: dict[str, Any] = {
    "hold_threshold": 1.0,
    "spam_threshold": 1.0,
    "discard_threshold": 1.0,
}
#: Thresholds every score reaches: spam, past the discard threshold.
ALWAYS_DISCARD: dict[str, Any] = {
    "hold_threshold": 0.0,
    "spam_threshold": 0.0,
    "discard_threshold": 0.0,
}


class CommentguardTransport(httpx.BaseTransport):
    """Sends every request to ``base_url``'s scheme, host and port, keeping its path and
    query: the Akismet client addresses ``https://rest.akismet.com/1.1/...``, and this is
    how an ``httpx.Client`` redirects it (the same few lines point the client at a
    self-hosted Commentguard: see docs/akismet.md)."""

    def __init__(self, base_url: str) -> None:
        self._base = httpx.URL(base_url)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port
        )
        request.headers["Host"] = self._base.netloc.decode("ascii")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """``app`` served on a free port of 127.0.0.1 by a threaded WSGI server in this
    process for the block; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
