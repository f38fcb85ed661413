"""``/v1/classifier``: the operators' API: retraining jobs, versions, reports, promotion
and rollback.

Who may call: classifier versions have a scope, one site or every site (global). A
site-scoped call names the ``site`` and needs the operator role there (or admin, which
includes it). Global versions serve every site, so no one site's operator may change
them: they need the operator role at the operations site named by
``COMMENTGUARD_OPERATIONS_SITE`` (its tokens are checked by that site's issuers and
audiences); with that setting empty, global versions can be managed by the CLI only.
Calls about one version or job take their scope from it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Annotated, Any

from flask import Blueprint, Response, url_for
from pydantic import WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ClassifierVersion, RetrainJob, Site
from service.api.classifier_schemas import (
    JobOut,
    PromotedOut,
    PromoteIn,
    ReportOut,
    RetrainIn,
    RollbackIn,
    RollbackOut,
    VersionListOut,
    VersionOut,
    VersionsQueryIn,
)
from service.api.context import authorize, credentials, json_body, services, transaction
from service.api.schemas import iso_time
from service.api.spec import LOCATION, Access, PathParam, Reply, body_of, operation, query_of
from service.auth.roles import Role
from service.classifier.report import PLOTS, render_html, render_plot
from service.moderation.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from service.moderation.registry import (
    Actor,
    activate,
    create_job,
    fail_job,
    get_job,
    get_version,
    list_versions,
    rollback,
)
from service.moderation.types import Identity
from service.queue import RESCORE, RETRAIN

log = logging.getLogger(__name__)

bp = Blueprint("classifier", __name__, url_prefix="/v1/classifier")

VERSION_ID = {"version_id": PathParam(str, "The version's id (`cg-YYYYMMDD-HHMMSS-<8 hex>`).")}
SCOPE_ERRORS = {
    403: "the token does not grant the operator role at the scope's site (the operations "
    "site for global versions), or global versions are managed by the CLI only",
}


def _authorize(session: Session, token: str, site_slug: str | None) -> tuple[Identity, int | None]:
    """The caller, when an operator of the scope: ``site_slug``'s operators for a site's
    versions, the operations site's for global ones. Returns the identity and the scope's
    site id (None: global)."""
    found = services()
    if site_slug is not None:
        site = found.sites.get(session, slug=site_slug)
        return authorize(session, site, token, role=Role.operator), site.id
    ops = found.settings.operations_site
    if not ops:
        raise Forbidden(
            "global classifier versions are managed by the operators of the operations "
            "site, and COMMENTGUARD_OPERATIONS_SITE is not set; use the CLI, or name a site"
        )
    site = found.sites.get(session, slug=ops)
    return authorize(session, site, token, role=Role.operator), None


def _slug_of(session: Session, site_id: int | None) -> str | None:
    if site_id is None:
        return None
    return session.scalar(select(Site.slug).where(Site.id == site_id))


def _actor(identity: Identity) -> Actor:
    return Actor(issuer=identity.issuer, subject=identity.subject)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def job_body(job: RetrainJob, site: str | None) -> dict[str, Any]:
    """A job as the API shows it."""
    return {
        "id": str(job.id),
        "site": site,
        "kind": job.kind,
        "state": job.state.value,
        "percent": job.percent,
        "messages": job.messages,
        "version": job.version_id,
        "error": job.error,
        "requested_by": job.requested_by,
        "created_at": iso_time(job.created_at),
        "started_at": iso_time(job.started_at),
        "finished_at": iso_time(job.finished_at),
        "links": {"self": url_for("classifier.get_job_view", job_id=str(job.id))},
    }


def version_body(version: ClassifierVersion, site: str | None) -> dict[str, Any]:
    """A version as the API shows it (never the artifact)."""
    links = {"self": url_for("classifier.get_version_view", version_id=version.id)}
    if version.artifact_sha256 is not None:
        links["report"] = url_for("classifier.report_json", version_id=version.id)
        links["report_html"] = url_for("classifier.report_html", version_id=version.id)
    return {
        "id": version.id,
        "site": site,
        "status": version.status.value,
        "created_at": iso_time(version.created_at),
        "created_by": version.created_by,
        "activated_at": iso_time(version.activated_at),
        "retired_at": iso_time(version.retired_at),
        "artifact_sha256": version.artifact_sha256,
        "training": version.training,
        "metrics": version.metrics,
        "thresholds": version.thresholds,
        "gate": version.gate,
        "notes": version.notes,
        "links": links,
    }


@bp.post("/retrain")
@operation(
    "Queue a retraining job",
    tag="classifier",
    access=Access.operator,
    body=RetrainIn,
    body_name="retrain request",
    responses={202: Reply("The job, queued.", JobOut, headers=(LOCATION,))},
    errors={
        **SCOPE_ERRORS,
        404: "unknown site",
        503: "the broker cannot take the job (the job is marked failed)",
    },
)
def retrain() -> Response:
    """Queue a retraining job: ``202`` with the job and its ``Location``."""
    token = credentials()
    raw = json_body()
    if isinstance(raw, dict) and "bootstrap" in raw:
        # Synthetic training comments were taken out (issue 18); say so rather than
        # silently train without what was asked for.
        raise InvalidInput(
            "bootstrap is no longer offered",
            [FieldError("bootstrap", "synthetic comments were removed; import a data set")],
        )
    data = body_of(RetrainIn, raw)
    site_slug = data.site
    options: dict[str, Any] = data.model_dump(include={"promote", "rescore"}, exclude_none=True)
    with transaction() as session:
        identity, site_id = _authorize(session, token, site_slug)
        job = create_job(
            session,
            site_id=site_id,
            requested_by=f"{identity.issuer} {identity.subject}",
            options=options,
        )
        job_id = job.id
    try:
        services().queue.enqueue(RETRAIN, {"job_id": str(job_id)})
    except Exception:
        log.warning("enqueueing retrain job %s failed", job_id, exc_info=True)
        with transaction() as session:
            fail_job(session, job_id=job_id, error="the task broker is unavailable", now=_now())
        raise ServiceUnavailable(
            f"the task broker is unavailable; job {job_id} was marked failed, try again"
        ) from None
    with transaction() as session:
        out = job_body(get_job(session, job_id=job_id), site_slug)
    response = _json(out, 202)
    response.headers["Location"] = out["links"]["self"]
    return response


@bp.get("/jobs/<job_id>")
@operation(
    "Read a retraining job",
    tag="classifier",
    access=Access.operator,
    path={"job_id": PathParam(uuid.UUID, "The job's id.")},
    responses={200: Reply("The job's state, progress and messages.", JobOut)},
    errors={**SCOPE_ERRORS, 404: "no such job"},
)
def get_job_view(job_id: str) -> Response:
    """A retraining job's state, percent and messages."""
    token = credentials()
    with transaction() as session:
        job = get_job(session, job_id=_uuid(job_id, "job"))
        slug = _slug_of(session, job.site_id)
        _authorize(session, token, slug)
        out = job_body(job, slug)
    return _json(out)


