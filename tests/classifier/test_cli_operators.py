"""The operators' CLI on a real database: import a data set (idempotently, malformed lines
listed), retrain in process, list and show versions, write the report, promote and roll
back (audited as ``cli``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import AuditEntry, ClassifierVersion, VersionStatus
from service.cli import main
from service.db import make_engine, make_sessionmaker
from service.settings import Settings
from tests.conftest import alembic_config
from tests.support.env import settings_env
from tests.support.labelled import labelled_comments
from tests.support.worker import CeleryWorker


def test_import_retrain_report_promote_and_rollback_from_the_shell(
    settings: Settings, committed: sessionmaker[Session], tmp_path: Path
) -> None:
    _import_retrain_report_promote_and_rollback(settings, committed, tmp_path)


def test_the_same_on_the_embedded_sqlite_default(settings: Settings, tmp_path: Path) -> None:
    """``make run`` keeps its registry in SQLite: every row, default and index must work there."""
    embedded = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'cg.db'}"})
    command.upgrade(alembic_config(embedded), "head")
    sessions = make_sessionmaker(make_engine(embedded))
    _import_retrain_report_promote_and_rollback(embedded, sessions, tmp_path)


def _import_retrain_report_promote_and_rollback(
    settings: Settings, committed: sessionmaker[Session], tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {**os.environ, **settings_env(settings)}

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert run("site", "create", "--slug", "shop", "--name", "S", "--url", "https://s.example")
    corpus = labelled_comments(300, seed=21)
    data = tmp_path / "shop.csv"
    rows = [
        f'"{r.content.replace(chr(34), "")}",{label}'
        for r, label in zip(corpus.records, corpus.labels, strict=True)
    ]
    data.write_text("content,label\n" + "\n".join(rows) + "\nbroken line,perhaps\n")

    imported = run("classifier", "import", "--site", "shop", "--data", str(data))
    assert imported.exit_code == 0, imported.output
    assert "stored 300 labels" in imported.output
    assert "skipped 1 malformed line(s)" in imported.output
    assert "bad label 'perhaps'" in imported.output
    again = run("classifier", "import", "--site", "shop", "--data", str(data))
    assert "already imported (300 labels); nothing stored" in again.output

    trained = run("classifier", "retrain", "--site", "shop", "--here", "--no-promote")
    assert trained.exit_code == 0, trained.output
    assert "candidate" in trained.output
    assert "active version measured: cg-" in trained.output
    with committed() as session:
        (version,) = session.scalars(select(ClassifierVersion)).all()
        assert version.status is VersionStatus.candidate
        assert version.training["import"] == 300
        assert version.training["train"] == 240
        assert version.training["holdout"] == 60
    listed = run("classifier", "versions", "--site", "shop")
    assert version.id in listed.output

    report = run("classifier", "report", version.id, "--out", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "index.html").exists()
    assert (tmp_path / "report" / "roc.png").exists()

    promoted = run("classifier", "promote", version.id, "--note", "looks right")
    assert promoted.exit_code == 0, promoted.output
    assert run("classifier", "promote", version.id).exit_code == 1  # already active
    rolled = run("classifier", "rollback", "--site", "shop")
    assert rolled.exit_code == 0, rolled.output
    assert f"retired {version.id}; now active: global" in rolled.output
    with committed() as session:
        audit = session.execute(
            select(AuditEntry.action, AuditEntry.actor_issuer, AuditEntry.note)
            .where(AuditEntry.target_type == "classifier")
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(a) for a in audit] == [
        ("promote", "cli", "looks right"),
        ("rollback", "cli", None),
    ]
    unknown = run("classifier", "show", "cg-20200101-000000-00000000")
    assert unknown.exit_code == 1
    assert "no classifier version" in unknown.output

    # A broker that is down after the promotion: it stands, and the shell says so.
    down = settings.model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0", "dependency_timeout_seconds": 0.5}
    )
    again = runner.invoke(
        main,
        ["classifier", "promote", version.id, "--rescore"],
        env={**env, **settings_env(down)},
        catch_exceptions=False,
    )
    assert again.exit_code == 1
    assert "the change stands, but the re-scoring could not be queued" in again.output
    with committed() as session:
        assert session.get_one(ClassifierVersion, version.id).status is VersionStatus.active


def test_retrain_wait_follows_a_job_on_the_worker(
    settings: Settings,
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    env = {**os.environ, **settings_env(settings)}
    assert runner.invoke(
        main, ["site", "create", "--slug", "waiter", "--name", "W", "--url", "https://w.example"],
        env=env,
    ).exit_code == 0  # fmt: skip
    corpus = labelled_comments(120, seed=22)
    data = tmp_path / "w.csv"
    rows = [
        f'"{r.content.replace(chr(34), "")}",{label}'
        for r, label in zip(corpus.records, corpus.labels, strict=True)
    ]
    data.write_text("content,label\n" + "\n".join(rows) + "\n")
    args = ["classifier", "import", "--site", "waiter", "--data", str(data)]
    assert runner.invoke(main, args, env=env).exit_code == 0

    waited = runner.invoke(
        main, ["classifier", "retrain", "--site", "waiter", "--wait", "--no-promote"], env=env
    )
    assert waited.exit_code == 0, f"{waited.output}\n{running_worker.log_tail()}"
    # Not a terminal: click draws no bar, but the job's messages are followed.
    assert ".. gathering labels" in waited.output
    assert ".. training: " in waited.output
    assert "candidate" in waited.output
    with committed() as session:
        (version,) = session.scalars(select(ClassifierVersion)).all()
    assert version.status is VersionStatus.candidate
    assert version.training["job"] in waited.output
