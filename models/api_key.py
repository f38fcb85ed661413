"""An API key: a site's credential for server-to-server calls (a blog's backend).

Only a keyed hash of the key is stored (HMAC-SHA256 under a random per-key salt); the
key itself is shown once, when it is made. ``prefix`` is the public part of the key
(``cg_<prefix>_<secret>``) by which it is found and named.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped


class ApiKey(Timestamped, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    #: What the key is for, in the operator's words ("WordPress backend").
    name: Mapped[str] = mapped_column(String(200))
    salt: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    #: Updated at most once a minute per key, so that a busy key is not a write per call.
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
