"""``GET /v1/comments/{id}`` as a moderator: every verdict, the moderation history, the
author's record and the same IP's other comments; the author still sees the plain view."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models import AuditEntry, Site, Status, Verdict
from service.auth.dev_issuer import DEV_ISSUER
from tests.api.conftest import TokenFactory
from tests.support.queue import add_comment


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_moderator_sees_everything_needed_to_judge_and_the_author_the_plain_view(
    client: FlaskClient, db_session: Session, site: Site, token: TokenFactory
) -> None:
    comment = add_comment(
        db_session, site, issuer=DEV_ISSUER, subject="alice", ip="198.51.100.7", minutes=10
    )
    others = [
        add_comment(db_session, site, issuer=DEV_ISSUER, subject="alice", minutes=m, status=s)
        for m, s in [(1, Status.approved), (2, Status.approved), (3, Status.spam)]
    ]
    same_ip = add_comment(db_session, site, subject="mallory", ip="198.51.100.7", minutes=9)
    add_comment(db_session, site, subject="trent", ip="203.0.113.1", minutes=8)
    reasons = [{"phrase": "links to cheap-pills.example", "weight": 2.1, "feature": "link"}]
    for score, decision in [(0.4, "held"), (0.7, "held")]:
        db_session.add(
            Verdict(
                comment_id=comment.id,
                classifier_version="v-test",
                score=score,
                decision=decision,
                reasons=reasons,
                latency_ms=12.5,
            )
        )
    db_session.add(
        AuditEntry(
            site_id=site.id,
            actor_issuer=DEV_ISSUER,
            actor_subject="mod",
            action="hold",
            target_type="comment",
            target_id=str(comment.id),
            comment_id=comment.id,
            from_state="approved",
            to_state="held",
            note="second look",
        )
    )
    db_session.flush()
    url = f"/v1/comments/{comment.id}"

    moderator = client.get(url, headers=bearer(token("mod", roles=["commentguard:blog:moderator"])))
    assert moderator.status_code == 200
    assert moderator.headers["ETag"] == f'"v{comment.version}"'
    detail = moderator.get_json()["moderation"]
    assert detail["version"] == comment.version
    assert (detail["user_ip"], detail["user_agent"]) == ("198.51.100.7", "test-agent/1.0")
    assert detail["author_email"] == "alice@mail.test"
    assert [v["score"] for v in detail["verdicts"]] == [0.4, 0.7]
    assert detail["verdicts"][0]["reasons"] == reasons
    assert [(h["action"], h["from"], h["to"], h["note"]) for h in detail["history"]] == [
        ("hold", "approved", "held", "second look")
    ]
    assert detail["history"][0]["actor"] == {"issuer": DEV_ISSUER, "subject": "mod"}
    author = detail["author"]
    assert (author["subject"], author["trust"]) == ("alice", "normal")
    assert author["comments_by_status"] == {
        "pending": 0,
        "approved": 2,
        "held": 1,
        "spam": 1,
        "trash": 0,
    }
    assert [r["id"] for r in author["recent"]] == [str(c.id) for c in reversed(others)]
    assert [r["id"] for r in detail["same_ip"]] == [str(same_ip.id)]
    assert detail["same_ip"][0]["author_name"] == "Mallory"

    plain = client.get(url, headers=bearer(token("alice")))
    assert plain.status_code == 200
    assert "moderation" not in plain.get_json()
    assert plain.headers["ETag"] == f'"v{comment.version}"'
    assert "198.51.100.7" not in plain.get_data(as_text=True)


def test_others_get_404_and_an_admin_the_detail(
    client: FlaskClient, db_session: Session, site: Site, token: TokenFactory
) -> None:
    comment = add_comment(db_session, site, issuer=DEV_ISSUER, subject="alice", ip=None)
    url = f"/v1/comments/{comment.id}"
    for subject, roles in [
        ("bob", []),
        ("op", ["commentguard:blog:operator"]),
        ("mod-b", ["commentguard:other:moderator"]),
    ]:
        assert client.get(url, headers=bearer(token(subject, roles=roles))).status_code == 404
    admin = client.get(url, headers=bearer(token("boss", roles=["commentguard:blog:admin"])))
    assert admin.status_code == 200
    detail = admin.get_json()["moderation"]
    assert (detail["verdicts"], detail["history"], detail["same_ip"]) == ([], [], [])
