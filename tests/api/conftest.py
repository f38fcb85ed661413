"""An API on the run's database and broker, with the development issuer for tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from models import Site
from service.app import create_app
from service.auth.dev_issuer import mint_dev_token
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.settings import Settings

TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def api_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The run's settings with the development issuer on (its key in a temporary folder)."""
    key = Path(tmp_path_factory.mktemp("dev-issuer")) / "key.pem"
    return settings.model_copy(update={"dev_issuer": True, "dev_key_path": key})


@pytest.fixture
def rolled_back_sessions(db_session: Session) -> sessionmaker[Session]:
    """Sessions inside the test's rolled-back transaction: what the API commits, it only
    commits to a savepoint."""
    return sessionmaker(
        bind=db_session.connection(),
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
    )


@pytest.fixture
def app(api_settings: Settings, rolled_back_sessions: sessionmaker[Session]) -> Flask:
    return create_app(api_settings, sessions=rolled_back_sessions)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


@pytest.fixture
def site(db_session: Session) -> Site:
    """The ``blog`` site; flood control at 3 a minute so a test can reach it."""
    return create_site(
        db_session,
        slug="blog",
        name="A blog",
        url="https://blog.example",
        audiences=["https://blog.example"],
        policy=SitePolicy(flood_limit_per_minute=3),
    )


@pytest.fixture
def token(api_settings: Settings) -> TokenFactory:
    """``token(subject="alice", site="blog")``: a development-issuer access token."""

    def make(subject: str = "alice", site: str = "blog", **claims: str) -> str:
        return mint_dev_token(api_settings, subject=subject, site=site, **claims)  # type: ignore[arg-type]

    return make
