"""The Akismet-compatible API's domain: keys and blogs, comment checks scored in-process,
spam and ham reports as labels, and the usage figures.

What Akismet calls things, and what they are here:

* **Key**: a site's API key (``service/auth/api_keys.py``); the key alone names its site,
  and the ``blog`` sent with it must be that site's URL (:func:`same_blog`).
* **Author**: Akismet clients send no OAuth token, so a comment's author is the site's
  author with issuer :data:`AKISMET_ISSUER` and subject ``email:<address>`` (lower case)
  when an e-mail address is given, else ``ip:<user_ip>``. Trust, bans, counts and the
  author's history work on them as on any author.
* **A check** is scored by the process's classifier and decided by
  :func:`service.moderation.classify.judge`, the worker's own path, then three rules of
  Akismet's own (:func:`_akismet_rules`): ``user_role`` administrator is never spam, a
  filled honeypot is spam, an author over the site's flood limit is spam. The comment,
  its verdict and the author's count are written in the caller's transaction; the
  answer is ``true`` for ``spam`` only (``approved`` and ``held`` answer ``false``).
* **A duplicate** (the same text from the same author on the same page within a day)
  is a re-check: nothing new is stored, and the answer is the first comment's current
  status (so a moderator's later decision shows).
* **Reports** (submit-spam, submit-ham) are moderator-grade labels, audited, with the
  key as the actor (:func:`submit_report`).

Nothing here commits; ``AkismetInvalid`` is what the endpoint answers ``invalid`` for.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, case, func, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import Author, Comment, Label, LabelSource, LabelValue, Status, Trust, Verdict
from service.auth.api_keys import KeyOwner, record_key_use, site_of_api_key
from service.classifier import CommentRecord
from service.moderation import audit
from service.moderation.actions import Action, Item, Outcome, act_on_comments
from service.moderation.classify import (
    COUNT_AUTHOR,
    INSERT_VERDICT,
    ClassifierChoice,
    Decided,
    judge,
    record_params,
    rule_reason,
)
from service.moderation.errors import Unauthorized
from service.moderation.policy import RuleReason, effective_trust
from service.moderation.sites import SiteDirectory, SiteInfo
from service.moderation.submit import DUPLICATE_WINDOW, FLOOD_WINDOW, NEW_AUTHOR, content_hash
from service.moderation.types import Identity

#: The issuer of the authors of comments checked through the Akismet API.
AKISMET_ISSUER = "urn:commentguard:akismet"

#: Comments' ``thread`` is the page they were left on (``permalink``), cut to the column.
THREAD_MAX = 512
_SUBJECT_MAX = 255
_NAME_MAX = 200
_EMAIL_MAX = 320
_LANG_MAX = 35
_LANG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

#: key-sites' ``order`` values (Akismet's), the default first.
ORDERS = ("total", "spam", "ham", "missed_spam", "false_positives")
#: key-sites' default and largest ``limit``.
DEFAULT_SITES_LIMIT = 500


class AkismetInvalid(Exception):
    """The request cannot be served: Akismet answers ``invalid`` and says why in
    ``X-akismet-debug-help`` (a bad key, a blog that is not the key's, a missing or
    unusable field)."""

    def __init__(self, debug_help: str) -> None:
        super().__init__(debug_help)
        self.debug_help = debug_help


# --- keys and blogs ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified key: its site, and the identity it proves (the key itself)."""

    site: SiteInfo
    key: Identity
    owner: KeyOwner


