"""``comment_counts`` stays exact when many sessions of one site insert, move and delete
comments at once, each committing (the triggers write per-session shards)."""

from __future__ import annotations

import random
import threading

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models import Comment, Status
from service.moderation.queue import status_counts
from tests.support.comments import make_site
from tests.support.queue import add_comment


def test_counts_stay_exact_under_concurrent_writers(committed: sessionmaker[Session]) -> None:
    with committed.begin() as session:
        site = make_site(session)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                with committed.begin() as session:
                    ids = [
                        add_comment(
                            session, site, status=Status.pending, score=None, subject=f"w{seed}"
                        ).id
                        for _ in range(rng.randint(1, 3))
                    ]
                with committed.begin() as session:
                    moved = rng.choice([Status.approved, Status.held, Status.spam])
                    session.execute(
                        update(Comment).where(Comment.id == ids[0]).values(status=moved)
                    )
                    if len(ids) > 1:
                        session.execute(delete(Comment).where(Comment.id == ids[1]))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    with committed() as session:
        actual = dict.fromkeys((s.value for s in Status), 0)
        for status, n in session.execute(
            select(Comment.status, func.count())
            .where(Comment.site_id == site.id)
            .group_by(Comment.status)
        ):
            actual[Status(status).value] = n
        assert sum(actual.values()) > 0
        assert status_counts(session, site_id=site.id) == actual
