"""Authors' trust as a real worker applies it: a ban sends new comments to spam until it
ends, and a site with ``approve_known_authors`` approves authors whose earlier comment a
moderator approved."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, Status, Trust, Verdict
from service.moderation.actions import Action, Item, act_on_comments
from service.moderation.authors import set_trust
from service.moderation.policy import SitePolicy
from service.moderation.sites import SiteInfo
from service.moderation.types import Identity
from service.queue import TaskQueue
from service.settings import Settings
from tests.support.comments import ISSUER, make_site, submit_text
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker

MODERATOR = Identity(issuer=ISSUER, subject="mod", roles=frozenset({"moderator"}))


def test_bans_and_known_authors_in_the_worker(
    committed: sessionmaker[Session],
    running_worker: CeleryWorker,
    task_queue: TaskQueue,
    settings: Settings,
) -> None:
    # Every score is in the hold band, so only trust and the site option can approve.
    policy = SitePolicy(
        flood_limit_per_minute=0,
        hold_threshold=0.0,
        spam_threshold=1.0,
        discard_threshold=1.0,
        approve_known_authors=True,
    )
    now = dt.datetime.now(dt.UTC)
    with committed.begin() as session:
        site = make_site(session, policy=policy)
        info = SiteInfo.of(site)
        first = submit_text(session, info, "known", "My first comment here, hello everyone.")
        for subject in ("expired", "banned", "newcomer"):
            session.add(Author(site_id=site.id, issuer=ISSUER, subject=subject))
        session.flush()
        authors = {
            a.subject: a.id
            for a in session.scalars(select(Author).where(Author.site_id == site.id))
        }
        # A moderator approves the known author's first comment before the worker sees it.
        [approved] = act_on_comments(
            session,
            site_id=site.id,
            items=[Item(first)],
            actor=MODERATOR,
            action=Action.approve,
            note=None,
        )
        assert approved.status is Status.approved
        for subject, until in (("banned", now + dt.timedelta(days=1)), ("expired", None)):
            set_trust(
                session,
                site_id=site.id,
                author_id=authors[subject],
                trust=Trust.banned,
                until=until,
                note=None,
                actor=MODERATOR,
                now=now,
            )
        # A ban that has ended since (set_trust refuses an end in the past).
        session.get_one(Author, authors["expired"]).banned_until = now - dt.timedelta(hours=1)
    with committed.begin() as session:
        ids = {
            subject: submit_text(
                session, info, subject, f"A second thought on this post, by {subject}."
            )
            for subject in ("known", "newcomer", "expired", "banned")
        }
    for comment_id in ids.values():
        task_queue.enqueue_classification(comment_id)

    def decided() -> dict[str, tuple[Status, list[str]]] | None:
        with committed() as session:
            found: dict[str, tuple[Status, list[str]]] = {}
            for subject, comment_id in ids.items():
                comment = session.get_one(Comment, comment_id)
                if comment.status is Status.pending:
                    return None
                verdict = session.scalars(
                    select(Verdict).where(Verdict.comment_id == comment_id)
                ).one()
                features = [r["feature"] for r in verdict.reasons if r["weight"] is None]
                found[subject] = (comment.status, features)
            return found

    result = wait_until(
        decided, timeout=60, message=lambda: f"verdicts:\n{running_worker.log_tail()}"
    )
    assert result["known"] == (Status.approved, ["rule:known"])
    assert result["newcomer"] == (Status.held, [])
    assert result["expired"] == (Status.held, [])
    assert result["banned"] == (Status.spam, ["rule:banned"])
    with committed() as session:
        assert session.get_one(Author, authors["known"]).approved_count == 2
        assert session.get_one(Author, authors["banned"]).spam_count == 1
