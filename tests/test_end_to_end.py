"""The spine end to end: 200 comments posted through the API reach a verdict through a real
worker on PostgreSQL and Redis, each with the status the site's policy gives its score."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import Author, Comment, Status, Trust, Verdict
from service.app import create_app
from service.auth.dev_issuer import DEV_ISSUER, mint_dev_token
from service.moderation.active import ClassifierProvider
from service.moderation.policy import SitePolicy, decide, effective_thresholds
from service.moderation.sites import create_site
from service.settings import Settings
from tests.support.labelled import labelled_comments
from tests.support.wait import wait_until
from tests.support.worker import CeleryWorker

COMMENTS = 200
AUTHORS = 40
BLOCKED = "zzblockedzz"
MODERATED = "zzmoderatedzz"


@pytest.fixture
def e2e_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"dev_issuer": True, "dev_key_path": tmp_path / "k.pem"})


def test_two_hundred_comments_reach_the_verdicts_the_policy_says(
    committed: sessionmaker[Session], running_worker: CeleryWorker, e2e_settings: Settings
) -> None:
    policy = SitePolicy(
        hold_threshold=0.3,
        spam_threshold=0.9,
        blocked_words=[BLOCKED],
        moderation_words=[MODERATED],
        max_links=2,
        flood_limit_per_minute=0,
    )
    with committed.begin() as session:
        site = create_site(
            session, slug="e2e", name="E2E", url="https://e2e.example", policy=policy
        )
        # One banned and one trusted reader, known before they post (the moderation issue
        # gives this an API).
        session.add_all(
            [
                Author(site_id=site.id, issuer=DEV_ISSUER, subject="r3", trust=Trust.banned),
                Author(site_id=site.id, issuer=DEV_ISSUER, subject="r4", trust=Trust.trusted),
            ]
        )

    corpus = labelled_comments(COMMENTS, seed=7)
    texts = [record.content for record in corpus.records]
    # Plain comments by readers of normal trust (r3 is banned, r4 trusted).
    hams = [n for n, label in enumerate(corpus.labels) if label == 0 and n % AUTHORS not in (3, 4)]
    # Rules must show too: a blocked word, and on plain comments (which the score alone
    # would approve) a moderation word and too many links.
    blocked, moderated, linked = 0, hams[0], hams[1]
    texts[blocked] += f" {BLOCKED}"
    texts[moderated] += f" {MODERATED}"
    texts[linked] += " https://a.example https://b.example https://c.example"

    app = create_app(e2e_settings, sessions=committed)
    ids: list[uuid.UUID] = []
    with app.test_client() as client:
        tokens = [mint_dev_token(e2e_settings, subject=f"r{n}", site="e2e") for n in range(AUTHORS)]
        for n, text in enumerate(texts):
            response = client.post(
                "/v1/comments",
                json={"site": "e2e", "thread": f"/post/{n % 5}", "content": text},
                headers={"Authorization": f"Bearer {tokens[n % AUTHORS]}"},
            )
            assert response.status_code == 202, response.get_json()
            ids.append(uuid.UUID(response.get_json()["id"]))

    def all_decided() -> bool:
        with committed() as session:
            pending = session.scalars(
                select(Comment.id).where(Comment.id.in_(ids), Comment.status == Status.pending)
            ).all()
            return not pending

    wait_until(all_decided, timeout=120, interval=0.2, message="every comment to get a verdict")

    classifier = ClassifierProvider(e2e_settings.classifier_path).get()
    thresholds = effective_thresholds(policy, classifier.thresholds)
    with committed() as session:
        rows = session.execute(
            select(Comment, Verdict, Author)
            .join(Verdict, Verdict.comment_id == Comment.id)
            .join(Author, Author.id == Comment.author_id)
            .where(Comment.id.in_(ids))
        ).all()
        assert len(rows) == COMMENTS, "each comment has exactly one verdict"
        seen: set[Status] = set()
        for comment, verdict, author in rows:
            expected = decide(
                policy, thresholds, score=verdict.score, text=comment.content, trust=author.trust
            )
            assert comment.status is expected.status, (comment.content, verdict.score)
            assert comment.discard is expected.discard
            assert verdict.decision == expected.status.value
            assert verdict.classifier_version == classifier.version
            assert comment.score == verdict.score
            # The classifier explains every score.
            assert any(r["weight"] is not None for r in verdict.reasons)
            seen.add(comment.status)
        by_id = {comment.id: comment for comment, _, _ in rows}
    assert by_id[ids[blocked]].status is Status.spam
    assert by_id[ids[moderated]].status is Status.held
    # Three links may also push the score itself over the spam threshold.
    linked_comment = by_id[ids[linked]]
    assert linked_comment.status is Status.held or (linked_comment.score or 0) >= 0.9
    banned = [c for c, _, a in rows if a.subject == "r3"]
    assert banned, "the banned reader posted"
    assert all(c.status is Status.spam for c in banned)
    assert {Status.approved, Status.held, Status.spam} <= seen
