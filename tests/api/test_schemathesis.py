"""Schemathesis against the live API: every operation of ``/openapi.json``, called over
HTTP on a real server (werkzeug's, in a thread, on 127.0.0.1) backed by the run's
PostgreSQL, Redis and a real Celery worker, with real credentials. No response may be a
5xx, and every response must match the document: status code, content type, headers
and body schema.

Deterministic: the seed is fixed and generation derandomized; each operation gets a
bounded number of examples (``MAX_EXAMPLES``) after schemathesis's example and coverage
phases. Requests carry, drawn with the case, the credential the operation needs (most
of the time) or one it refuses (none, a reader's token where a role is needed, a token
of another site, an API key), and path parameters, body ids and ``If-Match`` values
that name real rows (comments that reached a verdict, their authors, threads, a
retraining job, classifier versions with a report, a webhook and its deliveries) as often
as generated ones. No operation is excluded.

Webhooks: the site allows private targets (as ``commentguard site webhooks`` sets it), so
that its hooks post to a receiver on 127.0.0.1 (this machine has no outside network); a
webhook URL in a body names that receiver, at a new path each time, as often as a
generated one. Before each case of a webhook operation, the webhooks are put back as
the fixture made them (the kept hook enabled, at its URL; the ones cases created or
changed deleted), so that an earlier case's DELETE, PATCH or registrations (a site has
at most 20) leave the next one something to act on; a DELETE aims at a hook made for it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from threading import Thread
from typing import Any

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import BaseWSGIServer, make_server

from models import (
    Author,
    ClassifierVersion,
    Comment,
    DeliveryState,
    Site,
    Status,
    Verdict,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from models.classifier_version import VersionStatus
from service.api.openapi import offline_document
from service.app import create_app
from service.auth.api_keys import create_api_key
from service.auth.dev_issuer import mint_dev_token
from service.classifier.evaluation import Thresholds
from service.classifier.report import report_data
from service.moderation.policy import SitePolicy
from service.moderation.registry import create_job, store_version
from service.moderation.sites import create_site
from service.moderation.webhooks import allow_private_targets
from service.settings import Settings
from tests.conftest import empty_tables
from tests.support.receiver import Receiver
from tests.support.wait import wait_until
from tests.support.webhooks import add_hook
from tests.support.worker import CeleryWorker

SITE = "fuzz"
OTHER_SITE = "elsewhere"
#: Examples per operation; ``COMMENTGUARD_TEST_FUZZ_EXAMPLES`` raises it for a deeper run.
MAX_EXAMPLES = int(os.environ.get("COMMENTGUARD_TEST_FUZZ_EXAMPLES", "30"))
SEED = 21
BUNDLED = Path(__file__).resolve().parents[2] / "service/classifier/bundled/classifier.skops"

#: The checks the issue asks for; the others schemathesis has stay off.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)

CONFIG = {
    "seed": SEED,
    "generation": {
        "mode": "all",
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        # The test sends real credentials itself (see ``credentials``).
        "with-security-parameters": False,
        "database": "none",
    },
    "phases": {"stateful": {"enabled": False}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
}


#: The webhook operations' paths (see the module docstring).
WEBHOOKS = "/v1/sites/{slug}/webhooks"


@dataclass
class World:
    """The live server and what exists behind it."""

    base_url: str
    tokens: dict[str, str]
    api_key: str
    sessions: sessionmaker[Session]
    #: Where the site's webhooks post to.
    receiver: Receiver
    real: dict[str, list[str]] = field(default_factory=dict)
    #: The webhook the fixture registered, and its URL.
    kept_hook: str = ""
    kept_url: str = ""
    _paths: Iterator[int] = field(default_factory=itertools.count)

    def hook_url(self) -> str:
        """A webhook URL at the receiver that no hook has (one URL once per site)."""
        return self.receiver.url(f"/hook/{next(self._paths)}")

    def rows_for(self, case: schemathesis.Case[Any]) -> dict[str, list[str]]:
        """The real rows ``case`` may aim at: after :meth:`reset_webhooks` for a webhook
        operation, and a hook made to be deleted for a DELETE."""
        if not case.operation.path.startswith(WEBHOOKS):
            return self.real
        self.reset_webhooks()
        if case.operation.method.upper() != "DELETE":
            return self.real
        with self.sessions.begin() as session:
            site = session.scalars(select(Site).where(Site.slug == SITE)).one()
            doomed = add_hook(session, site, self.hook_url())
            return {**self.real, "webhook_id": [str(doomed.webhook.id)]}

    def reset_webhooks(self) -> None:
        """The site's webhooks as the fixture left them: the kept one enabled, at its
        URL, for every event; every other one deleted (with its deliveries)."""
        kept = Webhook.id == self.kept_hook
        with self.sessions.begin() as session:
            site_id = session.scalars(select(Site.id).where(Site.slug == SITE)).one()
            session.execute(delete(Webhook).where(Webhook.site_id == site_id, ~kept))
            session.execute(
                update(Webhook)
                .where(kept)
                .values(url=self.kept_url, enabled=True, events=[e.value for e in WebhookEvent])
            )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: The document, from an app that is never served: what the live server serves too
#: (``live`` checks), loaded when the module is (schemathesis parametrizes from it).
DOCUMENT = offline_document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture(scope="module")
def live(
    api_settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    celery_worker_process: CeleryWorker,
) -> Iterator[World]:
    """A real HTTP server on the API, with a site, credentials, comments that reached a
    verdict, an action in the audit trail, a job and classifier versions; every table is
    emptied afterwards. One for the module: the operations' tests share it."""
    if not celery_worker_process.alive:
        celery_worker_process.start()
    committed = sessions
    settings = api_settings.model_copy(update={"operations_site": SITE})
    with committed.begin() as session:
        create_site(
            session,
            slug=SITE,
            name="Fuzzed",
            url="https://fuzz.example",
            policy=SitePolicy(
                flood_limit_per_minute=0,
                hold_threshold=0.5,
                spam_threshold=0.9,
                blocked_words=["zzblockedzz"],
                moderation_words=["zzheldzz"],
            ),
        )
        create_site(session, slug=OTHER_SITE, name="Other", url="https://other.example")
        _, api_key = create_api_key(session, site_slug=SITE, name="fuzz")

    def token(subject: str, site: str = SITE, roles: tuple[str, ...] = ()) -> str:
        return mint_dev_token(settings, subject=subject, site=site, roles=roles, ttl_seconds=3600)

    tokens = {
        "reader": token("reader"),
        "moderator": token("mod", roles=("moderator",)),
        "operator": token("op", roles=("operator",)),
        "admin": token("boss", roles=("admin",)),
        "elsewhere": token("mod", site=OTHER_SITE, roles=("admin",)),
    }
    app = create_app(settings, sessions=committed)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = Thread(target=server.serve_forever, name="live-api", daemon=True)
    thread.start()
    receiver = Receiver()
    receiver.start()
    world = World(f"http://127.0.0.1:{server.server_port}", tokens, api_key, committed, receiver)
    try:
        served = requests.get(f"{world.base_url}/openapi.json", timeout=30)
        assert served.json() == DOCUMENT
        _populate(world, committed)
        yield world
    finally:
        server.shutdown()
        thread.join(timeout=10)
        receiver.stop()
        empty_tables(engine)