@bp.get("/versions")
@operation(
    "List a scope's classifier versions",
    tag="classifier",
    access=Access.operator,
    query=VersionsQueryIn,
    responses={200: Reply("The versions, newest first.", VersionListOut)},
    errors={**SCOPE_ERRORS, 404: "unknown site"},
)
def list_versions_view() -> Response:
    """The versions of one scope (``?site=slug``; without it, the global ones), newest
    first, with their metrics."""
    token = credentials()
    site_slug = query_of(VersionsQueryIn).site
    with transaction() as session:
        _, site_id = _authorize(session, token, site_slug)
        versions = list_versions(session, site_id=site_id)
        out = {"versions": [version_body(v, site_slug) for v in versions]}
    return _json(out)


@bp.get("/versions/<version_id>")
@operation(
    "Read a classifier version",
    tag="classifier",
    access=Access.operator,
    path=VERSION_ID,
    responses={200: Reply("The version.", VersionOut)},
    errors={**SCOPE_ERRORS, 404: "no such version"},
)
def get_version_view(version_id: str) -> Response:
    """One version: status, training summary, metrics (candidate and active side by
    side), thresholds and the gate's decision."""
    token = credentials()
    with transaction() as session:
        version = get_version(session, version_id=version_id)
        slug = _slug_of(session, version.site_id)
        _authorize(session, token, slug)
        out = version_body(version, slug)
    return _json(out)


def _report_of(version_id: str) -> dict[str, Any]:
    token = credentials()
    with transaction() as session:
        version = get_version(session, version_id=version_id)
        _authorize(session, token, _slug_of(session, version.site_id))
        report = version.report
    if report is None:
        raise NotFound(f"version {version_id} has no evaluation report")
    return report


NO_REPORT = {**SCOPE_ERRORS, 404: "no such version, or it has no report"}


@bp.get("/versions/<version_id>/report")
@operation(
    "Read a version's evaluation report",
    tag="classifier",
    access=Access.operator,
    path=VERSION_ID,
    responses={200: Reply("The report's numbers.", ReportOut)},
    errors=NO_REPORT,
)
def report_json(version_id: str) -> Response:
    """The evaluation report's numbers (``service.classifier.report.report_data``)."""
    return _json(_report_of(version_id))


