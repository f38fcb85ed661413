"""The classifier registry: stored versions, which one is active, the quality gate,
promotion and rollback.

A version's scope is its ``site_id``: a global version (``None``) serves every site that
has no active version of its own. With no active global version the configured artifact
(``COMMENTGUARD_CLASSIFIER_PATH``, else the bundled classifier) is the implicit active
version; it is not a row, so rolling back the only global version returns to it.

Every promotion and rollback writes an ``audit_log`` row (``target_type`` "classifier",
``target_id`` the version now active or ``implicit``, ``from_state`` and ``to_state`` the
version ids before and after). Functions here take a session and never commit.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import AuditEntry, ClassifierVersion, JobState, RetrainJob, Site, VersionStatus
from service.moderation.errors import Conflict, NotFound

#: How the implicit version (the configured artifact) is named where a version id goes.
IMPLICIT: Final = "implicit"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a token's issuer and subject, ``cli`` and the OS user, or ``schedule``."""

    issuer: str
    subject: str

    @property
    def label(self) -> str:
        return f"{self.issuer} {self.subject}"


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The quality gate's answer: ``passed`` and, either way, ``reasons`` in words."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    margins: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "margins": self.margins}


def quality_gate(
    candidate: Mapping[str, Any],
    active: Mapping[str, Any] | None,
    *,
    max_f1_drop: float,
    max_fpr_rise: float,
) -> GateDecision:
    """Whether ``candidate`` may replace ``active`` (each a metrics dict with ``f1`` and
    ``fpr`` measured on the same held-out labels, the candidate's with their count ``n``
    and ``spam``): its F1 is at most ``max_f1_drop`` below the active's and its
    false-positive rate at most ``max_fpr_rise`` above it, and the held-out labels can
    show such a rise: with ``h`` ham among them one false positive is ``1 / h``, so fewer
    than ``1 / max_fpr_rise`` ham (200 at 0.005) cannot tell a candidate that marks a
    few percent of a site's ham spam from one that marks none, and the candidate is not
    promoted (a person can, after reading its report). With nothing to compare with
    (``active`` is None) it passes."""
    margins = {"max_f1_drop": max_f1_drop, "max_fpr_rise": max_fpr_rise}
    if active is None:
        return GateDecision(True, ["no active version was measured to compare with"], margins)
    reasons: list[str] = []
    passed = True
    ham = int(candidate["n"]) - int(candidate["spam"])
    if ham * max_fpr_rise < 1.0 - 1e-9:
        passed = False
        needed = math.ceil(1.0 / max_fpr_rise - 1e-9) if max_fpr_rise > 0 else None
        reasons.append(
            f"only {ham} ham among the held-out labels: one false positive is "
            f"{1 / max(ham, 1):.4f}, more than the allowed rise {max_fpr_rise:g}, so the "
            "gate cannot see such a rise"
            + (f" (it needs {needed} ham)" if needed is not None else "")
            + "; label more comments, or promote by hand after reading the report"
        )
    c_f1, a_f1 = float(candidate["f1"]), float(active["f1"])
    c_fpr, a_fpr = float(candidate["fpr"]), float(active["fpr"])
    if c_f1 < a_f1 - max_f1_drop - 1e-12:
        passed = False
        reasons.append(f"F1 {c_f1:.4f} is more than {max_f1_drop:g} below the active {a_f1:.4f}")
    else:
        reasons.append(f"F1 {c_f1:.4f} vs active {a_f1:.4f} (allowed drop {max_f1_drop:g})")
    if c_fpr > a_fpr + max_fpr_rise + 1e-12:
        passed = False
        reasons.append(
            f"false-positive rate {c_fpr:.4f} is more than {max_fpr_rise:g} above the "
            f"active {a_fpr:.4f}"
        )
    else:
        reasons.append(
            f"false-positive rate {c_fpr:.4f} vs active {a_fpr:.4f} (allowed rise {max_fpr_rise:g})"
        )
    return GateDecision(passed, reasons, margins)


# --- reading ---------------------------------------------------------------------------

_ACTIVE = select(ClassifierVersion.id, ClassifierVersion.site_id).where(
    ClassifierVersion.status == VersionStatus.active
)


