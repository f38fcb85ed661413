"""The moderator's part of ``GET /v1/comments/{id}``: verdicts, history, author, same IP."""

from __future__ import annotations

from typing import Any

from flask import url_for

from models import Comment
from service.api.schemas import iso_time
from service.moderation.comments import ModeratorDetail, RecentComment


def moderation_body(comment: Comment, detail: ModeratorDetail) -> dict[str, Any]:
    """The ``moderation`` member of a moderator's answer (docs/api.md, "The queue, the
    moderator's detail, the thread view")."""
    author = detail.author
    return {
        "version": comment.version,
        "author_email": comment.author_email,
        "author_url": comment.author_url,
        "user_ip": comment.user_ip,
        "user_agent": comment.user_agent,
        "referrer": comment.referrer,
        "permalink": comment.permalink,
        "lang": comment.lang,
        "verdicts": [
            {
                "score": v.score,
                "decision": v.decision,
                "discard": v.discard,
                "reasons": v.reasons,
                "classifier_version": v.classifier_version,
                "latency_ms": v.latency_ms,
                "created_at": iso_time(v.created_at),
            }
            for v in detail.verdicts
        ],
        "history": [
            {
                "id": e.id,
                "action": e.action,
                "from": e.from_state,
                "to": e.to_state,
                "note": e.note,
                "actor": {"issuer": e.actor_issuer, "subject": e.actor_subject},
                "created_at": iso_time(e.created_at),
            }
            for e in detail.history
        ],
        "author": {
            "id": author.id,
            "issuer": author.issuer,
            "subject": author.subject,
            "display_name": author.display_name,
            "email": author.email,
            "trust": author.trust.value,
            "banned_until": iso_time(author.banned_until),
            "approved_count": author.approved_count,
            "spam_count": author.spam_count,
            "comments_by_status": detail.author_counts,
            "recent": [_recent(r) for r in detail.author_recent],
        },
        "same_ip": [_recent(r) for r in detail.same_ip],
    }


def _recent(recent: RecentComment) -> dict[str, Any]:
    return {
        "id": str(recent.id),
        "thread": recent.thread,
        "status": recent.status,
        "score": recent.score,
        "author_id": recent.author_id,
        "author_name": recent.author_name,
        "excerpt": recent.excerpt,
        "created_at": iso_time(recent.created_at),
        "links": {"self": url_for("comments.get_comment", comment_id=str(recent.id))},
    }
