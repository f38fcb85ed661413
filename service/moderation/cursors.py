"""Opaque, tamper-evident page cursors for keyset pagination.

A cursor is ``base64url(JSON).base64url(MAC)``: the JSON holds the position (the sort
key of the last item served) and a digest of the query it belongs to (the endpoint, the
site, the filters and the sort); the MAC is HMAC-SHA256 under a key derived from the
service's ``SECRET_KEY``, truncated to 128 bits. So a client can neither forge a position
nor carry a cursor over to another query: either is refused as invalid input (422), never
answered with a wrong page or a 500.

Logs read newest first by row id (the audit trail, a hook's deliveries) page with a
plainer cursor, :func:`encode_id_cursor`: the id of the last row served, under a letter
naming the log. Any id is a position a client may ask for, so it needs no MAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from service.moderation.errors import FieldError, InvalidInput

#: Longer cursors are refused before any decoding (ours are about 150 characters).
MAX_CURSOR_LENGTH = 1024
_MAC_BYTES = 16


def cursor_key(secret: str) -> bytes:
    """The key cursors are signed with: derived, so the secret itself signs nothing else."""
    return hmac.new(secret.encode(), b"commentguard page cursor v1", hashlib.sha256).digest()


def scope_of(*parts: object) -> str:
    """A short digest naming one query (endpoint, site, filters, sort)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def encode_cursor(key: bytes, *, scope: str, position: list[Any]) -> str:
    """The cursor for ``position`` (JSON-serialisable values) within the query ``scope``."""
    payload = json.dumps({"q": scope, "p": position}, separators=(",", ":")).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def decode_cursor(key: bytes, cursor: str, *, scope: str) -> list[Any]:
    """The position a cursor of ``encode_cursor(key, scope=scope, ...)`` holds.

    ``InvalidInput`` (field ``cursor``) when it is malformed, was not made here (bad MAC)
    or belongs to another query.
    """
    if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
        raise _invalid("is not a cursor this service made")
    encoded, encoded_mac = cursor.split(".")
    try:
        payload = _unb64(encoded)
        mac = _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise _invalid("is not a cursor this service made") from None
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise _invalid("is not a cursor this service made (or it was altered)")
    try:
        body = json.loads(payload)
    except ValueError:
        raise _invalid("is not a cursor this service made") from None
    if not isinstance(body, dict) or not isinstance(body.get("p"), list):
        raise _invalid("is not a cursor this service made")
    if body.get("q") != scope:
        raise _invalid("belongs to another query (sort, filters or site); start again without it")
    position: list[Any] = body["p"]
    return position


def encode_id_cursor(kind: str, row_id: int) -> str:
    """The cursor after the row ``row_id`` of the log named by the letter ``kind``."""
    return _b64(f"{kind}{row_id}".encode())


def decode_id_cursor(kind: str, cursor: str) -> int:
    """The row id an :func:`encode_id_cursor` cursor of ``kind`` holds. ``InvalidInput``
    (field ``cursor``, "not a cursor") when it is not one, or its id is not a row id (a
    positive BIGINT: a larger one would be a database error)."""
    try:
        raw = _unb64(cursor).decode()
        if not raw.startswith(kind) or len(raw) > 20:
            raise ValueError(raw)
        row_id = int(raw[len(kind) :])
        if not 0 < row_id < 2**63:
            raise ValueError(raw)
        return row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid("not a cursor") from None


def _invalid(message: str) -> InvalidInput:
    return InvalidInput("invalid cursor", [FieldError("cursor", message)])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not ASCII")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
