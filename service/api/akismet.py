"""The Akismet REST API, so that Akismet clients (the WordPress plugin, the PyPI
``akismet`` client, ...) work against Commentguard by changing the host.

``POST /1.1/verify-key``, ``/1.1/comment-check``, ``/1.1/submit-spam``,
``/1.1/submit-ham``; ``usage-limit`` and ``key-sites`` under ``/1.2`` (where Akismet
serves them) and ``/1.1``, by GET or POST. Bodies are form-encoded, in the charset of the
``Content-Type`` header, else of the ``blog_charset`` field, else UTF-8.

Answers follow Akismet's conventions, which the client libraries parse: ``200`` with a
plain-text body (``valid``, ``true``, ``Thanks for making the web a better place.``,
...) or JSON/CSV for the usage endpoints; a bad key, a blog that is not the key's site
or an unusable field is ``200 invalid`` with ``X-akismet-debug-help`` saying why. Only
what is wrong with the HTTP request itself has an HTTP status (problem+json, as
everywhere): 405 another method, 415 a body that is not form-encoded, 413 a body over
``COMMENTGUARD_MAX_BODY_BYTES`` or a ``comment_content`` over
``COMMENTGUARD_MAX_CONTENT_BYTES``, 503 the database down. See docs/akismet.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import logging
import urllib.parse
import uuid

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from models import LabelValue
from service.api.context import check_text_size, services, transaction
from service.errors import UnsupportedMediaType
from service.moderation.akismet import (
    AkismetComment,
    AkismetInvalid,
    Caller,
    Check,
    KeySites,
    authenticate,
    check_comment,
    key_sites,
    note_key_use,
    submit_report,
    usage_of,
)

log = logging.getLogger(__name__)

bp = Blueprint("akismet", __name__)

FORM = "application/x-www-form-urlencoded"
SUBMITTED = "Thanks for making the web a better place."
#: More fields than this in one body is refused (the WordPress plugin sends every POST_
#: and HTTP_ variable of the comment's request too: a few dozen).
MAX_FIELDS = 1000
_TRUE = frozenset({"1", "true", "yes", "on"})
_IP_MAX = 45
_DEBUG_HELP_MAX = 300


@bp.errorhandler(AkismetInvalid)
def _invalid(exc: AkismetInvalid) -> Response:
    response = _text("invalid")
    response.headers["X-akismet-debug-help"] = _header_value(exc.debug_help)
    if request.endpoint == "akismet.comment_check":
        # Akismet sends a guid with every check; this one names nothing stored.
        response.headers["X-akismet-guid"] = str(uuid.uuid4())
    return response


@bp.post("/1.1/verify-key")
def verify_key() -> Response:
    """``valid`` when ``api_key`` (or ``key``) is a site's API key and ``blog`` is that
    site's URL; else ``invalid`` with the reason in ``X-akismet-debug-help``."""
    form = form_fields()
    with transaction() as session:
        authenticate(
            session,
            key=form.get("api_key") or form.get("key"),
            blog=form.get("blog", ""),
            sites=services().sites,
            now=dt.datetime.now(dt.UTC),
        )
    return _text("valid")


@bp.post("/1.1/comment-check")
def comment_check() -> Response:
    """``true`` (spam) or ``false``, decided now; ``X-akismet-guid`` names the stored
    comment, ``X-akismet-pro-tip: discard`` marks spam past the discard threshold."""
    form = form_fields()
    data = comment_fields(form)
    now = dt.datetime.now(dt.UTC)
    # One statement writes the check (the author's first comment, its verdict and the
    # author's count: all or nothing), so on PostgreSQL it runs without BEGIN and COMMIT,
    # two round trips fewer. The key's last use, written after it (at most once a
    # minute), is a fact of its own that nothing would need undone.
    with transaction(single_write=True) as session:
        caller = _caller(session, form, now=now, record_use=False)
        check = check_comment(
            session, site=caller.site, data=data, classifier=services().classifier, now=now
        )
        if not data.is_test:
            note_key_use(session, caller, now=now)
    _log_check(check, caller.site.slug)
    response = _text("true" if check.spam else "false")
    response.headers["X-akismet-guid"] = str(check.guid)
    if check.spam and check.discard:
        response.headers["X-akismet-pro-tip"] = "discard"
    response.headers["X-Commentguard-Status"] = check.status.value
    return response


@bp.post("/1.1/submit-spam")
def submit_spam() -> Response:
    """A moderator-grade spam label (see ``submit_report``)."""
    return _report(LabelValue.spam)


@bp.post("/1.1/submit-ham")
def submit_ham() -> Response:
    """A moderator-grade ham label (see ``submit_report``)."""
    return _report(LabelValue.ham)


