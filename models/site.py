"""A site: one blog that sends comments, with the issuers it trusts and its policy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class Site(Timestamped, Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    #: Issuer URLs whose tokens this site accepts for commenters.
    trusted_issuers: Mapped[list[str]] = mapped_column(default=list)
    #: ``aud`` values accepted in those tokens.
    audiences: Mapped[list[str]] = mapped_column(default=list)
    #: Thresholds and rules; its shape is ``service.moderation.policy.SitePolicy``.
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: RFC 7662 token introspection for opaque tokens: the endpoint, and the client
    #: credentials (client_secret_basic) this service authenticates to it with. All three
    #: set, or none (opaque tokens are then refused).
    introspection_endpoint: Mapped[str | None] = mapped_column(Text)
    introspection_client_id: Mapped[str | None] = mapped_column(String(255))
    introspection_client_secret: Mapped[str | None] = mapped_column(Text)
    #: The moderators' web UI logs in at this OpenID Connect issuer (authorization code +
    #: PKCE) as this client; the secret is empty for a public client. All unset: no UI.
    ui_issuer: Mapped[str | None] = mapped_column(Text)
    ui_client_id: Mapped[str | None] = mapped_column(String(255))
    ui_client_secret: Mapped[str | None] = mapped_column(Text)
    #: Webhook URLs may use http and point at loopback, private, link-local and other
    #: non-public addresses (development, or a receiver on the same network). Off by
    #: default; set by an operator (``commentguard site webhooks``), never through the API.
    webhooks_allow_private: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
