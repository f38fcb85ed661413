"""The ``commentguard`` command: one click group per area of the service."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="commentguard")
def main() -> None:
    """Commentguard: self-hosted comment moderation."""


@main.group()
def classifier() -> None:
    """Train, evaluate and try the spam classifier."""