def active_versions(session: Session) -> dict[int | None, str]:
    """Scope (site id, or None for global) -> active version id, in one query: what each
    process polls to notice a switch."""
    return {site_id: version for version, site_id in session.execute(_ACTIVE)}


def _check_id(version_id: str) -> None:
    # A NUL would be a database error, not an empty answer; no id holds one.
    if "\x00" in version_id:
        raise NotFound(f"no classifier version {version_id!r}")


def artifact_of(session: Session, *, version_id: str) -> bytes:
    """The stored artifact of ``version_id``; ``NotFound`` when there is none."""
    _check_id(version_id)
    data = session.scalar(
        select(ClassifierVersion.artifact).where(ClassifierVersion.id == version_id)
    )
    if data is None:
        raise NotFound(f"no classifier artifact for version {version_id}")
    return data


def get_version(session: Session, *, version_id: str) -> ClassifierVersion:
    """The version ``version_id``; ``NotFound`` when it does not exist."""
    _check_id(version_id)
    version = session.get(ClassifierVersion, version_id)
    if version is None:
        raise NotFound(f"no classifier version {version_id}")
    return version


def list_versions(
    session: Session, *, site_id: int | None, every_site: bool = False, limit: int = 100
) -> list[ClassifierVersion]:
    """Versions of one scope (``site_id``; None is global), newest first, or of every
    scope with ``every_site``."""
    query = select(ClassifierVersion).order_by(
        ClassifierVersion.created_at.desc(), ClassifierVersion.id.desc()
    )
    if not every_site:
        query = query.where(
            ClassifierVersion.site_id.is_(None)
            if site_id is None
            else ClassifierVersion.site_id == site_id
        )
    return list(session.scalars(query.limit(limit)))


def site_id_of(session: Session, *, slug: str) -> int:
    """The id of site ``slug``; ``NotFound`` when there is no such site."""
    site_id = session.scalar(select(Site.id).where(Site.slug == slug))
    if site_id is None:
        raise NotFound(f"no site '{slug}'")
    return site_id


def active_in_scope(session: Session, *, site_id: int | None) -> ClassifierVersion | None:
    """The active version of exactly this scope (no fallback to global), locked for update."""
    scope = (
        ClassifierVersion.site_id.is_(None)
        if site_id is None
        else ClassifierVersion.site_id == site_id
    )
    return session.scalar(
        select(ClassifierVersion)
        .where(scope, ClassifierVersion.status == VersionStatus.active)
        .with_for_update()
    )


def serving_version(session: Session, *, site_id: int | None) -> ClassifierVersion | None:
    """The version that scores ``site_id``'s comments: the site's active version, else
    the global one; None means the implicit version (the configured artifact)."""
    if site_id is not None:
        own = active_in_scope(session, site_id=site_id)
        if own is not None:
            return own
    return active_in_scope(session, site_id=None)


# --- writing ---------------------------------------------------------------------------


def store_version(session: Session, version: ClassifierVersion) -> ClassifierVersion:
    """Add ``version`` (status candidate or failed) and flush it."""
    if version.status not in (VersionStatus.candidate, VersionStatus.failed):
        raise ValueError("a version is stored as a candidate (or failed), then activated")
    session.add(version)
    session.flush()
    return version


def _audit(
    session: Session,
    *,
    actor: Actor,
    action: str,
    site_id: int | None,
    target: str,
    before: str,
    after: str,
    note: str | None,
    details: dict[str, Any],
) -> None:
    session.add(
        AuditEntry(
            site_id=site_id,
            actor_issuer=actor.issuer,
            actor_subject=actor.subject,
            action=action,
            target_type="classifier",
            target_id=target,
            from_state=before,
            to_state=after,
            note=note,
            details=details,
        )
    )


