"""``GET /metrics`` in one process (no ``PROMETHEUS_MULTIPROC_DIR``): every documented
metric is there, with help and the Prometheus conventions; what the API answers is
counted by outcome and by token failure reason; the scrape-time gauges read the outbox,
the broker and the classifier, cached; the endpoint is protected when a token is set, and
never fails with a 500. (Many processes: ``tests/test_metrics_multiprocess.py``.)"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.metrics_core import Metric
from pydantic import SecretStr, ValidationError
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from models import OutboxTask, Site
from service.api.metrics import StateReader
from service.app import create_app
from service.auth.dev_issuer import DEV_ALGORITHM, DEV_ISSUER, load_or_create_key, public_jwk
from service.classifier.model import load_classifier
from service.metrics import (
    SUBMISSION_OUTCOMES,
    TOKEN_FAILURE_REASONS,
    ApiMetrics,
    ServiceState,
    ServiceStateCollector,
)
from service.moderation.outbox import backlog
from service.moderation.policy import SitePolicy
from service.moderation.sites import IntrospectionClient, create_site
from service.queue import TaskQueue, make_celery
from service.settings import Settings, SettingsError
from tests.api.conftest import TokenFactory
from tests.support.metrics import documented, parse, total, value
from tests.support.oidc import BACKEND_CLIENT, OPAQUE_RESOURCE, OidcProvider

SUBMISSIONS = "commentguard_comment_submissions_total"
FAILURES = "commentguard_token_failures_total"


def post(
    client: FlaskClient, token: str | None, content: str = "Nice post.", **extra: Any
) -> TestResponse:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/post-1", "content": content, **extra},
        headers=headers,
    )


def scrape(
    client: FlaskClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return parse(response.get_data(as_text=True))


def test_every_documented_metric_is_exposed_with_its_help_and_type(
    client: FlaskClient, site: Site
) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    families = documented(response.get_data(as_text=True))
    expected = {
        "commentguard_comment_submissions": "counter",
        "commentguard_token_failures": "counter",
        "commentguard_http_request_duration_seconds": "histogram",
        "commentguard_api_processes": "gauge",
        "commentguard_scrape_source_up": "gauge",
        "commentguard_outbox_pending_rows": "gauge",
        "commentguard_outbox_oldest_pending_age_seconds": "gauge",
        "commentguard_broker_queue_messages": "gauge",
        "commentguard_classifier_version_info": "gauge",
    }
    for name, kind in expected.items():
        assert name in families, f"{name} is not exposed"
        assert families[name][0] == kind
        assert len(families[name][1]) > 20, f"{name} has no real help text"
    # Every metric of the service is named for it.
    assert all(name.startswith("commentguard_") for name in families)


def test_each_comment_post_is_counted_by_its_outcome(
    client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    alice = token("alice")
    assert post(client, alice, "First words.").status_code == 202
    replay = {"Idempotency-Key": "k-1"}
    first = client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/post-1", "content": "Keyed."},
        headers={"Authorization": f"Bearer {alice}", **replay},
    )
    again = client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/post-1", "content": "Keyed."},
        headers={"Authorization": f"Bearer {alice}", **replay},
    )
    assert (first.status_code, again.status_code) == (202, 202)
    assert post(client, alice, "First words.").status_code == 409  # the same text again
    assert post(client, alice, "Third.").status_code == 202
    assert post(client, alice, "Fourth.").status_code == 429  # the site allows 3 a minute
    bob = token("bob")
    assert post(client, bob, "").status_code == 422
    assert post(client, None).status_code == 401
    assert (
        client.post("/v1/comments", data="{", headers={"Authorization": f"Bearer {bob}"},
                    content_type="application/json").status_code
        == 400
    )  # fmt: skip
    assert (
        client.post("/v1/comments", data="x", headers={"Authorization": f"Bearer {bob}"},
                    content_type="text/plain").status_code
        == 415
    )  # fmt: skip
    assert post(client, bob, "x" * (65 * 1024)).status_code == 413
    assert client.post(
        "/v1/comments",
        json={"site": "nowhere", "thread": "/p", "content": "Hello?"},
        headers={"Authorization": f"Bearer {bob}"},
    ).status_code in (401, 404)

    samples = scrape(client)
    counted = {
        outcome: value(samples, SUBMISSIONS, outcome=outcome)
        for outcome in ("accepted", "replayed", "duplicate", "rate_limited", "invalid")
    }
    assert counted == {
        "accepted": 3,
        "replayed": 1,
        "duplicate": 1,
        "rate_limited": 1,
        "invalid": 1,
    }
    assert value(samples, SUBMISSIONS, outcome="malformed") == 1
    assert value(samples, SUBMISSIONS, outcome="unsupported_media_type") == 1
    assert value(samples, SUBMISSIONS, outcome="too_large") == 1
    assert (value(samples, SUBMISSIONS, outcome="unauthorized") or 0) + (
        value(samples, SUBMISSIONS, outcome="unknown_site") or 0
    ) == 2
    # Every outcome is there from the start, at 0 when nothing happened.
    for outcome in SUBMISSION_OUTCOMES.values():
        assert value(samples, SUBMISSIONS, outcome=outcome) is not None
    assert total(samples, SUBMISSIONS) == 12


def test_requests_are_timed_by_route_method_and_status(
    client: FlaskClient, site: Site, token: TokenFactory
) -> None:
    assert post(client, token("alice")).status_code == 202
    assert client.get("/v1/comments/not-a-uuid", headers={}).status_code == 401
    assert client.get("/no/such/route").status_code == 404
    samples = scrape(client)
    duration = "commentguard_http_request_duration_seconds_count"
    assert value(samples, duration, route="/v1/comments", method="POST", status="202") == 1
    assert (
        value(samples, duration, route="/v1/comments/<comment_id>", method="GET", status="401") == 1
    )
    assert value(samples, duration, route="unmatched", method="GET", status="404") == 1
    # The scrape itself shows up in the next one.
    again = scrape(client)
    assert value(again, duration, route="/metrics", method="GET", status="200") == 1
    # A made-up method makes no series of its own.
    for method in ("BREW", "PROPFIND"):
        assert client.open("/v1/comments", method=method).status_code == 405
    methods = {dict(labels)["method"] for (name, labels) in scrape(client) if name == duration}
    assert methods == {"POST", "GET", "other"}


def _signed(claims: dict[str, Any], key: Any, **headers: Any) -> str:
    return jwt.encode(claims, key, algorithm=DEV_ALGORITHM, headers=headers)


def test_token_failures_are_counted_by_reason(
    client: FlaskClient, site: Site, api_settings: Settings
) -> None:
    key = load_or_create_key(api_settings.dev_key_path)
    kid = public_jwk(key)["kid"]
    now = int(time.time())
    good = {"iss": DEV_ISSUER, "sub": "alice", "aud": "blog", "iat": now, "exp": now + 600}
    stranger = ed25519.Ed25519PrivateKey.generate()
    signed_good = _signed(good, key, kid=kid)
    head, body, signature = signed_good.split(".")
    tampered = f"{head}.{body}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"
    cases: dict[str, str | None] = {
        "missing": None,
        "malformed": "not-a-jwt",
        "expired": _signed({**good, "iat": now - 7200, "exp": now - 3600}, key, kid=kid),
        "not_yet_valid": _signed({**good, "nbf": now + 3600}, key, kid=kid),
        "wrong_audience": _signed({**good, "aud": "another-site"}, key, kid=kid),
        "untrusted_issuer": _signed({**good, "iss": "https://evil.example"}, key, kid=kid),
        "unknown_kid": _signed(good, key, kid="no-such-key"),
        "bad_signature": _signed(good, stranger, kid=kid),
        "algorithm": jwt.encode(good, "a-shared-secret-of-32-bytes-long!", algorithm="HS256",
                                headers={"kid": kid}),
    }  # fmt: skip
    assert tampered != signed_good
    for reason, credential in cases.items():
        response = post(client, credential)
        assert response.status_code == 401, (reason, response.get_json())
    key_refused = client.post(
        "/v1/comments",
        json={"site": "blog", "thread": "/post-1", "content": "From a backend."},
        headers={"X-API-Key": "cg_0123456789abcdef_" + "A" * 43},
    )
    assert key_refused.status_code == 401

    samples = scrape(client)
    for reason in cases:
        assert value(samples, FAILURES, reason=reason) == 1, reason
    assert value(samples, FAILURES, reason="invalid_api_key") == 1
    assert total(samples, FAILURES) == len(cases) + 1
    for reason in TOKEN_FAILURE_REASONS:
        assert value(samples, FAILURES, reason=reason) is not None
    # A good token is no failure.
    assert post(client, signed_good, "Fine.").status_code == 202
    assert total(scrape(client), FAILURES) == len(cases) + 1


def test_the_outbox_backlog_and_the_classifier_version_are_read_at_scrape_time(
    api_settings: Settings,
    rolled_back_sessions: sessionmaker[Session],
    site: Site,
    token: TokenFactory,
) -> None:
    settings = api_settings.model_copy(update={"metrics_cache_seconds": 0.0})
    app = create_app(settings, sessions=rolled_back_sessions)
    with app.test_client() as client:
        before = scrape(client)
        assert value(before, "commentguard_outbox_pending_rows") == 0
        assert value(before, "commentguard_outbox_oldest_pending_age_seconds") == 0
        for source in ("database", "broker", "classifier"):
            assert value(before, "commentguard_scrape_source_up", source=source) == 1
        version = str(load_classifier().metadata["version"])
        assert (
            value(
                before,
                "commentguard_classifier_version_info",
                scope="global",
                site="",
                version=version,
            )
            == 1
        )
        queued = value(before, "commentguard_broker_queue_messages", queue="celery")
        assert queued is not None
        assert value(before, "commentguard_broker_queue_messages", queue="training") is not None

        # No worker runs: the comments stay pending, their outbox rows to do.
        for n, who in enumerate(("alice", "bob", "carol")):
            assert post(client, token(who), f"Comment {n}.").status_code == 202
        time.sleep(0.3)
        first = scrape(client)
        assert value(first, "commentguard_outbox_pending_rows") == 3
        age = value(first, "commentguard_outbox_oldest_pending_age_seconds")
        assert age is not None
        assert age > 0
        time.sleep(0.3)
        later = value(scrape(client), "commentguard_outbox_oldest_pending_age_seconds")
        assert later is not None
        assert later > age


def test_an_inactive_opaque_token_is_counted_as_such(
    client: FlaskClient, db_session: Session, oidc_provider: OidcProvider
) -> None:
    create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        issuers=[oidc_provider.issuer],
        audiences=[OPAQUE_RESOURCE],
        introspection=IntrospectionClient(
            oidc_provider.url("/token/introspection"), *BACKEND_CLIENT
        ),
    )
    assert post(client, "not-a-token-the-provider-issued").status_code == 401
    assert value(scrape(client), FAILURES, reason="introspection_inactive") == 1


def test_a_site_with_its_own_version_is_labelled_with_its_slug(
    api_settings: Settings, rolled_back_sessions: sessionmaker[Session], site: Site
) -> None:
    class Provider:
        def versions(self) -> dict[int | None, str]:
            return {None: "cg-global", site.id: "cg-own"}

    reader = StateReader(
        rolled_back_sessions,
        TaskQueue(make_celery(api_settings)),
        Provider(),  # type: ignore[arg-type]
    )
    state = reader()
    assert state.classifier_versions == (("global", "", "cg-global"), ("site", "blog", "cg-own"))
    assert not state.failed


def test_a_scrape_with_the_broker_and_the_database_down_is_still_answered(
    api_settings: Settings,
) -> None:
    settings = api_settings.model_copy(
        update={
            "broker_url": "redis://127.0.0.1:1/0",
            "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none",
            "dependency_timeout_seconds": 1.0,
        }
    )
    dead = create_engine(settings.database_url, connect_args={"connect_timeout": 1})
    app = create_app(settings, sessions=sessionmaker(dead))
    with app.test_client() as client:
        samples = scrape(client)
    assert value(samples, "commentguard_scrape_source_up", source="database") == 0
    assert value(samples, "commentguard_scrape_source_up", source="broker") == 0
    assert value(samples, "commentguard_outbox_pending_rows") is None
    assert value(samples, "commentguard_broker_queue_messages", queue="celery") is None
    # What the process counts itself is still there.
    assert value(samples, SUBMISSIONS, outcome="accepted") == 0


def test_a_collector_that_fails_is_left_out_never_a_500(app: Flask) -> None:
    class Broken:
        def collect(self) -> Iterable[Metric]:
            raise RuntimeError("a collector's bug")

    metrics = app.extensions["commentguard"].metrics
    assert isinstance(metrics, ApiMetrics)
    metrics.add_collector("broken", Broken())
    with app.test_client() as client:
        samples = scrape(client)
    assert value(samples, SUBMISSIONS, outcome="accepted") == 0


def test_the_scrape_time_gauges_are_read_at_most_once_per_interval() -> None:
    now = [100.0]
    reads: list[float] = []

    def read() -> ServiceState:
        reads.append(now[0])
        return ServiceState(outbox_pending=len(reads), outbox_oldest_age_seconds=0.0)

    collector = ServiceStateCollector(read, cache_seconds=2.0, clock=lambda: now[0])
    pending = [_pending(collector) for _ in range(5)]
    now[0] = 101.5
    pending.append(_pending(collector))
    now[0] = 102.5
    pending.append(_pending(collector))
    assert reads == [100.0, 102.5]
    assert pending == [1, 1, 1, 1, 1, 1, 2]


def _pending(collector: ServiceStateCollector) -> float:
    for family in collector.collect():
        if family.name == "commentguard_outbox_pending_rows":
            return float(family.samples[0].value)
    raise AssertionError("no outbox gauge")


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


def test_with_a_token_set_the_scrape_needs_it(
    api_settings: Settings, rolled_back_sessions: sessionmaker[Session]
) -> None:
    secret = "a-metrics-token-of-some-length"
    settings = api_settings.model_copy(update={"metrics_token": SecretStr(secret)})
    app = create_app(settings, sessions=rolled_back_sessions)
    with app.test_client() as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": secret}):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.content_type == "application/problem+json"
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert scrape(client, Authorization=f"Bearer {secret}")
        # A wrong metrics token is not a reader's token failure.
        assert total(scrape(client, Authorization=f"Bearer {secret}"), FAILURES) == 0


def test_a_placeholder_metrics_token_is_refused_in_production() -> None:
    base: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql://db/x",
        "secret_key": "s" * 40,
    }
    with pytest.raises((ValidationError, SettingsError), match="METRICS_TOKEN"):
        Settings(**base, metrics_token="change-me")
    with pytest.raises((ValidationError, SettingsError), match="METRICS_TOKEN"):
        Settings(**base, metrics_token="short")
    assert Settings(**base, metrics_token="m" * 24).metrics_token is not None


def test_an_empty_multiprocess_directory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", " ")
    with pytest.raises(ValidationError, match="PROMETHEUS_MULTIPROC_DIR"):
        Settings(database_url="sqlite://", secret_key="s" * 40, environment="test")


def test_settings_with_a_directory_the_library_was_not_started_with_are_refused(
    api_settings: Settings, tmp_path: Any
) -> None:
    # This process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR.
    settings = api_settings.model_copy(update={"prometheus_multiproc_dir": tmp_path})
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR"):
        ApiMetrics(settings)


@pytest.fixture
def flood_free_site(db_session: Session) -> Site:
    return create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        audiences=["https://blog.example"],
        policy=SitePolicy(flood_limit_per_minute=0),
    )


def test_the_outbox_age_is_the_oldest_row_still_to_do(
    db_session: Session, flood_free_site: Site
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(minutes=5)
    older = old - dt.timedelta(hours=1)
    db_session.add_all(
        [
            OutboxTask(task="t", key="done", next_attempt_at=now, created_at=older, done_at=now),
            OutboxTask(task="t", key="old", next_attempt_at=now, created_at=old),
            OutboxTask(task="t", key="new", next_attempt_at=now, created_at=now),
        ]
    )
    db_session.flush()
    found = backlog(db_session, count_limit=10)
    assert found.pending == 2
    assert found.oldest_created_at == old
    assert backlog(db_session, count_limit=1).pending == 1
