"""One attempt against a real HTTP server on 127.0.0.1: what is sent, how each answer is
judged, and where the sender refuses to connect."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from service.webhooks.sender import Outcome, judge, parse_retry_after, post, send, user_agent
from service.webhooks.signature import verify
from tests.support.receiver import Answer, Receiver, running_receiver

BODY = json.dumps({"id": "e1", "type": "comment.classified"}).encode()
SECRET = "whsec_sender-test"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def _send(url: str, *, allow_private: bool = True, timeout: float = 3.0) -> Any:
    return send(
        url,
        BODY,
        event_type="comment.classified",
        event_id="e1",
        delivery_id=42,
        secrets=[SECRET],
        allow_private=allow_private,
        timeout=timeout,
    )


def test_a_2xx_is_delivered_with_the_event_headers_and_a_signature_that_verifies(
    receiver: Receiver,
) -> None:
    result = _send(receiver.url("/in?x=1"))

    assert result.outcome is Outcome.delivered
    assert result.status_code == 200
    [got] = receiver.received
    assert got.path == "/in?x=1"
    assert got.body == BODY
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == user_agent()
    assert user_agent().startswith("Commentguard-Webhooks/")
    assert got.headers["Commentguard-Event"] == "comment.classified"
    assert got.headers["Commentguard-Event-Id"] == "e1"
    assert got.headers["Commentguard-Delivery"] == "42"
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    timestamp = verify(got.body, got.headers["Commentguard-Signature"], SECRET)
    assert abs(timestamp - time.time()) < 10


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_5xx_408_and_429_are_worth_a_retry(receiver: Receiver, status: int) -> None:
    receiver.answer(Answer(status, body=b"busy\x00 now\n"))
    result = _send(receiver.url())
    assert result.outcome is Outcome.retry
    assert result.status_code == status
    assert result.error == f"HTTP {status}: busy now"


def test_retry_after_is_passed_on(receiver: Receiver) -> None:
    receiver.answer(Answer(429, headers={"Retry-After": "7"}))
    assert _send(receiver.url()).retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_fail_without_a_retry(receiver: Receiver, status: int) -> None:
    receiver.answer(Answer(status, body=b"no such hook"))
    result = _send(receiver.url())
    assert result.outcome is Outcome.failed
    assert result.error == f"HTTP {status}: no such hook (not retried)"


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.answer(Answer(302, headers={"Location": receiver.url("/elsewhere")}))
    result = _send(receiver.url("/old"))
    assert result.outcome is Outcome.failed
    assert result.status_code == 302
    assert "redirects are not followed" in (result.error or "")
    time.sleep(0.2)
    assert [r.path for r in receiver.received] == ["/old"]


def test_an_answer_slower_than_the_timeout_is_a_retry_within_the_timeout(
    receiver: Receiver,
) -> None:
    receiver.answer(Answer(200, delay=3.0))
    started = time.monotonic()
    result = _send(receiver.url(), timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert result.outcome is Outcome.retry
    assert result.error == "timed out after 0.5 s"


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_timeout() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    import threading

    def drip() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                try:
                    connection.send(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        result = _send(f"http://127.0.0.1:{port}/", timeout=1.0)
    finally:
        server.close()
    assert time.monotonic() - started < 2.5
    assert result.outcome is Outcome.retry
    assert "timed out" in (result.error or "")


def test_nothing_listening_is_a_retry(receiver: Receiver) -> None:
    url = receiver.url()
    receiver.stop()
    result = _send(url)
    assert result.outcome is Outcome.retry
    assert "connecting to 127.0.0.1" in (result.error or "")
    assert "refused" in (result.error or "").lower()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_without_a_connection_unless_private_targets_are_allowed(
    receiver: Receiver, host: str
) -> None:
    result = _send(receiver.url(host=host).replace("http://", "https://"), allow_private=False)
    assert result.outcome is Outcome.failed
    assert "loopback" in (result.error or "")
    assert (result.error or "").startswith("refused: ")
    assert receiver.received == []


def test_http_is_refused_unless_private_targets_are_allowed(receiver: Receiver) -> None:
    result = _send(receiver.url(), allow_private=False)
    assert result.outcome is Outcome.failed
    assert result.error == (
        "refused: the URL must be an https URL (http only where the site allows private targets)"
    )
    assert receiver.received == []


def test_the_address_checked_is_the_address_connected_to(receiver: Receiver) -> None:
    # DNS rebinding: a name that was public when the hook was registered answers with a
    # loopback address now. The sender resolves once, checks what it got, and connects to
    # exactly that; it never asks the resolver again behind the check's back.
    asked: list[str] = []

    def rebinding(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    result = post(
        f"https://hooks.rebind.test:{receiver.port}/hook",
        BODY,
        {},
        allow_private=False,
        timeout=3,
        resolver=rebinding,
    )
    assert result.outcome is Outcome.failed
    assert result.error == (
        "refused: hooks.rebind.test resolves to 127.0.0.1, which is loopback; "
        "this site does not allow private targets"
    )
    assert asked == ["hooks.rebind.test"]
    assert receiver.received == []

    # Allowed, the same name is sent to the address the resolver gave (with its Host).
    result = post(
        f"http://hooks.rebind.test:{receiver.port}/hook",
        BODY,
        {},
        allow_private=True,
        timeout=3,
        resolver=rebinding,
    )
    assert result.outcome is Outcome.delivered
    assert receiver.received[0].headers["Host"] == f"hooks.rebind.test:{receiver.port}"


def test_tls_failures_are_a_retry(receiver: Receiver) -> None:
    # The receiver speaks plain HTTP: the TLS handshake fails.
    result = _send(receiver.url().replace("http://", "https://"))
    assert result.outcome is Outcome.retry
    assert result.error is not None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Wed, 01 Jan 2031 00:01:00 GMT", 60.0),
        ("Wed, 01 Jan 2031 00:00:00 GMT", 0.0),
        ("Tue, 31 Dec 2030 00:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    now = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after(value, now=now) == seconds


def test_judge_reads_each_kind_of_answer() -> None:
    assert judge(204).outcome is Outcome.delivered
    assert judge(101).outcome is Outcome.failed
    assert judge(304).outcome is Outcome.failed
    assert judge(503, retry_after="3").retry_after == 3.0
