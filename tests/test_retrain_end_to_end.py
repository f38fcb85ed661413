"""Retraining end to end, through a real worker on PostgreSQL and Redis: readers post 200
comments, moderators label each through the API (``POST /v1/comments/{id}/actions``), an
operator asks for a retrain, the worker runs it as a task, the candidate is stored with
its metrics beside the active version's, the quality gate activates it, the API and the
worker switch to it without a restart, and a new comment is scored by it.

The site's spam here is one the bundled classifier has never seen (ordinary comments that
plug "zorblax"), so the bundled classifier misses it and the candidate, trained on the
moderators' labels, does not: the gate's decision is certain, and so is the switch.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import AuditEntry, ClassifierVersion, Label, LabelSource, Status, Verdict
from service.app import create_app
from service.auth.dev_issuer import mint_dev_token
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.settings import Settings
from tests.support.labelled import labelled_comments
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker

SITE = "zorblax-fans"
COMMENTS = 200
PLUG = "btw I switched everything to zorblax, zorblax dot io has the details"


@pytest.fixture
def e2e_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"dev_issuer": True, "dev_key_path": tmp_path / "k.pem"})


def _texts() -> list[tuple[str, bool]]:
    """200 distinct comments, every other one plugging zorblax (the site's spam)."""
    corpus = labelled_comments(COMMENTS, seed=11, spam_ratio=0.0)
    return [
        (f"{record.content} {PLUG}" if n % 2 else record.content, n % 2 == 1)
        for n, record in enumerate(corpus.records)
    ]


def _label(client: FlaskClient, comment_id: str, spam: bool, moderator: dict[str, str]) -> None:
    """Give the comment a spam or ham label the way a moderator does: one action from
    where the worker put it (from a status the action cannot start from, hold it first)."""
    read = client.get(f"/v1/comments/{comment_id}", headers=moderator)
    assert read.status_code == 200, read.get_json()
    etag, status = read.headers["ETag"], read.get_json()["status"]
    action = "spam" if spam else "ham"
    if status == ("spam" if spam else "approved"):
        held = client.post(
            f"/v1/comments/{comment_id}/actions",
            json={"action": "hold"},
            headers={**moderator, "If-Match": etag},
        )
        assert held.status_code == 200, held.get_json()
        etag = held.headers["ETag"]
    done = client.post(
        f"/v1/comments/{comment_id}/actions",
        json={"action": action, "note": "e2e"},
        headers={**moderator, "If-Match": etag},
    )
    assert done.status_code == 200, done.get_json()


def _post(client: FlaskClient, text: str, reader: str, n: int) -> str:
    # A thread per comment: the generated comments repeat, and a repeat in one thread
    # by one author is refused as a duplicate.
    response = client.post(
        "/v1/comments",
        json={"site": SITE, "thread": f"/post/{n}", "content": text},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def test_moderator_labels_retrain_on_a_worker_and_the_new_version_scores(
    committed: sessionmaker[Session], running_worker: CeleryWorker, e2e_settings: Settings
) -> None:
    with committed.begin() as session:
        create_site(
            session,
            slug=SITE,
            name="Zorblax fans",
            url="https://zorblax.example",
            policy=SitePolicy(flood_limit_per_minute=0),
        )
    app = create_app(e2e_settings, sessions=committed)
    readers = [mint_dev_token(e2e_settings, subject=f"r{n}", site=SITE) for n in range(20)]
    moderator = {
        "Authorization": "Bearer "
        + mint_dev_token(
            e2e_settings, subject="mia", site=SITE, roles=[f"commentguard:{SITE}:moderator"]
        )
    }
    operator = {
        "Authorization": "Bearer "
        + mint_dev_token(
            e2e_settings, subject="otto", site=SITE, roles=[f"commentguard:{SITE}:operator"]
        )
    }
    texts = _texts()

    with app.test_client() as client:
        ids = [
            _post(client, text, readers[n % len(readers)], n) for n, (text, _) in enumerate(texts)
        ]

        def all_decided() -> bool:
            with committed() as session:
                decided = session.scalars(
                    select(Verdict.comment_id).where(
                        Verdict.comment_id.in_([uuid.UUID(i) for i in ids])
                    )
                ).all()
            return len(decided) >= COMMENTS

        wait_until(all_decided, timeout=120, interval=0.2, message="the 200 first verdicts")
        bundled = client.get("/readyz").get_json()["checks"]["classifier"]

        for comment_id, (_, spam) in zip(ids, texts, strict=True):
            _label(client, comment_id, spam, moderator)
        with committed() as session:
            labels = session.scalars(
                select(Label).where(Label.source == LabelSource.moderator)
            ).all()
        assert len(labels) == COMMENTS
        assert sum(label.label.value == "spam" for label in labels) == COMMENTS // 2

        queued = client.post(
            "/v1/classifier/retrain", json={"site": SITE, "rescore": False}, headers=operator
        )
        assert queued.status_code == 202, queued.get_json()
        job_url = queued.headers["Location"]

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(job_url, headers=operator).get_json()
            return job if job["state"] in ("succeeded", "failed") else None

        job = wait_until(
            finished,
            timeout=300,
            interval=0.5,
            message=lambda: f"the retrain job; worker log:\n{running_worker.log_tail()}",
        )
        assert job["state"] == "succeeded", job
        assert job["percent"] == 100
        assert [m["percent"] for m in job["messages"]] == sorted(
            m["percent"] for m in job["messages"]
        )
        version_id = job["version"]

        version = client.get(f"/v1/classifier/versions/{version_id}", headers=operator).get_json()
        assert version["status"] == "active", version
        assert version["gate"]["passed"] is True
        candidate, active = version["metrics"]["candidate"], version["metrics"]["active"]
        assert candidate["n"] == active["n"] == version["training"]["holdout"] == 40
        assert candidate["f1"] > active["f1"]
        assert version["metrics"]["active_version"] in bundled
        assert version["training"]["moderator"] == COMMENTS
        with committed() as session:
            promoted = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.target_type == "classifier", AuditEntry.action == "promote"
                )
            ).one()
            assert promoted.to_state == version_id
            assert promoted.actor_subject == "otto"
            stored = session.get_one(ClassifierVersion, version_id)
            assert stored.artifact is not None
            assert stored.report is not None
        activated = dt.datetime.fromisoformat(job["finished_at"])

        # The API notices at its next poll (every 5 s by default), without a restart; the
        # deadline is generous because the machine may be busy (no timing is asserted).
        wait_until(
            lambda: version_id in client.get("/readyz").get_json()["checks"]["classifier"] or None,
            timeout=60,
            interval=0.2,
            message="the API to serve the new version",
        )
        # Past the workers' poll interval since the activation, any worker process asked
        # for this site's classifier asks the registry first.
        poll = e2e_settings.classifier_poll_seconds
        time.sleep(max(0.0, poll + 0.5 - (dt.datetime.now(dt.UTC) - activated).total_seconds()))
        fresh = _post(client, f"Totally new here, {PLUG}!", readers[0], COMMENTS)

        def verdict_of_fresh() -> Verdict | None:
            with committed() as session:
                return session.scalar(select(Verdict).where(Verdict.comment_id == uuid.UUID(fresh)))

        verdict = wait_until(verdict_of_fresh, timeout=30, interval=0.2, message="the verdict")
    assert verdict.classifier_version == version_id
    assert verdict.decision in (Status.spam.value, Status.held.value)
    assert f"classifier {version_id} active for site" in running_worker.log()
