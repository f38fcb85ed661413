"""The ``commentguard`` command: one click group per area of the service."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.cli_operators import register as register_operator_commands
from service.settings import Settings, SettingsError

MIGRATIONS_INI = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"


def load_settings() -> Settings:
    """Settings from the environment, or a clear message and exit status 2."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise click.UsageError(f"configuration: {exc}") from None


@contextmanager
def _transaction(settings: Settings) -> Iterator[Session]:
    """One transaction for one command; domain errors become clean CLI errors."""
    from service.cli_operators import cli_transaction, sessions_for

    with sessions_for(settings) as sessions, cli_transaction(sessions) as session:
        yield session


@click.group()
@click.version_option(package_name="commentguard")
def main() -> None:
    """Commentguard: self-hosted comment moderation."""


@main.group()
def classifier() -> None:
    """Train, evaluate and try the spam classifier; import labels, retrain, promote and
    roll back versions (the operators' commands are in ``service/cli_operators.py``)."""


register_operator_commands(classifier)


def _load_classifier_or_fail(model: Path | None) -> Any:
    from service.classifier.artifacts import ArtifactError
    from service.classifier.model import BUNDLED_PATH, load_classifier

    path = model or BUNDLED_PATH
    try:
        return load_classifier(path)
    except ArtifactError as exc:
        raise click.ClickException(str(exc)) from None


def _read_data(paths: tuple[Path, ...]) -> Any:
    from service.classifier.datasets import DatasetError, read_datasets

    try:
        return read_datasets(paths)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None


@classifier.command("train")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A data set file or a directory of them (repeatable).",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Train on the corpora of this manifest (data/manifest.json), as make classifier does.",
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="CORPUS=DIR",
    help="Where a corpus of the manifest lies, if not where the manifest says (repeatable).",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--holdout",
    default=0.2,
    show_default=True,
    type=float,
    help="With --data: the share held out for metrics.",
)
def classifier_train(
    data: tuple[Path, ...],
    manifest: Path | None,
    roots: tuple[str, ...],
    out: Path,
    seed: int,
    holdout: float,
) -> None:
    """Train a classifier and save it. With --data: print its metrics on a held-out
    split, then train on all the data. With --manifest: train on every corpus of the
    manifest (checked by sha256), thresholds from leave-one-source-out scores, and print
    those scores' figures per source."""
    from service.classifier.model import save_classifier

    if bool(data) == (manifest is not None):
        raise click.UsageError("give either --data or --manifest")

    def progress(message: str) -> None:
        click.echo(f"  .. {message}", err=True)

    final = (
        _train_on_manifest(manifest, roots, seed, progress)
        if manifest is not None
        else _train_on_data(data, seed, holdout, progress)
    )
    click.echo(f"thresholds: {final.thresholds.to_dict()}")
    metadata = save_classifier(final, out)
    click.echo(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB, version {metadata.version})")


def _train_on_data(
    data: tuple[Path, ...], seed: int, holdout: float, progress: Callable[[str], None]
) -> Any:
    from service.classifier.evaluation import compute_metrics
    from service.classifier.model import train

    dataset = _read_data(data)
    click.echo(f"data: {len(dataset)} comments, {dataset.spam_count} spam ({dataset.source})")
    if 0.0 < holdout < 1.0:
        import random

        order = list(range(len(dataset)))
        random.Random(seed).shuffle(order)
        cut = int(len(order) * (1.0 - holdout))
        fit, held = order[:cut], order[cut:]
        click.echo(f"holdout: training on {len(fit)}, measuring on {len(held)}")
        model = train(
            [dataset.records[i] for i in fit],
            [dataset.labels[i] for i in fit],
            seed=seed,
            progress=progress,
        )
        scores = model.probabilities([dataset.records[i] for i in held])
        metrics = compute_metrics([dataset.labels[i] for i in held], scores, model.thresholds.spam)
        _echo_metrics(metrics.to_dict())
    click.echo(f"final: training on all {len(dataset)} comments")
    return train(dataset.records, dataset.labels, seed=seed, progress=progress)


