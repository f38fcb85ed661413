"""The Flask application factory: a composition root that reads like a table of contents."""

from __future__ import annotations

import atexit
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface
from sqlalchemy.orm import Session, sessionmaker

from service.api import (
    actions,
    akismet,
    authors,
    classifier,
    comments,
    health,
    queue,
    rules,
    threads,
    webhooks,
)
from service.api import metrics as metrics_api
from service.api.context import EXTENSION, Services
from service.api.openapi import bp as openapi_bp
from service.auth.introspection import Introspector
from service.auth.tokens import TokenVerifier
from service.db import autocommit_sessions, make_engine, make_sessionmaker
from service.errors import register_error_handlers
from service.logs import configure_logging, install_request_ids
from service.metrics import ApiMetrics, ServiceStateCollector
from service.moderation.active import ClassifierProvider
from service.moderation.sites import SiteDirectory
from service.queue import ClassificationBatcher, TaskQueue, make_celery
from service.settings import Settings
from service.ui.views import register_ui


def create_app(
    settings: Settings | None = None, *, sessions: sessionmaker[Session] | None = None
) -> Flask:
    """Build the API. ``settings`` defaults to the environment's; ``sessions`` lets tests
    hand in a sessionmaker bound to their own database."""
    settings = settings or Settings()
    configure_logging(settings)

    app = Flask("commentguard")
    app.session_interface = NoCookieSession()
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=settings.secret_key.get_secret_value(),
        JSON_SORT_KEYS=False,
    )
    # No ping on each checkout (a round trip per request): a connection that died since its
    # last use fails its request with a 503 (Retry-After), and the disconnect invalidates
    # the process's whole pool, so the next request connects afresh.
    sessions = sessions or make_sessionmaker(make_engine(settings, pool_pre_ping=False))
    task_queue = TaskQueue(make_celery(settings))
    classifications = ClassificationBatcher(
        task_queue,
        linger_seconds=settings.enqueue_linger_ms / 1000,
        max_batch=settings.enqueue_max_batch,
    )
    # A process that exits cleanly sends what it accepted; one that is killed leaves it to
    # the outbox sweeper.
    atexit.register(classifications.close)
    classifier_provider = ClassifierProvider(
        settings.classifier_path,
        sessions=sessions,
        poll_seconds=settings.classifier_poll_seconds,
    )
    metrics = ApiMetrics(settings)
    metrics.add_collector(
        "service state",
        ServiceStateCollector(
            metrics_api.StateReader(sessions, task_queue, classifier_provider),
            cache_seconds=settings.metrics_cache_seconds,
        ),
    )
    app.extensions[EXTENSION] = Services(
        settings=settings,
        sessions=sessions,
        autocommit_sessions=autocommit_sessions(sessions),
        verifier=TokenVerifier(settings),
        introspector=Introspector(timeout=settings.dependency_timeout_seconds),
        queue=task_queue,
        classifications=classifications,
        classifier=classifier_provider,
        sites=SiteDirectory(),
        metrics=metrics,
    )

    metrics_api.install_request_metrics(app, metrics)
    install_request_ids(app)
    register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(comments.bp)
    app.register_blueprint(classifier.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(threads.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(authors.bp)
    app.register_blueprint(rules.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(akismet.bp)
    app.register_blueprint(metrics_api.bp)
    # The moderators' web UI (/ui), with its own cookie session on its own paths only.
    register_ui(app)
    return app


class NoCookieSession(SessionInterface):
    """The API is stateless (bearer tokens and API keys; a cursor carries its own
    signature): it never reads nor sets a session cookie. Flask's default session would
    build a signing serialiser and parse the cookies on every request for nothing."""

    def open_session(self, app: Flask, request: Request) -> None:
        # None: Flask puts a NullSession in its place, which refuses to be written.
        return None

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None
