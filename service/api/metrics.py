"""``GET /metrics``: the API's Prometheus metrics, and the hooks that count its requests.

The scrape answers every API process of this gunicorn (``service.metrics``) plus the
gauges read at scrape time (:class:`StateReader`). It never fails with a 500: a
collector that fails is left out and logged. With ``metrics_token`` set it asks for
``Authorization: Bearer <token>`` (401 otherwise).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import time
from collections.abc import Sequence

from flask import Blueprint, Flask, Response, g, request
from sqlalchemy.orm import Session, sessionmaker

from service.api.context import services
from service.api.spec import Access, Reply, operation
from service.metrics import ApiMetrics, ServiceState
from service.moderation.active import ClassifierProvider
from service.moderation.errors import ServiceUnavailable, Unauthorized
from service.moderation.outbox import backlog
from service.moderation.sites import slugs_of
from service.queue import COMMENTS_QUEUE, TRAINING_QUEUE, WEBHOOKS_QUEUE, TaskQueue

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

#: The outbox's pending rows are counted up to this many (a bounded read per scrape).
OUTBOX_COUNT_LIMIT = 10_000

#: The endpoint whose answers are counted by outcome.
SUBMIT_ENDPOINT = "comments.post_comment"

_STARTED = "commentguard_metrics_started"


@bp.get("/metrics")
@operation(
    "Prometheus metrics",
    tag="metrics",
    access=Access.public,
    responses={
        200: Reply(
            "The Prometheus text exposition (OpenMetrics to a scraper that asks for it).",
            media_type="text/plain",
            schema={"type": "string"},
        )
    },
    errors={
        401: "COMMENTGUARD_METRICS_TOKEN is set and the request does not carry it as a "
        "bearer token",
        503: "the metrics could not be rendered",
    },
    reads_database=False,
)
def metrics() -> Response:
    """The Prometheus exposition of this API instance (every gunicorn worker's counts, and
    gauges of the outbox, the broker and the classifier read at most every
    ``COMMENTGUARD_METRICS_CACHE_SECONDS``); see docs/metrics.md. Unauthenticated unless
    ``COMMENTGUARD_METRICS_TOKEN`` is set. Never a 500: a failing source is left out."""
    found = services()
    token = found.settings.metrics_token
    if token is not None and not _bearer_matches(token.get_secret_value()):
        raise Unauthorized("send the metrics token: Authorization: Bearer <token>")
    try:
        body, content_type = found.metrics.render(request.headers.get("Accept"))
    except Exception:
        # The collectors are guarded; this is the last resort that keeps it off 500.
        log.exception("metrics: the exposition failed")
        raise ServiceUnavailable("the metrics could not be rendered", retry_after=5) from None
    return Response(body, status=200, content_type=content_type)


def _bearer_matches(expected: str) -> bool:
    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), expected.encode()
    )


def install_request_metrics(app: Flask, metrics: ApiMetrics) -> None:
    """Time every request of ``app`` (by route template, method and status), and count
    the outcome of each ``POST /v1/comments``. Install it before the other hooks, so that
    the time covers theirs."""

    def start() -> None:
        setattr(g, _STARTED, time.perf_counter())

    def observe(response: Response) -> Response:
        started = g.get(_STARTED)
        if started is not None:
            rule = request.url_rule
            metrics.request(
                rule.rule if rule is not None else "unmatched",
                request.method,
                response.status_code,
                time.perf_counter() - started,
            )
            if request.endpoint == SUBMIT_ENDPOINT:
                metrics.submission(
                    response.status_code,
                    replayed="Idempotent-Replayed" in response.headers,
                )
        return response

    app.before_request(start)
    app.after_request(observe)


class StateReader:
    """Reads a :class:`~service.metrics.ServiceState`: the outbox's backlog (one query on
    its index of rows still to do), the classifier versions served (the provider's view,
    polled as every process polls it, and one query for the slugs of sites with a version
    of their own), and the broker's queue lengths (one LLEN round trip per queue). A part
    that fails is logged and marked failed; the others are still read."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        queue: TaskQueue,
        classifier: ClassifierProvider,
        *,
        queues: Sequence[str] = (COMMENTS_QUEUE, TRAINING_QUEUE, WEBHOOKS_QUEUE),
    ) -> None:
        self._sessions = sessions
        self._queue = queue
        self._classifier = classifier
        self._queues = tuple(queues)

    def __call__(self) -> ServiceState:
        failed: set[str] = set()
        pending: int | None = None
        oldest_age: float | None = None
        try:
            with self._sessions() as session:
                found = backlog(session, count_limit=OUTBOX_COUNT_LIMIT)
            pending = found.pending
            oldest = found.oldest_created_at
            now = dt.datetime.now(dt.UTC)
            oldest_age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        except Exception as exc:
            log.warning("metrics: the outbox could not be read: %s", type(exc).__name__)
            failed.add("database")

        versions: tuple[tuple[str, str, str], ...] | None = None
        try:
            served = self._classifier.versions()
            with self._sessions() as session:
                slugs = slugs_of(session, site_ids=[s for s in served if s is not None])
            versions = tuple(
                ("global", "", version)
                if scope is None
                else ("site", slugs.get(scope, str(scope)), version)
                for scope, version in sorted(served.items(), key=lambda item: item[0] or 0)
            )
        except Exception as exc:
            log.warning("metrics: the classifier versions could not be read: %s", exc)
            failed.add("classifier")

        queues: dict[str, int] | None = None
        try:
            queues = self._queue.queue_lengths(self._queues)
        except Exception as exc:
            log.warning("metrics: the broker's queues could not be read: %s", exc)
            failed.add("broker")

        return ServiceState(
            outbox_pending=pending,
            outbox_oldest_age_seconds=oldest_age,
            broker_queues=queues,
            classifier_versions=versions,
            failed=frozenset(failed),
        )