def blog_key(url: str) -> tuple[str, str] | None:
    """``url`` as a site is compared by: (host with its port, path), lower-case host,
    default ports (80, 443) and trailing slashes dropped; scheme, user info, query and
    fragment ignored. None when ``url`` is not an absolute http(s) URL."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    return host, parts.path.rstrip("/")


def same_blog(site_url: str, blog: str) -> bool:
    """Whether ``blog`` names the site at ``site_url`` (see :func:`blog_key`: http and
    https, ``Blog.Example`` and ``blog.example/`` are the same blog; ``www.blog.example``
    and ``blog.example/other`` are not)."""
    mine = blog_key(site_url)
    return mine is not None and mine == blog_key(blog)


def authenticate(
    session: Session,
    *,
    key: str | None,
    blog: str | None,
    sites: SiteDirectory,
    now: dt.datetime,
    record_use: bool = True,
) -> Caller:
    """The caller of an Akismet endpoint: ``key`` must be a valid site API key and
    ``blog`` its site's URL (``blog=None`` skips that check, for the endpoints that take
    no blog). ``AkismetInvalid`` otherwise, saying which."""
    if not key:
        raise AkismetInvalid('Empty "api_key" value')
    if blog is not None:
        if not blog:
            raise AkismetInvalid('Empty "blog" value')
        if blog_key(blog) is None:
            raise AkismetInvalid(f'We were unable to parse your blog URI "{blog}"')
    try:
        owner = site_of_api_key(session, key=key, now=now, record_use=record_use)
    except Unauthorized:
        raise AkismetInvalid("Invalid key") from None
    site = sites.get(session, slug=owner.site_slug)
    if blog is not None and not same_blog(site.url, blog):
        raise AkismetInvalid(f'The blog "{blog}" is not the URL of this key\'s site')
    return Caller(site, owner.identity, owner)


def note_key_use(session: Session, caller: Caller, *, now: dt.datetime) -> None:
    """Record the use of the caller's key (after :func:`authenticate` with
    ``record_use=False``; written at most once a minute)."""
    record_key_use(session, caller.owner, now=now)


# --- checking a comment ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AkismetComment:
    """The fields of a comment-check, submit-spam or submit-ham, decoded (in the
    request's charset), NUL characters removed, ``user_ip`` a valid address. Empty
    optional fields are None; ``comment_content`` may be empty (a sign-up form)."""

    user_ip: str
    comment_content: str = ""
    user_agent: str | None = None
    referrer: str | None = None
    permalink: str | None = None
    comment_type: str | None = None
    comment_author: str | None = None
    comment_author_email: str | None = None
    comment_author_url: str | None = None
    comment_date_gmt: str | None = None
    comment_post_modified_gmt: str | None = None
    blog_lang: str | None = None
    blog_charset: str | None = None
    user_role: str | None = None
    is_test: bool = False
    recheck_reason: str | None = None
    honeypot_field_name: str | None = None
    #: The value of the field ``honeypot_field_name`` names (None: not sent).
    honeypot_value: str | None = None
    #: ``guid``: the ``X-akismet-guid`` of the check a report is about.
    guid: uuid.UUID | None = None

    @property
    def administrator(self) -> bool:
        """``user_role`` names administrator (WordPress sends a comma-separated list)."""
        roles = (self.user_role or "").lower().split(",")
        return "administrator" in (r.strip() for r in roles)

    @property
    def honeypot_filled(self) -> bool:
        return bool(self.honeypot_field_name) and bool((self.honeypot_value or "").strip())


@dataclass(frozen=True, slots=True)
class Check:
    """A comment-check's answer. ``guid`` is the stored comment's id (the first
    comment's for a duplicate; unstored for a test). ``status`` is the comment's status
    (``spam`` answers true)."""

    guid: uuid.UUID
    status: Status
    discard: bool
    stored: bool
    replayed: bool = False

    @property
    def spam(self) -> bool:
        return self.status is Status.spam


def author_identity(data: AkismetComment) -> Identity:
    """Who wrote an Akismet-checked comment (see the module docstring)."""
    email = (data.comment_author_email or "").strip().lower()
    if email:
        subject = f"email:{email}"
        if len(subject) > _SUBJECT_MAX:
            subject = "email-sha256:" + hashlib.sha256(email.encode()).hexdigest()
    else:
        subject = f"ip:{data.user_ip}"
    return Identity(
        issuer=AKISMET_ISSUER,
        subject=subject,
        name=_cut(data.comment_author, _NAME_MAX),
        email=email if email and len(email) <= _EMAIL_MAX else None,
    )


def thread_of(data: AkismetComment) -> str:
    """The thread a checked comment belongs to: its page, else its kind of content."""
    return (data.permalink or f"akismet:{data.comment_type or 'comment'}")[:THREAD_MAX]


def check_comment(
    session: Session,
    *,
    site: SiteInfo,
    data: AkismetComment,
    classifier: ClassifierChoice,
    now: dt.datetime,
) -> Check:
    """Score and decide ``data`` for ``site`` now, and (unless ``is_test``) store the
    comment with its final status, its verdict and its author's count, in the caller's
    transaction. A duplicate stores nothing and answers as the first comment is now."""
    started = time.perf_counter()
    connection = session.connection()
    identity = author_identity(data)
    thread = thread_of(data)
    digest = content_hash(data.comment_content)
    author = _find_author(
        session, site=site, identity=identity, digest=digest, thread=thread, now=now
    )

    if author is not None and author.duplicate is not None and data.comment_content.strip():
        earlier = connection.execute(
            select(Comment.status, Comment.discard).where(Comment.id == author.duplicate)
        ).one()
        return Check(author.duplicate, Status(earlier.status), earlier.discard, False, True)

    trust = Trust.normal
    approved = spam = recent = 0
    if author is not None:
        trust = effective_trust(author.trust, author.banned_until, now)
        approved, spam, recent = author.approved_count, author.spam_count, author.recent
    lang = _lang(data.blog_lang)
    chosen = classifier.for_site(site.id)
    score = chosen.score(
        CommentRecord(
            content=data.comment_content,
            author_name=identity.name,
            author_email=identity.email,
            author_url=data.comment_author_url,
            user_ip=data.user_ip,
            user_agent=data.user_agent,
            referrer=data.referrer,
            permalink=data.permalink,
            lang=lang,
            approved_count=approved,
            spam_count=spam,
        )
    )
    judged = judge(
        site.policy,
        chosen.thresholds,
        score=score,
        content=data.comment_content,
        trust=trust,
        known_author=approved > 0,
    )
    limit = site.policy.flood_limit_per_minute if trust is not Trust.trusted else 0
    status, discard, reasons = _akismet_rules(
        judged.decision.status,
        judged.decision.discard,
        judged.reasons,
        data,
        flood_limit=limit if limit and recent >= limit else None,
    )
    guid = uuid.uuid4()
    if data.is_test:
        return Check(guid, status, discard, stored=False)

    # record_params gives the verdict's, the author count's, and the comment's id, status,
    # discard flag and score (c_id, c_status, c_discard, c_score).
    params = {
        **_author_key(site, identity),
        "display_name": identity.name,
        "email": identity.email,
        "c_site_id": site.id,
        "c_thread": thread,
        "c_author_name": identity.name,
        "c_author_email": _cut(data.comment_author_email, _EMAIL_MAX),
        "c_author_url": data.comment_author_url,
        "c_content": data.comment_content,
        "c_user_ip": data.user_ip,
        "c_user_agent": data.user_agent,
        "c_referrer": data.referrer,
        "c_permalink": data.permalink,
        "c_lang": lang,
        "c_content_hash": digest,
        "c_extra": {"source": "akismet", "akismet": _extras(data)},
        "c_version": 1,
        **record_params(
            Decided(
                comment_id=guid,
                decision=status,
                discard=discard,
                score=score.probability,
                classifier_version=chosen.version,
                reasons=reasons,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            ),
            author.id if author is not None else 0,
            now,
        ),
    }
    _write(connection, params, new_author=author is None)
    return Check(guid, status, discard, stored=True)


def _akismet_rules(
    status: Status,
    discard: bool,
    reasons: list[dict[str, Any]],
    data: AkismetComment,
    *,
    flood_limit: int | None,
) -> tuple[Status, bool, list[dict[str, Any]]]:
    """The policy's decision, then Akismet's rules, strongest first: an administrator is
    never spam (as Akismet documents for ``user_role``); a filled honeypot is spam; so is
    a comment over the author's flood limit (``flood_limit``: the limit passed, else
    None). Each rule that applies adds its reason; a discard flag survives only on spam."""
    reasons = list(reasons)
    if data.administrator:
        rule = RuleReason("user_role administrator: never spam", "rule:administrator")
        return Status.approved, False, [*reasons, rule_reason(rule)]
    added: list[RuleReason] = []
    if data.honeypot_filled:
        added.append(
            RuleReason(
                f"the honeypot field '{data.honeypot_field_name}' was filled in", "rule:honeypot"
            )
        )
    if flood_limit is not None:
        added.append(
            RuleReason(f"more than {flood_limit} comments a minute from this author", "rule:flood")
        )
    if not added:
        return status, discard, reasons
    return (
        Status.spam,
        discard and status is Status.spam,
        [*reasons, *(rule_reason(r) for r in added)],
    )


@dataclass(frozen=True, slots=True)
class _FoundAuthor:
    id: int
    trust: Trust
    banned_until: dt.datetime | None
    approved_count: int
    spam_count: int
    #: The author's comments in the last minute (flood control).
    recent: int
    #: The author's latest comment with the same text on the same page within the
    #: duplicate window (not trashed), if any.
    duplicate: uuid.UUID | None


# Statements are built once: building one per check (coercing its values, computing its
# cache key) cost about as much as executing it.
_COMMENT_COLUMNS = (
    "id",
    "site_id",
    "thread",
    "author_id",
    "author_name",
    "author_email",
    "author_url",
    "content",
    "user_ip",
    "user_agent",
    "referrer",
    "permalink",
    "lang",
    "status",
    "discard",
    "score",
    "content_hash",
    "extra",
    "version",
)
_INSERT_COMMENT = insert(Comment).values(
    {
        name: bindparam(f"c_{name}", type_=Comment.__table__.c[name].type)
        for name in _COMMENT_COLUMNS
    }
)
# PostgreSQL: the comment, its verdict and the author's count in one round trip, through
# data-modifying CTEs (one statement: all of it or none).
_WRITE_ALL = COUNT_AUTHOR.add_cte(
    _INSERT_COMMENT.cte("new_comment"), INSERT_VERDICT.cte("new_verdict")
)


_NEW_AUTHOR_ID = {dialect: upsert.returning(Author.id) for dialect, upsert in NEW_AUTHOR.items()}


def _typed(table: Any, prefix: str, name: str) -> Any:
    # A parameter in a SELECT list has no column to take its type from: give it one.
    return bindparam(f"{prefix}_{name}", type_=table.c[name].type)


# PostgreSQL, an author's first comment: the author row (its counts already moved by this
# verdict: an UPDATE in the same statement would not see the row), the comment and its
# verdict in one statement. When another request created the author meanwhile, the
# author's INSERT does nothing, so the rest inserts nothing and no row comes back.
_FIRST_AUTHOR = (
    postgresql.insert(Author)
    .values(
        site_id=bindparam("site_id"),
        issuer=bindparam("issuer"),
        subject=bindparam("subject"),
        display_name=bindparam("display_name"),
        email=bindparam("email"),
        trust=Trust.normal,
        approved_count=bindparam("a_approved", type_=Integer),
        spam_count=bindparam("a_spam", type_=Integer),
    )
    .on_conflict_do_nothing()
    .returning(Author.id.label("author_id"))
    .cte("first_author")
)
_FIRST_COMMENT = (
    insert(Comment)
    .from_select(
        list(_COMMENT_COLUMNS),
        select(
            *(
                _FIRST_AUTHOR.c.author_id
                if name == "author_id"
                else _typed(Comment.__table__, "c", name)
                for name in _COMMENT_COLUMNS
            )
        ),
    )
    .returning(Comment.id)
    .cte("first_comment")
)
_VERDICT_PARAMS = {
    "comment_id": "v_comment_id",
    "classifier_version": "v_version",
    "score": "v_score",
    "decision": "v_decision",
    "discard": "v_discard",
    "reasons": "v_reasons",
    "latency_ms": "v_latency_ms",
}
_CREATE_ALL = (
    insert(Verdict)
    .from_select(
        list(_VERDICT_PARAMS),
        select(
            *(
                bindparam(param, type_=Verdict.__table__.c[name].type)
                for name, param in _VERDICT_PARAMS.items()
            )
        ).select_from(_FIRST_COMMENT),
    )
    .add_cte(_FIRST_AUTHOR, _FIRST_COMMENT)
    .returning(Verdict.comment_id)
)


def _write(connection: Connection, params: dict[str, Any], *, new_author: bool) -> None:
    """Write the comment, its verdict and the author's count (``params``: the check's,
    ``a_id`` the author's id unless ``new_author``), creating the author first when
    ``new_author``. On PostgreSQL one statement (:data:`_CREATE_ALL` for a new author,
    else :data:`_WRITE_ALL`; a second one when another request created the author
    meanwhile); elsewhere one statement each."""
    postgres = connection.dialect.name == "postgresql"
    if new_author and postgres:
        if connection.execute(_CREATE_ALL, params).scalar() is not None:
            return
        params["a_id"] = connection.execute(_AUTHOR_ID, params).scalar_one()
    elif new_author:
        params["a_id"] = _new_author(connection, params)
    params["c_author_id"] = params["a_id"]
    if postgres:
        connection.execute(_WRITE_ALL, params)
        return
    for statement in (_INSERT_COMMENT, INSERT_VERDICT, COUNT_AUTHOR):
        connection.execute(statement, params)


def _new_author(connection: Connection, params: dict[str, Any]) -> int:
    """Create the author's row and return its id; INSERT ... ON CONFLICT DO NOTHING, so
    that two first comments of one new author racing both find the one row."""
    created = connection.execute(_NEW_AUTHOR_ID[connection.dialect.name], params).scalar()
    if created is not None:
        return int(created)
    return int(connection.execute(_AUTHOR_ID, params).scalar_one())


_MINE = Comment.author_id == Author.id
_THE_AUTHOR = (
    Author.site_id == bindparam("site_id"),
    Author.issuer == bindparam("issuer"),
    Author.subject == bindparam("subject"),
)
_AUTHOR_ID = select(Author.id).where(*_THE_AUTHOR)
_AUTHOR_QUERY = select(
    Author.id,
    Author.trust,
    Author.banned_until,
    Author.approved_count,
    Author.spam_count,
    select(func.count())
    .where(_MINE, Comment.created_at >= bindparam("flood_since"))
    .scalar_subquery()
    .label("recent"),
    select(Comment.id)
    .where(
        _MINE,
        Comment.created_at >= bindparam("duplicate_since"),
        Comment.content_hash == bindparam("digest"),
        Comment.thread == bindparam("thread"),
        Comment.status != Status.trash,
    )
    .order_by(Comment.created_at.desc())
    .limit(1)
    .scalar_subquery()
    .label("duplicate"),
).where(*_THE_AUTHOR)


def _author_key(site: SiteInfo, identity: Identity) -> dict[str, Any]:
    return {"site_id": site.id, "issuer": identity.issuer, "subject": identity.subject}


def _find_author(
    session: Session,
    *,
    site: SiteInfo,
    identity: Identity,
    digest: str,
    thread: str,
    now: dt.datetime,
) -> _FoundAuthor | None:
    """The author with its counts, its recent comments and its duplicate: one SELECT."""
    row = (
        session.connection()
        .execute(
            _AUTHOR_QUERY,
            {
                **_author_key(site, identity),
                "flood_since": now - FLOOD_WINDOW,
                "duplicate_since": now - DUPLICATE_WINDOW,
                "digest": digest,
                "thread": thread,
            },
        )
        .one_or_none()
    )
    if row is None:
        return None
    return _FoundAuthor(
        id=int(row.id),
        trust=Trust(row.trust),
        banned_until=row.banned_until,
        approved_count=int(row.approved_count),
        spam_count=int(row.spam_count),
        recent=int(row.recent),
        duplicate=row.duplicate,
    )


def _lang(blog_lang: str | None) -> str | None:
    """The first of ``blog_lang``'s languages as a language tag (WordPress sends
    ``en_US``), or None."""
    first = (blog_lang or "").split(",")[0].strip().replace("_", "-")
    return first if first and len(first) <= _LANG_MAX and _LANG.match(first) else None


def _extras(data: AkismetComment) -> dict[str, Any]:
    """The Akismet fields that have no column, kept on the comment's ``extra``."""
    found: dict[str, Any] = {
        name: getattr(data, name)
        for name in (
            "comment_type",
            "comment_date_gmt",
            "comment_post_modified_gmt",
            "blog_lang",
            "blog_charset",
            "user_role",
            "recheck_reason",
            "honeypot_field_name",
        )
        if getattr(data, name)
    }
    if data.honeypot_field_name:
        found["honeypot_filled"] = data.honeypot_filled
    return found


