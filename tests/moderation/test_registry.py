"""The classifier registry on real PostgreSQL: the quality gate, promotion and rollback with
their audit rows, one active version per scope, label import, the latest label winning,
sample weights, the hot switch of the provider, re-scoring, and the scheduled retrain's
skip."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models import (
    AuditEntry,
    ClassifierVersion,
    Comment,
    JobState,
    Label,
    LabelSource,
    LabelValue,
    RetrainJob,
    Status,
    Verdict,
    VersionStatus,
)
from service.classifier.model import Classifier, classifier_bytes, train
from service.metrics import WorkerMetrics
from service.moderation.active import ClassifierProvider
from service.moderation.errors import Conflict, InvalidInput, NotFound
from service.moderation.registry import (
    IMPLICIT,
    Actor,
    activate,
    active_versions,
    quality_gate,
    rollback,
    store_version,
)
from service.moderation.rescore import rescore_batch
from service.moderation.retrain import (
    gather_labels,
    import_labels,
    new_labels_since_last_version,
)
from service.queue import SCHEDULED_RETRAIN, TaskQueue, make_celery
from service.settings import Settings
from tests.support.comments import make_site, submit_comments
from tests.support.labelled import labelled_comments
from workers.tasks import scheduled_retrain

ACTOR = Actor(issuer="https://issuer.test", subject="olivia")
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Trained:
    classifier: Classifier
    artifact: bytes
    version: str


def _trained(seed: int) -> Trained:
    corpus = labelled_comments(300, seed=seed)
    classifier = train(corpus.records, corpus.labels, seed=seed)
    data, metadata = classifier_bytes(classifier)
    return Trained(classifier, data, metadata.version)


@pytest.fixture(scope="module")
def trained() -> list[Trained]:
    """Three small classifiers (trained once for the module), each with its own version."""
    return [_trained(seed) for seed in (1, 2, 3)]


def _store(session: Session, t: Trained, *, site_id: int | None = None) -> ClassifierVersion:
    return store_version(
        session,
        ClassifierVersion(
            id=t.version,
            site_id=site_id,
            created_by="test",
            status=VersionStatus.candidate,
            artifact=t.artifact,
            artifact_sha256=hashlib.sha256(t.artifact).hexdigest(),
            training={},
            metrics={},
            thresholds=t.classifier.thresholds.to_dict(),
            gate={},
        ),
    )


@pytest.fixture
def sessions_in_test(db_session: Session) -> sessionmaker[Session]:
    return sessionmaker(
        bind=db_session.connection(),
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
    )


# --- the gate -----------------------------------------------------------------------------


HELD = {"n": 1000, "spam": 500}
"""Held-out labels with 500 ham: enough to see a false-positive rise of 0.005."""


def test_gate_passes_within_margins_and_says_why_it_fails() -> None:
    active = {"f1": 0.90, "fpr": 0.010}
    ok = quality_gate(
        {"f1": 0.895, "fpr": 0.012, **HELD}, active, max_f1_drop=0.01, max_fpr_rise=0.005
    )
    assert ok.passed
    worse_f1 = quality_gate(
        {"f1": 0.88, "fpr": 0.010, **HELD}, active, max_f1_drop=0.01, max_fpr_rise=0.005
    )
    assert not worse_f1.passed
    assert "F1 0.8800 is more than 0.01 below the active 0.9000" in worse_f1.reasons
    worse_fpr = quality_gate(
        {"f1": 0.95, "fpr": 0.02, **HELD}, active, max_f1_drop=0.01, max_fpr_rise=0.005
    )
    assert not worse_fpr.passed
    assert any("false-positive rate 0.0200 is more than" in r for r in worse_fpr.reasons)
    assert quality_gate({"f1": 0.1, "fpr": 0.5}, None, max_f1_drop=0, max_fpr_rise=0).passed


@pytest.mark.parametrize(
    ("n", "spam", "passed"), [(40, 20, False), (399, 200, False), (400, 200, True)]
)
def test_gate_does_not_promote_on_too_few_held_out_ham_to_see_the_rise(
    n: int, spam: int, passed: bool
) -> None:
    # A candidate better on every count, measured on 20, 199 or 200 ham: with fewer than
    # 1 / 0.005 = 200, one false positive is more than the rise the gate allows.
    better = {"f1": 0.99, "fpr": 0.0, "n": n, "spam": spam}
    decision = quality_gate(better, {"f1": 0.80, "fpr": 0.0}, max_f1_drop=0.01, max_fpr_rise=0.005)
    assert decision.passed is passed
    if not passed:
        assert (
            f"only {n - spam} ham among the held-out labels: one false positive is "
            f"{1 / (n - spam):.4f}, more than the allowed rise 0.005, so the gate cannot see "
            "such a rise (it needs 200 ham); label more comments, or promote by hand after "
            "reading the report"
        ) in decision.reasons


# --- promote, rollback, audit -------------------------------------------------------------


def _audit(session: Session) -> list[tuple[str, str | None, str | None, str]]:
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.target_type == "classifier").order_by(AuditEntry.id)
    )
    return [(r.action, r.from_state, r.to_state, r.actor_subject) for r in rows]


def test_promote_retires_the_active_one_and_rollback_restores_it(
    db_session: Session, trained: list[Trained]
) -> None:
    first, second = (_store(db_session, t) for t in trained[:2])
    activate(db_session, version_id=first.id, actor=ACTOR, now=NOW, note="first")
    activate(db_session, version_id=second.id, actor=ACTOR, now=NOW + dt.timedelta(1))
    assert (first.status, second.status) == (VersionStatus.retired, VersionStatus.active)
    assert active_versions(db_session) == {None: second.id}

    done = rollback(db_session, site_id=None, actor=ACTOR, now=NOW + dt.timedelta(2), note="worse")
    assert (done.retired, done.active) == (second.id, first.id)
    assert active_versions(db_session) == {None: first.id}
    # Rolling back the only version left returns to the implicit (configured) one.
    done = rollback(db_session, site_id=None, actor=ACTOR, now=NOW + dt.timedelta(3), note=None)
    assert done.active == IMPLICIT
    assert active_versions(db_session) == {}
    assert _audit(db_session) == [
        ("promote", IMPLICIT, first.id, "olivia"),
        ("promote", first.id, second.id, "olivia"),
        ("rollback", second.id, first.id, "olivia"),
        ("rollback", first.id, IMPLICIT, "olivia"),
    ]
    with pytest.raises(Conflict):
        rollback(db_session, site_id=None, actor=ACTOR, now=NOW, note=None)


def test_promote_refuses_unknown_active_and_failed_versions(
    db_session: Session, trained: list[Trained]
) -> None:
    version = _store(db_session, trained[0])
    with pytest.raises(NotFound):
        activate(db_session, version_id="cg-20260101-000000-00000000", actor=ACTOR, now=NOW)
    activate(db_session, version_id=version.id, actor=ACTOR, now=NOW)
    with pytest.raises(Conflict, match="already active"):
        activate(db_session, version_id=version.id, actor=ACTOR, now=NOW)
    failed = store_version(
        db_session,
        ClassifierVersion(
            id="cg-20260101-000000-0000000f",
            created_by="test",
            status=VersionStatus.failed,
            training={},
            metrics={},
            thresholds={},
            gate={},
        ),
    )
    with pytest.raises(Conflict, match="failed"):
        activate(db_session, version_id=failed.id, actor=ACTOR, now=NOW)


def test_site_versions_are_their_own_scope_and_one_is_active_per_scope(
    db_session: Session, trained: list[Trained]
) -> None:
    site = make_site(db_session)
    global_version = _store(db_session, trained[0])
    site_version = _store(db_session, trained[1], site_id=site.id)
    activate(db_session, version_id=global_version.id, actor=ACTOR, now=NOW)
    activate(db_session, version_id=site_version.id, actor=ACTOR, now=NOW)
    assert active_versions(db_session) == {None: global_version.id, site.id: site_version.id}
    site_audit = db_session.scalar(
        select(AuditEntry.site_id).where(AuditEntry.target_id == site_version.id)
    )
    assert site_audit == site.id
    # The database itself refuses a second active version in a scope.
    other = _store(db_session, trained[2])
    other.status = VersionStatus.active
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.flush()


# --- labels -------------------------------------------------------------------------------


def test_import_stores_labels_once_and_reports_malformed_lines(
    db_session: Session, tmp_path: Path
) -> None:
    site = make_site(db_session)
    data = tmp_path / "labels.csv"
    data.write_text(
        "content,label,permalink\n"
        "great post thanks,ham,https://blog.example/p1\n"
        "cheap pills http://x.example,spam,\n"
        "no label here,maybe,\n"
        "another kind word,0,\n",
        encoding="utf-8",
    )
    done = import_labels(db_session, site_id=site.id, path=data)
    assert (done.stored, done.spam, done.ham, done.already) == (3, 1, 2, 0)
    assert [e.line for e in done.errors] == [4]
    assert done.dataset.startswith("labels.csv@")
    again = import_labels(db_session, site_id=site.id, path=data)
    assert (again.stored, again.already) == (0, 3)
    stored = db_session.scalars(select(Label).where(Label.site_id == site.id)).all()
    assert len(stored) == 3
    assert {label.source for label in stored} == {LabelSource.import_}
    # The page goes with the text, so that retraining sees links to it as scoring does.
    assert {label.permalink for label in stored} == {"https://blog.example/p1", None}
    gathered = gather_labels(db_session, site_id=site.id, moderator_weight=3, import_weight=1)
    assert {r.permalink for r in gathered.records} == {"https://blog.example/p1", None}
    with pytest.raises(InvalidInput):
        import_labels(db_session, site_id=site.id, path=tmp_path / "missing.csv")


def test_the_latest_label_of_a_comment_wins_and_moderators_outweigh_imports(
    db_session: Session, settings: Settings
) -> None:
    site = make_site(db_session)
    other = make_site(db_session)
    ids = submit_comments(
        db_session, site, 2, outbox_timeout=dt.timedelta(seconds=settings.outbox_timeout_seconds)
    )
    base = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

    def label(
        comment_id: uuid.UUID | None,
        value: LabelValue,
        at: dt.datetime,
        *,
        content: str | None = None,
        site_id: int = site.id,
    ) -> None:
        db_session.add(
            Label(
                site_id=site_id,
                comment_id=comment_id,
                source=LabelSource.moderator if comment_id else LabelSource.import_,
                label=value,
                content=content or f"text of {comment_id}",
                created_at=at,
            )
        )

    label(ids[0], LabelValue.spam, base)
    label(ids[0], LabelValue.ham, base + dt.timedelta(minutes=5))  # changed their mind
    label(ids[1], LabelValue.ham, base + dt.timedelta(minutes=9))
    label(ids[1], LabelValue.spam, base + dt.timedelta(minutes=1))  # older, loses
    label(None, LabelValue.spam, base, content="imported spam")
    label(None, LabelValue.ham, base, content="imported ham")
    label(None, LabelValue.spam, base, content="other site", site_id=other.id)
    db_session.flush()

    gathered = gather_labels(db_session, site_id=site.id, moderator_weight=3.0, import_weight=1.0)
    by_content = dict(
        zip(
            [r.content for r in gathered.records],
            zip(gathered.labels, gathered.sources, gathered.weights, strict=True),
            strict=True,
        )
    )
    assert by_content == {
        f"text of {ids[0]}": (0, "moderator", 3.0),
        f"text of {ids[1]}": (0, "moderator", 3.0),
        "imported spam": (1, "import", 1.0),
        "imported ham": (0, "import", 1.0),
    }
    everywhere = gather_labels(db_session, site_id=None, moderator_weight=2, import_weight=1)
    assert len(everywhere) == 5
    assert everywhere.counts() == {"moderator": 2, "import": 3}


def test_sample_weights_move_the_model() -> None:
    corpus = labelled_comments(200, seed=4)
    plain = train(corpus.records, corpus.labels, seed=0)
    weighted = train(
        corpus.records,
        corpus.labels,
        seed=0,
        sample_weight=[5.0 if label else 1.0 for label in corpus.labels],
    )
    probe = corpus.records[:20]
    assert weighted.metadata["notes"]["weighted"] is True
    assert plain.probabilities(probe) != weighted.probabilities(probe)
    with pytest.raises(ValueError, match="positive"):
        train(corpus.records, corpus.labels, sample_weight=[0.0] * len(corpus.labels))


# --- the provider's hot switch ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_provider_switches_after_the_poll_interval_and_per_site(
    db_session: Session, sessions_in_test: sessionmaker[Session], trained: list[Trained]
) -> None:
    clock = Clock()
    provider = ClassifierProvider(None, sessions=sessions_in_test, poll_seconds=5, clock=clock)
    bundled = provider.get().version
    assert not bundled.startswith(trained[0].version)

    site = make_site(db_session)
    first = _store(db_session, trained[0])
    activate(db_session, version_id=first.id, actor=ACTOR, now=NOW)
    db_session.flush()
    clock.now += 4.9
    assert provider.get().version == bundled  # not asked again within the interval
    clock.now += 0.2
    assert provider.get().version == first.id
    loaded = provider.get()
    clock.now += 10
    assert provider.get() is loaded  # asked again, nothing changed: nothing reloaded

    site_version = _store(db_session, trained[1], site_id=site.id)
    activate(db_session, version_id=site_version.id, actor=ACTOR, now=NOW)
    provider.check_now()
    assert provider.for_site(site.id).version == site_version.id
    assert provider.for_site(site.id + 1000).version == first.id
    assert provider.get().version == first.id

    rollback(db_session, site_id=None, actor=ACTOR, now=NOW, note=None)
    clock.now += 5
    assert provider.get().version == bundled
    assert provider.for_site(site.id).version == site_version.id


# --- re-scoring ----------------------------------------------------------------------------


def test_rescore_writes_new_verdicts_once_and_leaves_acted_on_comments(
    db_session: Session,
    sessions_in_test: sessionmaker[Session],
    trained: list[Trained],
    settings: Settings,
) -> None:
    site = make_site(db_session)
    ids = submit_comments(
        db_session, site, 6, outbox_timeout=dt.timedelta(seconds=settings.outbox_timeout_seconds)
    )
    # Two held comments: one by the classifier, one a moderator put there.
    for n in (4, 5):
        db_session.get_one(Comment, ids[n]).status = Status.held
    db_session.add(
        AuditEntry(
            site_id=site.id,
            actor_issuer="i",
            actor_subject="m",
            action="hold",
            target_type="comment",
            target_id=str(ids[5]),
            comment_id=ids[5],
            details={},
        )
    )
    version = _store(db_session, trained[0], site_id=site.id)
    activate(db_session, version_id=version.id, actor=ACTOR, now=NOW)
    db_session.flush()
    provider = ClassifierProvider(None, sessions=sessions_in_test, poll_seconds=0)

    batches, after = [], None
    while True:
        batch = rescore_batch(db_session, classifier=provider, site_id=site.id, after=after, size=2)
        if batch.last_id is None:
            break
        batches.append(batch.rescored)
        after = batch.last_id
    assert sum(batches) == 5
    assert len(batches) == 3
    versions = dict(
        db_session.execute(
            select(Verdict.comment_id, Verdict.classifier_version).where(
                Verdict.comment_id.in_(ids)
            )
        ).all()
    )
    assert set(versions) == set(ids[:5])
    assert set(versions.values()) == {version.id}
    assert db_session.get_one(Comment, ids[5]).status is Status.held
    # Again: everything left pending or held was scored by this version already.
    again = rescore_batch(db_session, classifier=provider, site_id=site.id, after=None, size=50)
    assert again.rescored == 0


# --- the schedule ---------------------------------------------------------------------------


@dataclass
class Resources:
    settings: Settings
    made: sessionmaker[Session]
    provider: ClassifierProvider

    def sessions(self) -> sessionmaker[Session]:
        return self.made

    def classifier(self) -> ClassifierProvider:
        return self.provider

    def queue(self) -> TaskQueue:
        raise AssertionError("a skipped schedule enqueues nothing")

    def metrics(self) -> WorkerMetrics:
        raise AssertionError("a retrain counts no verdict")


@pytest.fixture
def resources(settings: Settings, sessions_in_test: sessionmaker[Session]) -> Resources:
    return Resources(
        settings.model_copy(update={"retrain_min_new_labels": 3}),
        sessions_in_test,
        ClassifierProvider(None, sessions=sessions_in_test),
    )


def test_scheduled_retrain_is_skipped_with_too_few_new_labels(
    db_session: Session, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    site = make_site(db_session)
    for n in range(2):
        db_session.add(
            Label(
                site_id=site.id,
                source=LabelSource.import_,
                label=LabelValue.spam,
                content=f"spam {n}",
            )
        )
    db_session.flush()
    with caplog.at_level(logging.INFO, logger="workers.tasks"):
        assert scheduled_retrain(resources) is None
    assert "scheduled retrain skipped: 2 new labels since the last version (needs 3)" in (
        caplog.text
    )


def test_scheduled_retrain_runs_a_job_with_enough_new_labels(
    db_session: Session, resources: Resources
) -> None:
    site = make_site(db_session)
    corpus = labelled_comments(80, seed=9)
    for record, value in zip(corpus.records, corpus.labels, strict=True):
        db_session.add(
            Label(
                site_id=site.id,
                source=LabelSource.import_,
                label=LabelValue.spam if value else LabelValue.ham,
                content=record.content,
            )
        )
    db_session.flush()
    job_id = scheduled_retrain(resources)
    assert job_id is not None
    job = db_session.get_one(RetrainJob, uuid.UUID(job_id))
    db_session.refresh(job)
    assert (job.kind, job.state, job.requested_by) == (
        "schedule",
        JobState.succeeded,
        "schedule beat",
    )
    version = db_session.get_one(ClassifierVersion, job.version_id)
    assert version.site_id is None
    assert version.training["import"] == 80
    # Now nothing is new since that version: the next run is skipped.
    assert scheduled_retrain(resources) is None
    # Labels given after it count as new (by id, whatever their transaction's clock).
    for n in range(3):
        db_session.add(
            Label(site_id=site.id, source=LabelSource.import_, label=LabelValue.ham, content=f"{n}")
        )
    db_session.flush()
    assert new_labels_since_last_version(db_session, site_id=None) == 3


def test_beat_sends_the_scheduled_retrain_only_when_configured(settings: Settings) -> None:
    assert "scheduled-retrain" not in make_celery(settings).conf.beat_schedule
    hourly = settings.model_copy(update={"retrain_interval_seconds": 3600.0})
    entry = make_celery(hourly).conf.beat_schedule["scheduled-retrain"]
    assert (entry["task"], entry["schedule"]) == (SCHEDULED_RETRAIN, 3600.0)
