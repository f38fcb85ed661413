"""Retraining on 100,000 labels from PostgreSQL, end to end, against the machine's ceiling.

    .venv/bin/python -m bench.retrain [--labels 100000 --bar-seconds 90]

What it does:

1. Creates a fresh PostgreSQL database (dropped at the end, on every exit path), migrates
   it, creates a site, and imports ``--labels`` labels into it through
   ``commentguard classifier import``'s domain function: the YouTube Spam Collection
   and the SMS Spam Collection (the comment-like corpora of data/manifest.json; see
   :mod:`bench.volume`), repeated to the count, as one CSV file.
2. Runs a retraining job in this process exactly as a worker runs it
   (``service.moderation.retrain.run_retrain``): gather the labels (latest per comment,
   weights), hold out 20 %, train the candidate, score the candidate and the active
   (bundled) classifier on the held-out labels, build the report data, store the version,
   let the gate decide. Prints the time split: loading, training, evaluating, storing,
   total.
3. Ceiling: a bare ``train()`` on the same training texts and labels, already in memory
   (no database, no weights, no evaluation): the floor under any retrain of this data.
4. Bar: total <= ``--bar-seconds``. Exit status 0 when met, 1 when missed.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from pydantic import SecretStr

from bench.bars import conclude
from bench.pipeline import fresh_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _write_labels(path: Path, total: int, youtube: Path | None) -> int:
    """Write ``total`` labelled comments as a CSV (content, label, author_name); how many
    distinct ones there are."""
    from bench import volume

    records, labels = volume.comments(total, seed=5, youtube=youtube)
    rows = [
        (r.content, label, r.author_name or "") for r, label in zip(records, labels, strict=True)
    ]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["content", "label", "author_name"])
        writer.writerows(rows)
    return len(set(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--bar-seconds", type=float, default=90.0)
    parser.add_argument("--admin-dsn", default=DEFAULT_ADMIN_DSN)
    parser.add_argument(
        "--youtube", type=Path, default=None, help="the YouTube files, if elsewhere"
    )
    args = parser.parse_args(argv)

    from alembic import command
    from alembic.config import Config

    from service.classifier.model import Classifier, train
    from service.db import make_engine, make_sessionmaker
    from service.moderation.active import ClassifierProvider
    from service.moderation.registry import create_job
    from service.moderation.retrain import RetrainOptions, import_labels, run_retrain
    from service.moderation.sites import create_site
    from service.settings import Settings

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with fresh_database(args.admin_dsn) as dsn, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            environment="test",
            database_url=_sqlalchemy_url(dsn),
            secret_key=SecretStr(secrets.token_urlsafe(36)),
            log_level="WARNING",
        )
        config = Config(str(ROOT / "migrations" / "alembic.ini"))
        config.attributes["settings"] = settings
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        try:
            data = Path(tmp) / "labels.csv"
            started = time.perf_counter()
            distinct = _write_labels(data, args.labels, args.youtube)
            with sessions.begin() as session:
                site = create_site(session, slug="bench", name="Bench", url="http://b.invalid")
                done = import_labels(session, site_id=site.id, path=data)
                job_id = create_job(session, site_id=None, requested_by="bench retrain").id
            print(
                f"filled: {done.stored} labels ({distinct} distinct YouTube and SMS "
                f"comments, repeated; {done.spam} spam) in "
                f"{time.perf_counter() - started:.1f} s"
            )

            provider = ClassifierProvider(None, sessions=sessions, poll_seconds=0)

            def active(_session: object, site_id: int | None) -> tuple[str, Classifier]:
                loaded = provider.for_site(site_id)
                return loaded.version, loaded.classifier

            result = run_retrain(
                sessions,
                job_id=uuid.UUID(str(job_id)),
                options=RetrainOptions(),
                active_loader=active,
            )
            assert result is not None

            # The ceiling: the same training split, already in memory, trained bare.
            from service.moderation.retrain import gather_labels, split_holdout

            with sessions() as session:
                labels = gather_labels(
                    session, site_id=None, moderator_weight=3.0, import_weight=1.0
                )
            fit, _ = split_holdout(len(labels), RetrainOptions().holdout)
            records = [labels.records[i] for i in fit]
            y = [labels.labels[i] for i in fit]
            ceiling_started = time.perf_counter()
            train(records, y, seed=0)
            ceiling = time.perf_counter() - ceiling_started
        finally:
            engine.dispose()

    t = result.timings
    print()
    print(f"retrain of {args.labels} labels: version {result.version_id} ({result.status.value})")
    print(f"  gate: {'; '.join(result.gate['reasons'])}")
    print(f"  {'phase':<12} {'seconds':>8}")
    for phase in ("loading", "training", "evaluating", "storing", "total"):
        print(f"  {phase:<12} {t[phase]:>8.1f}")
    print(f"  {'ceiling':<12} {ceiling:>8.1f}   (bare train() on the same {len(fit)} texts)")
    print(f"  ratio total / ceiling: {t['total'] / ceiling:.2f}")
    print(f"machine load average {os.getloadavg()[0]:.2f} at the end")
    missed: list[str] = []
    if t["total"] > args.bar_seconds:
        missed.append(f"retrain total {t['total']:.1f} s > {args.bar_seconds:.0f} s")
    return conclude(missed)


def _sqlalchemy_url(dsn: str) -> str:
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    user = parts.get("user", "postgres")
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", 5432)
    return f"postgresql+psycopg://{user}@{host}:{port}/{parts['dbname']}"


if __name__ == "__main__":
    sys.exit(main())
