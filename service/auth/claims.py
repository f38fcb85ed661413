"""The identity a verified token's claims name, held to what the authors table can store.

A token is the caller's input like any request body: its ``sub``, ``name`` and ``email``
become an author row and a comment's author fields. A subject the table cannot store
cannot identify anyone, so it refuses the token; a display name or an e-mail it cannot
store is only a nicety, so it is cut (a name) or dropped (an e-mail), never a database
error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.moderation.text import storable_text
from service.moderation.types import Identity

#: The lengths of the authors table's columns (``models/author.py``; a test holds them
#: equal): ``subject``, ``display_name`` and ``email``.
MAX_SUBJECT_LENGTH = 255
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320


def claimed_identity(
    claims: Mapping[str, Any], *, issuer: str, subject: str, name_claims: Sequence[str]
) -> Identity:
    """The identity (``issuer``, ``subject``) with ``claims``: its name is the first of
    ``name_claims`` that is storable non-empty text, cut to :data:`MAX_NAME_LENGTH`
    characters; its e-mail the ``email`` claim when that is storable text of at most
    :data:`MAX_EMAIL_LENGTH` characters (else none, and so not verified either).

    Raises ``ValueError`` (its message completes "the token's subject ...") when
    ``subject`` is longer than :data:`MAX_SUBJECT_LENGTH` or not storable text.
    """
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"is longer than {MAX_SUBJECT_LENGTH} characters")
    storable_text(subject)
    name = next(
        (
            value[:MAX_NAME_LENGTH]
            for value in (claims.get(key) for key in name_claims)
            if isinstance(value, str) and value and _storable(value)
        ),
        None,
    )
    email = claims.get("email")
    if not (isinstance(email, str) and email and len(email) <= MAX_EMAIL_LENGTH) or not (
        _storable(email)
    ):
        email = None
    verified = claims.get("email_verified")
    return Identity(
        issuer=issuer,
        subject=subject,
        name=name,
        email=email,
        # Some providers send the string "true"; anything else is not a verification.
        email_verified=email is not None and (verified is True or verified == "true"),
        roles=frozenset(),
        claims=dict(claims),
    )


def _storable(value: str) -> bool:
    try:
        storable_text(value)
    except ValueError:
        return False
    return True
