"""The API's pool does not ping each connection before a request (a round trip per
request): a connection that died meanwhile fails that one request with a 503 and
``Retry-After``, and the next request gets a new connection."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from models import Comment
from service.app import create_app
from service.moderation.policy import SitePolicy
from service.moderation.sites import create_site
from service.settings import Settings
from tests.api.conftest import TokenFactory
from tests.api.test_comments import assert_problem, body, post


def test_a_request_after_the_database_dropped_the_apis_connections_is_503_then_served(
    committed: sessionmaker[Session], api_settings: Settings, token: TokenFactory
) -> None:
    with committed.begin() as session:
        create_site(
            session,
            slug="blog",
            name="A blog",
            url="https://blog.example",
            audiences=["https://blog.example"],
            policy=SitePolicy(flood_limit_per_minute=0),
        )
    app = create_app(api_settings)
    with app.test_client() as client:
        assert post(client, token()).status_code == 202
        with committed() as session:
            dropped = session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert dropped
        failed = post(client, token(), body(content="Second try, after the restart."))
        assert_problem(failed, 503, "unavailable")
        assert failed.headers["Retry-After"]
        served = post(client, token(), body(content="Second try, after the restart."))
        assert served.status_code == 202, served.get_data(as_text=True)
    with committed() as session:
        assert session.scalar(select(func.count(Comment.id))) == 2
