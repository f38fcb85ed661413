"""A real HTTP server on 127.0.0.1 that receives webhooks (and serves downloads): it
records every request (POST or GET) and answers from a script, so a test can make it
fail, slow, redirect or go away."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.wait import wait_until


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: ``time.monotonic()`` when it arrived.
    at: float
    #: The status it was answered with.
    status: int


@dataclass(frozen=True)
class Answer:
    """How to answer one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    #: Seconds to wait before answering.
    delay: float = 0.0


class Receiver:
    """``start()`` listens on 127.0.0.1 (a free port, kept across restarts); ``stop()``
    closes it (nothing listens: connections are refused). Answers come from ``script``
    (``answer(...)`` appends), then ``default``. Thread-safe."""

    def __init__(self) -> None:
        self.port = 0
        self.default = Answer()
        self._script: deque[Answer] = deque()
        self._received: list[Received] = []
        self._arrived = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order."""
        with self._lock:
            self._script.extend(answers)

    @property
    def arrived(self) -> int:
        """Requests whose body has been read (answered or not yet)."""
        with self._lock:
            return self._arrived

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_for(
        self, count: int, *, timeout: float = 30.0, path: str | None = None
    ) -> list[Received]:
        """The requests (to ``path``, when given) once there are at least ``count``."""

        def enough() -> list[Received] | None:
            found = [r for r in self.received if path is None or r.path == path]
            return found if len(found) >= count else None

        return wait_until(
            enough,
            timeout=timeout,
            interval=0.05,
            message=lambda: f"{count} request(s) at the receiver; it has {len(self.received)}",
        )

    def start(self) -> None:
        assert self._server is None, "the receiver is running already"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver._arrived += 1
                answer = receiver._next()
                if answer.delay:
                    time.sleep(answer.delay)
                with receiver._lock:
                    receiver._received.append(
                        Received(
                            method=method,
                            path=self.path,
                            headers=dict(self.headers.items()),
                            body=body,
                            at=time.monotonic(),
                            status=answer.status,
                        )
                    )
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the sender gave up (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _next(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else self.default


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