def _populate(world: World, committed: sessionmaker[Session]) -> None:
    texts = [
        "Thanks, the part on connection pools saved me an afternoon.",
        "Is there a way to do this on SQLite too?",
        "zzheldzz is what I would have used here.",
        "buy zzblockedzz now at http://spam.example",
        "I tried it and it works on PostgreSQL 16 as well.",
    ]
    threads = ["/posts/hello", "/posts/world"]
    ids: list[str] = []
    with committed.begin() as session:
        fuzz_id = session.scalars(select(Site.id).where(Site.slug == SITE)).one()
        # As an operator does with `commentguard site webhooks fuzz --allow-private-targets`.
        allow_private_targets(session, site_id=fuzz_id, allow=True)
    with requests.Session() as http:
        # A webhook before the comments, so that their verdicts and the action below are
        # delivered, and the delivery log has rows.
        world.kept_url = world.hook_url()
        registered = http.post(
            f"{world.base_url}/v1/sites/{SITE}/webhooks",
            json={"url": world.kept_url, "description": "the fuzzer's receiver"},
            headers=_bearer(world.tokens["admin"]),
        )
        assert registered.status_code == 201, registered.text
        world.kept_hook = registered.json()["id"]
        for n, text in enumerate(texts * 2):
            thread = threads[n % len(texts) % 2]
            body: dict[str, Any] = {"site": SITE, "thread": thread, "content": text}
            if n >= len(texts):
                # The second round answers the first (same thread), in other words.
                body["parent"] = ids[n - len(texts)]
                body["content"] = f"Replying: {text.lower()}"
            headers = _bearer(world.tokens["reader"]) if n % 3 else {"X-API-Key": world.api_key}
            answer = http.post(f"{world.base_url}/v1/comments", json=body, headers=headers)
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])

        def decided() -> bool:
            with committed() as session:
                done = session.scalar(
                    select(Comment.id).where(Comment.status == Status.pending).limit(1)
                )
                return done is None

        wait_until(decided, timeout=60, message="verdicts for the seeded comments")
        # An action, so that the audit trail, the history and the labels have rows.
        moderator = _bearer(world.tokens["moderator"])
        acted = http.post(
            f"{world.base_url}/v1/comments/{ids[0]}/actions",
            json={"action": "hold", "note": "a look"},
            headers={**moderator, "If-Match": "*"},
        )
        assert acted.status_code == 200, acted.text
    # A delivery for each verdict (and the action's), sent by the worker to the receiver.
    world.receiver.wait_for(len(ids), timeout=60)

    def all_delivered() -> bool:
        with committed() as session:
            states = session.scalars(select(WebhookDelivery.state)).all()
            return len(states) >= len(ids) and set(states) == {DeliveryState.delivered}

    wait_until(all_delivered, timeout=30, message="the seeded comments' deliveries settled")
    with committed.begin() as session:
        authors = [str(a) for a in session.scalars(select(Author.id))]
        site_id = session.scalar(select(Comment.site_id).limit(1))
        assert site_id is not None
        job = create_job(session, site_id=site_id, requested_by="fuzz", options={})
        versions = [
            _version(session, "cg-20261201-000000-0000f001", site_id=site_id),
            _version(session, "cg-20261201-000000-0000f002", site_id=None),
        ]
        assert session.scalar(select(Verdict.id).limit(1)) is not None
    with committed() as session:
        deliveries = [str(d) for d in session.scalars(select(WebhookDelivery.id))]
    world.real = {
        "webhook_id": [world.kept_hook],
        "delivery_id": deliveries,
        "slug": [SITE],
        "comment_id": ids,
        "author_id": authors,
        "thread": threads,
        "job_id": [str(job.id)],
        "version_id": versions,
    }