def _cut(value: str | None, limit: int) -> str | None:
    return None if not value else value[:limit]


# --- reports: submit-spam and submit-ham -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reported:
    """What a report did: the label written (None for a test), the comment it is about
    (None: no stored comment matched, the text alone was labelled), and whether the
    comment's status moved."""

    label: LabelValue | None
    comment_id: uuid.UUID | None
    moved: bool


def submit_report(
    session: Session,
    *,
    site: SiteInfo,
    actor: Identity,
    data: AkismetComment,
    label: LabelValue,
) -> Reported:
    """A blog's report that a text is spam (or ham), taken as a moderator's judgement
    by ``actor`` (the key), in the caller's transaction; ``is_test`` stores nothing.

    The comment reported is the site's comment ``guid`` names, else the site's latest
    comment with the same text from the same ``user_ip``. When found, it is acted on
    as a moderator's ``spam`` (or ``ham``) action would (moved, audited, labelled);
    when it already has that status (or is in the trash) it stays, and the report is
    audited and labelled all the same. When none is found, the text and its author
    fields are labelled on their own (audited against the site). Either way the label
    has source ``moderator``, so retraining weighs it as a moderator's.
    """
    if data.is_test:
        return Reported(None, None, False)
    action = Action.spam if label is LabelValue.spam else Action.ham
    note = f"Akismet submit-{label.value}"
    comment_id = _reported_comment(session, site=site, data=data)
    if comment_id is not None:
        (result,) = act_on_comments(
            session,
            site_id=site.id,
            items=[Item(comment_id)],
            actor=actor,
            action=action,
            note=note,
        )
        if result.outcome is Outcome.ok:
            return Reported(label, comment_id, True)
        if result.outcome is Outcome.invalid_transition:
            _confirm(session, site=site, comment_id=comment_id, actor=actor, label=label, note=note)
            return Reported(label, comment_id, False)
    entry = audit.record(
        session,
        site_id=site.id,
        actor=actor,
        action=action.value,
        target_type="site",
        target_id=str(site.id),
        from_state=None,
        to_state=None,
        note=note,
        details={"label": label.value, "content_hash": content_hash(data.comment_content)},
    )
    _label(
        session,
        site=site,
        comment_id=None,
        text=_Text(
            data.comment_content,
            _cut(data.comment_author, _NAME_MAX),
            _cut(data.comment_author_email, _EMAIL_MAX),
            data.comment_author_url,
            data.permalink,
        ),
        actor=actor,
        label=label,
        audit_id=entry.id,
    )
    return Reported(label, None, False)


