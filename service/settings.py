"""One typed Settings object: the only reader of ``os.environ``.

Built at each composition root (``service/app.py``, ``workers/celery_app.py``,
``migrations/env.py``, ``tests/conftest.py``) and passed down; nothing else reads the
environment. Every variable is prefixed ``COMMENTGUARD_`` except the conventional
``DATABASE_URL``, ``BROKER_URL`` and ``SECRET_KEY``.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Secrets that ship in examples and docs; a service started with one of them is refused.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "dev", "development", "please-change-me"}
)

MIN_SECRET_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16


class SettingsError(ValueError):
    """The configuration is unusable; the message says which variable and why."""


class MetricsSettings(BaseSettings):
    """The settings a process that only supervises others needs (gunicorn's master: it
    prepares the metrics directory and marks its dead workers there); ``Settings`` has
    them too. Built from the environment like ``Settings``, without its required fields.
    """

    model_config = SettingsConfigDict(
        env_prefix="COMMENTGUARD_", extra="ignore", populate_by_name=True
    )

    #: prometheus_client's multiprocess directory (``docs/metrics.md``): set, every process
    #: of a tree (gunicorn's workers, a Celery worker's pool) writes its metrics to files
    #: there and a scrape adds them up. One directory per tree: its parent empties it at
    #: start. The library reads this variable itself, and must find it in the environment
    #: before it is imported, so it has no other name.
    prometheus_multiproc_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR")
    )

    @field_validator("prometheus_multiproc_dir", mode="before")
    @classmethod
    def _no_empty_directory(cls, value: object) -> object:
        # prometheus_client switches to multiprocess mode when the variable exists at all,
        # even empty, and would then write into the working directory.
        if isinstance(value, str) and not value.strip():
            raise SettingsError(
                "PROMETHEUS_MULTIPROC_DIR is empty: set it to a directory, or unset it"
            )
        return value


class Settings(MetricsSettings):
    """Configuration of the API, the workers and the CLI.

    ``database_url`` and ``secret_key`` are required: there is no default that could
    reach production by accident. ``make run`` supplies development values.
    """

    model_config = SettingsConfigDict(
        env_prefix="COMMENTGUARD_", extra="ignore", populate_by_name=True
    )

    environment: Literal["production", "development", "test"] = "production"
    database_url: str = Field(
        validation_alias=AliasChoices("DATABASE_URL", "COMMENTGUARD_DATABASE_URL")
    )
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("BROKER_URL", "COMMENTGUARD_BROKER_URL"),
    )
    secret_key: SecretStr = Field(
        validation_alias=AliasChoices("SECRET_KEY", "COMMENTGUARD_SECRET_KEY")
    )

    #: Path to the active classifier artifact; empty means the bundled one.
    classifier_path: Path | None = None

    #: Trust tokens signed by the local development issuer (``commentguard dev token``).
    dev_issuer: bool = False
    #: Where the development issuer keeps its signing key (created on first use).
    dev_key_path: Path = Path("var/dev-issuer-key.pem")

    max_content_bytes: int = 64 * 1024
    max_body_bytes: int = 256 * 1024

    #: The API sends a classification this long after its comment's commit at most,
    #: batching the comments accepted meanwhile into one message (0: each at once, unless
    #: others are already waiting), and at most this many comments to a message. 100 ms
    #: gathers about ten comments a message at 200 a second (20 ms: two, and twice the
    #: workers' CPU per comment), and adds at most 0.1 s to a comment's time to verdict.
    enqueue_linger_ms: float = Field(default=100.0, ge=0, le=1000)
    enqueue_max_batch: int = Field(default=100, ge=1, le=1000)
    #: An outbox row not done this long after its last attempt is enqueued again.
    outbox_timeout_seconds: int = 60
    #: How often the beat sweeper looks for such rows.
    sweep_interval_seconds: float = 30.0
    #: An outbox row re-enqueued this many times is logged as an error at each further
    #: attempt (it is never given up: every accepted comment must reach a verdict).
    outbox_max_attempts: int = 10
    #: The sweeper deletes an outbox row this long after its task was done (0: never).
    outbox_retention_seconds: int = Field(default=7 * 24 * 3600, ge=0)

    #: Webhooks (docs/webhooks.md). One attempt may take this long at most, connecting,
    #: sending and reading the answer together.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: A delivery still failing after this many attempts, or this long after its decision,
    #: is marked failed.
    webhook_max_attempts: int = Field(default=15, ge=1, le=100)
    webhook_max_age_seconds: int = Field(default=24 * 3600, ge=1)
    #: The wait before retry n is ``base * 2^(n-1)`` seconds, at most ``max``, each times a
    #: random 50-100 % (or the answer's Retry-After, when longer).
    webhook_backoff_base_seconds: float = Field(default=10.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    #: How often beat runs the webhook sweeper: it sends the deliveries due (retries, and
    #: those whose task never finished) and deletes old ones.
    webhook_sweep_interval_seconds: float = Field(default=5.0, gt=0)
    #: The sweeper deletes a delivery this long after it was delivered or failed (0: never).
    webhook_retention_seconds: int = Field(default=7 * 24 * 3600, ge=0)

    #: A trusted issuer's signing keys are fetched again this long after the last fetch.
    jwks_max_age_seconds: float = 300.0
    #: No issuer's keys are fetched more often than this, whatever ``kid`` tokens name
    #: (so a stranger's tokens cannot turn the service into a flood of requests).
    jwks_min_refresh_seconds: float = 30.0
    #: A verified JWT is accepted again without re-checking its signature for at most
    #: this long (and never past its ``exp``); 0 checks every token every time.
    token_cache_seconds: float = 60.0

    #: The token claim roles are read from (``service/auth/roles.py``): ``scope``,
    #: ``roles`` or ``groups``; its values ``<roles_prefix>:<site>:<role>`` grant a role.
    roles_claim: Literal["scope", "roles", "groups"] = "roles"
    roles_prefix: str = "commentguard"

    #: Upper bound on waiting for the database or the broker before answering 503.
    dependency_timeout_seconds: float = 3.0

    #: The site whose operators (or admins) may retrain, promote and roll back the global
    #: classifier versions; empty: only site-scoped versions can be managed by API.
    operations_site: str | None = None
    #: How often a process asks the registry which classifier version is active.
    classifier_poll_seconds: float = 5.0
    #: Share of the labels held out to measure the candidate and the active version.
    retrain_holdout: float = 0.2
    #: Sample weight of a moderator's label, and of an imported one.
    retrain_moderator_weight: float = 3.0
    retrain_import_weight: float = 1.0
    #: Fewer labels than this (after the latest-label-wins rule) fail a retrain.
    retrain_min_labels: int = 50
    #: The quality gate: a candidate is activated automatically only when its F1 is at
    #: most ``gate_max_f1_drop`` below the active version's, and its false-positive rate
    #: at most ``gate_max_fpr_rise`` above it, on the same held-out labels.
    gate_max_f1_drop: float = 0.01
    gate_max_fpr_rise: float = 0.005
    #: Re-score pending and held comments after each promotion.
    rescore_after_promotion: bool = False
    #: Comments per re-scoring batch.
    rescore_batch_size: int = 500
    #: Scheduled retraining (global): seconds between runs (0: off), and the new labels
    #: since the last version below which a run is skipped.
    retrain_interval_seconds: float = 0.0
    retrain_min_new_labels: int = 100

    #: The moderators' web UI (``/ui``): its public origin (scheme, host and port, as the
    #: browser reaches it behind any proxy), from which its OpenID Connect redirect URI
    #: ``<ui_public_url>/ui/callback`` is made; empty: the address each request came to.
    ui_public_url: str | None = None
    #: A UI session ends after this long without a request, and this long after its login
    #: whatever its activity.
    ui_session_idle_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    ui_session_max_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)

    log_level: str = "INFO"
    log_json: bool = False

    #: ``GET /metrics`` asks for ``Authorization: Bearer <metrics_token>`` when this is
    #: set; unset, it answers anyone who reaches it (keep it off the public side of the
    #: proxy). See ``docs/metrics.md``.
    metrics_token: SecretStr | None = None
    #: The gauges computed at scrape time (outbox, broker queues, classifier versions) are
    #: read at most this often per API process; scrapes in between get the last reading.
    metrics_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    #: A Celery worker serves its processes' metrics over HTTP on this port (0: off).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    #: ... and on this address.
    worker_metrics_host: str = "127.0.0.1"

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, value: str) -> str:
        # Operators paste "postgres://" or "postgresql://" URLs; SQLAlchemy needs the driver
        # named to pick psycopg 3 rather than the absent psycopg2.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("ui_public_url")
    @classmethod
    def _ui_public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL, such as https://moderate.example.org")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be scheme, host and port only (no path, query or fragment)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.environment == "production":
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
                raise SettingsError(
                    f"SECRET_KEY is a placeholder or shorter than {MIN_SECRET_LENGTH} "
                    "characters; generate one with `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'`"
                )
            if self.ui_public_url and not self.ui_public_url.startswith("https://"):
                raise SettingsError(
                    "COMMENTGUARD_UI_PUBLIC_URL must be https in production: the UI's session "
                    "cookie is Secure there, and a browser sends it over https only"
                )
            if self.dev_issuer:
                raise SettingsError(
                    "COMMENTGUARD_DEV_ISSUER is on in production: the development token "
                    "issuer lets anyone mint tokens; turn it off"
                )
            metrics_token = self.metrics_token
            if metrics_token is not None and (
                metrics_token.get_secret_value().lower() in PLACEHOLDER_SECRETS
                or len(metrics_token.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH
            ):
                raise SettingsError(
                    "COMMENTGUARD_METRICS_TOKEN is a placeholder or shorter than "
                    f"{MIN_METRICS_TOKEN_LENGTH} characters; generate one as SECRET_KEY, "
                    "or unset it"
                )
        return self

    @property
    def webhook_lease_seconds(self) -> float:
        """How long a queued or running webhook attempt holds its delivery off the
        sweeper: the outbox's timeout for a task to run, plus the attempt's own."""
        return self.outbox_timeout_seconds + self.webhook_timeout_seconds

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
