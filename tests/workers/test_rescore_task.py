"""The re-score task on a real worker: after a site's version is promoted, its held
comments get verdicts from that version."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models import ClassifierVersion, Comment, Status, Verdict, VersionStatus
from service.classifier.model import classifier_bytes, train
from service.moderation.registry import Actor, activate, store_version
from service.queue import RESCORE, TaskQueue
from tests.support.comments import make_site, submit_comments
from tests.support.labelled import labelled_comments
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker


def test_rescore_task_gives_held_comments_verdicts_of_the_promoted_version(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
) -> None:
    corpus = labelled_comments(200, seed=31)
    data, metadata = classifier_bytes(train(corpus.records, corpus.labels, seed=0))
    with committed.begin() as session:
        site = make_site(session)
        site_id = site.id
        # Far in the future: the sweeper leaves them to this test.
        ids = submit_comments(session, site, 4, outbox_timeout=dt.timedelta(days=1))
        session.execute(update(Comment).where(Comment.id.in_(ids)).values(status=Status.held))
        store_version(
            session,
            ClassifierVersion(
                id=metadata.version,
                site_id=site_id,
                created_by="test",
                status=VersionStatus.candidate,
                artifact=data,
                artifact_sha256=hashlib.sha256(data).hexdigest(),
                training={},
                metrics={},
                thresholds=metadata.thresholds,
                gate={},
            ),
        )
        activate(
            session,
            version_id=metadata.version,
            actor=Actor("test", "t"),
            now=dt.datetime.now(dt.UTC),
        )

    task_queue.enqueue(RESCORE, {"site_id": site_id})

    def rescored() -> list[str] | None:
        with committed() as session:
            versions = session.scalars(
                select(Verdict.classifier_version).where(Verdict.comment_id.in_(ids))
            ).all()
        return list(versions) if len(versions) == len(ids) else None

    versions = wait_until(
        rescored,
        timeout=60,
        interval=0.2,
        message=lambda: f"the re-score; worker log:\n{running_worker.log_tail()}",
    )
    assert set(versions) == {metadata.version}
    # The task logs its count after its last batch has committed: wait for the line too.
    wait_until(
        lambda: "rescore: 4 comments got a new verdict" in running_worker.log(),
        timeout=30,
        message=lambda: f"the re-score's count; worker log:\n{running_worker.log_tail()}",
    )