def _reported_comment(
    session: Session, *, site: SiteInfo, data: AkismetComment
) -> uuid.UUID | None:
    if data.guid is not None:
        found = session.scalar(
            select(Comment.id).where(Comment.id == data.guid, Comment.site_id == site.id)
        )
        if found is not None:
            return found
    # Served by the index on (site, user_ip, created_at).
    return session.scalar(
        select(Comment.id)
        .where(
            Comment.site_id == site.id,
            Comment.user_ip == data.user_ip,
            Comment.content_hash == content_hash(data.comment_content),
        )
        .order_by(Comment.created_at.desc())
        .limit(1)
    )


def _confirm(
    session: Session,
    *,
    site: SiteInfo,
    comment_id: uuid.UUID,
    actor: Identity,
    label: LabelValue,
    note: str,
) -> None:
    """Audit and label a report on a comment that keeps its status."""
    comment = session.execute(
        select(
            Comment.status,
            Comment.content,
            Comment.author_name,
            Comment.author_email,
            Comment.author_url,
            Comment.permalink,
        ).where(Comment.id == comment_id)
    ).one()
    entry = audit.record(
        session,
        site_id=site.id,
        actor=actor,
        action=(Action.spam if label is LabelValue.spam else Action.ham).value,
        target_type="comment",
        target_id=str(comment_id),
        comment_id=comment_id,
        from_state=comment.status,
        to_state=comment.status,
        note=note,
        details={"kept": True},
    )
    _label(
        session,
        site=site,
        comment_id=comment_id,
        text=_Text(
            comment.content,
            comment.author_name,
            comment.author_email,
            comment.author_url,
            comment.permalink,
        ),
        actor=actor,
        label=label,
        audit_id=entry.id,
    )


