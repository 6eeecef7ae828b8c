"""What the Dask workers run: one quadrant's calibration, one science quadrant (and its
difference). Tasks never raise: a failure comes back in the outcome with its reason, and the
night goes on. A finished task leaves its state record (``night_state``)."""

from __future__ import annotations

import logging
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from skyvault.pipeline.manifest import ProductFile, QuadrantFailure, ScienceImageMeta, describe_file
from skyvault.pipeline.night_state import (
    CalibrationOutcome,
    QuadrantOutcome,
    calibration_state,
    quadrant_state,
    save_state,
)
from skyvault.pipeline.process.apcor import ExposurePsf
from skyvault.pipeline.process.calibration_job import CalibrationJob, make_calibration
from skyvault.pipeline.process.difference import make_difference
from skyvault.pipeline.process.psf import Psf, fitted_flux_ratio
from skyvault.pipeline.process.science import ScienceJob, process_science

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceInput:
    name: str
    """Manifest name of the reference."""
    refimg: str
    """Relative to the product folder."""
    programids: tuple[int, ...]


@dataclass(frozen=True)
class QuadrantTask:
    product_dir: str
    nightdate: str
    expid: int
    ccdid: int
    qid: int
    raw_path: str
    bias_path: str
    flat_path: str
    refcat_path: str
    reference: ReferenceInput | None = None
    exposure_psf: ExposurePsf | None = None
    """The exposure's PSF and flux scale, for a second pass of a quadrant with only faint
    stars."""


def calibration_task(job: CalibrationJob) -> CalibrationOutcome:
    product_dir = Path(job.product_dir)
    try:
        rows = make_calibration(job)
        files = [
            describe_file(
                product_dir,
                product_dir / row.path,
                row.caltype,
                ccdid=row.ccdid,
                qid=row.qid,
                filtercode=None if row.caltype == "bias" else row.filtercode,
            )
            for row in rows
        ]
        outcome = CalibrationOutcome(job.ccdid, job.qid, rows, files)
        save_state(calibration_state(product_dir, job.nightdate, job.ccdid, job.qid), outcome)
        return outcome
    except Exception as error:  # a task reports, it never takes the night down
        log.debug("calibration failed: %s", traceback.format_exc())
        return CalibrationOutcome(job.ccdid, job.qid, failure=f"{type(error).__name__}: {error}")


def science_task(task: QuadrantTask, calibration: CalibrationOutcome) -> QuadrantOutcome:
    outcome = QuadrantOutcome(task.expid, task.ccdid, task.qid)
    if calibration.failure:
        outcome.failure = QuadrantFailure(
            task.expid, task.ccdid, task.qid, "calibration", calibration.failure
        )
        return outcome
    product_dir = Path(task.product_dir)
    step = "science"
    try:
        meta, timings, psf = process_science(
            ScienceJob(
                task.product_dir,
                task.raw_path,
                task.qid,
                task.bias_path,
                task.flat_path,
                task.refcat_path,
                task.exposure_psf,
            )
        )
        outcome.science, outcome.timings = meta, timings
        outcome.borrowed_psf = psf.borrowed
        if psf.measured and not psf.borrowed:
            outcome.psf_fwhm, outcome.psf_beta = psf.fwhm, psf.beta
        if math.isfinite(psf.flux_scale_uncertainty):
            outcome.flux_scale = psf.flux_scale
            outcome.flux_scale_uncertainty = psf.flux_scale_uncertainty
        for kind, path in meta.files.items():
            outcome.files.append(_describe(product_dir, path, kind, meta))
        if task.reference is not None:
            step = "difference"
            clock = time.process_time()
            difference = make_difference(
                task.product_dir,
                meta,
                task.reference.refimg,
                list(task.reference.programids),
                task.refcat_path,
            )
            outcome.timings["difference"] = time.process_time() - clock
            outcome.difference = difference
            outcome.reference_name = task.reference.name
            for kind, path in difference.files.items():
                outcome.files.append(_describe(product_dir, path, kind, meta))
        save_state(
            quadrant_state(product_dir, task.nightdate, task.expid, task.ccdid, task.qid), outcome
        )
    except Exception as error:
        log.debug("quadrant failed: %s", traceback.format_exc())
        outcome.failure = QuadrantFailure(
            task.expid, task.ccdid, task.qid, step, f"{type(error).__name__}: {error}"
        )
    return outcome


def _describe(product_dir: Path, path: str, kind: str, meta: ScienceImageMeta) -> ProductFile:
    return describe_file(
        product_dir,
        product_dir / path,
        kind,
        expid=meta.expid,
        ccdid=meta.ccdid,
        qid=meta.qid,
        filtercode=meta.filtercode,
        field=meta.field,
    )


WELL_MEASURED_FLUX_SCALE = 0.005
"""A quadrant whose aperture correction is known better than this (fractional) has stars
bright enough to show the PSF's wings; the others borrow the exposure's PSF."""


def shared_psf(outcomes: list[QuadrantOutcome]) -> ExposurePsf | None:
    """The exposure's PSF: the shape and flux scale of the quadrant that knows its flux scale
    best, if at least two measured their wings well (the seeing is the same across an
    exposure's quadrants), else None.

    The shape and its aperture correction go together: shapes a little apart differ in flux
    scale by percents (beta 3.15 for 3.39 fits 2.5% too much light), so one quadrant's
    correction fits its own shape only. The borrower's own stars, too faint to tell the wings,
    measured the flux scale of a borrowed shape to 1-2% and put it 0.02 mag off."""
    good = [
        o
        for o in outcomes
        if o.psf_fwhm is not None
        and o.psf_beta is not None
        and o.flux_scale is not None
        and o.flux_scale_uncertainty is not None
        and o.flux_scale_uncertainty < WELL_MEASURED_FLUX_SCALE
    ]
    if len(good) < 2:
        return None
    best = min(good, key=lambda o: o.flux_scale_uncertainty)
    return ExposurePsf(best.psf_fwhm, best.psf_beta, best.flux_scale, best.flux_scale_uncertainty)


FLUX_SCALE_CONSISTENCY = 2.0
"""Sigmas: a quadrant's own aperture correction further than this from what its shape needs
by the exposure's PSF (``fitted_flux_ratio``) is not trusted either."""


def needs_shared_psf(outcome: QuadrantOutcome, exposure_psf: ExposurePsf) -> bool:
    """A quadrant processed in this run whose own stars left its flux scale uncertain, or
    whose own aperture correction contradicts the exposure's: its stars measured 1.0089 for a
    shape (beta 2.64 for a true 2.85) that needs 0.989 by the exposure's, and put its zero
    point 0.0195 mag off. A reused one stays as it is: a reference built since would change
    more than its PSF."""
    if outcome.science is None or outcome.failure or outcome.reused or outcome.borrowed_psf:
        return False
    uncertainty = outcome.flux_scale_uncertainty
    if uncertainty is None or uncertainty >= WELL_MEASURED_FLUX_SCALE:
        return True
    if outcome.psf_fwhm is None or outcome.psf_beta is None or outcome.flux_scale is None:
        return False
    own_shape = Psf(outcome.psf_fwhm, outcome.psf_beta, 0)
    expected = exposure_psf.apcor / fitted_flux_ratio(
        own_shape, exposure_psf.fwhm, exposure_psf.beta
    )
    allowed = FLUX_SCALE_CONSISTENCY * math.hypot(uncertainty, exposure_psf.apcor_uncertainty)
    return abs(outcome.flux_scale - expected) > allowed
