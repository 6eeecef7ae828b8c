"""``skyvault pipeline``: simulate nights and process them into archive products."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

import click

pipeline_cli = click.Group("pipeline", help="Simulate survey nights and process raw exposures.")

EXIT_QUADRANT_FAILURES = 2
"""run-night finished the night but some quadrants failed (their reasons are printed)."""


def _ints(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from error


@pipeline_cli.command("simulate")
@click.option("--night", "night", required=True, help="Local evening date, YYYY-MM-DD.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Survey seed: sky and camera.")
@click.option("--size", type=click.Choice(["small", "full"]), default="small", show_default=True)
@click.option("--ccds", default=None, help="CCDs to read out, e.g. 6,7,10,11.")
@click.option("--fields", default=None, help="Survey fields to visit (default: from the date).")
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--no-asteroids", is_flag=True, help="Leave the known asteroids out.")
@click.option("--variable-fraction", type=click.FloatRange(0, 1), default=0.02,
              show_default=True, help="Share of the stars that vary (periodic sinusoids).")
def simulate(night, out_dir, seed, size, ccds, fields, workers, no_asteroids,
             variable_fraction) -> None:
    """Simulate one night of raw camera files, calibrations and their truth."""
    from skyvault.pipeline.simulate.night import simulate_night

    try:
        nightdate = dt.date.fromisoformat(night)
    except ValueError as error:
        raise click.BadParameter(f"--night must be YYYY-MM-DD: {error}") from error
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    summary = simulate_night(
        nightdate,
        out_dir,
        seed=seed,
        size=size,
        ccds=_ints(ccds),
        workers=workers,
        with_asteroids=not no_asteroids,
        fields=_ints(fields),
        progress=sys.stderr.isatty(),
        variable_fraction=variable_fraction,
    )
    click.echo(
        f"simulated {summary.nightdate}: {summary.exposures} exposures "
        f"({summary.science_exposures} science) on CCDs {summary.ccds}, "
        f"{summary.raw_files} raw files, survey fields {summary.survey_fields}, "
        f"asteroids {summary.asteroids_planned or 'none'} in {summary.asteroid_images} images "
        f"-> {out_dir}"
    )


def _scheduler_options(function):
    function = click.option(
        "--scheduler", default=None, help="Address of a running Dask scheduler, tcp://HOST:PORT."
    )(function)
    function = click.option(
        "--workers", type=int, default=None, help="Local Dask workers (default: all cores)."
    )(function)
    return function


@pipeline_cli.command("run-night")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "product_dir", required=True, type=click.Path(path_type=Path))
@_scheduler_options
@click.option(
    "--refcat",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Reference catalog (default: RAW_DIR/refcat.fits).",
)
@click.option("--no-references", is_flag=True, help="Skip building references at the end.")
@click.option("--min-reference-frames", default=3, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_night_command(
    raw_dir, product_dir, workers, scheduler, refcat, no_references, min_reference_frames, quiet
) -> None:
    """Process a night: calibrations, science quadrants, differences, references, manifests.

    Resumable: a rerun skips quadrants already done. Exits with status 2 when some quadrants
    failed (the rest of the night is processed and its manifests written)."""
    from skyvault.pipeline.orchestrate import NightError, run_night

    if workers and scheduler:
        raise click.UsageError("--workers and --scheduler exclude each other")
    try:
        report = run_night(
            raw_dir,
            product_dir,
            workers=workers,
            scheduler=scheduler,
            refcat=refcat,
            progress=not quiet,
            references=not no_references,
            min_reference_frames=min_reference_frames,
        )
    except NightError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"night {report.nightdate}: {report.exposures} exposures, {report.quadrants} quadrants "
        f"({report.processed} processed, {report.reused} already done, "
        f"{len(report.failures)} failed), {report.differences} differences, "
        f"{len(report.references)} references built, {len(report.manifests)} manifests, "
        f"{report.seconds:.1f} s"
    )
    for failure in report.failures:
        click.echo(
            f"  failed: exposure {failure.expid} ccd {failure.ccdid} q{failure.qid} "
            f"[{failure.step}] {failure.reason}",
            err=True,
        )
    for failure in report.reference_failures:
        click.echo(f"  reference failed: {failure}", err=True)
    if report.failures:
        sys.exit(EXIT_QUADRANT_FAILURES)


@pipeline_cli.command("build-references")
@click.argument("product_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--refcat",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reference catalog the science images were calibrated with.",
)
@_scheduler_options
@click.option("--min-frames", default=3, show_default=True)
@click.option("--max-frames", default=10, show_default=True)
def build_references_command(
    product_dir, refcat, workers, scheduler, min_frames, max_frames
) -> None:
    """Co-add references for every field/CCD/quadrant/filter with enough good epochs."""
    from skyvault.pipeline.orchestrate import dask_client
    from skyvault.pipeline.reference_builder import build_references

    with dask_client(workers, scheduler) as client:
        built, failed = build_references(
            product_dir.resolve(),
            client,
            min_frames=min_frames,
            max_frames=max_frames,
            refcat_path=refcat.resolve(),
            progress=sys.stderr.isatty(),
        )
    click.echo(f"{len(built)} references built, {len(failed)} failed")
    for failure in failed:
        click.echo(f"  {failure}", err=True)


@pipeline_cli.command("train-rb")
@click.argument("work_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Model file to write (default: the one the pipeline ships and uses).",
)
@click.option("--seed", default=None, type=int, help="Survey seed of the training nights.")
@click.option("--workers", default=2, show_default=True)
def train_rb_command(work_dir, out, seed, workers) -> None:
    """Train the real/bogus classifier on a simulated survey kept in WORK_DIR (made there
    if absent; a rerun reuses it). Same seed, same model."""
    from skyvault.pipeline.process.realbogus import MODEL_PATH
    from skyvault.pipeline.rb_training import TRAINING_SEED, train_model

    target = out or MODEL_PATH
    version, scores = train_model(
        work_dir.resolve(), target, seed=TRAINING_SEED if seed is None else seed,
        workers=workers,
    )
    click.echo(f"{version} written to {target}")
    click.echo(
        f"training night: {scores.candidates} candidates, {scores.real} real; "
        f"precision {scores.precision:.3f}, recall {scores.recall:.3f} (on its own training "
        "set: the held-out figures come from tests/pipeline/test_candidates.py)"
    )
