"""The operators' commands of ``commentguard classifier``: import, retrain, versions, show,
promote, rollback, job, report (attached to the group by ``service/cli.py``).

The CLI acts on the database directly, so it may manage global versions and every
site's; its audit rows name the actor ``cli`` and the OS user.
"""

from __future__ import annotations

import getpass
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings

#: How often ``retrain --wait`` asks for the job's progress.
POLL_SECONDS = 0.5


def _settings() -> Settings:
    from service.cli import load_settings

    return load_settings()


@contextmanager
def sessions_for(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh engine for one command; the engine is disposed afterwards."""
    from service.db import make_engine, make_sessionmaker

    engine = make_engine(settings)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextmanager
def cli_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction; domain errors become clean CLI errors."""
    from service.moderation.errors import DomainError, InvalidInput

    try:
        with sessions.begin() as session:
            yield session
    except InvalidInput as exc:
        fields = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        raise click.ClickException(f"{exc.detail}: {fields}" if fields else exc.detail) from None
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None


def _actor() -> Any:
    from service.moderation.registry import Actor

    return Actor(issuer="cli", subject=getpass.getuser())


def _site_id(session: Session, slug: str | None) -> int | None:
    from service.moderation.registry import site_id_of

    return None if slug is None else site_id_of(session, slug=slug)


def register(group: click.Group) -> None:
    """Attach the operators' commands to the ``classifier`` group."""
    for command in (
        classifier_import,
        classifier_retrain,
        classifier_job,
        classifier_versions,
        classifier_show,
        classifier_promote,
        classifier_rollback,
        classifier_report,
    ):
        group.add_command(command)


@click.command("import")
@click.option("--site", "site_slug", required=True, help="The site the labels belong to.")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def classifier_import(site_slug: str, data: Path) -> None:
    """Store a labelled data set as labels (source import) of site SLUG. Importing the same
    file again stores nothing; malformed lines are skipped and listed."""
    from service.moderation.retrain import import_labels

    with sessions_for(_settings()) as sessions, cli_transaction(sessions) as session:
        site_id = _site_id(session, site_slug)
        assert site_id is not None
        done = import_labels(session, site_id=site_id, path=data)
    for error in done.errors:
        click.echo(f"skipped {error}", err=True)
    if done.already:
        click.echo(f"{done.dataset}: already imported ({done.already} labels); nothing stored")
    else:
        click.echo(
            f"{done.dataset}: stored {done.stored} labels ({done.spam} spam, {done.ham} ham)"
            f"{f'; skipped {len(done.errors)} malformed line(s)' if done.errors else ''}"
        )


@click.command("retrain")
@click.option("--site", "site_slug", default=None, help="Retrain this site's own version.")
@click.option("--wait", is_flag=True, help="Follow the job with a progress bar until it ends.")
@click.option("--here", is_flag=True, help="Run the job in this process instead of on a worker.")
@click.option("--no-promote", is_flag=True, help="Keep the candidate even if the gate passes.")
@click.option("--rescore", is_flag=True, help="Re-score pending and held comments if activated.")
def classifier_retrain(
    site_slug: str | None,
    wait: bool,
    here: bool,
    no_promote: bool,
    rescore: bool,
) -> None:
    """Retrain from the labels (of SITE, or of every site for the global version): a job
    on a worker, or in this process with --here."""
    from service.moderation.registry import create_job

    settings = _settings()
    options: dict[str, Any] = {"promote": not no_promote}
    if rescore:
        options["rescore"] = True
    actor = _actor()
    with sessions_for(settings) as sessions:
        with cli_transaction(sessions) as session:
            job = create_job(
                session,
                site_id=_site_id(session, site_slug),
                requested_by=actor.label,
                options=options,
            )
            job_id = job.id
        click.echo(f"job {job_id}")
        if here:
            _run_here(settings, sessions, job_id)
        else:
            _enqueue(settings, sessions, job_id)
            if not wait:
                click.echo(f"queued; follow it with `commentguard classifier job {job_id}`")
                return
            _follow(sessions, job_id)
        _summary(sessions, job_id)


def _enqueue(settings: Settings, sessions: sessionmaker[Session], job_id: uuid.UUID) -> None:
    import datetime as dt

    from service.moderation.registry import fail_job
    from service.queue import RETRAIN, TaskQueue, make_celery

    try:
        TaskQueue(make_celery(settings)).enqueue(RETRAIN, {"job_id": str(job_id)})
    except Exception as exc:
        with cli_transaction(sessions) as session:
            fail_job(
                session, job_id=job_id, error="broker unavailable", now=dt.datetime.now(dt.UTC)
            )
        raise click.ClickException(f"the task broker is unavailable: {exc}") from None


def _run_here(settings: Settings, sessions: sessionmaker[Session], job_id: uuid.UUID) -> None:
    from service.classifier.model import Classifier
    from service.moderation.active import ClassifierProvider
    from service.moderation.registry import get_job
    from service.moderation.retrain import RetrainFailed, run_retrain
    from workers.tasks import retrain_options

    provider = ClassifierProvider(settings.classifier_path, sessions=sessions, poll_seconds=0)

    def active(_session: Session, site_id: int | None) -> tuple[str, Classifier]:
        loaded = provider.for_site(site_id)
        return loaded.version, loaded.classifier

    with sessions() as session:
        options = dict(get_job(session, job_id=job_id).options)
    try:
        result = run_retrain(
            sessions,
            job_id=job_id,
            options=retrain_options(settings, options),
            active_loader=active,
        )
    except RetrainFailed as exc:
        raise click.ClickException(str(exc)) from None
    if result is not None:
        click.echo("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))


def _follow(sessions: sessionmaker[Session], job_id: uuid.UUID) -> None:
    from models import JobState
    from service.moderation.registry import get_job

    shown = 0
    with click.progressbar(length=100, label="retraining", show_percent=True) as bar:
        while True:
            with sessions() as session:
                job = get_job(session, job_id=job_id)
                percent, state, messages = job.percent, job.state, list(job.messages)
            for entry in messages[shown:]:
                click.echo(f"\n  .. {entry['message']}", err=True)
            shown = len(messages)
            if percent > bar.pos:
                bar.update(percent - bar.pos)
            if state in (JobState.succeeded, JobState.failed):
                if state is JobState.succeeded and bar.pos < 100:
                    bar.update(100 - bar.pos)
                return
            time.sleep(POLL_SECONDS)


def _summary(sessions: sessionmaker[Session], job_id: uuid.UUID) -> None:
    from models import JobState
    from service.moderation.registry import get_job, get_version

    with sessions() as session:
        job = get_job(session, job_id=job_id)
        if job.state is JobState.failed:
            raise click.ClickException(f"job {job_id} failed: {job.error}")
        if job.version_id is None:
            return
        version = get_version(session, version_id=job.version_id)
        _echo_version(version)


def _echo_version(version: Any) -> None:
    click.echo(f"version {version.id}: {version.status.value}")
    metrics = version.metrics or {}
    for side in ("candidate", "active"):
        values = metrics.get(side)
        if values:
            click.echo(
                f"  {side:<9} f1 {values['f1']:.4f}  fpr {values['fpr']:.4f}  "
                f"precision {values['precision']:.4f}  recall {values['recall']:.4f}"
                f"  (n {values['n']})"
            )
    if metrics.get("active_version"):
        click.echo(f"  active version measured: {metrics['active_version']}")
    for reason in (version.gate or {}).get("reasons", []):
        click.echo(f"  gate: {reason}")
    if version.notes:
        click.echo(f"  {version.notes}")


@click.command("job")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def classifier_job(job_id: str, as_json: bool) -> None:
    """Show a retraining job's state, percent and messages."""
    from service.moderation.registry import get_job

    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise click.UsageError(f"{job_id} is not a job id") from None
    with sessions_for(_settings()) as sessions, cli_transaction(sessions) as session:
        job = get_job(session, job_id=parsed)
        body: dict[str, Any] = {
            "id": str(job.id),
            "state": job.state.value,
            "percent": job.percent,
            "version": job.version_id,
            "error": job.error,
            "messages": job.messages,
        }
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"job {body['id']}: {body['state']} {body['percent']}%  version {body['version']}")
    for entry in body["messages"]:
        click.echo(f"  {entry['at']}  {entry['percent']:>3}%  {entry['message']}")
    if body["error"]:
        click.echo(f"  error: {body['error']}")


@click.command("versions")
@click.option("--site", "site_slug", default=None, help="A site's versions (default: global).")
@click.option("--all", "every_site", is_flag=True, help="Every scope's versions.")
@click.option("--json", "as_json", is_flag=True)
def classifier_versions(site_slug: str | None, every_site: bool, as_json: bool) -> None:
    """List classifier versions, newest first."""
    from service.moderation.registry import list_versions

    with sessions_for(_settings()) as sessions, cli_transaction(sessions) as session:
        versions = list_versions(
            session, site_id=_site_id(session, site_slug), every_site=every_site
        )
        rows = [
            {
                "id": v.id,
                "site_id": v.site_id,
                "status": v.status.value,
                "created_at": v.created_at.isoformat(),
                "created_by": v.created_by,
                "f1": (v.metrics.get("candidate") or {}).get("f1"),
                "fpr": (v.metrics.get("candidate") or {}).get("fpr"),
                "gate": (v.gate or {}).get("passed"),
            }
            for v in versions
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no versions yet: the configured (bundled) classifier is active")
    for row in rows:
        scores = (
            f"f1 {row['f1']:.4f} fpr {row['fpr']:.4f}" if row["f1"] is not None else "no metrics"
        )
        click.echo(
            f"{row['id']}  {row['status']:<9} {scores}  gate "
            f"{'passed' if row['gate'] else 'failed' if row['gate'] is False else '-'}  "
            f"{row['created_at']}  {row['created_by']}"
        )


@click.command("show")
@click.argument("version_id")
def classifier_show(version_id: str) -> None:
    """Show one version: status, metrics beside the active version's, the gate's reasons."""
    from service.moderation.registry import get_version

    with sessions_for(_settings()) as sessions, cli_transaction(sessions) as session:
        version = get_version(session, version_id=version_id)
        _echo_version(version)
        click.echo(f"  training: {json.dumps(version.training)}")
        click.echo(f"  thresholds: {json.dumps(version.thresholds)}")


def _after_change(settings: Settings, rescore: bool, site_id: int | None) -> None:
    if rescore or settings.rescore_after_promotion:
        from service.queue import RESCORE, TaskQueue, make_celery

        try:
            TaskQueue(make_celery(settings)).enqueue(RESCORE, {"site_id": site_id})
        except Exception as exc:
            # The change is committed; only the re-scoring is missing.
            raise click.ClickException(
                f"the change stands, but the re-scoring could not be queued "
                f"(the task broker is unavailable: {exc})"
            ) from None
        click.echo("re-scoring of pending and held comments queued")


@click.command("promote")
@click.argument("version_id")
@click.option("--note", default=None, help="Why (kept in the audit log).")
@click.option("--rescore", is_flag=True, help="Re-score pending and held comments.")
def classifier_promote(version_id: str, note: str | None, rescore: bool) -> None:
    """Activate VERSION in its scope (global or its site); the active one is retired."""
    import datetime as dt

    from service.moderation.registry import activate

    settings = _settings()
    with sessions_for(settings) as sessions, cli_transaction(sessions) as session:
        version = activate(
            session,
            version_id=version_id,
            actor=_actor(),
            now=dt.datetime.now(dt.UTC),
            note=note,
        )
        site_id = version.site_id
    click.echo(f"version {version_id} is active")
    _after_change(settings, rescore, site_id)


@click.command("rollback")
@click.option("--site", "site_slug", default=None, help="Roll back a site's version.")
@click.option("--note", default=None, help="Why (kept in the audit log).")
@click.option("--rescore", is_flag=True, help="Re-score pending and held comments.")
def classifier_rollback(site_slug: str | None, note: str | None, rescore: bool) -> None:
    """Retire the active version and reactivate the one before it."""
    import datetime as dt

    from service.moderation.registry import rollback

    settings = _settings()
    with sessions_for(settings) as sessions, cli_transaction(sessions) as session:
        site_id = _site_id(session, site_slug)
        done = rollback(
            session, site_id=site_id, actor=_actor(), now=dt.datetime.now(dt.UTC), note=note
        )
    click.echo(f"retired {done.retired}; now active: {done.active}")
    _after_change(settings, rescore, site_id)


@click.command("report")
@click.argument("version_id")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def classifier_report(version_id: str, out: Path) -> None:
    """Write VERSION's evaluation report (index.html, PNG plots, report.json) to OUT: the
    candidate and the version active then, on the same held-out labels."""
    from service.classifier.report import render_report
    from service.moderation.registry import get_version

    with sessions_for(_settings()) as sessions, cli_transaction(sessions) as session:
        report = get_version(session, version_id=version_id).report
    if report is None:
        raise click.ClickException(f"version {version_id} has no evaluation report")
    files = render_report(out, report)
    click.echo(f"wrote {files.html} ({len(files.plots)} plots, {files.json.name})")
