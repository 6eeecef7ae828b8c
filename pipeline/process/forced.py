"""Forced photometry: the PSF-fit flux at a fixed position on a difference image.

ZTF's forced-photometry service (ZFPS, Masci et al. 2023) fits the difference image's PSF at a
position given by the user, not found by detection, on every epoch: a light curve below the
detection limit, with negative fluxes where the source was fainter than in the reference. Here
the fit is the pipeline's own (``psf.fit_sources`` with the position held fixed: the same
pixel-integrated Moffat and the same sky-weighted linear flux as the candidates' ``magpsf``),
on a stamp of the difference around the position, after the stamp's local background (a
clipped median of an annulus around it) is taken off.

The noise of a difference image is correlated (resampling and the matching kernel): a
PSF-weighted sum fluctuates ``noise_correlation`` times more than independent pixels of its
rms would make it (the ``NOISECOR`` the pipeline measured and wrote into the difference's
header); the flux error carries that factor, and the background's own uncertainty.

Flux is in the difference image's units (DN), on the scale of its zero point (``MAGZP``,
ZFPS's ``zpdiff``): a source of flux F has magnitude zpdiff - 2.5 log10(F).

Pure: arrays in, a ``ForcedFlux`` out; reading files and the archive is the service's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from astropy.stats import sigma_clipped_stats

from skyvault.pipeline.process.psf import FIT_RADIUS_FWHM, Psf, fit_sources
from skyvault.pipeline.psfmodel import moffat_pixels


class ForcedStatus(IntEnum):
    """How a measurement went (ZFPS's ``procstatus``; the numbers are ZFPS's where it has
    one for the case, ours otherwise). The most serious one applies."""

    OK = 0
    BAD_PIXELS = 56
    """Pixels without a value in the difference lie within one FWHM of the position (ZFPS 56:
    the measurement may be impacted by bad pixels)."""
    NEAR_EDGE = 61
    """The fitting stamp reaches beyond the image (ZFPS 61: too close to the edge); the flux
    rests on the pixels inside."""
    NO_CALIBRATION = 62
    """The difference has no PSF model or zero point to measure with."""
    NO_PIXELS = 63
    """No usable pixel under the PSF (off the image, or all masked): no flux."""
    UNREADABLE = 64
    """The difference's file could not be read (the archive's fault, logged): no flux."""


BACKGROUND_INNER_FWHM = 3.0
"""The background annulus starts this many FWHM from the position: the PSF's wings there hold
under 1% of a source's light, so a bright transient does not lift its own background."""
BACKGROUND_OUTER_FWHM = 8.0
"""...and the stamp reaches this far (at least ``MIN_HALF_SIZE`` pixels): some 700 pixels of
annulus for a 2-pixel FWHM, whose median moves the flux by a few hundredths of its error."""
MIN_HALF_SIZE = 12
MIN_BACKGROUND_PIXELS = 50
"""Fewer usable annulus pixels than this (a stamp mostly off the image or masked) and the
background is taken as zero, as the difference's construction makes it on average."""
CLIP_SIGMA = 3.0
MEDIAN_EFFICIENCY = 1.2533
"""The standard error of a median of Gaussian values is this times that of their mean."""


@dataclass(frozen=True)
class ForcedFlux:
    """One forced measurement (ZFPS's ``forcediffimflux`` and its companions)."""

    flux: float
    """DN on the difference's zero point; NaN without usable pixels."""
    fluxerr: float
    """1-sigma, correlated noise and the background's uncertainty included; NaN with no flux."""
    chisq: float
    """Reduced chi-square of the PSF model against the stamp (about 1 for a point source or
    nothing; large on a residual that is not a point source)."""
    background: float
    """The local background level taken off the stamp, DN per pixel."""
    pixel_rms: float
    """The stamp's per-pixel noise (clipped, robust), before the correlation factor."""
    npix_bad: int
    """Pixels without a value within one FWHM of the position."""
    status: ForcedStatus

    @property
    def snr(self) -> float:
        return self.flux / self.fluxerr if self.fluxerr > 0 else float("nan")


def stamp_half_size(psf: Psf) -> int:
    """Half-size (pixels) of the cutout a measurement with ``psf`` needs around the position:
    the caller cuts [x - h, x + h] x [y - h, y + h] out of the difference, clipped to the
    image (what lies beyond is off the image)."""
    return max(MIN_HALF_SIZE, int(np.ceil(BACKGROUND_OUTER_FWHM * psf.fwhm)))


def fit_radius(psf: Psf) -> int:
    """The half-size of the square the flux is fitted on (``psf.fit_sources``'s)."""
    return max(3, int(np.ceil(FIT_RADIUS_FWHM * psf.fwhm)))


def no_measurement(status: ForcedStatus) -> ForcedFlux:
    nan = float("nan")
    return ForcedFlux(nan, nan, nan, nan, nan, 0, status)