def _train_on_manifest(
    manifest: Path, roots: tuple[str, ...], seed: int, progress: Callable[[str], None]
) -> Any:
    from service.classifier.corpora import (
        CorpusError,
        load_corpora,
        read_manifest,
        train_on,
        training_set,
    )

    where = _corpus_roots(roots)
    try:
        corpora = read_manifest(manifest, roots=where)
        loaded = load_corpora(manifest, roots=where)
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from None
    data = training_set(loaded, corpora)
    for corpus, named in loaded.items():
        for name, dataset in named.items():
            click.echo(
                f"data: {corpus}/{name}: {len(dataset)} ({dataset.spam_count} spam, "
                f"{dataset.ham_count} ham)"
            )
    final = train_on(data, seed=seed, progress=progress)
    metrics = final.metadata["metrics"]
    click.echo(
        "leave-one-source-out scores of the threshold corpora, at the spam threshold: "
        + ", ".join(
            f"{key[3:]} {metrics[key]:.4f}"
            for key in ("cv_precision", "cv_recall", "cv_f1", "cv_fpr", "cv_roc_auc")
            if key in metrics
        )
    )
    return final


def _corpus_roots(roots: tuple[str, ...]) -> dict[str, Path]:
    """``--root CORPUS=DIR`` options as a mapping; a malformed one is a usage error."""
    where: dict[str, Path] = {}
    for given in roots:
        name, equals, directory = given.partition("=")
        if not equals or not name or not directory:
            raise click.UsageError(f"--root {given!r}: expected CORPUS=DIR")
        where[name] = Path(directory)
    return where


@classifier.command("fetch-corpora")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data/manifest.json"),
    show_default=True,
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="CORPUS=DIR",
    help="Where to put a corpus, if not where the manifest says (repeatable).",
)
@click.option("--only", multiple=True, metavar="CORPUS", help="Only this corpus (repeatable).")
@click.option(
    "--archive-url",
    default=None,
    metavar="TEMPLATE",
    help="Where a repository's archive at a commit is, with {repository} and {commit} "
    "(default: GitHub's codeload tarball).",
)
def classifier_fetch_corpora(
    manifest: Path, roots: tuple[str, ...], only: tuple[str, ...], archive_url: str | None
) -> None:
    """Download the corpora of the manifest that are missing or differ from it, from the
    repositories and commits it names, check every file's sha256 and put them in place
    (what make classifier and make bench-quality read). Exits 1 unless every corpus is
    in place."""
    from service.classifier.corpora import CorpusError
    from service.classifier.download import ARCHIVE_URL, fetch_corpora

    try:
        results = fetch_corpora(
            manifest,
            roots=_corpus_roots(roots),
            only=only or None,
            archive_url=archive_url or ARCHIVE_URL,
            progress=lambda message: click.echo(f"  .. {message}", err=True),
        )
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from None
    for result in results:
        files = f"{result.files} file{'' if result.files == 1 else 's'}"
        click.echo(
            f"{result.corpus}: {result.status}, {files} under {result.root} ({result.detail})"
        )
    if any(result.status == "not fetchable" for result in results):
        raise click.ClickException("some corpora are not in place (above)")


def _echo_metrics(values: dict[str, Any]) -> None:
    for key in (
        "n",
        "spam",
        "threshold",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "roc_auc",
        "pr_auc",
        "fpr",
        "tp",
        "fp",
        "tn",
        "fn",
    ):
        value = values.get(key)
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        click.echo(f"  {key:<10} {shown}")


@classifier.command("evaluate")
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A data set file or a directory of them (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write an evaluation report (index.html, report.json, PNG plots) here.",
)
def classifier_evaluate(
    model: Path | None, data: tuple[Path, ...], as_json: bool, report_dir: Path | None
) -> None:
    """Measure a classifier (the bundled one by default) on labelled data, at its spam
    threshold."""
    from service.classifier.evaluation import compute_metrics

    loaded = _load_classifier_or_fail(model)
    dataset = _read_data(data)
    scores = loaded.probabilities(dataset.records)
    metrics = compute_metrics(dataset.labels, scores, loaded.thresholds.spam).to_dict()
    if as_json:
        keys = ("n", "spam", "precision", "recall", "f1", "accuracy", "roc_auc", "pr_auc", "fpr")
        click.echo(json.dumps({key: metrics[key] for key in keys}))
    else:
        _echo_metrics(metrics)
    if report_dir is not None:
        _write_evaluation_report(report_dir, loaded, dataset, scores)


