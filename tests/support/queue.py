"""Comments written straight into the tables, in any status, score and time: what the
queue, the thread view and the moderator's detail read."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Author, Comment, Site, Status

ISSUER = "https://issuer.test"
#: A fixed origin, so tests can place comments before and after each other exactly.
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def author(session: Session, site: Site, subject: str, *, issuer: str = ISSUER) -> Author:
    """The author ``subject`` of ``site``, created on first use."""
    found = session.scalar(
        select(Author).where(
            Author.site_id == site.id, Author.issuer == issuer, Author.subject == subject
        )
    )
    if found is None:
        found = Author(site_id=site.id, issuer=issuer, subject=subject, display_name=subject)
        session.add(found)
        session.flush()
    return found


def add_comment(
    session: Session,
    site: Site,
    *,
    status: Status = Status.held,
    score: float | None = 0.5,
    minutes: float = 0,
    subject: str = "alice",
    content: str = "A comment.",
    thread: str = "/posts/1",
    parent: uuid.UUID | None = None,
    ip: str | None = "192.0.2.1",
    issuer: str = ISSUER,
) -> Comment:
    """One comment ``minutes`` after :data:`T0`. Flushes."""
    comment = Comment(
        site_id=site.id,
        thread=thread,
        parent_id=parent,
        author_id=author(session, site, subject, issuer=issuer).id,
        author_name=subject.title(),
        author_email=f"{subject}@mail.test",
        author_url=f"https://{subject}.test",
        content=content,
        user_ip=ip,
        user_agent="test-agent/1.0",
        referrer="https://blog.example/ref",
        status=status,
        score=score,
        content_hash=hashlib.sha256(f"{content}{uuid.uuid4()}".encode()).hexdigest(),
        created_at=T0 + dt.timedelta(minutes=minutes),
    )
    session.add(comment)
    session.flush()
    return comment