def forced_flux(pixels: np.ndarray, x: float, y: float, psf: Psf, *, gain: float,
                noise_correlation: float = 1.0,
                unusable: np.ndarray | None = None,
                fallback_rms: float | None = None) -> ForcedFlux:
    """The PSF-fit flux at (x, y) (0-based, in ``pixels``' own frame) on a stamp of a
    difference image.

    ``unusable`` marks pixels without a value (default: none but non-finite ones); ``gain``
    (e-/DN) gives a source its own Poisson noise; ``noise_correlation`` is the difference's
    NOISECOR; ``fallback_rms`` the per-pixel rms to use where the stamp has too few background
    pixels to measure its own (the difference's SKYRMS / NOISECOR)."""
    data = np.asarray(pixels, dtype=np.float64)
    bad = ~np.isfinite(data)
    if unusable is not None:
        bad |= unusable
    data = np.where(bad, 0.0, data)
    ny, nx = data.shape
    if not (np.isfinite(x) and np.isfinite(y)) or psf.fwhm <= 0 or not np.isfinite(psf.fwhm):
        return no_measurement(ForcedStatus.NO_CALIBRATION)
    if not (-0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5):
        return no_measurement(ForcedStatus.NO_PIXELS)
    yy, xx = np.mgrid[0:ny, 0:nx]
    distance = np.hypot(xx - x, yy - y)
    level, rms, count = _background(data, ~bad & (distance > BACKGROUND_INNER_FWHM * psf.fwhm))
    if count < MIN_BACKGROUND_PIXELS:
        if fallback_rms is None or not np.isfinite(fallback_rms) or fallback_rms <= 0:
            return no_measurement(ForcedStatus.NO_CALIBRATION)
        level, rms = 0.0, float(fallback_rms)
    sky_variance = (rms * noise_correlation) ** 2
    xs, ys = np.array([float(x)]), np.array([float(y)])
    fit = fit_sources(data - level, sky_variance, bad, xs, ys, psf, gain, fit_position=False)
    fluxerr = float(fit.fluxerr[0])
    if not np.isfinite(fluxerr):
        return ForcedFlux(float("nan"), float("nan"), float("nan"), level, rms,
                          int(fit.npix_bad[0]), ForcedStatus.NO_PIXELS)
    if count >= MIN_BACKGROUND_PIXELS:
        # A background off by b moves the flux by b sum(P) / sum(P^2) over the fitted pixels.
        spread = MEDIAN_EFFICIENCY * rms * noise_correlation / np.sqrt(count)
        fluxerr = float(np.hypot(fluxerr, spread * _background_leverage(bad, x, y, psf)))
    status = ForcedStatus.OK
    if fit.npix_bad[0] > 0:
        status = ForcedStatus.BAD_PIXELS
    radius = fit_radius(psf)
    ix, iy = int(np.rint(x)), int(np.rint(y))
    if ix - radius < 0 or iy - radius < 0 or ix + radius >= nx or iy + radius >= ny:
        status = ForcedStatus.NEAR_EDGE
    # fit_sources' chi-square is against the correlation-inflated variance; against the
    # pixels' own it is about 1 where the model fits.
    chisq = float(fit.chi[0]) * noise_correlation**2
    return ForcedFlux(float(fit.flux[0]), fluxerr, chisq, level, rms, int(fit.npix_bad[0]),
                      status)


def _background(data: np.ndarray, annulus: np.ndarray) -> tuple[float, float, int]:
    """Clipped median and robust rms of the annulus' pixels, and how many there are."""
    values = data[annulus]
    if values.size < MIN_BACKGROUND_PIXELS:
        return 0.0, float("nan"), int(values.size)
    _mean, median, spread = sigma_clipped_stats(values, sigma=CLIP_SIGMA, maxiters=5,
                                                stdfunc="mad_std")
    return float(median), float(spread), int(values.size)


def _background_leverage(bad: np.ndarray, x: float, y: float, psf: Psf) -> float:
    """sum(P) / sum(P^2) over the usable pixels of the fitting square: what a unit error of
    the background level does to the fitted flux."""
    radius = fit_radius(psf)
    ix, iy = int(np.rint(x)), int(np.rint(y))
    ny, nx = bad.shape
    rows = np.arange(iy - radius, iy + radius + 1)
    cols = np.arange(ix - radius, ix + radius + 1)
    inside_rows = rows[(rows >= 0) & (rows < ny)]
    inside_cols = cols[(cols >= 0) & (cols < nx)]
    model = moffat_pixels(inside_cols[None, :] - x, inside_rows[:, None] - y,
                          psf.fwhm, psf.beta)
    usable = ~bad[np.ix_(inside_rows, inside_cols)]
    squares = float(np.sum(np.where(usable, model**2, 0.0)))
    return float(np.sum(np.where(usable, model, 0.0))) / squares if squares > 0 else 0.0
