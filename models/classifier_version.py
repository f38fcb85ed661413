"""The classifier registry: every trained classifier version, and the retraining jobs.

A version's ``id`` is its artifact's version id (``cg-YYYYMMDD-HHMMSS-<8 hex>``), so a
verdict's ``classifier_version`` names the row that scored it. ``site_id`` is the
version's scope: empty for a global version (trained on every site's labels, used by
every site without its own), a site's id for a version trained on that site's labels
and used only there. At most one version is ``active`` per scope: partial unique indexes
(PostgreSQL and SQLite) hold one active global version and one active version per site.
With no active global version, the configured artifact (``COMMENTGUARD_CLASSIFIER_PATH``,
by default the bundled one) is the implicit active version.

Statuses: ``candidate`` (stored, evaluated, not in use), ``active``, ``retired`` (was
active, replaced or rolled back), ``failed`` (training failed; no artifact).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, Timestamped


class VersionStatus(enum.StrEnum):
    candidate = "candidate"
    active = "active"
    retired = "retired"
    failed = "failed"


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ClassifierVersion(Timestamped, Base):
    __tablename__ = "classifier_versions"
    __table_args__ = (
        Index(
            "uq_classifier_versions_active_global",
            "status",
            unique=True,
            postgresql_where=text("status = 'active' AND site_id IS NULL"),
            sqlite_where=text("status = 'active' AND site_id IS NULL"),
        ),
        Index(
            "uq_classifier_versions_active_site",
            "site_id",
            unique=True,
            postgresql_where=text("status = 'active' AND site_id IS NOT NULL"),
            sqlite_where=text("status = 'active' AND site_id IS NOT NULL"),
        ),
        Index("ix_classifier_versions_status_site", "status", "site_id"),
        Index("ix_classifier_versions_site_created", "site_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    #: Who asked for it: ``<issuer> <subject>``, ``cli:<user>`` or ``schedule``.
    created_by: Mapped[str] = mapped_column(String(800))
    status: Mapped[VersionStatus] = mapped_column(
        Enum(VersionStatus, name="version_status", native_enum=False, length=16)
    )
    #: The skops artifact (``service/classifier/artifacts.py``) and its sha256; empty
    #: for a failed version.
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    #: {"moderator": n, "import": n, "train": n, "holdout": n, "spam": n, "ham": n,
    #: "fingerprint": sha256, "datasets": [...]} (versions trained before synthetic
    #: comments were removed also count "bootstrap": n; kept as the record of them).
    training: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: {"candidate": {...}, "active": {...} or None, "active_version": id,
    #: "holdout": n} measured on the same held-out labels.
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: {"hold": p, "spam": p, "discard": p} chosen at training.
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: {"passed": bool, "reasons": [...], "margins": {...}} from the quality gate.
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The evaluation report's numbers (``service.classifier.report.report_data``): the
    #: candidate and the active version on the same held-out labels.
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONType, deferred=True)
    notes: Mapped[str | None] = mapped_column(Text)
    #: The version this one replaced when it was last activated by a promotion (None:
    #: the implicit one, or for a site the global one): where a rollback returns to.
    replaced_id: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[dt.datetime | None]
    retired_at: Mapped[dt.datetime | None]


class RetrainJob(Timestamped, Base):
    """One retraining run, as operators follow it (``GET /v1/classifier/jobs/{id}``)."""

    __tablename__ = "classifier_jobs"
    __table_args__ = (Index("ix_classifier_jobs_created", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(String(800))
    #: retrain or schedule.
    kind: Mapped[str] = mapped_column(String(16), default="retrain")
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, name="job_state", native_enum=False, length=16)
    )
    percent: Mapped[int] = mapped_column(Integer, default=0)
    #: [{"at": iso time, "percent": n, "message": text} ...], oldest first.
    messages: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    version_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    #: Options the job was asked with (promote, rescore; older jobs: a bootstrap count,
    #: no longer read).
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