@bp.route("/1.2/usage-limit", methods=["GET", "POST"])
@bp.route("/1.1/usage-limit", methods=["GET", "POST"])
def usage_limit() -> Response:
    """This month's checks for the key's site; Commentguard sets no limit."""
    params = request_params()
    now = dt.datetime.now(dt.UTC)
    with transaction() as session:
        caller = authenticate(
            session, key=params.get("api_key"), blog=None, sites=services().sites, now=now
        )
        found = usage_of(session, site_id=caller.site.id, now=now)
    body = {
        "limit": "none" if found.limit is None else found.limit,
        "usage": found.usage,
        "percentage": found.percentage,
        "throttled": found.throttled,
    }
    return Response(json.dumps(body), status=200, mimetype="application/json")


@bp.route("/1.2/key-sites", methods=["GET", "POST"])
@bp.route("/1.1/key-sites", methods=["GET", "POST"])
def key_sites_view() -> Response:
    """The month's activity of the sites using the key (its one site), in JSON or CSV."""
    params = request_params()
    result_format = params.get("format") or "json"
    if result_format not in ("json", "csv"):
        raise AkismetInvalid('Invalid "format" value: json or csv')
    now = dt.datetime.now(dt.UTC)
    with transaction() as session:
        caller = authenticate(
            session, key=params.get("api_key"), blog=None, sites=services().sites, now=now
        )
        found = key_sites(
            session,
            caller=caller,
            month=params.get("month"),
            url_filter=params.get("filter"),
            order=params.get("order"),
            limit=params.get("limit"),
            offset=params.get("offset"),
            now=now,
        )
    if result_format == "csv":
        return Response(
            key_sites_csv(found, key_name=f"cg_{caller.key.subject}"),
            status=200,
            mimetype="text/csv",
        )
    return Response(json.dumps(key_sites_json(found)), status=200, mimetype="application/json")


# --- parsing -----------------------------------------------------------------------------


def form_fields() -> dict[str, str]:
    """The request's form-encoded body as fields (the first of a repeated name): 415
    for another content type, 413 past the body limit, ``AkismetInvalid`` for an unknown
    charset, bytes that are not in it, or too many fields."""
    if request.mimetype != FORM:
        raise UnsupportedMediaType(
            f"send {FORM}, not {request.mimetype or 'a body without a Content-Type'}"
        )
    return decode_form(request.get_data(cache=True), charset=request.mimetype_params.get("charset"))


def request_params() -> dict[str, str]:
    """For the endpoints Akismet serves by GET or POST: the query's parameters, and on
    POST the form's, which win."""
    params = {name: value.replace("\x00", "") for name, value in request.args.items()}
    if request.method == "POST":
        params.update(form_fields())
    return params


