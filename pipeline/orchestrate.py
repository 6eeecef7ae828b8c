"""Running a night on Dask: calibration, then every readout quadrant, then references.

The driver takes the raw folder's inventory (``night_plan``), places the raw files in the
product folder, and submits one task per quadrant's calibration and one per science quadrant
(which depends on its calibration; ``tasks``). Finished quadrants leave state records
(``night_state``) that a rerun reuses, so an interrupted night resumes where it stopped. When
an exposure's quadrants are done, those whose stars were too faint to measure their PSF's
wings are processed again with the exposure's PSF (``shared_psf``); then its manifest is
written (``night_manifests``), so ingest can follow the night as it is processed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from skyvault.pipeline.manifest import QuadrantFailure
from skyvault.pipeline.night_manifests import write_calibration_manifest, write_exposure_manifest
from skyvault.pipeline.night_plan import (
    NightError,
    NightInventory,
    NightPlan,
    plan_night,
    take_inventory,
)
from skyvault.pipeline.night_state import CalibrationOutcome, QuadrantOutcome
from skyvault.pipeline.raw_inventory import place_raw
from skyvault.pipeline.reference_builder import build_references
from skyvault.pipeline.tasks import calibration_task, needs_shared_psf, science_task, shared_psf

log = logging.getLogger(__name__)


@dataclass
class NightReport:
    nightdate: str
    exposures: int = 0
    quadrants: int = 0
    processed: int = 0
    reused: int = 0
    failures: list[QuadrantFailure] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    reference_failures: list[str] = field(default_factory=list)
    differences: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Total seconds per step over the quadrants processed in this run."""


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator:
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextmanager
def _borrowed(client) -> Iterator:
    yield client


def _progress(total: int, enabled: bool, description: str):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=description, unit="quadrant", disable=not enabled, dynamic_ncols=True
    )