def _write_evaluation_report(out: Path, loaded: Any, dataset: Any, scores: list[float]) -> None:
    from service.classifier.report import write_report

    meta = loaded.metadata
    try:
        files = write_report(
            out,
            title=f"Classifier {meta['version']} on {dataset.source}",
            labels=dataset.labels,
            scores=scores,
            thresholds=loaded.thresholds,
            name=str(meta["version"]),
            extra_metrics=meta.get("metrics"),
            meta={
                "version": meta["version"],
                "created": meta.get("created_at"),
                "training": {
                    "size": meta.get("training_size"),
                    "fingerprint": meta.get("training_fingerprint"),
                },
                "evaluated on": {
                    "source": dataset.source,
                    "format": dataset.format,
                    "fingerprint": dataset.fingerprint,
                },
            },
        )
    except ValueError as exc:
        raise click.ClickException(f"report: {exc}") from None
    # On stderr, so that --json output stays one JSON object.
    click.echo(f"report written to {files.html}", err=True)


@classifier.command("score")
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("text")
def classifier_score(model: Path | None, text: str) -> None:
    """Score one comment: its spam probability, verdict and reasons."""
    from service.classifier.types import CommentRecord

    loaded = _load_classifier_or_fail(model)
    score = loaded.score(CommentRecord(content=text))
    t = loaded.thresholds
    verdict = (
        "discard"
        if score.probability >= t.discard
        else "spam"
        if score.probability >= t.spam
        else "hold"
        if score.probability >= t.hold
        else "approve"
    )
    click.echo(f"probability {score.probability:.4f} ({verdict})")
    for reason in score.reasons:
        click.echo(f"  {reason.weight:+.3f}  {reason.phrase}")


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Run the Alembic migrations up to REVISION."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(MIGRATIONS_INI))
    config.attributes["settings"] = load_settings()
    command.upgrade(config, revision)


@main.group()
def site() -> None:
    """Sites: the blogs that send comments."""


@site.command("create")
@click.option("--slug", required=True, help="Short name used in API calls, e.g. 'demo'.")
@click.option("--name", required=True)
@click.option("--url", required=True, help="The blog's address.")
@click.option("--issuer", "issuers", multiple=True, help="A token issuer to trust (repeatable).")
@click.option("--audience", "audiences", multiple=True, help="An accepted 'aud' (repeatable).")
@click.option(
    "--introspection-endpoint",
    default=None,
    help="RFC 7662 endpoint where the site's opaque tokens are checked.",
)
@click.option("--introspection-client-id", default=None, help="This service's client id there.")
@click.option(
    "--introspection-client-secret",
    default=None,
    help="Its client secret (prompted for, hidden, when an endpoint is given without it).",
)
def site_create(
    slug: str,
    name: str,
    url: str,
    issuers: tuple[str, ...],
    audiences: tuple[str, ...],
    introspection_endpoint: str | None,
    introspection_client_id: str | None,
    introspection_client_secret: str | None,
) -> None:
    """Create a site."""
    from service.moderation.sites import IntrospectionClient, create_site

    introspection = None
    if introspection_endpoint is not None:
        if not introspection_client_id:
            raise click.UsageError("--introspection-endpoint needs --introspection-client-id")
        if introspection_client_secret is None:
            introspection_client_secret = click.prompt(
                "introspection client secret", hide_input=True
            )
        introspection = IntrospectionClient(
            introspection_endpoint, introspection_client_id, introspection_client_secret
        )
    elif introspection_client_id or introspection_client_secret:
        raise click.UsageError("the introspection client needs --introspection-endpoint")
    with _transaction(load_settings()) as session:
        created = create_site(
            session,
            slug=slug,
            name=name,
            url=url,
            issuers=issuers,
            audiences=audiences,
            introspection=introspection,
        )
        click.echo(f"created site {created.slug} ({created.name}, {created.url})")


