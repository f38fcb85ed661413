"""Text a database can store faithfully: PostgreSQL refuses NUL in text and JSONB, and a
lone UTF-16 surrogate cannot be encoded as UTF-8. Checked before anything is written, so
that such input is invalid input (422), never a database error (500)."""

from __future__ import annotations


def storable_text(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` saying why it cannot be stored (the message
    is meant for a field error)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it contains a lone surrogate)") from None
    return value
