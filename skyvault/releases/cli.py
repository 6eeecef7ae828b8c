"""``skyvault release declare|list|export``: the release operations on the command line.

A ``ReleaseError`` becomes click's usage error here, at the edge; the functions it calls
raise it as a plain exception (the web pages use them too).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from skyvault.db import database
from skyvault.releases.declare import declare_release
from skyvault.releases.export import export_release
from skyvault.releases.hats_writer import DEFAULT_PARTITION_ROWS
from skyvault.releases.model import ReleaseError, list_releases, parse_instant, releases_root


def _reported(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReleaseError as error:
            raise click.ClickException(str(error)) from error
    return run


@click.group("release")
def release_cli() -> None:
    """Public data releases: declare them, list them, export them for bulk download."""


@release_cli.command("declare")
@click.argument("name")
@click.option("--date", "release_date", required=True, help="When it becomes public.")
@click.option("--cutoff", required=True, help="Observations before this are in the release.")
@click.option("--programs", help="Programs it releases, e.g. 1,2 (default: the programs whose "
              "rule is 'data_release', or the release's current ones).")
@click.option("--notes")
@_reported
def declare(name: str, release_date: str, cutoff: str, programs: str | None,
            notes: str | None) -> None:
    """Declare (or change) a data release: from its date, the rows it covers are public."""
    wanted = None
    if programs:
        try:
            wanted = [int(p) for p in programs.replace(" ", "").split(",") if p]
        except ValueError as error:
            raise click.BadParameter("expected comma-separated program ids") from error
    with database().admin() as connection:
        release = declare_release(connection, name, parse_instant(release_date),
                                  parse_instant(cutoff), wanted, notes)
    click.echo(f"{release.name}: public from {release.release_date:%Y-%m-%d %H:%M %Z}, "
               f"observations before {release.observation_cutoff:%Y-%m-%d %H:%M %Z}, "
               f"programs {list(release.programids)}, with the reference co-adds archived "
               f"before {release.declared_at:%Y-%m-%d %H:%M %Z}")


@release_cli.command("list")
def list_command() -> None:
    """Releases, their dates and whether they are public and exported."""
    with database().reading() as connection:
        releases = list_releases(connection)
    root = releases_root()
    for release in releases:
        state = "public" if release.is_public else "scheduled"
        exported = "exported" if (root / release.name / "manifest.json").exists() else ""
        click.echo(f"{release.name}\t{release.release_date:%Y-%m-%d}\t"
                   f"cutoff {release.observation_cutoff:%Y-%m-%d}\t"
                   f"programs {list(release.programids)}\t{state}\t{exported}".rstrip())


@release_cli.command("export")
@click.argument("name")
@click.option("--out", "root", type=click.Path(path_type=Path),
              help="Folder of the exports (default: $SKYVAULT_HOME/releases).")
@click.option("--base-url", help="Public URL of the service, for the manifests' links.")
@click.option("--partition-rows", type=click.IntRange(min=1000),
              default=DEFAULT_PARTITION_ROWS, show_default=True,
              help="Most rows in one HATS partition.")
@_reported
def export(name: str, root: Path | None, base_url: str | None, partition_rows: int) -> None:
    """Write the release's manifests, download scripts and HATS catalogs (idempotent)."""
    summary = export_release(database(), name, root, base_url, partition_rows)
    click.echo(f"{name}: {summary.files} files ({summary.file_bytes} bytes) in the manifest")
    for table, rows in summary.catalog_rows.items():
        click.echo(f"  {table}: {rows} rows as HATS")
    click.echo(f"written to {summary.directory}")