@site.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def site_list(as_json: bool) -> None:
    """List the sites."""
    from service.moderation.sites import list_sites

    with _transaction(load_settings()) as session:
        rows: list[dict[str, Any]] = [
            {
                "slug": s.slug,
                "name": s.name,
                "url": s.url,
                "issuers": s.trusted_issuers,
                "audiences": s.audiences,
                "policy": s.policy,
                "ui_client": (
                    {"issuer": s.ui_issuer, "client_id": s.ui_client_id}
                    if s.ui_issuer and s.ui_client_id
                    else None
                ),
            }
            for s in list_sites(session)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        issuers = ", ".join(row["issuers"]) or "-"
        click.echo(f"{row['slug']:<20} {row['name']:<30} {row['url']}  issuers: {issuers}")


@site.command("ui-client")
@click.argument("slug")
@click.option("--issuer", help="The OpenID Connect issuer the site's moderators log in at.")
@click.option("--client-id", help="The UI's client id registered there.")
@click.option(
    "--client-secret",
    default=None,
    help="Its client secret (prompted for, hidden, unless given or --public).",
)
@click.option("--public", is_flag=True, help="A public client: PKCE only, no secret.")
@click.option("--remove", is_flag=True, help="Remove the site's UI client (no UI login).")
def site_ui_client(
    slug: str,
    issuer: str | None,
    client_id: str | None,
    client_secret: str | None,
    public: bool,
    remove: bool,
) -> None:
    """Set how the moderators of site SLUG log in to the web UI (/ui): an OpenID Connect
    client (authorization code + PKCE) whose redirect URI is <public URL>/ui/callback."""
    from service.moderation.sites import UiClient, set_ui_client

    client = None
    if remove:
        if issuer or client_id or client_secret or public:
            raise click.UsageError("--remove takes no other option")
    else:
        if not issuer or not client_id:
            raise click.UsageError("give --issuer and --client-id (or --remove)")
        if public and client_secret is not None:
            raise click.UsageError("a --public client has no --client-secret")
        if not public and client_secret is None:
            client_secret = click.prompt("UI client secret", hide_input=True)
        client = UiClient(issuer, client_id, None if public else client_secret)
    with _transaction(load_settings()) as session:
        set_ui_client(session, slug=slug, client=client)
    if client is None:
        click.echo(f"removed the UI client of site {slug}")
    else:
        kind = "public" if client.client_secret is None else "confidential"
        click.echo(
            f"site {slug}: the UI logs in at {client.issuer} as {kind} client {client.client_id}"
        )


@site.command("policy")
@click.argument("slug")
@click.option("--hold", type=float, help="Hold threshold (spam probability).")
@click.option("--spam", type=float, help="Spam threshold.")
@click.option("--discard", type=float, help="Discard threshold.")
@click.option("--max-links", type=int, help="More links than this holds a comment.")
@click.option("--flood-limit", type=int, help="Comments per author per minute; 0 = off.")
@click.option("--blocked-word", "blocked", multiple=True, help="Replaces the blocked words.")
@click.option(
    "--moderation-word", "moderation", multiple=True, help="Replaces the moderation words."
)
@click.option(
    "--moderation-pattern",
    "patterns",
    multiple=True,
    help="Replaces the moderation patterns (regular expressions; unsafe ones are refused).",
)
@click.option(
    "--approve-known-authors/--no-approve-known-authors",
    "approve_known",
    default=None,
    help="Approve authors with an approved comment unless rules say otherwise.",
)
@click.option("--note", help="Why (kept in the audit trail).")
def site_policy(
    slug: str,
    hold: float | None,
    spam: float | None,
    discard: float | None,
    max_links: int | None,
    flood_limit: int | None,
    blocked: tuple[str, ...],
    moderation: tuple[str, ...],
    patterns: tuple[str, ...],
    approve_known: bool | None,
    note: str | None,
) -> None:
    """Show a site's policy, or change the parts given (audited, as the API's rules
    endpoints, with the actor ``cli`` and the OS user; API processes see the change within
    their site cache's 5 s)."""
    import getpass

    from service.moderation.rules import change_rules, read_rules
    from service.moderation.sites import get_site
    from service.moderation.types import Identity

    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "hold_threshold": hold,
            "spam_threshold": spam,
            "discard_threshold": discard,
            "max_links": max_links,
            "flood_limit_per_minute": flood_limit,
            "approve_known_authors": approve_known,
        }.items()
        if value is not None
    }
    if blocked:
        changes["blocked_words"] = list(blocked)
    if moderation:
        changes["moderation_words"] = list(moderation)
    if patterns:
        changes["moderation_patterns"] = list(patterns)
    actor = Identity(issuer="cli", subject=getpass.getuser())
    with _transaction(load_settings()) as session:
        site_id = get_site(session, slug=slug).id
        if changes:
            rules = change_rules(
                session,
                site_id=site_id,
                changes=changes,
                replace=False,
                actor=actor,
                expected_etags=None,
                note=note,
            )
        else:
            rules = read_rules(session, site_id=site_id)
    click.echo(json.dumps(rules.policy.model_dump(mode="json"), indent=2))