@bp.get("/versions/<version_id>/report.html")
@operation(
    "Read a version's evaluation report as a page",
    tag="classifier",
    access=Access.operator,
    path=VERSION_ID,
    responses={
        200: Reply(
            "One HTML page, plots embedded.", media_type="text/html", schema={"type": "string"}
        )
    },
    errors=NO_REPORT,
)
def report_html(version_id: str) -> Response:
    """The evaluation report as one HTML page, plots embedded."""
    page = render_html(_report_of(version_id))
    response = Response(page, status=200, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    )
    return response


@bp.get("/versions/<version_id>/report/<plot>.png")
@operation(
    "Read one plot of a version's evaluation report",
    tag="classifier",
    access=Access.operator,
    path={
        **VERSION_ID,
        "plot": PathParam(
            Annotated[str, WithJsonSchema({"type": "string", "enum": list(PLOTS)})], "The plot."
        ),
    },
    responses={
        200: Reply(
            "The plot.",
            media_type="image/png",
            schema={"type": "string", "contentMediaType": "image/png"},
        )
    },
    errors={**NO_REPORT, 404: "no such version, report or plot"},
)
def report_plot(version_id: str, plot: str) -> Response:
    """One plot of the report as PNG (``PLOTS`` names them)."""
    if plot not in PLOTS:
        raise NotFound(f"no plot '{plot}'; the plots are {', '.join(PLOTS)}")
    # Draws this plot only, in memory.
    png = render_plot(_report_of(version_id), plot)
    if png is None:
        raise NotFound(f"plot '{plot}' is not defined for this version's held-out labels")
    return Response(png, status=200, mimetype="image/png")


@bp.post("/versions/<version_id>/promote")
@operation(
    "Promote a classifier version",
    tag="classifier",
    access=Access.operator,
    body=PromoteIn,
    body_name="promotion",
    path=VERSION_ID,
    responses={200: Reply("The version, now active.", PromotedOut)},
    errors={**SCOPE_ERRORS, 404: "no such version", 409: "already active, or failed"},
)
def promote(version_id: str) -> Response:
    """Activate a candidate (or retired) version in its scope; audited. With
    ``{"rescore": true}`` (or the setting) the pending and held comments are re-scored."""
    token = credentials()
    data = body_of(PromoteIn, json_body())
    note, rescore = data.note, data.rescore
    with transaction() as session:
        version = get_version(session, version_id=version_id)
        slug = _slug_of(session, version.site_id)
        identity, _ = _authorize(session, token, slug)
        promoted = activate(
            session, version_id=version_id, actor=_actor(identity), now=_now(), note=note
        )
        out = version_body(promoted, slug)
        site_id = promoted.site_id
    out["rescore"] = _maybe_rescore(rescore, site_id)
    return _json(out)


@bp.post("/rollback")
@operation(
    "Roll back a scope's classifier",
    tag="classifier",
    access=Access.operator,
    body=RollbackIn,
    body_name="rollback",
    responses={200: Reply("What was retired and what serves the scope now.", RollbackOut)},
    errors={**SCOPE_ERRORS, 404: "unknown site", 409: "nothing to roll back"},
)
def rollback_view() -> Response:
    """Retire the scope's active version and reactivate the one before it; audited."""
    token = credentials()
    data = body_of(RollbackIn, json_body())
    site_slug, note, rescore = data.site, data.note, data.rescore
    with transaction() as session:
        identity, site_id = _authorize(session, token, site_slug)
        done = rollback(session, site_id=site_id, actor=_actor(identity), now=_now(), note=note)
    queued = _maybe_rescore(rescore, site_id)
    return _json(
        {"site": site_slug, "retired": done.retired, "active": done.active, "rescore": queued}
    )


def _maybe_rescore(flag: bool | None, site_id: int | None) -> str | None:
    """Queue the re-scoring when asked (or configured): ``queued``, ``failed`` when the
    broker would not take it, None when not asked. The change it follows is committed
    already, so a broker that is down must not turn its answer into an error."""
    wanted = services().settings.rescore_after_promotion if flag is None else flag
    if not wanted:
        return None
    try:
        # After the commit: the re-score must see the new active version.
        services().queue.enqueue(RESCORE, {"site_id": site_id})
    except Exception:
        log.error("queueing the re-scoring of scope %s failed", site_id, exc_info=True)
        return "failed"
    return "queued"


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no {what} {value}") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
