"""Request and response shapes of the operators' API, ``/v1/classifier`` (pydantic v2)."""

from __future__ import annotations

import uuid
from typing import Any, NotRequired

from pydantic import BaseModel, Field, StrictBool, StrictStr
from typing_extensions import TypedDict

from models.classifier_version import JobState, VersionStatus
from service.api.moderation_schemas import Note
from service.api.schemas import Out, SelfLinks, UtcDatetime

#: A site's slug, or null for the global scope.
Scope = StrictStr | None


class RetrainIn(BaseModel):
    """``POST /v1/classifier/retrain``."""

    #: The site whose version to retrain; null (or absent): the global one.
    site: Scope = Field(default=None, min_length=1)
    #: Promote the candidate when it passes the quality gate (default true).
    promote: StrictBool | None = None
    #: Re-score pending and held comments after a promotion.
    rescore: StrictBool | None = None


class PromoteIn(BaseModel):
    """``POST /v1/classifier/versions/{id}/promote``."""

    note: Note | None = None
    rescore: StrictBool | None = None


class RollbackIn(BaseModel):
    """``POST /v1/classifier/rollback``."""

    site: Scope = Field(default=None, min_length=1)
    note: Note | None = None
    rescore: StrictBool | None = None


class VersionsQueryIn(BaseModel):
    """``GET /v1/classifier/versions``'s query: no ``site`` lists the global versions."""

    site: str | None = Field(default=None, min_length=1)


class JobMessageOut(TypedDict):
    at: str
    percent: int
    message: str


class JobOut(Out):
    """A retraining job."""

    id: uuid.UUID
    #: The scope's site, or null for global.
    site: str | None
    kind: str
    state: JobState
    percent: int = Field(ge=0, le=100)
    messages: list[JobMessageOut]
    #: The version it made, once it has.
    version: str | None
    error: str | None
    requested_by: str
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    links: SelfLinks


class VersionLinks(TypedDict):
    self: str
    #: Present when the version has an artifact (and so a report).
    report: NotRequired[str]
    report_html: NotRequired[str]


class VersionOut(Out):
    """A classifier version (never its artifact)."""

    id: str
    site: str | None
    status: VersionStatus
    created_at: UtcDatetime
    created_by: str
    activated_at: UtcDatetime | None
    retired_at: UtcDatetime | None
    artifact_sha256: str | None
    #: The training set's summary.
    training: dict[str, Any]
    #: ``candidate`` and ``active`` metrics on the same held-out labels.
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    #: The quality gate's decision.
    gate: dict[str, Any]
    notes: str | None
    links: VersionLinks


class PromotedOut(VersionOut):
    #: ``queued``, ``failed`` (the broker would not take it; the promotion stands) or
    #: null (not asked).
    rescore: str | None


class VersionListOut(Out):
    versions: list[VersionOut]


class RollbackOut(Out):
    site: str | None
    #: The version retired.
    retired: str
    #: The version serving the scope now (``implicit``: the configured artifact).
    active: str
    rescore: str | None


class ReportOut(BaseModel):
    """An evaluation report's numbers (format ``commentguard.report/1``)."""

    format: str