@site.command("webhooks")
@click.argument("slug")
@click.option(
    "--allow-private-targets/--no-allow-private-targets",
    "allow_private",
    default=None,
    help="Let the site's webhooks use http and loopback, private, link-local and other "
    "non-public addresses (development, or a receiver on this network). Off by default.",
)
def site_webhooks(slug: str, allow_private: bool | None) -> None:
    """Show site SLUG's webhooks and whether they may point at private targets, or
    change that (an operator's decision, so the API cannot: it lets the service's
    requests reach its own network)."""
    from service.moderation.sites import get_site
    from service.moderation.webhooks import (
        allow_private_targets,
        allows_private_targets,
        list_webhooks,
    )

    with _transaction(load_settings()) as session:
        site_id = get_site(session, slug=slug).id
        if allow_private is not None:
            allow_private_targets(session, site_id=site_id, allow=allow_private)
        allowed = allows_private_targets(session, site_id=site_id)
        hooks = list_webhooks(session, site_id=site_id)
        lines = [
            f"{h.id}  {'enabled ' if h.enabled else 'disabled'}  {','.join(h.events)}  {h.url}"
            for h in hooks
        ]
    click.echo(f"site {slug}: private targets {'allowed' if allowed else 'refused'}")
    for line in lines:
        click.echo(line)


@site.group("key")
def site_key() -> None:
    """API keys: a site's credentials for server-to-server calls."""


@site_key.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="What the key is for, e.g. 'WordPress backend'.")
def site_key_create(slug: str, name: str) -> None:
    """Make an API key for site SLUG and print it. It is shown this once: only a hash of
    it is kept."""
    from service.auth.api_keys import create_api_key

    with _transaction(load_settings()) as session:
        info, key = create_api_key(session, site_slug=slug, name=name)
    click.echo(f"created key {info.prefix} ({info.name}) for site {slug}; it is shown only now:")
    click.echo(key)


@site_key.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def site_key_list(slug: str, as_json: bool) -> None:
    """List the API keys of site SLUG (never the keys themselves)."""
    from service.auth.api_keys import list_api_keys

    with _transaction(load_settings()) as session:
        keys = list_api_keys(session, site_slug=slug)
    rows = [
        {
            "prefix": k.prefix,
            "name": k.name,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in keys
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        click.echo(
            f"{row['prefix']}  {row['name']:<30} created {row['created_at']}  "
            f"last used {row['last_used_at'] or 'never'}  {state}"
        )


@site_key.command("revoke")
@click.argument("slug")
@click.argument("prefix")
def site_key_revoke(slug: str, prefix: str) -> None:
    """Revoke the API key PREFIX of site SLUG: it is refused from then on."""
    import datetime as dt

    from service.auth.api_keys import revoke_api_key

    with _transaction(load_settings()) as session:
        info = revoke_api_key(session, site_slug=slug, prefix=prefix, now=dt.datetime.now(dt.UTC))
    click.echo(f"revoked key {info.prefix} ({info.name}) of site {slug}")


@main.group()
def dev() -> None:
    """Development helpers; each refuses to run unless COMMENTGUARD_DEV_ISSUER is on."""


def _dev_settings() -> Settings:
    # Checked in each command rather than in the group callback, which click runs
    # before a subcommand's --help and would make the help need a configuration.
    settings = load_settings()
    if not settings.dev_issuer:
        raise click.UsageError(
            "the dev commands need the development issuer: set COMMENTGUARD_DEV_ISSUER=true "
            "(never in production)"
        )
    return settings


@dev.command("token")
@click.option("--sub", "subject", required=True, help="The token's subject (the user id).")
@click.option("--site", required=True, help="Slug of the site the token is for (its aud).")
@click.option("--name", default=None, help="The user's display name.")
@click.option("--email", default=None, help="The user's email address.")
@click.option(
    "--ttl",
    "ttl_seconds",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Lifetime in seconds (at most a day).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="A role at --site (moderator, operator, admin) or a full claim value (repeatable).",
)
def dev_token(
    subject: str,
    site: str,
    name: str | None,
    email: str | None,
    ttl_seconds: int,
    roles: tuple[str, ...],
) -> None:
    """Print an access token from the development issuer, for `Authorization: Bearer`."""
    from service.auth.dev_issuer import mint_dev_token

    settings = _dev_settings()
    try:
        token = mint_dev_token(
            settings,
            subject=subject,
            site=site,
            name=name,
            email=email,
            ttl_seconds=ttl_seconds,
            roles=roles,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"the development key could not be used: {exc}") from None
    click.echo(token)


@main.command("openapi")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the document here instead of printing it.",
)
def openapi_document(out: Path | None) -> None:
    """Print the OpenAPI document of the HTTP API (what GET /openapi.json serves).

    Needs no configuration and connects to nothing."""
    from service.api.openapi import offline_document

    text = json.dumps(offline_document(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
