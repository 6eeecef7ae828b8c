"""The `skyvault` command. Each part of the system adds its own group here."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import click

from skyvault.cluster import ClusterError
from skyvault.config import settings
from skyvault.db import database_urls, embedded_cluster


class PartsGroup(click.Group):
    """The root group: its own commands (``db``) and the parts' commands of PART_COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *PART_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        part = PART_COMMANDS.get(name)
        return part() if part is not None else super().get_command(ctx, name)


@click.group(cls=PartsGroup)
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


def _serve() -> click.Command:
    from skyvault.serving import serve_cli

    return serve_cli


def _demo() -> click.Command:
    from skyvault.demo import demo_cli

    return demo_cli


def _users() -> click.Command:
    from skyvault.accounts.cli import users_cli

    return users_cli


def _release() -> click.Command:
    from skyvault.releases.cli import release_cli

    return release_cli


def _worker() -> click.Command:
    from skyvault.server.worker import worker_cli

    return worker_cli


def _ingest() -> click.Command:
    from skyvault.ingest.cli import ingest_cli

    return ingest_cli


def _pipeline() -> click.Command:
    from skyvault.pipeline.cli import pipeline_cli

    return pipeline_cli


def _sso() -> click.Command:
    from skyvault.sso.cli import sso_cli

    return sso_cli


def _alerts() -> click.Command:
    from skyvault.alerts.cli import alerts_cli

    return alerts_cli


def _hips() -> click.Command:
    from skyvault.coverage.hips import hips_cli

    return hips_cli


PART_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "serve": _serve, "demo": _demo, "users": _users, "release": _release, "worker": _worker,
    "ingest": _ingest, "pipeline": _pipeline, "sso": _sso, "hips": _hips,
    "alerts": _alerts,
}
"""Each part's command, which lives with its part, by name. Imported when named, so that
``skyvault worker`` loads neither the pipeline's Dask nor the server's Flask (only ``--help``,
which lists them all, loads every part)."""


def main() -> None:
    cli(prog_name="skyvault")


def run(argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (tests, the demo)."""
    return subprocess.run([sys.executable, "-m", "skyvault", *argv], text=True,
                          capture_output=True)
