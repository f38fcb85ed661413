"""A token's claims as an identity the authors table can hold."""

from __future__ import annotations

import pytest
from sqlalchemy import String

from models import Author
from service.auth.claims import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SUBJECT_LENGTH,
    claimed_identity,
)

NAMES = ("name", "preferred_username")


@pytest.mark.parametrize(
    ("column", "limit"),
    [
        ("subject", MAX_SUBJECT_LENGTH),
        ("display_name", MAX_NAME_LENGTH),
        ("email", MAX_EMAIL_LENGTH),
    ],
)
def test_the_limits_are_the_authors_columns(column: str, limit: int) -> None:
    kind = Author.__table__.c[column].type
    assert isinstance(kind, String)
    assert kind.length == limit


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("s" * (MAX_SUBJECT_LENGTH + 1), "longer than 255"),
        ("a\x00b", "NUL"),
        ("lone \ud800", "surrogate"),
    ],
)
def test_a_subject_no_row_can_hold_is_refused(subject: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        claimed_identity({}, issuer="https://i.test", subject=subject, name_claims=NAMES)


def test_the_name_is_the_first_storable_one_cut_to_the_column() -> None:
    identity = claimed_identity(
        {"name": "bad\x00", "preferred_username": "p" * 300},
        issuer="https://i.test",
        subject="s" * MAX_SUBJECT_LENGTH,
        name_claims=NAMES,
    )
    assert identity.name == "p" * MAX_NAME_LENGTH
    assert identity.subject == "s" * MAX_SUBJECT_LENGTH


@pytest.mark.parametrize("email", ["e" * MAX_EMAIL_LENGTH + "@x.test", "a\x00@x.test", ""])
def test_an_email_no_row_can_hold_is_dropped_and_not_verified(email: str) -> None:
    identity = claimed_identity(
        {"email": email, "email_verified": True},
        issuer="https://i.test",
        subject="alice",
        name_claims=NAMES,
    )
    assert (identity.email, identity.email_verified) == (None, False)


def test_a_storable_email_is_kept_with_its_verification() -> None:
    identity = claimed_identity(
        {"email": "alice@x.test", "email_verified": "true", "name": "Alice"},
        issuer="https://i.test",
        subject="alice",
        name_claims=NAMES,
    )
    assert (identity.name, identity.email, identity.email_verified) == (
        "Alice",
        "alice@x.test",
        True,
    )