def _version(session: Session, version_id: str, *, site_id: int | None) -> str:
    """A candidate holding the bundled classifier's artifact and a small report."""
    artifact = BUNDLED.read_bytes()
    store_version(
        session,
        ClassifierVersion(
            id=version_id,
            site_id=site_id,
            created_by="fuzz",
            status=VersionStatus.candidate,
            artifact=artifact,
            artifact_sha256=hashlib.sha256(artifact).hexdigest(),
            training={"moderator": 4, "import": 2, "bootstrap": 0},
            metrics={"candidate": {"f1": 0.9}, "active": {"f1": 0.8}},
            thresholds={"hold": 0.3, "spam": 0.5, "discard": 0.9},
            gate={"passed": False, "reasons": ["fuzz"]},
            report=report_data(
                title="fuzz",
                labels=np.array([0, 0, 1, 1, 0, 1]),
                scores=np.array([0.1, 0.3, 0.8, 0.95, 0.6, 0.4]),
                thresholds=Thresholds(hold=0.3, spam=0.5, discard=0.9),
            ),
        ),
    )
    return version_id


#: Who calls, drawn per case: mostly whoever the operation needs.
CALLERS = ("needed",) * 6 + ("nobody", "reader", "elsewhere", "api_key")


def credentials(world: World, case: schemathesis.Case[Any], caller: str) -> dict[str, str]:
    """The headers of ``caller`` for ``case``'s operation."""
    definition = case.operation.definition.raw
    if not definition.get("security"):
        return {}
    role = definition.get("x-required-role")
    if caller == "needed":
        caller = role or "reader"
    if caller == "nobody":
        return {}
    if caller == "api_key":
        return {"X-API-Key": world.api_key}
    return _bearer(world.tokens[caller])


#: Drawn first (so most often: derandomized generation favours early choices): yes.
OFTEN = st.sampled_from([True, True, False])


