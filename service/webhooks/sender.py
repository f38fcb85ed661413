"""Sending one webhook request: resolve, check, connect, POST, and judge the answer.

No redirects are followed, no proxy is used (``http.client`` reads no proxy variables),
and the request goes to an address checked just before (``targets.check_addresses``),
never to one resolved again behind the check's back: the socket is opened here, to that
address, and handed to ``http.client``. One attempt takes ``timeout`` seconds at most,
all of it together (a watchdog shuts the socket at the deadline, so a receiver that
drips its answer a byte at a time cannot hold a worker).

What an answer means (:func:`judge`): 2xx delivered; 408, 429 and 5xx, network errors
and timeouts are worth a retry (a ``Retry-After`` is passed on); anything else (other
4xx, 3xx, 1xx) fails the delivery without a retry, since sending the same request again
would get the same answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import enum
import functools
import http.client
import importlib.metadata
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.webhooks.signature import SIGNATURE_HEADER, signature_header
from service.webhooks.targets import (
    ResolutionFailed,
    Resolver,
    TargetRefused,
    check_addresses,
    parse_url,
    resolve,
)

#: The most of an answer's body kept (in the delivery log's ``last_error``).
EXCERPT_BYTES = 512
#: The event's type (``comment.classified``), its id (the idempotency id: the same on
#: every attempt and redelivery) and the delivery's id (one per hook and attempt series).
EVENT_HEADER = "Commentguard-Event"
EVENT_ID_HEADER = "Commentguard-Event-Id"
DELIVERY_HEADER = "Commentguard-Delivery"


class Outcome(enum.StrEnum):
    delivered = "delivered"
    retry = "retry"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class Result:
    """One attempt's outcome: ``status_code`` when the receiver answered, ``error`` (a
    line for the delivery log) unless delivered, ``retry_after`` (seconds) when the
    answer said when to come back."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


@functools.cache
def user_agent() -> str:
    """``Commentguard-Webhooks/<the installed version>``."""
    try:
        version = importlib.metadata.version("commentguard")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"Commentguard-Webhooks/{version}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the system's CA certificates costs milliseconds: once per process. The
    # context is only read afterwards, which is thread-safe.
    return ssl.create_default_context()


def send(
    url: str,
    body: bytes,
    *,
    event_type: str,
    event_id: str,
    delivery_id: int,
    secrets: Sequence[str],
    allow_private: bool,
    timeout: float,
    now: float | None = None,
) -> Result:
    """Sign ``body`` with ``secrets`` at ``now`` (default: the clock) and :func:`post` it
    with the event's headers."""
    timestamp = int(time.time() if now is None else now)
    headers = {
        EVENT_HEADER: event_type,
        EVENT_ID_HEADER: event_id,
        DELIVERY_HEADER: str(delivery_id),
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
    }
    return post(url, body, headers, allow_private=allow_private, timeout=timeout)


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool,
    timeout: float,
    resolver: Resolver | None = None,
    tls: ssl.SSLContext | None = None,
) -> Result:
    """POST ``body`` to ``url`` with ``headers`` (plus Host, Content-Length and
    User-Agent); the :class:`Result`. Never raises for what the network or the receiver
    does: every such failure is a result."""
    deadline = time.monotonic() + timeout
    try:
        target = parse_url(url, allow_private=allow_private)
    except TargetRefused as exc:
        return Result(Outcome.failed, error=f"refused: the URL {exc.reason}")
    try:
        addresses = resolve(target.host, target.port, timeout=timeout, resolver=resolver)
    except ResolutionFailed as exc:
        return Result(Outcome.retry, error=str(exc))
    try:
        check_addresses(target.host, addresses, allow_private=allow_private)
    except TargetRefused as exc:
        return Result(Outcome.failed, error=f"refused: {exc.reason}")

    error = f"timed out after {timeout:g} s"
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            sock = socket.create_connection((str(address), target.port), timeout=left)
        except TimeoutError:
            error = f"connecting to {address} port {target.port} timed out"
            continue
        except OSError as exc:
            error = f"connecting to {address} port {target.port}: {exc.strerror or exc}"
            continue
        return _exchange(
            sock,
            target.scheme,
            target.host,
            target.port,
            target.path,
            body,
            headers,
            deadline=deadline,
            timeout=timeout,
            tls=tls,
        )
    return Result(Outcome.retry, error=error)


def _exchange(
    sock: socket.socket,
    scheme: str,
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float,
    timeout: float,
    tls: ssl.SSLContext | None,
) -> Result:
    """The request and its answer over ``sock`` (connected), by ``deadline``."""

    def shut() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), shut)
    watchdog.daemon = True
    watchdog.start()
    connection: http.client.HTTPConnection | None = None
    try:
        if scheme == "https":
            wrapped: socket.socket = (tls or _tls_context()).wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPSConnection(host, port, timeout=timeout)
        else:
            wrapped = sock
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        # Set, the socket is used as it is: http.client does not connect (nor resolve).
        connection.sock = wrapped
        sent = {
            "User-Agent": user_agent(),
            "Content-Type": "application/json",
            "Connection": "close",
            **headers,
        }
        connection.request("POST", path, body=body, headers=sent)
        answer = connection.getresponse()
        excerpt = answer.read(EXCERPT_BYTES)
        return judge(
            answer.status,
            excerpt,
            retry_after=answer.getheader("Retry-After"),
            location=answer.getheader("Location"),
        )
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if time.monotonic() >= deadline - 0.01 or isinstance(exc, TimeoutError):
            return Result(Outcome.retry, error=f"timed out after {timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return Result(Outcome.retry, error=f"TLS: {exc.reason or exc}")
        return Result(Outcome.retry, error=f"{type(exc).__name__}: {exc}")
    finally:
        watchdog.cancel()
        if connection is not None:
            connection.close()
        else:
            sock.close()


def judge(
    status: int,
    excerpt: bytes = b"",
    *,
    retry_after: str | None = None,
    location: str | None = None,
    now: dt.datetime | None = None,
) -> Result:
    """What the receiver's answer means (see the module docstring)."""
    if 200 <= status < 300:
        return Result(Outcome.delivered, status_code=status)
    text = _clean(excerpt)
    if status in (408, 429) or status >= 500:
        return Result(
            Outcome.retry,
            status_code=status,
            error=f"HTTP {status}" + (f": {text}" if text else ""),
            retry_after=parse_retry_after(retry_after, now=now),
        )
    if 300 <= status < 400:
        where = f" (Location: {_clean(location.encode()[:300])})" if location else ""
        return Result(
            Outcome.failed,
            status_code=status,
            error=f"HTTP {status}: redirects are not followed{where}; register the final URL",
        )
    return Result(
        Outcome.failed,
        status_code=status,
        error=f"HTTP {status}" + (f": {text}" if text else "") + " (not retried)",
    )


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """A ``Retry-After`` (seconds, or an HTTP date) as seconds from now; None when absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), 10**9))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _clean(raw: bytes) -> str:
    """Printable, storable text from an answer's first bytes (no NUL, no line breaks)."""
    text = raw.decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())[:300]