@dataclass(frozen=True, slots=True)
class _Text:
    """What a label keeps of the text it judges."""

    content: str
    author_name: str | None
    author_email: str | None
    author_url: str | None
    permalink: str | None


def _label(
    session: Session,
    *,
    site: SiteInfo,
    comment_id: uuid.UUID | None,
    text: _Text,
    actor: Identity,
    label: LabelValue,
    audit_id: int,
) -> None:
    """A moderator-grade label of ``text`` by ``actor``, recorded by audit row
    ``audit_id``."""
    session.execute(
        insert(Label).values(
            site_id=site.id,
            comment_id=comment_id,
            source=LabelSource.moderator,
            label=label,
            content=text.content,
            author_name=text.author_name,
            author_email=text.author_email,
            author_url=text.author_url,
            permalink=text.permalink,
            actor_issuer=actor.issuer,
            actor_subject=actor.subject,
            audit_id=audit_id,
        )
    )


# --- usage-limit and key-sites -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """usage-limit: checks this month. Commentguard sets no limit: ``limit`` is None
    (Akismet's ``"none"``) and nothing is ever throttled."""

    usage: int
    limit: int | None = None
    throttled: bool = False

    @property
    def percentage(self) -> str:
        return "0.00" if not self.limit else f"{100 * self.usage / self.limit:.2f}"


def usage_of(session: Session, *, site_id: int, now: dt.datetime) -> Usage:
    """The site's comments checked this calendar month (UTC), whatever API they came
    through (Akismet's "calls, spam + ham"); test checks are not stored, so not counted."""
    start, end = _month_bounds(now.year, now.month)
    count = session.scalar(
        select(func.count())
        .select_from(Comment)
        .where(Comment.site_id == site_id, Comment.created_at >= start, Comment.created_at < end)
    )
    return Usage(int(count or 0))


@dataclass(frozen=True, slots=True)
class SiteActivity:
    """One site's row of key-sites (Akismet's columns)."""

    site: str
    api_calls: int
    spam: int
    ham: int
    missed_spam: int
    false_positives: int
    is_revoked: bool


@dataclass(frozen=True, slots=True)
class KeySites:
    month: str
    sites: list[SiteActivity]
    limit: int
    offset: int
    total: int


def key_sites(
    session: Session,
    *,
    caller: Caller,
    month: str | None,
    url_filter: str | None,
    order: str | None,
    limit: str | None,
    offset: str | None,
    now: dt.datetime,
) -> KeySites:
    """key-sites for the caller's key: a key belongs to one site, so at most one row,
    with the month's (``YYYY-MM``, default this one, UTC) counts: ``api_calls`` the
    comments checked; ``spam`` and ``ham`` those whose first verdict was spam, or
    approved or held; ``missed_spam`` the month's moderator-grade spam labels (actions
    and submit-spam) on texts whose first verdict was not spam, or that were never
    checked; ``false_positives`` its ham labels on comments whose first verdict was
    spam. ``url_filter`` keeps the site when its URL contains it. ``AkismetInvalid``
    for a malformed month, order, limit or offset."""
    year, number = _month(month, now)
    chosen_order = order or ORDERS[0]
    if chosen_order not in ORDERS:
        raise AkismetInvalid(f'Invalid "order" value: one of {", ".join(ORDERS)}')
    page_limit = _count(limit, "limit", DEFAULT_SITES_LIMIT)
    page_offset = _count(offset, "offset", 0)
    key = blog_key(caller.site.url)
    name = (key[0] + key[1]) if key is not None else caller.site.url
    matching = not url_filter or url_filter.lower() in caller.site.url.lower()
    label = f"{year:04d}-{number:02d}"
    if not matching:
        return KeySites(label, [], page_limit, page_offset, 0)
    start, end = _month_bounds(year, number)
    activity = _activity(session, site_id=caller.site.id, name=name, start=start, end=end)
    rows = [activity][page_offset : page_offset + page_limit]
    return KeySites(label, rows, page_limit, page_offset, 1)


def _activity(
    session: Session, *, site_id: int, name: str, start: dt.datetime, end: dt.datetime
) -> SiteActivity:
    first = (
        select(Verdict.decision)
        .where(Verdict.comment_id == Comment.id)
        .order_by(Verdict.created_at, Verdict.id)
        .limit(1)
        .scalar_subquery()
    )
    checks = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((first == Status.spam.value, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((first.in_([Status.approved.value, Status.held.value]), 1), else_=0)),
                0,
            ),
        )
        .select_from(Comment)
        .where(Comment.site_id == site_id, Comment.created_at >= start, Comment.created_at < end)
    ).one()
    labelled = (
        select(Verdict.decision)
        .where(Verdict.comment_id == Label.comment_id)
        .order_by(Verdict.created_at, Verdict.id)
        .limit(1)
        .scalar_subquery()
    )
    was_spam = func.coalesce(labelled, "") == Status.spam.value
    reports = session.execute(
        select(
            func.coalesce(
                func.sum(case(((Label.label == LabelValue.spam) & ~was_spam, 1), else_=0)), 0
            ),
            func.coalesce(
                func.sum(case(((Label.label == LabelValue.ham) & was_spam, 1), else_=0)), 0
            ),
        ).where(
            Label.site_id == site_id,
            Label.source == LabelSource.moderator,
            Label.created_at >= start,
            Label.created_at < end,
        )
    ).one()
    return SiteActivity(
        site=name,
        api_calls=int(checks[0]),
        spam=int(checks[1]),
        ham=int(checks[2]),
        missed_spam=int(reports[0]),
        false_positives=int(reports[1]),
        is_revoked=False,
    )


def _month(value: str | None, now: dt.datetime) -> tuple[int, int]:
    if not value:
        return now.year, now.month
    found = _MONTH.match(value)
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise AkismetInvalid(f'Invalid "month" value "{value}": YYYY-MM')
    return int(found.group(1)), int(found.group(2))


def _month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(year, month)[1]
    return start, start + dt.timedelta(days=days)


def _count(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise AkismetInvalid(f'Invalid "{name}" value "{value}": a whole number')
    return int(value)
