"""The receivers' examples in docs/webhooks.md work: a request the service signs passes
them, a tampered or stale one does not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from service.webhooks.signature import signature_header

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_docs-example"
BODY = json.dumps(
    {
        "id": "e1",
        "type": "comment.classified",
        "data": {"comment": {"id": "c1", "status": "approved"}},
    },
    separators=(",", ":"),
).encode()


def _block(language: str, containing: str) -> str:
    """The docs' code block in ``language`` that contains ``containing``."""
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), re.DOTALL)
    [found] = [b for b in blocks if containing in b]
    return found


def _cases() -> list[tuple[bytes, str, bool]]:
    now = int(time.time())
    good = signature_header([SECRET], now, BODY)
    rotated = signature_header(["whsec_new", SECRET], now, BODY)
    return [
        (BODY, good, True),
        (BODY, rotated, True),
        (BODY + b" ", good, False),
        (BODY, signature_header(["whsec_other"], now, BODY), False),
        (BODY, signature_header([SECRET], now - 600, BODY), False),
        (BODY, good.replace("v1=", "v1=0"), False),
        (BODY, "", False),
    ]


def test_the_python_function_by_hand() -> None:
    namespace: dict[str, Any] = {}
    exec(_block("python", "def verified"), namespace)  # noqa: S102  (our own docs)
    for body, header, expected in _cases():
        assert namespace["verified"](body, header, SECRET) is expected, header


def test_the_flask_receiver() -> None:
    namespace: dict[str, Any] = {"__name__": "receiver"}
    exec(_block("python", "@app.post"), namespace)  # noqa: S102  (our own docs)
    namespace["SECRET"] = SECRET
    client = namespace["app"].test_client()
    statuses = [
        client.post(
            "/hooks/commentguard",
            data=body,
            headers={"Commentguard-Signature": header, "Content-Type": "application/json"},
        ).status_code
        for body, header, _ in _cases()
    ]
    assert statuses == [204 if ok else 400 for _, _, ok in _cases()]


def test_the_node_function(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = tmp_path / "verify.js"
    script.write_text(
        _block("js", "function verified")
        + "\nconst [cases, secret] = JSON.parse(process.argv[2]);\n"
        + "process.stdout.write(JSON.stringify(cases.map(([body, header]) =>"
        + " verified(Buffer.from(body, 'latin1'), header, secret))));\n"
    )
    cases = _cases()
    done = subprocess.run(
        ["node", str(script), json.dumps([[[b.decode("latin1"), h] for b, h, _ in cases], SECRET])],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(done.stdout) == [ok for _, _, ok in cases], done.stderr
