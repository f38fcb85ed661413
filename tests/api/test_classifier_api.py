"""``/v1/classifier``: who may retrain, read, promote and roll back (site operators for a
site's versions, operations-site operators for global ones), and every error as
problem+json. The retraining itself runs on a worker (``tests/test_retrain_end_to_end.py``)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import AuditEntry, ClassifierVersion, JobState, RetrainJob, Site, VersionStatus
from service.app import create_app
from service.classifier.evaluation import Thresholds
from service.classifier.model import load_classifier
from service.classifier.report import render_html, render_plot, report_data
from service.moderation.registry import store_version
from service.moderation.sites import create_site
from service.settings import Settings
from tests.api.conftest import TokenFactory

OPERATOR = ["commentguard:blog:operator"]
OPS_OPERATOR = ["commentguard:ops:operator"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def ops_site(db_session: Session) -> Site:
    return create_site(db_session, slug="ops", name="Operations", url="https://ops.example")


@pytest.fixture
def app(api_settings: Settings, rolled_back_sessions: sessionmaker[Session]) -> Flask:
    """The API with ``ops`` as the operations site."""
    settings = api_settings.model_copy(update={"operations_site": "ops"})
    return create_app(settings, sessions=rolled_back_sessions)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


def _version(session: Session, version_id: str, *, site_id: int | None) -> ClassifierVersion:
    """A stored candidate holding the bundled artifact's bytes (under a new id) and a small
    report."""
    bundled = load_classifier()
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.3, 0.8, 0.95, 0.6, 0.4])
    thresholds = Thresholds(hold=0.3, spam=0.5, discard=0.9)
    data = b"artifact"
    return store_version(
        session,
        ClassifierVersion(
            id=version_id,
            site_id=site_id,
            created_by="test",
            status=VersionStatus.candidate,
            artifact=data,
            artifact_sha256=hashlib.sha256(data).hexdigest(),
            training={"moderator": 4, "import": 2},
            metrics={"candidate": {"f1": 0.9, "fpr": 0.01}, "active": {"f1": 0.8, "fpr": 0.02}},
            thresholds=bundled.thresholds.to_dict(),
            gate={"passed": False, "reasons": ["test"]},
            report=report_data(title="t", labels=labels, scores=scores, thresholds=thresholds),
        ),
    )


def test_site_operator_queues_a_retrain_and_follows_the_job(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    response = client.post(
        "/v1/classifier/retrain",
        json={"site": "blog", "promote": False},
        headers=bearer(token("olivia", roles=OPERATOR)),
    )
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == body["links"]["self"]
    assert (body["site"], body["state"], body["percent"]) == ("blog", "queued", 0)
    job = db_session.get_one(RetrainJob, uuid.UUID(body["id"]))
    assert job.options == {"promote": False}
    assert job.site_id == site.id
    followed = client.get(body["links"]["self"], headers=bearer(token("olivia", roles=OPERATOR)))
    assert followed.status_code == 200
    assert followed.get_json()["state"] == JobState.queued.value


@pytest.mark.parametrize(
    ("roles", "status"),
    [
        (None, 401),
        ([], 403),
        (["commentguard:blog:moderator"], 403),
        (["commentguard:other:operator"], 403),
        (["commentguard:blog:admin"], 202),
    ],
)
def test_only_the_sites_operators_retrain_its_version(
    client: FlaskClient, site: Site, token: TokenFactory, roles: list[str] | None, status: int
) -> None:
    headers = {} if roles is None else bearer(token("x", roles=roles))
    response = client.post("/v1/classifier/retrain", json={"site": "blog"}, headers=headers)
    assert response.status_code == status
    if status != 202:
        assert response.mimetype == "application/problem+json"


def test_global_versions_need_the_operations_sites_operators(
    client: FlaskClient,
    site: Site,
    ops_site: Site,
    token: TokenFactory,
    api_settings: Settings,
    rolled_back_sessions: sessionmaker[Session],
) -> None:
    blog_operator = bearer(token("olivia", roles=OPERATOR))
    assert client.post("/v1/classifier/retrain", json={}, headers=blog_operator).status_code == 401
    ops = bearer(token("oscar", site="ops", roles=OPS_OPERATOR))
    response = client.post("/v1/classifier/retrain", json={"site": None}, headers=ops)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["site"] is None
    ops_moderator = bearer(token("m", site="ops", roles=["commentguard:ops:moderator"]))
    assert client.get("/v1/classifier/versions", headers=ops_moderator).status_code == 403
    # Without an operations site, global versions are the CLI's alone.
    bare = create_app(api_settings, sessions=rolled_back_sessions)
    with bare.test_client() as other:
        refused = other.post("/v1/classifier/retrain", json={}, headers=ops)
    assert refused.status_code == 403
    assert "COMMENTGUARD_OPERATIONS_SITE" in refused.get_json()["detail"]


def test_bad_requests_are_problems(client: FlaskClient, site: Site, token: TokenFactory) -> None:
    headers = bearer(token("olivia", roles=OPERATOR))
    bad = client.post(
        "/v1/classifier/retrain", json={"site": "blog", "bootstrap": 100}, headers=headers
    )
    # Synthetic comments were taken out: asking for them is refused, not ignored.
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "bootstrap"
    assert "removed" in bad.get_json()["errors"][0]["message"]
    flag = client.post(
        "/v1/classifier/retrain", json={"site": "blog", "promote": "yes"}, headers=headers
    )
    assert flag.status_code == 422
    text = client.post("/v1/classifier/retrain", data="x", headers=headers)
    assert text.status_code == 415
    unknown_site = client.post("/v1/classifier/retrain", json={"site": "nope"}, headers=headers)
    assert unknown_site.status_code == 404
    assert client.get("/v1/classifier/jobs/not-a-uuid", headers=headers).status_code == 404
    missing = client.get("/v1/classifier/versions/cg-20260101-000000-00000000", headers=headers)
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"


def test_versions_are_listed_and_shown_to_their_scopes_operators(
    client: FlaskClient, site: Site, ops_site: Site, token: TokenFactory, db_session: Session
) -> None:
    mine = _version(db_session, "cg-20261125-100000-0000000a", site_id=site.id)
    _version(db_session, "cg-20261125-100000-0000000b", site_id=None)
    operator = bearer(token("olivia", roles=OPERATOR))
    listed = client.get("/v1/classifier/versions?site=blog", headers=operator)
    assert listed.status_code == 200
    assert [v["id"] for v in listed.get_json()["versions"]] == [mine.id]
    shown = client.get(f"/v1/classifier/versions/{mine.id}", headers=operator).get_json()
    assert shown["metrics"]["candidate"]["f1"] == 0.9
    assert shown["metrics"]["active"]["f1"] == 0.8
    assert shown["site"] == "blog"
    assert "artifact" not in shown
    # The global version is the operations site's: a blog token is not even valid there.
    other = client.get("/v1/classifier/versions/cg-20261125-100000-0000000b", headers=operator)
    assert other.status_code == 401


def test_report_is_served_as_json_html_and_png(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    version = _version(db_session, "cg-20261125-100000-0000000c", site_id=site.id)
    operator = bearer(token("olivia", roles=OPERATOR))
    base = f"/v1/classifier/versions/{version.id}/report"
    data = client.get(base, headers=operator)
    assert data.status_code == 200
    assert data.get_json()["series"][0]["n"] == 6
    page = client.get(f"{base}.html", headers=operator)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert b"<img" in page.data
    png = client.get(f"{base}/roc.png", headers=operator)
    assert png.status_code == 200
    assert png.data.startswith(b"\x89PNG")
    # The stored report's one plot, drawn as the report module draws it, and its page.
    assert version.report is not None
    assert png.data == render_plot(version.report, "roc")
    assert page.get_data(as_text=True) == render_html(version.report)
    assert client.get(f"{base}/nothing.png", headers=operator).status_code == 404
    assert client.get(base, headers=bearer(token("m", roles=[]))).status_code == 403


def test_promote_and_rollback_are_audited_and_refuse_what_cannot_be(
    client: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    version = _version(db_session, "cg-20261125-100000-0000000d", site_id=site.id)
    operator = bearer(token("olivia", roles=OPERATOR))
    promoted = client.post(
        f"/v1/classifier/versions/{version.id}/promote",
        json={"note": "better on our spam"},
        headers=operator,
    )
    assert promoted.status_code == 200, promoted.get_json()
    assert promoted.get_json()["status"] == "active"
    again = client.post(f"/v1/classifier/versions/{version.id}/promote", json={}, headers=operator)
    assert again.status_code == 409
    moderator = bearer(token("m", roles=["commentguard:blog:moderator"]))
    assert (
        client.post("/v1/classifier/rollback", json={"site": "blog"}, headers=moderator).status_code
        == 403
    )
    rolled = client.post(
        "/v1/classifier/rollback", json={"site": "blog", "note": "oops"}, headers=operator
    )
    assert rolled.status_code == 200
    assert rolled.get_json() == {
        "site": "blog",
        "retired": version.id,
        "active": "global",
        "rescore": None,
    }
    assert (
        client.post("/v1/classifier/rollback", json={"site": "blog"}, headers=operator).status_code
        == 409
    )
    audit = db_session.execute(
        select(AuditEntry.action, AuditEntry.actor_subject, AuditEntry.note, AuditEntry.site_id)
        .where(AuditEntry.target_type == "classifier")
        .order_by(AuditEntry.id)
    ).all()
    assert [tuple(row) for row in audit] == [
        ("promote", "olivia", "better on our spam", site.id),
        ("rollback", "olivia", "oops", site.id),
    ]


@pytest.fixture
def broker_down(
    api_settings: Settings, rolled_back_sessions: sessionmaker[Session]
) -> Iterator[FlaskClient]:
    """A client of the API whose broker does not answer (nothing listens on port 1)."""
    down = api_settings.model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0", "dependency_timeout_seconds": 0.5}
    )
    with create_app(down, sessions=rolled_back_sessions).test_client() as client:
        yield client


def test_a_retrain_the_broker_cannot_take_is_503_and_the_job_failed(
    broker_down: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    response = broker_down.post(
        "/v1/classifier/retrain",
        json={"site": "blog"},
        headers=bearer(token("olivia", roles=OPERATOR)),
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    (job,) = db_session.scalars(select(RetrainJob)).all()
    assert (job.state, job.error) == (JobState.failed, "the task broker is unavailable")


def test_a_promotion_whose_rescore_the_broker_cannot_take_still_answers_200(
    broker_down: FlaskClient, site: Site, token: TokenFactory, db_session: Session
) -> None:
    """The promotion is committed before the re-scoring is queued: a broker that is down
    is reported in ``rescore``, not as an error the client would retry into a 409."""
    version = _version(db_session, "cg-20261125-100000-0000000f", site_id=site.id)
    operator = bearer(token("olivia", roles=OPERATOR))
    client = broker_down
    promoted = client.post(
        f"/v1/classifier/versions/{version.id}/promote",
        json={"rescore": True},
        headers=operator,
    )
    assert promoted.status_code == 200, promoted.get_json()
    assert (promoted.get_json()["status"], promoted.get_json()["rescore"]) == (
        "active",
        "failed",
    )
    rolled = client.post(
        "/v1/classifier/rollback", json={"site": "blog", "rescore": True}, headers=operator
    )
    assert rolled.status_code == 200, rolled.get_json()
    assert rolled.get_json()["rescore"] == "failed"
    assert rolled.get_json()["retired"] == version.id