def activate(
    session: Session,
    *,
    version_id: str,
    actor: Actor,
    now: dt.datetime,
    note: str | None = None,
    action: str = "promote",
) -> ClassifierVersion:
    """Make ``version_id`` the active version of its scope; the one it replaces is
    retired. ``NotFound`` for an unknown version, ``Conflict`` for one that is already
    active or failed. Audited as ``action``."""
    _check_id(version_id)
    version = session.scalar(
        select(ClassifierVersion).where(ClassifierVersion.id == version_id).with_for_update()
    )
    if version is None:
        raise NotFound(f"no classifier version {version_id}")
    if version.status is VersionStatus.active:
        raise Conflict(f"version {version_id} is already active")
    if version.status is VersionStatus.failed or version.artifact_sha256 is None:
        raise Conflict(f"version {version_id} failed to train; it cannot be activated")
    current = active_in_scope(session, site_id=version.site_id)
    if current is not None:
        current.status = VersionStatus.retired
        current.retired_at = now
        # The retirement must reach the database before the activation, or the partial
        # unique index sees two active versions in one scope.
        session.flush()
    version.status = VersionStatus.active
    version.activated_at = now
    version.retired_at = None
    version.replaced_id = current.id if current is not None else None
    session.flush()
    _audit(
        session,
        actor=actor,
        action=action,
        site_id=version.site_id,
        target=version.id,
        before=current.id if current is not None else IMPLICIT,
        after=version.id,
        note=note,
        details={"scope": "global" if version.site_id is None else "site"},
    )
    return version


@dataclass(frozen=True, slots=True)
class Rollback:
    """What a rollback did: the version retired and the one now serving the scope
    (``IMPLICIT`` for the configured artifact, or, for a site, the global version)."""

    retired: str
    active: str


def rollback(
    session: Session, *, site_id: int | None, actor: Actor, now: dt.datetime, note: str | None
) -> Rollback:
    """Retire the active version of the scope and reactivate the one its promotion
    replaced, so that successive rollbacks walk back through the promotions. With none
    (or one that can no longer be loaded) the scope falls back: a site to the global
    version, global to the implicit one. ``Conflict`` when the scope has no active
    version to roll back."""
    current = active_in_scope(session, site_id=site_id)
    if current is None:
        raise Conflict("there is no active version to roll back in this scope")
    previous = None
    if current.replaced_id is not None:
        previous = session.scalar(
            select(ClassifierVersion)
            .where(
                ClassifierVersion.id == current.replaced_id,
                ClassifierVersion.status == VersionStatus.retired,
                ClassifierVersion.artifact_sha256.is_not(None),
            )
            .with_for_update()
        )
    current.status = VersionStatus.retired
    current.retired_at = now
    session.flush()
    after = IMPLICIT if site_id is None else "global"
    if previous is not None:
        # Its own replaced_id stays: a further rollback goes one step further back.
        previous.status = VersionStatus.active
        previous.activated_at = now
        previous.retired_at = None
        session.flush()
        after = previous.id
    _audit(
        session,
        actor=actor,
        action="rollback",
        site_id=site_id,
        target=current.id,
        before=current.id,
        after=after,
        note=note,
        details={"scope": "global" if site_id is None else "site"},
    )
    return Rollback(retired=current.id, active=after)


# --- jobs ------------------------------------------------------------------------------


def create_job(
    session: Session,
    *,
    site_id: int | None,
    requested_by: str,
    kind: str = "retrain",
    options: dict[str, Any] | None = None,
) -> RetrainJob:
    """A queued retraining job (flushed, so its id is known)."""
    job = RetrainJob(
        id=uuid.uuid4(),
        site_id=site_id,
        requested_by=requested_by,
        kind=kind,
        state=JobState.queued,
        percent=0,
        messages=[],
        options=dict(options or {}),
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: uuid.UUID) -> RetrainJob:
    """The job ``job_id``; ``NotFound`` when there is none."""
    job = session.get(RetrainJob, job_id)
    if job is None:
        raise NotFound(f"no classifier job {job_id}")
    return job


def fail_job(session: Session, *, job_id: uuid.UUID, error: str, now: dt.datetime) -> None:
    """Mark a job failed with ``error`` (e.g. it could not be enqueued)."""
    session.execute(
        update(RetrainJob)
        .where(RetrainJob.id == job_id)
        .values(state=JobState.failed, error=error, finished_at=now)
    )
