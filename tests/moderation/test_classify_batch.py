"""Classifying a batch of comments in one transaction on PostgreSQL: the same verdicts as
one at a time, and safe beside other batches."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, Status, Verdict
from service.classifier.model import load_classifier
from service.moderation.active import LoadedClassifier
from service.moderation.classify import Decided, classify_comment, classify_comments
from service.moderation.policy import SitePolicy
from service.moderation.sites import SiteInfo
from tests.support.comments import make_site, open_outbox_rows, submit_text, verdict_counts

CLASSIFIER = LoadedClassifier(load_classifier(), None)

#: (author, text): alice's later comments come after verdicts that moved her counts.
POSTS = [
    ("alice", "Thanks, this explained connection pooling better than the docs did."),
    ("bob", "BUY CHEAP FOLLOWERS NOW!!! http://cheap-followers.example/promo best prices"),
    ("alice", "Could you cover retries and visibility timeouts in the next post?"),
    ("carol", "We hit the same wall with migrations on a large table last spring."),
    ("bob", "Earn $5000 a week from home, click http://money.example/now limited offer"),
    ("alice", "One more question: does this hold on PostgreSQL 15 as well?"),
]


def _post_all(committed: sessionmaker[Session]) -> tuple[int, list[uuid.UUID]]:
    """A site with ``approve_known_authors`` (so an author's earlier verdicts matter) and
    :data:`POSTS` on it, pending; the site's id and the comments' ids in posting order."""
    with committed.begin() as session:
        site = make_site(
            session, policy=SitePolicy(flood_limit_per_minute=0, approve_known_authors=True)
        )
        info = SiteInfo.of(site)
        ids = [submit_text(session, info, author, content) for author, content in POSTS]
    return site.id, ids


def _outcome(session: Session, site_id: int, ids: list[uuid.UUID]) -> dict[str, Any]:
    """What classification left, free of ids: each comment's status and verdict, in order,
    and each author's counts."""
    comments = []
    for comment_id in ids:
        comment = session.get_one(Comment, comment_id)
        [verdict] = session.scalars(select(Verdict).where(Verdict.comment_id == comment_id))
        comments.append(
            (
                comment.status,
                comment.discard,
                comment.score,
                comment.version,
                verdict.decision,
                verdict.score,
                verdict.reasons,
                verdict.classifier_version,
            )
        )
    authors = session.execute(
        select(Author.subject, Author.approved_count, Author.spam_count)
        .where(Author.site_id == site_id)
        .order_by(Author.subject)
    ).all()
    return {"comments": comments, "authors": [tuple(row) for row in authors]}


def test_a_batch_records_what_one_at_a_time_records(committed: sessionmaker[Session]) -> None:
    one_site, one_ids = _post_all(committed)
    for comment_id in one_ids:
        with committed.begin() as session:
            classify_comment(session, comment_id=comment_id, classifier=CLASSIFIER)
    batch_site, batch_ids = _post_all(committed)
    with committed.begin() as session:
        decided = classify_comments(session, comment_ids=batch_ids, classifier=CLASSIFIER)

    assert [d.comment_id for d in decided] == batch_ids
    with committed() as session:
        one = _outcome(session, one_site, one_ids)
        batch = _outcome(session, batch_site, batch_ids)
        assert batch == one
        # The case the batch must get right: alice's later comments see her approved ones.
        alice = [
            c for (author, _), c in zip(POSTS, one["comments"], strict=True) if author == "alice"
        ]
        assert alice[0][0] is Status.approved
        assert len({c[5] for c in alice}) == len(alice)
        assert open_outbox_rows(session, batch_ids) == []


def test_a_batch_skips_comments_that_are_gone_or_decided_and_marks_every_task_done(
    committed: sessionmaker[Session],
) -> None:
    _site, ids = _post_all(committed)
    held, pending = ids[0], ids[1:]
    with committed.begin() as session:
        session.execute(update(Comment).where(Comment.id == held).values(status=Status.held))
    missing = uuid.uuid4()

    with committed.begin() as session:
        decided = classify_comments(
            session,
            comment_ids=[missing, held, *pending, pending[0]],
            classifier=CLASSIFIER,
        )

    assert [d.comment_id for d in decided] == pending
    with committed() as session:
        assert verdict_counts(session, ids) == dict.fromkeys(pending, 1)
        assert session.get_one(Comment, held).status is Status.held
        assert open_outbox_rows(session, ids) == []


def test_a_batch_of_decided_comments_writes_no_verdict(committed: sessionmaker[Session]) -> None:
    _site, ids = _post_all(committed)
    with committed.begin() as session:
        classify_comments(session, comment_ids=ids, classifier=CLASSIFIER)
    with committed.begin() as session:
        assert classify_comments(session, comment_ids=ids, classifier=CLASSIFIER) == []
    with committed() as session:
        assert verdict_counts(session, ids) == dict.fromkeys(ids, 1)


def test_batches_that_share_comments_and_authors_run_side_by_side(
    committed: sessionmaker[Session],
) -> None:
    # Two workers given overlapping batches in opposite orders (a task sent again by the
    # sweeper while the first delivery runs): both finish, neither deadlocks, and every
    # comment gets one verdict whose decision moved its author's count once.
    with committed.begin() as session:
        site = SiteInfo.of(make_site(session))
        ids = [
            submit_text(session, site, f"reader-{n % 4}", f"Comment number {n} on pooling.")
            for n in range(40)
        ]
    batches = [ids[:30], list(reversed(ids[10:]))]
    results: list[list[Decided]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def run(n: int) -> None:
        try:
            start.wait(timeout=10)
            with committed.begin() as session:
                results[n] = classify_comments(
                    session, comment_ids=batches[n], classifier=CLASSIFIER
                )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    decided = [d for result in results for d in result]
    assert sorted(d.comment_id for d in decided) == sorted(ids)
    with committed() as session:
        assert verdict_counts(session, ids) == dict.fromkeys(ids, 1)
        counts = session.execute(
            select(Author.approved_count, Author.spam_count).where(Author.site_id == site.id)
        ).all()
        assert sum(approved for approved, _ in counts) == sum(
            d.decision is Status.approved for d in decided
        )
        assert sum(spam for _, spam in counts) == sum(d.decision is Status.spam for d in decided)


def test_a_batch_is_one_transaction(committed: sessionmaker[Session]) -> None:
    site_id, ids = _post_all(committed)
    with committed() as session:
        decided = classify_comments(session, comment_ids=ids, classifier=CLASSIFIER)
        assert len(decided) == len(ids)
        session.rollback()
    with committed() as session:
        assert verdict_counts(session, ids) == {}
        assert {session.get_one(Comment, i).status for i in ids} == {Status.pending}
        assert len(open_outbox_rows(session, ids)) == len(ids)
        authors = session.scalars(select(Author).where(Author.site_id == site_id)).all()
        assert {(a.approved_count, a.spam_count) for a in authors} == {(0, 0)}