class _NightRun:
    """One run of a planned night on a Dask client: submits, collects outcomes per exposure,
    resubmits faint quadrants with the exposure's PSF, and writes each exposure's manifest
    when its last quadrant is in."""

    def __init__(self, dask, inventory: NightInventory, plan: NightPlan, product_dir: Path,
                 refcat_path: Path, report: NightReport) -> None:
        self.dask = dask
        self.inventory = inventory
        self.plan = plan
        self.product_dir = product_dir
        self.refcat_path = refcat_path
        self.report = report
        self.outcomes: dict[int, list[QuadrantOutcome]] = {
            expid: list(done) for expid, done in plan.quadrants_done.items()
        }
        self.pending: dict[int, int] = dict.fromkeys(inventory.science, 0)
        for expid, _, _ in plan.quadrant_tasks:
            self.pending[expid] += 1
        self.calibrations: dict[tuple[int, int], object] = dict(plan.calibrations_done)
        self.calibration_name = ""

    def submit_calibrations(self) -> None:
        nightdate = self.inventory.nightdate
        for (ccdid, qid), job in self.plan.calibration_jobs.items():
            self.calibrations[(ccdid, qid)] = self.dask.submit(
                calibration_task, job, key=f"cal-{nightdate}-{ccdid}-{qid}", pure=False
            )

    def submit_quadrants(self) -> list:
        return [
            self.dask.submit(
                science_task,
                task,
                self.calibrations[(ccdid, qid)],
                key=f"sci-{expid}-{ccdid}-{qid}",
                pure=False,
            )
            for (expid, ccdid, qid), task in self.plan.quadrant_tasks.items()
        ]

    def write_calibration_manifest(self) -> None:
        """First: exposure manifests depend on it."""
        outcomes: dict[tuple[int, int], CalibrationOutcome] = {}
        for key, value in self.calibrations.items():
            outcomes[key] = value if isinstance(value, CalibrationOutcome) else value.result()
        self.calibration_name = write_calibration_manifest(
            self.product_dir, self.inventory.nightdate, self.inventory.files, outcomes
        )
        self.report.manifests.append(self.calibration_name)

    def finish(self, expid: int) -> None:
        name = write_exposure_manifest(
            self.product_dir,
            self.inventory.nightdate,
            self.inventory.science[expid],
            self.outcomes[expid],
            self.calibration_name,
            self.refcat_path,
        )
        self.report.manifests.append(name)

    def second_pass(self, expid: int, running) -> int:
        """Resubmit the exposure's quadrants that could not tell their PSF's wings, or whose
        flux scale contradicts the exposure's, with the exposure's PSF; returns how many."""
        exposure_psf = shared_psf(self.outcomes[expid])
        weak = (
            [o for o in self.outcomes[expid] if needs_shared_psf(o, exposure_psf)]
            if exposure_psf
            else []
        )
        for outcome in weak:
            self.outcomes[expid].remove(outcome)
            self.report.processed -= 1
            task = replace(
                self.plan.quadrant_tasks[(expid, outcome.ccdid, outcome.qid)],
                exposure_psf=exposure_psf,
            )
            running.add(
                self.dask.submit(
                    science_task,
                    task,
                    self.calibrations[(outcome.ccdid, outcome.qid)],
                    key=f"sci-{expid}-{outcome.ccdid}-{outcome.qid}-shared-psf",
                    pure=False,
                )
            )
        self.pending[expid] += len(weak)
        return len(weak)

    def record(self, outcome: QuadrantOutcome, bar) -> None:
        self.outcomes[outcome.expid].append(outcome)
        self.pending[outcome.expid] -= 1
        if outcome.failure:
            bar.write(
                f"failed: exposure {outcome.expid} ccd {outcome.ccdid} "
                f"q{outcome.qid} [{outcome.failure.step}] {outcome.failure.reason}"
            )
            return
        self.report.processed += 1
        for step, seconds in outcome.timings.items():
            self.report.timings[step] = self.report.timings.get(step, 0.0) + seconds

    def run(self, progress: bool) -> None:
        from distributed import as_completed

        self.submit_calibrations()
        futures = self.submit_quadrants()
        self.report.reused = self.report.quadrants - len(futures)
        self.write_calibration_manifest()
        for expid in sorted(self.inventory.science):
            if self.pending[expid] == 0:
                self.finish(expid)
        running = as_completed(futures)
        with _progress(len(futures), progress, f"night {self.inventory.nightdate}") as bar:
            for future in running:
                outcome: QuadrantOutcome = future.result()
                bar.update(1)
                self.record(outcome, bar)
                expid = outcome.expid
                if self.pending[expid] == 0 and self.second_pass(expid, running) == 0:
                    self.finish(expid)
        for expid in self.inventory.science:
            for outcome in self.outcomes[expid]:
                if outcome.failure:
                    self.report.failures.append(outcome.failure)
                elif outcome.difference is not None:
                    self.report.differences += 1


def run_night(
    raw_dir: Path,
    product_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    refcat: Path | None = None,
    progress: bool = True,
    references: bool = True,
    min_reference_frames: int = 3,
    client=None,
) -> NightReport:
    """Process one night of raw files into ``product_dir`` (see pipeline/README.md)."""
    started = time.perf_counter()
    raw_dir, product_dir = Path(raw_dir).resolve(), Path(product_dir).resolve()
    refcat_path = Path(refcat).resolve() if refcat else raw_dir / "refcat.fits"
    if not refcat_path.exists():
        raise NightError(f"no reference catalog at {refcat_path}")
    inventory = take_inventory(raw_dir)
    product_dir.mkdir(parents=True, exist_ok=True)
    for raw in inventory.files:
        place_raw(raw, product_dir)
    report = NightReport(
        nightdate=inventory.nightdate,
        exposures=len(inventory.science),
        quadrants=inventory.quadrants,
    )
    plan = plan_night(inventory, product_dir, refcat_path)
    with dask_client(workers, scheduler) if client is None else _borrowed(client) as dask:
        _NightRun(dask, inventory, plan, product_dir, refcat_path, report).run(progress)
        if references:
            built, failed = build_references(
                product_dir,
                dask,
                min_frames=min_reference_frames,
                refcat_path=refcat_path,
                progress=progress,
            )
            report.references.extend(built)
            report.reference_failures.extend(failed)
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["NightError", "NightReport", "dask_client", "run_night"]
