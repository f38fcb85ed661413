"""Signatures: what the service sends verifies with the receiver's helper, and nothing
else does; the algorithm is the one the docs spell out."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from service.webhooks.signature import (
    SECRET_PREFIX,
    SignatureError,
    compute_signature,
    new_secret,
    signature_header,
    verify,
)

SECRET = "whsec_test-secret"
BODY = b'{"id":"4f0c","type":"comment.classified"}'
T = 1_733_415_227


def test_a_signed_body_verifies_and_gives_its_timestamp() -> None:
    header = signature_header([SECRET], T, BODY)
    assert verify(BODY, header, SECRET, now=T + 10) == T


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body_in_hex() -> None:
    # What docs/webhooks.md tells receivers in any language to compute.
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, T, BODY) == expected
    assert signature_header([SECRET], T, BODY) == f"t={T},v1={expected}"


def test_a_str_body_is_its_utf8() -> None:
    header = signature_header([SECRET], T, "é".encode())
    assert verify("é", header, SECRET, now=T) == T


@pytest.mark.parametrize(
    ("body", "secret", "match"),
    [
        (BODY + b" ", SECRET, "no signature matches"),
        (BODY, "whsec_another", "no signature matches"),
    ],
)
def test_another_body_or_secret_is_refused(body: bytes, secret: str, match: str) -> None:
    header = signature_header([SECRET], T, BODY)
    with pytest.raises(SignatureError, match=match):
        verify(body, header, secret, now=T)


@pytest.mark.parametrize("skew", [-301, 301, 10_000])
def test_a_timestamp_outside_the_tolerance_is_refused(skew: int) -> None:
    header = signature_header([SECRET], T, BODY)
    with pytest.raises(SignatureError, match="beyond 300 s"):
        verify(BODY, header, SECRET, now=T + skew)
    assert verify(BODY, header, SECRET, now=T + skew, tolerance=abs(skew)) == T


def test_a_changed_timestamp_breaks_the_signature() -> None:
    header = signature_header([SECRET], T, BODY).replace(f"t={T}", f"t={T + 60}")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(BODY, header, SECRET, now=T + 60)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "no Commentguard-Signature header"),
        ("", "no Commentguard-Signature header"),
        ("v1=abc", "no timestamp"),
        (f"t={T}", "no v1 signature"),
        (f"t=soon,v1={'0' * 64}", "no timestamp"),
        (f"t={T},v0={'0' * 64}", "no v1 signature"),
        ("t=1," + "v1=0," * 1000, "too long"),
    ],
)
def test_a_malformed_header_is_refused(header: str | None, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        verify(BODY, header, SECRET, now=T)


def test_during_a_rotation_either_secret_verifies() -> None:
    header = signature_header(["whsec_new", "whsec_old"], T, BODY)
    assert header.count("v1=") == 2
    assert verify(BODY, header, "whsec_new", now=T) == T
    assert verify(BODY, header, "whsec_old", now=T) == T
    # A receiver switching over may hold both.
    assert verify(BODY, signature_header(["whsec_new"], T, BODY), ["whsec_old", "whsec_new"], now=T)


def test_new_secrets_are_prefixed_random_and_long() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    assert all(s.startswith(SECRET_PREFIX) and len(s) >= len(SECRET_PREFIX) + 43 for s in made)
