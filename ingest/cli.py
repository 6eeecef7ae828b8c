"""``skyvault ingest``: archive products, watch a folder, check the store, list quarantine.

``skyvault ingest PATH...`` and ``skyvault ingest --watch DIR`` are short for
``skyvault ingest run ...``: anything that is not a subcommand's name goes to ``run`` (a path
literally named like a subcommand is written ``./check``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click


class _IngestGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("ingest", cls=_IngestGroup)
def ingest_cli() -> None:
    """Archive pipeline products (manifests or product folders) into the store and catalog.

    \b
    skyvault ingest PATH...          ingest manifests, or product folders' manifests
    skyvault ingest --watch DIR      ingest manifests as they appear (near real time)
    skyvault ingest check            store against database; --remove-orphans, --repair
    skyvault ingest report           quarantined input and why
    skyvault ingest seal             index and attach nights still loading
    skyvault ingest compact          move sealed nights into the sky cells
    skyvault ingest annotate [NID..] candidates' history fields (ingest does it too)
    """


@ingest_cli.command("run")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--watch", "watch_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder to watch for new manifests.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--idle-exit", type=float, default=None,
              help="Stop watching after this many seconds without new manifests.")
@click.option("--live/--bulk", default=None,
              help="Make each exposure queryable at its commit (default with --watch), or "
                   "load unindexed and seal at the end (default for paths).")
@click.option("--no-seal", is_flag=True, help="Leave loaded nights unsealed (for more runs).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run_command(paths: tuple[Path, ...], watch_dir: Path | None, interval: float,
                idle_exit: float | None, live: bool | None, no_seal: bool,
                progress: bool | None, as_json: bool) -> None:
    """Ingest PATHS (manifest files or folders), or watch a folder."""
    from skyvault.ingest.errors import StoreError
    from skyvault.ingest.run import IngestSummary, ingest_paths, watch

    if not paths and watch_dir is None:
        raise click.UsageError("give manifest paths or product folders, or --watch DIR")
    show = sys.stderr.isatty() if progress is None else progress
    summary = IngestSummary()
    try:
        if paths:
            summary = ingest_paths(list(paths), live=bool(live), seal=not no_seal,
                                   progress=show)
        if watch_dir is not None:
            click.echo(f"watching {watch_dir} (Ctrl-C to stop)", err=True)

            def report(part: IngestSummary) -> None:
                for line in part.lines():
                    click.echo(line, err=True)

            summary.merge(watch(watch_dir, interval=interval, idle_exit=idle_exit,
                                progress=show, on_summary=report))
    except StoreError as error:
        # Disk full, permissions: not the products' fault, so nothing is quarantined.
        raise click.ClickException(
            f"{error}. Groups archived before this are committed; the group being written "
            "was not, and its partial files were removed. Make room and run the same ingest "
            "again: what is archived already is skipped.") from error
    if as_json:
        data = {key: value for key, value in asdict(summary).items() if key != "results"}
        data["rows_per_second"] = summary.rows_per_second
        click.echo(json.dumps(data, indent=1, default=str))
    else:
        for line in summary.lines():
            click.echo(line)
    if not summary.ok:
        sys.exit(1)


@ingest_cli.command("check")
@click.option("--quick", is_flag=True, help="Compare sizes only, not SHA-256.")
@click.option("--deep", is_flag=True, help="Also count catalog rows per image.")
@click.option("--remove-orphans", is_flag=True, help="Delete files no database row names.")
@click.option("--repair", is_flag=True, help="Seal night partitions a crashed run left.")
@click.option("--json", "as_json", is_flag=True)
def check_command(quick: bool, deep: bool, remove_orphans: bool, repair: bool,
                  as_json: bool) -> None:
    """Verify the file store against the database; exit 1 unless clean."""
    from skyvault.ingest.check import IngestRunning, check_archive

    try:
        report = check_archive(quick=quick, deep=deep, remove_orphans=remove_orphans,
                               repair=repair)
    except IngestRunning as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps({**asdict(report), "clean": report.clean}, indent=1))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.clean:
        sys.exit(1)


@ingest_cli.command("report")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved entries.")
@click.option("--limit", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
def report_command(include_resolved: bool, limit: int | None, as_json: bool) -> None:
    """List quarantined input: what, why, where it was put."""
    from skyvault.db import database
    from skyvault.ingest.quarantine import entries

    with database().admin() as connection:
        found = entries(connection, include_resolved=include_resolved, limit=limit)
    if as_json:
        click.echo(json.dumps([asdict(entry) for entry in found], indent=1, default=str))
        return
    if not found:
        click.echo("quarantine is empty" if include_resolved else "no unresolved quarantine")
        return
    counts: dict[str, int] = {}
    for entry in found:
        counts[entry.problem or "?"] = counts.get(entry.problem or "?", 0) + 1
        state = f" (resolved {entry.resolved_at:%Y-%m-%d})" if entry.resolved_at else ""
        click.echo(f"#{entry.quarantine_id} {entry.detected_at:%Y-%m-%d %H:%M} "
                   f"{entry.problem} {entry.manifest_name or '-'} {entry.original_path}{state}")
        click.echo(f"    {entry.reason}")
        click.echo(f"    copy: {entry.quarantine_path}")
    click.echo(", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())))


@ingest_cli.command("seal")
@click.option("--cluster", is_flag=True, help="Also rewrite each partition in q3c order.")
def seal_command(cluster: bool) -> None:
    """Index and attach night partitions that are still loading (and fill the history fields
    of the candidates of the nights sealed)."""
    from skyvault.db import database
    from skyvault.ingest.candidate_history import annotate_nights
    from skyvault.ingest.partitions import PARTITION_NAME, seal_all

    handle = database()
    with handle.admin(autocommit=True) as connection:
        sealed = seal_all(connection, cluster=cluster,
                          connect=lambda: handle.admin(autocommit=True))
        matches = [PARTITION_NAME.match(name) for name in sealed]
        nights = [int(m["nid"]) for m in matches if m and m["catalog"] == "candidates"]
        report = annotate_nights(connection, nights) if nights else None
    click.echo(f"sealed {', '.join(sealed)}" if sealed else "nothing to seal")
    if report is not None:
        click.echo(report.line())


@ingest_cli.command("annotate")
@click.argument("nids", nargs=-1, type=int)
def annotate_command(nids: tuple[int, ...]) -> None:
    """Fill the candidates' history fields (objectid, ndethist, ncovhist, jdstarthist,
    jdendhist, ssdistnr...) of nights NIDS (default: every night with candidates). Ingest
    does it for the nights it loads; this redoes it, e.g. after orbits were loaded."""
    from skyvault.db import database
    from skyvault.ingest.candidate_history import annotate_nights, candidate_nights

    with database().admin(autocommit=True) as connection:
        report = annotate_nights(connection, list(nids) or candidate_nights(connection))
    click.echo(report.line())


@ingest_cli.command("compact")
@click.option("--keep-latest", type=click.IntRange(min=0), default=0, show_default=True,
              help="Leave the most recent sealed nights of each catalog as they are (a night "
                   "still observed with --watch).")
@click.option("--catalog", "catalogs", multiple=True,
              help="Only this catalog (repeatable); default every catalog with a sky layout.")
@click.option("--json", "as_json", is_flag=True, help="Print what was moved as JSON.")
def compact_command(keep_latest: int, catalogs: tuple[str, ...], as_json: bool) -> None:
    """Move sealed nights into the sky cells (ingest/README.md): a cone search then probes the
    cells it touches instead of every night. Safe to stop at any moment and to run again."""
    from skyvault.db import database
    from skyvault.ingest.compact import CompactionBusy, compact_all
    from skyvault.ingest.partitions import CATALOGS

    unknown = sorted(set(catalogs) - set(CATALOGS))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}; catalogs: {', '.join(sorted(CATALOGS))}",
                                 param_hint="--catalog")
    with database().admin(autocommit=True) as connection:
        try:
            done = compact_all(connection, keep_latest=keep_latest,
                               catalogs=list(catalogs) or None)
        except CompactionBusy as error:
            click.echo(f"stopped: {error}; run again later", err=True)
            sys.exit(1)
    if as_json:
        click.echo(json.dumps([asdict(item) for item in done], indent=1))
        return
    for item in done:
        click.echo(item.line())
    click.echo(f"compacted {len(done)} night partitions" if done else "nothing to compact")


@ingest_cli.command("ensemble")
@click.option("--all", "refresh_all", is_flag=True,
              help="Recompute the released statistics of every object (a repair).")
def ensemble_command(refresh_all: bool) -> None:
    """Relative photometry and released statistics of the objects ingest associated, and of
    those with epochs the release horizons made public or hidden since the last run."""
    from skyvault.db import database
    from skyvault.lightcurves.ensemble import run_ensemble

    click.echo(run_ensemble(database(), refresh_all=refresh_all).line())
