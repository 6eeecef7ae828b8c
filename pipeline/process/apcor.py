"""The aperture correction: the factor that brings PSF-fit fluxes to total fluxes.

A Moffat fitted to a few stars gets the core right but may misjudge the wings (FWHM and beta
trade against each other, and faint PSF stars cannot tell them apart), and a zero point is only
as good as the flux normalisation behind it: beta 2.74 for a true 3.22 put a sparse quadrant's
zero point 0.04 mag off. Every fitted source is subtracted from the image; for each isolated
star the light left within 3 FWHM is how much its model missed, relative to the model's own
light on the same pixels. The ratios are averaged with weights from their noise, so that the
one or two bright stars a sparse quadrant has, known to a few thousandths, are not outvoted by
a handful of faint ones scattered by percents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skyvault.pipeline.process import maskbits
from skyvault.pipeline.process.psf import Psf, PsfFit
from skyvault.pipeline.process.statistics import weighted_clipped_mean
from skyvault.pipeline.psfmodel import add_point_sources, moffat_pixels

RADIUS_FWHM = 3.0
MIN_SNR = 20.0
MIN_STARS = 3
MAX_CHI = 100.0
"""Bright stars fit a slightly wrong model with a chi of 10 or more; they are the ones that
show the wings best. Beyond this the source is no star."""
FLOOR = 0.002
"""No one star's ratio is known better than this (flat field, faint neighbours)."""
MIN_COVERAGE = 0.7
"""Of the model's light within the radius, the part on usable pixels of the image: stars a few
pixels from an edge or near a bad column still count, on the pixels they have (within 3 pixels
of the edge the PSF fit itself is unsure: those are left out)."""


@dataclass(frozen=True)
class ApertureCorrection:
    factor: float
    """Applied to PSF-fit fluxes; 1 where too few stars measured it."""
    nstars: int
    uncertainty: float
    """Fractional uncertainty of the factor; NaN where too few stars measured it."""


@dataclass(frozen=True)
class ExposurePsf:
    """An exposure's PSF as its best-measured quadrant knows it: the shape (the seeing is the
    same across an exposure's quadrants) and that shape's flux scale. A quadrant whose stars
    are all faint measures neither well: the flux scale of a borrowed shape from its own stars
    is as uncertain as its own shape's was (1-2%, which put zero points 0.02 mag off), while
    the lending quadrant knows it to a few tenths of a percent."""

    fwhm: float
    """pixels."""
    beta: float
    apcor: float
    apcor_uncertainty: float
    """Fractional."""


def aperture_correction(
    image: np.ndarray,
    bad: np.ndarray,
    sky_rms: np.ndarray,
    gain: float,
    fit: PsfFit,
    flags: np.ndarray,
    snr: np.ndarray,
    psf: Psf,
) -> ApertureCorrection:
    """The flux scale of PSF-fit fluxes, from the clean stars above S/N 20 (see the module)."""
    clean = (flags & maskbits.SOURCE_FLAGS) == 0
    chosen = np.flatnonzero(clean & (snr > MIN_SNR) & (fit.chi < MAX_CHI) & (fit.flux > 0))
    if chosen.size < MIN_STARS:
        return ApertureCorrection(1.0, int(chosen.size), float("nan"))
    residual = image.astype(np.float64).copy()
    positive = fit.flux > 0
    add_point_sources(
        residual, fit.x[positive], fit.y[positive], -fit.flux[positive], psf.fwhm, psf.beta, 1.0
    )
    ratio, error = _ratios(residual, bad, sky_rms, gain, fit, chosen, psf)
    if ratio.size < MIN_STARS:
        return ApertureCorrection(1.0, int(ratio.size), float("nan"))
    mean, uncertainty, kept = weighted_clipped_mean(ratio, error, MIN_STARS)
    # Applied whatever its significance: a model 1.2% too bright, measured so to 0.4% (2.8
    # sigma), left uncorrected put a quadrant's zero point 0.020 mag off; applied, the flux
    # scale is off by its uncertainty, which MAGZPUNC carries.
    return ApertureCorrection(float(np.clip(mean, 0.8, 1.25)), int(kept.sum()), uncertainty)


def _ratios(
    residual: np.ndarray,
    bad: np.ndarray,
    sky_rms: np.ndarray,
    gain: float,
    fit: PsfFit,
    chosen: np.ndarray,
    psf: Psf,
) -> tuple[np.ndarray, np.ndarray]:
    """(1 + light left / model light, its error) on each chosen star's usable pixels within
    the radius, for stars with enough of them."""
    radius = RADIUS_FWHM * psf.fwhm
    half = int(np.ceil(radius))
    offsets = np.arange(-half, half + 1)
    x, y = fit.x[chosen], fit.y[chosen]
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    px = ix[:, None, None] + offsets[None, None, :]
    py = iy[:, None, None] + offsets[None, :, None]
    px, py = np.broadcast_arrays(px, py)
    dx, dy = px - x[:, None, None], py - y[:, None, None]
    ny, nx = residual.shape
    on_image = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    pxc, pyc = np.clip(px, 0, nx - 1), np.clip(py, 0, ny - 1)
    within = dx**2 + dy**2 <= radius**2
    usable = within & on_image & ~bad[pyc, pxc]
    model = fit.flux[chosen, None, None] * moffat_pixels(dx, dy, psf.fwhm, psf.beta)
    modelled = np.sum(np.where(usable, model, 0.0), axis=(1, 2))
    coverage = modelled / np.maximum(np.sum(np.where(within, model, 0.0), axis=(1, 2)), 1e-30)
    left = np.sum(np.where(usable, residual[pyc, pxc], 0.0), axis=(1, 2))
    variance = np.sum(np.where(usable, sky_rms[pyc, pxc] ** 2 + model / gain, 0.0), axis=(1, 2))
    enough = (coverage > MIN_COVERAGE) & (modelled > 0)
    ratio = 1.0 + left[enough] / modelled[enough]
    error = np.hypot(np.sqrt(variance[enough]) / modelled[enough], FLOOR)
    return ratio, error