def aim_at_real_rows(world: World, case: schemathesis.Case[Any], data: st.DataObject) -> None:
    """Point some of ``case``'s ids and preconditions at rows that exist (and webhook URLs
    at the receiver)."""
    real = world.rows_for(case)
    path: dict[str, Any] = case.path_parameters or {}
    aim: bool = bool(path) and data.draw(OFTEN, label="real path")
    if aim:
        for name in path:
            if name in real:
                path[name] = data.draw(st.sampled_from(real[name]), label=name)
    body: Any = case.body
    if isinstance(body, dict) and data.draw(OFTEN, label="real body"):
        if "url" in body and case.operation.path.startswith(WEBHOOKS):
            body["url"] = world.hook_url()
        if "site" in body:
            body["site"] = SITE
        if isinstance(body.get("thread"), str):
            body["thread"] = data.draw(st.sampled_from(real["thread"]), label="thread")
        if "parent" in body:
            body["parent"] = data.draw(st.sampled_from([None, *real["comment_id"]]))
        if isinstance(body.get("ids"), list):
            body["ids"] = real["comment_id"][: max(1, min(len(body["ids"]), 5))]
        if isinstance(body.get("items"), list):
            for item, comment_id in zip(body["items"], real["comment_id"], strict=False):
                if isinstance(item, dict):
                    item["id"] = comment_id
    if case.headers is not None and "If-Match" in case.headers:
        star: bool = data.draw(OFTEN, label="If-Match *")
        if star:
            case.headers["If-Match"] = "*"


#: The statuses each operation answered, for the last test of the module.
ANSWERED: dict[str, set[int]] = {}


# Per operation; a deeper run needs longer (report.html draws five plots per request).
@pytest.mark.timeout(max(300, MAX_EXAMPLES * 5))
@schema.given(data=st.data())
@schema.parametrize()
def test_the_live_api_answers_as_its_document_says(
    case: schemathesis.Case[Any], data: st.DataObject, live: World
) -> None:
    aim_at_real_rows(live, case, data)
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    headers = credentials(live, case, caller)
    response = case.call(base_url=live.base_url, headers=headers, timeout=30)
    ANSWERED.setdefault(case.operation.label, set()).add(response.status_code)
    case.validate_response(response, headers=headers)


def test_every_operation_was_called_and_succeeded_at_least_once() -> None:
    """The fuzzing reached every operation's success, not only its errors (runs after
    the operations' tests, in this module's order)."""
    if not ANSWERED:
        pytest.skip("the operations' tests did not run (deselected)")
    documented = {
        f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item
    }
    assert set(ANSWERED) == documented
    never = sorted(op for op, statuses in ANSWERED.items() if not any(s < 300 for s in statuses))
    assert never == [], f"never answered 2xx: {never}"


def test_the_world_is_what_the_fuzzer_aims_at(live: World) -> None:
    """The rows the fuzzer aims at are there, and answer (so its real-row cases are not
    all 404s)."""
    moderator = _bearer(live.tokens["moderator"])
    for comment_id in live.real["comment_id"]:
        answer = requests.get(
            f"{live.base_url}/v1/comments/{comment_id}", headers=moderator, timeout=30
        )
        assert answer.status_code == 200
        assert answer.json()["verdict"] is not None
        assert "moderation" in answer.json()
    author = live.real["author_id"][0]
    answer = requests.get(
        f"{live.base_url}/v1/sites/{SITE}/authors/{author}", headers=moderator, timeout=30
    )
    assert answer.status_code == 200
    version = live.real["version_id"][0]
    operator = _bearer(live.tokens["operator"])
    plot = requests.get(
        f"{live.base_url}/v1/classifier/versions/{version}/report/roc.png",
        headers=operator,
        timeout=30,
    )
    assert (plot.status_code, plot.headers["Content-Type"]) == (200, "image/png")
    live.reset_webhooks()
    hook = requests.get(
        f"{live.base_url}/v1/sites/{SITE}/webhooks/{live.kept_hook}", headers=moderator, timeout=30
    )
    assert hook.status_code == 200
    # The seeded deliveries are in the log (redeliveries, newer, may come first).
    listed: set[str] = set()
    page: str | None = hook.json()["links"]["deliveries"]
    while page is not None:
        answer = requests.get(f"{live.base_url}{page}", headers=moderator, timeout=30)
        assert answer.status_code == 200
        listed |= {str(d["id"]) for d in answer.json()["deliveries"]}
        page = answer.json()["links"].get("next")
    assert listed >= set(live.real["delivery_id"])
