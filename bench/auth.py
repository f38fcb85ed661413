"""The cost of checking a bearer token with a warm key cache, and its ceiling.

    .venv/bin/python -m bench.auth [--calls 20000] [--algorithms RS256,ES256,EdDSA]

For each algorithm: an issuer on 127.0.0.1 (a stdlib HTTP server publishing an OpenID
Connect discovery document and a JWK Set, keys made here) signs an access token;
``TokenVerifier.verify`` is warmed once (discovery, JWKS fetch), then timed over
``--calls`` calls: ``verify`` with the verified-token cache off
(``COMMENTGUARD_TOKEN_CACHE_SECONDS=0``), so that every call checks the signature and the
claims as a token's first sight does (the target is judged on it), and ``cached`` with
the cache on (60 s), as a reader's later comments are. In the same run, on the same token
and key, the ceiling is measured:

* ``decode``: split the token, base64url-decode and JSON-parse its header and payload;
* ``signature``: the bare signature check with ``cryptography`` on the public key;
* ``ceiling``: both, one after the other: the least any verifier must do.

It prints p50 and p99 in milliseconds for each, and ``verify p50 / ceiling p50``.
The target is verify p50 <= 0.2 ms.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from service.auth.tokens import TokenVerifier
from service.settings import Settings

AUDIENCE = "https://bench.commentguard.test"
TARGET_P50_MS = 0.2


def _private_key(algorithm: str) -> Any:
    if algorithm in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise SystemExit(f"unknown algorithm {algorithm}")


def _jwk(algorithm: str, public: Any) -> dict[str, Any]:
    if algorithm in ("RS256", "PS256"):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif algorithm == "ES256":
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**data, "kid": f"{algorithm.lower()}-1", "use": "sig", "alg": algorithm}


@contextmanager
def _issuer(jwks: dict[str, Any]) -> Iterator[str]:
    """An issuer on 127.0.0.1 serving discovery and ``jwks``; yields its URL."""
    state: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": state["url"], "jwks_uri": state["url"] + "/jwks"}
            elif self.path == "/jwks":
                body = jwks
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state["url"]
    finally:
        server.shutdown()
        server.server_close()


def _timed(call: Callable[[], object], calls: int) -> list[float]:
    """Milliseconds per call, each timed alone, garbage collection off while timing."""
    for _ in range(min(1000, calls)):
        call()
    samples: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            start = time.perf_counter_ns()
            call()
            samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        gc.enable()
    return samples


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature_check(algorithm: str, public: Any) -> Callable[[bytes, bytes], None]:
    if algorithm == "RS256":
        return lambda sig, data: public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    if algorithm == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda sig, data: public.verify(sig, data, pss, hashes.SHA256())
    if algorithm == "ES256":
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        def check_ec(sig: bytes, data: bytes) -> None:
            der = encode_dss_signature(int.from_bytes(sig[:32]), int.from_bytes(sig[32:]))
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))

        return check_ec
    return lambda sig, data: public.verify(sig, data)


def bench(algorithm: str, calls: int) -> dict[str, list[float]]:
    private = _private_key(algorithm)
    public = private.public_key()
    jwk = _jwk(algorithm, public)
    with _issuer({"keys": [jwk]}) as url:
        now = int(time.time())
        claims = {
            "iss": url,
            "sub": "reader-42",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "client_id": "blog",
            "jti": "bench",
            "name": "Reader",
            "email": "reader@example.org",
            "email_verified": True,
            "scope": "comments",
        }
        token = jwt.encode(
            claims, private, algorithm=algorithm, headers={"kid": jwk["kid"], "typ": "at+jwt"}
        )
        settings = Settings(database_url="sqlite://", secret_key="b" * 48, environment="test")
        verifier = TokenVerifier(settings.model_copy(update={"token_cache_seconds": 0}))
        remembering = TokenVerifier(settings.model_copy(update={"token_cache_seconds": 60}))
        issuers, audiences = [url], [AUDIENCE]

        def verify() -> object:
            return verifier.verify(token, trusted_issuers=issuers, audiences=audiences)

        def cached() -> object:
            return remembering.verify(token, trusted_issuers=issuers, audiences=audiences)

        verify()  # warm: discovery and JWKS fetched once, then served from the cache
        cached()  # and the token remembered

        head, payload, signature = token.split(".")
        signing_input = f"{head}.{payload}".encode()
        raw_signature = _unb64(signature)
        check = _signature_check(algorithm, public)

        def decode() -> object:
            h, p, s = token.split(".")
            return json.loads(_unb64(h)), json.loads(_unb64(p)), _unb64(s)

        def signature_only() -> None:
            check(raw_signature, signing_input)

        def ceiling() -> None:
            h, p, s = token.split(".")
            json.loads(_unb64(h))
            json.loads(_unb64(p))
            check(_unb64(s), f"{h}.{p}".encode())

        return {
            "verify": _timed(verify, calls),
            "cached": _timed(cached, calls),
            "decode": _timed(decode, calls),
            "signature": _timed(signature_only, calls),
            "ceiling": _timed(ceiling, calls),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--algorithms", default="RS256,ES256,EdDSA")
    args = parser.parse_args()
    print(f"token check with a warm JWKS cache, {args.calls} calls each, times in ms")
    print(f"{'alg':<7} {'what':<10} {'p50':>8} {'p99':>8}")
    verdicts = []
    for algorithm in args.algorithms.split(","):
        results = bench(algorithm, args.calls)
        for what, samples in results.items():
            print(f"{algorithm:<7} {what:<10} {_p(samples, 50):8.4f} {_p(samples, 99):8.4f}")
        p50 = _p(results["verify"], 50)
        ratio = p50 / _p(results["ceiling"], 50)
        ok = "met" if p50 <= TARGET_P50_MS else "MISSED"
        verdicts.append(
            f"{algorithm}: verify p50 {p50:.4f} ms = {ratio:.1f} x the ceiling; "
            f"target p50 <= {TARGET_P50_MS} ms {ok}"
        )
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
