"""The `skyvault` command. Each part of the system adds its own group here."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from skyvault.cluster import ClusterError
from skyvault.config import settings
from skyvault.db import database_urls, embedded_cluster


@click.group()
@click.version_option(package_name="skyvault")
def cli() -> None:
    """SkyVault: archive and IVOA services for a time-domain sky survey."""


@cli.group("db")
def db_cli() -> None:
    """The archive database: the embedded cluster and its schema."""


def _require_embedded() -> None:
    if settings().database_url:
        raise click.ClickException(
            "SKYVAULT_DATABASE_URL points at an external database; manage it there"
        )


@db_cli.command("init")
def db_init() -> None:
    """Create the embedded cluster's data folder (initdb)."""
    _require_embedded()
    cluster = embedded_cluster()
    created = cluster.init()
    click.echo(f"{'initialised' if created else 'already initialised'}: {cluster.pgdata}")


@db_cli.command("start")
def db_start() -> None:
    """Start the embedded cluster (creating it first); idempotent."""
    _require_embedded()
    cluster = embedded_cluster()
    try:
        started = cluster.start()
    except ClusterError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{'started' if started else 'already running'}: {cluster.url()}")


@db_cli.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    _require_embedded()
    stopped = embedded_cluster().stop()
    click.echo("stopped" if stopped else "not running")


@db_cli.command("status")
def db_status() -> None:
    """Say whether the database is running and at which schema revision."""
    from skyvault.schema.migrate import current_revision, head_revision

    if not settings().database_url and not embedded_cluster().status():
        click.echo("embedded cluster: not running")
        sys.exit(3)
    revision = current_revision(database_urls().admin)
    click.echo(f"running; schema revision {revision or 'none'} (head {head_revision()})")


@db_cli.command("migrate")
@click.option("--revision", default="head", show_default=True)
def db_migrate(revision: str) -> None:
    """Bring the schema up to date (idempotent) and refresh TAP_SCHEMA."""
    from skyvault.schema.migrate import current_revision, upgrade

    url = database_urls().admin
    upgrade(url, revision)
    click.echo(f"schema at revision {current_revision(url)}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Take the schema back to REVISION ('base' drops everything)."""
    from skyvault.schema.migrate import downgrade

    downgrade(database_urls().admin, revision)
    click.echo(f"schema downgraded to {revision}")


@db_cli.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def db_psql(psql_args: tuple[str, ...]) -> None:
    """Open psql on the archive database as its owner."""
    os.execvp("psql", ["psql", database_urls().admin, *psql_args])


def _register_optional_groups() -> None:
    """Groups of the other parts; each lives with its part."""
    from importlib import import_module

    for module_name, attribute in REGISTERED_GROUPS:
        module = import_module(module_name)
        cli.add_command(getattr(module, attribute))


# (module, click group attribute) of each part's commands.
REGISTERED_GROUPS: list[tuple[str, str]] = [
    ("skyvault.serving", "serve_cli"),
    ("skyvault.demo", "demo_cli"),
    ("skyvault.accounts_cli", "users_cli"),
    ("skyvault.releases.cli", "release_cli"),
    ("skyvault.server.worker", "worker_cli"),
    ("skyvault.ingest.cli", "ingest_cli"),
    ("skyvault.pipeline.cli", "pipeline_cli"),
    ("skyvault.sso.cli", "sso_cli"),
]


def main() -> None:
    _register_optional_groups()
    cli(prog_name="skyvault")


def run(argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (tests, the demo)."""
    return subprocess.run([sys.executable, "-m", "skyvault", *argv], text=True,
                          capture_output=True)