def decode_form(raw: bytes, *, charset: str | None) -> dict[str, str]:
    """``raw`` (``application/x-www-form-urlencoded``) decoded in ``charset``, else in
    the charset its ``blog_charset`` field names, else UTF-8. NUL characters are
    removed (no database stores them; a comment is still checked). ``AkismetInvalid``
    for an unknown charset, bytes that are not in it, text no database can store, or
    more than :data:`MAX_FIELDS` fields."""
    # latin-1 maps each byte to one character and back: the percent-decoding below then
    # yields the original bytes, which are decoded once the charset is known.
    try:
        pairs = urllib.parse.parse_qsl(
            raw.decode("latin-1"),
            keep_blank_values=True,
            encoding="latin-1",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise AkismetInvalid(f"More than {MAX_FIELDS} fields") from None
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
    if not charset:
        named = next((value for name, value in encoded if name == b"blog_charset"), b"")
        charset = named.decode("ascii", "replace").strip() or "utf-8"
    fields: dict[str, str] = {}
    for name_bytes, value_bytes in encoded:
        try:
            name, value = name_bytes.decode(charset), value_bytes.decode(charset)
            value.encode("utf-8")
        except LookupError:
            raise AkismetInvalid(f'Unknown charset "{charset}"') from None
        except UnicodeDecodeError:
            raise AkismetInvalid(f'The request is not valid "{charset}" text') from None
        except UnicodeEncodeError:
            raise AkismetInvalid(f'The "{name}" value is not valid Unicode') from None
        fields.setdefault(name, value.replace("\x00", ""))
    return fields


def comment_fields(form: dict[str, str]) -> AkismetComment:
    """The comment a comment-check, submit-spam or submit-ham describes: ``user_ip``
    required and an IP address (else ``AkismetInvalid``), ``comment_content`` at most
    ``COMMENTGUARD_MAX_CONTENT_BYTES`` (else 413), the other fields optional, empty
    ones None."""
    check_text_size(form, "comment_content", services().settings.max_content_bytes)
    user_ip = form.get("user_ip", "").strip()
    if not user_ip:
        raise AkismetInvalid('Empty "user_ip" value')
    try:
        user_ip = str(ipaddress.ip_address(user_ip))
    except ValueError:
        user_ip = ""
    if not user_ip or len(user_ip) > _IP_MAX:
        raise AkismetInvalid('Invalid "user_ip" value: an IPv4 or IPv6 address')
    honeypot = _optional(form, "honeypot_field_name")
    return AkismetComment(
        user_ip=user_ip,
        comment_content=form.get("comment_content", ""),
        user_agent=_optional(form, "user_agent"),
        referrer=_optional(form, "referrer"),
        permalink=_optional(form, "permalink"),
        comment_type=_optional(form, "comment_type"),
        comment_author=_optional(form, "comment_author"),
        comment_author_email=_optional(form, "comment_author_email"),
        comment_author_url=_optional(form, "comment_author_url"),
        comment_date_gmt=_optional(form, "comment_date_gmt"),
        comment_post_modified_gmt=_optional(form, "comment_post_modified_gmt"),
        blog_lang=_optional(form, "blog_lang"),
        blog_charset=_optional(form, "blog_charset"),
        user_role=_optional(form, "user_role"),
        is_test=form.get("is_test", "").strip().lower() in _TRUE,
        recheck_reason=_optional(form, "recheck_reason"),
        honeypot_field_name=honeypot,
        honeypot_value=form.get(honeypot) if honeypot else None,
        guid=_uuid(form.get("guid")),
    )


def _optional(form: dict[str, str], name: str) -> str | None:
    value = form.get(name)
    return value if value is not None and value.strip() else None


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


# --- answers -----------------------------------------------------------------------------


def key_sites_json(found: KeySites) -> dict[str, object]:
    """key-sites as Akismet's JSON: counts as strings, ``is_revoked`` a boolean."""
    return {
        found.month: [
            {
                "site": row.site,
                "api_calls": str(row.api_calls),
                "spam": str(row.spam),
                "ham": str(row.ham),
                "missed_spam": str(row.missed_spam),
                "false_positives": str(row.false_positives),
                "is_revoked": row.is_revoked,
            }
            for row in found.sites
        ],
        "limit": found.limit,
        "offset": found.offset,
        "total": found.total,
    }


def key_sites_csv(found: KeySites, *, key_name: str) -> str:
    """key-sites as Akismet's CSV: a title line, a header, one line per site."""
    out = io.StringIO()
    out.write(
        f"Active sites for {key_name} during {found.month} "
        f"(limit:{found.limit}, offset: {found.offset}, total: {found.total})\n"
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["Site", "Total API Calls", "Spam", "Ham", "Missed Spam", "False Positives", "Is Revoked"]
    )
    for row in found.sites:
        writer.writerow(
            [
                row.site,
                row.api_calls,
                row.spam,
                row.ham,
                row.missed_spam,
                row.false_positives,
                "true" if row.is_revoked else "false",
            ]
        )
    return out.getvalue()


def _report(label: LabelValue) -> Response:
    form = form_fields()
    data = comment_fields(form)
    with transaction() as session:
        caller = _caller(session, form, now=dt.datetime.now(dt.UTC), record_use=not data.is_test)
        reported = submit_report(
            session, site=caller.site, actor=caller.key, data=data, label=label
        )
    if reported.label is not None:
        log.info(
            "akismet submit-%s site=%s comment=%s moved=%s",
            label.value,
            caller.site.slug,
            reported.comment_id,
            reported.moved,
        )
    return _text(SUBMITTED)


def _caller(
    session: Session, form: dict[str, str], *, now: dt.datetime, record_use: bool
) -> Caller:
    """The caller of a comment-check or report: its ``api_key`` for its ``blog``."""
    return authenticate(
        session,
        key=form.get("api_key"),
        blog=form.get("blog", ""),
        sites=services().sites,
        now=now,
        record_use=record_use,
    )


def _log_check(check: Check, site: str) -> None:
    log.info(
        "akismet check site=%s comment=%s status=%s stored=%s replayed=%s",
        site,
        check.guid,
        check.status.value,
        check.stored,
        check.replayed,
    )


def _text(body: str) -> Response:
    return Response(body, status=200, mimetype="text/plain")


def _header_value(text: str) -> str:
    """``text`` as a header can carry it: printable ASCII, cut to a sane length (it may
    quote what the caller sent)."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned[:_DEBUG_HELP_MAX]
