"""Webhook signatures: how Commentguard signs a delivery, and how a receiver checks one.

This module needs nothing but the standard library, so a blog written in Python may copy
it (or install Commentguard) and call :func:`verify`. The algorithm, for any language:

1. Take the ``Commentguard-Signature`` header: ``t=<unix seconds>,v1=<hex>``, with one
   more ``v1=<hex>`` while a rotated secret is still honoured (see the docs).
2. Build the signed payload: the ``t`` value, a full stop, then the raw request body,
   byte for byte as received (before any JSON parsing): ``b"1733415227." + body``.
3. Compute HMAC-SHA256 of the payload with the webhook's secret as the key (the whole
   ``whsec_...`` string, as UTF-8 bytes), in lower-case hexadecimal.
4. Accept when it equals one of the ``v1`` values (compared in constant time) and ``t``
   is within the tolerance (5 minutes) of the receiver's clock; else answer 400.

The timestamp is part of what is signed, so a captured request cannot be replayed
outside the tolerance; within it, drop repeats by the ``Commentguard-Event-Id`` header
(which is also the body's ``id``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Sequence

#: The request header holding the timestamp and the signatures.
SIGNATURE_HEADER = "Commentguard-Signature"
#: The signature scheme: HMAC-SHA256 over ``"<t>.<body>"``, hexadecimal.
SCHEME = "v1"
#: How far a delivery's timestamp may be from the receiver's clock, in seconds.
DEFAULT_TOLERANCE_SECONDS = 300
#: Every secret the service makes starts so, which makes a leaked one easy to find.
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)

_MAX_HEADER_LENGTH = 4096


class SignatureError(ValueError):
    """The request is not signed by a holder of the secret (or not recently): answer 400."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + _secrets.token_urlsafe(32)


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature of ``body`` sent at ``timestamp`` (unix seconds)."""
    payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The ``Commentguard-Signature`` value: ``t=<timestamp>`` and one ``v1=`` per secret
    (the current one first)."""
    signatures = ",".join(f"{SCHEME}={compute_signature(s, timestamp, body)}" for s in secrets)
    return f"t={timestamp},{signatures}"


def verify(
    body: bytes | str,
    header: str | None,
    secret: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a delivery's signature; its timestamp (unix seconds) when it is good.

    ``body`` is the raw request body (a ``str`` is taken as its UTF-8 encoding; pass the
    bytes received when you have them: re-serialised JSON will not match). ``header`` is
    the ``Commentguard-Signature`` value. ``secret`` is the webhook's secret, or several
    (say, the old and the new one while you switch after a rotation). Raises
    :class:`SignatureError` when the header is missing or malformed, no ``v1`` signature
    matches, or the timestamp is more than ``tolerance`` seconds from ``now`` (default:
    this machine's clock) either way.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    if len(header) > _MAX_HEADER_LENGTH:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME and value:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError(f"the {SIGNATURE_HEADER} header has no timestamp (t=)")
    if not signatures:
        raise SignatureError(f"the {SIGNATURE_HEADER} header has no {SCHEME} signature")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"the timestamp is {current - timestamp:+.0f} s from now, beyond {tolerance:.0f} s"
        )
    raw = body.encode("utf-8") if isinstance(body, str) else body
    keys = [secret] if isinstance(secret, str) else list(secret)
    expected = [compute_signature(key, timestamp, raw) for key in keys]
    # Every pair is compared, in constant time each, whatever matches first.
    matched = False
    for candidate in signatures:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate.encode(), wanted.encode())
    if not matched:
        raise SignatureError("no signature matches the body and the secret")
    return timestamp
