"""Forced photometry's measurement (``pipeline.process.forced``) against an independent
computation: stamps drawn here with a Moffat profile integrated over 11 x 11 sub-pixels
(written out from its definition, not the pipeline's 3 x 3 ``moffat_pixels``), fitted by brute
force with numpy's least squares (flux and background together), and the scatter of many noise
draws against the error the measurement reports."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.pipeline.process.forced import (
    ForcedStatus,
    fit_radius,
    forced_flux,
    stamp_half_size,
)
from skyvault.pipeline.process.psf import Psf

PSF = Psf(2.2, 3.0, 0)
GAIN = 6.0


def moffat_stamp(shape: tuple[int, int], x: float, y: float, fwhm: float, beta: float,
                 sub: int = 11) -> np.ndarray:
    """Fraction of a unit-flux Moffat star in each pixel, by sub x sub point sampling."""
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    ny, nx = shape
    rows, cols = np.mgrid[0:ny, 0:nx]
    total = np.zeros(shape)
    for oy in offsets:
        for ox in offsets:
            r2 = (cols + ox - x) ** 2 + (rows + oy - y) ** 2
            total += (beta - 1.0) / (np.pi * alpha**2) * (1.0 + r2 / alpha**2) ** (-beta)
    return total / sub**2


def brute_force_flux(image: np.ndarray, bad: np.ndarray, x: float, y: float,
                     psf: Psf) -> tuple[float, float]:
    """Flux and background fitted together by linear least squares on the fit square, with
    the independent profile (equal weights: the sky-limited case)."""
    radius = fit_radius(psf)
    ix, iy = int(np.rint(x)), int(np.rint(y))
    window = (slice(iy - radius, iy + radius + 1), slice(ix - radius, ix + radius + 1))
    model = moffat_stamp(image.shape, x, y, psf.fwhm, psf.beta)[window]
    use = ~bad[window]
    design = np.column_stack([model[use], np.ones(int(use.sum()))])
    (flux, background), *_ = np.linalg.lstsq(design, image[window][use], rcond=None)
    return float(flux), float(background)


def test_the_flux_of_a_noiseless_star_is_the_brute_force_fit() -> None:
    half = stamp_half_size(PSF)
    shape = (2 * half + 1, 2 * half + 1)
    x, y = half + 0.3, half - 0.2
    image = 5000.0 * moffat_stamp(shape, x, y, PSF.fwhm, PSF.beta) + 12.5
    bad = np.zeros(shape, dtype=bool)
    bad[half + 6, :] = True  # a masked row outside the core
    image[bad] = 0.0
    measured = forced_flux(image, x, y, PSF, gain=GAIN, unusable=bad, fallback_rms=1.0)
    flux, background = brute_force_flux(image, bad, x, y, PSF)
    assert background == pytest.approx(12.5, abs=0.05)
    assert measured.background == pytest.approx(12.5, abs=0.05)
    # The pipeline's model samples each pixel 3 x 3, this one 11 x 11: at a 2.2-pixel FWHM
    # the two profiles' fitted fluxes differ by 0.4% (far below any difference's noise).
    assert flux == pytest.approx(5000.0, rel=1e-4)
    assert measured.flux == pytest.approx(flux, rel=0.006)
    assert measured.status is ForcedStatus.OK


def test_errors_match_the_scatter_of_noise_draws() -> None:
    """500 stamps of white noise (rms 10 DN, and the star's own Poisson noise) with a star at
    S/N ~ 8, and 500 with none: the
    fluxes scatter as the reported errors say (pull mean ~0, width ~1), and the error is the
    sky-limited one, sigma / sqrt(sum P^2) with the star's own Poisson noise added."""
    rng = np.random.default_rng(17)
    half = stamp_half_size(PSF)
    shape = (2 * half + 1, 2 * half + 1)
    x, y = half - 0.4, half + 0.1
    profile = moffat_stamp(shape, x, y, PSF.fwhm, PSF.beta)
    sigma = 10.0
    radius = fit_radius(PSF)
    window = profile[half - radius:half + radius + 1, half - radius:half + radius + 1]
    sky_limited = sigma / np.sqrt(np.sum(window**2))
    for true_flux in (8.0 * sky_limited, 0.0):
        pulls, errors = [], []
        for _ in range(500):
            noise = np.sqrt(sigma**2 + true_flux * profile / GAIN)
            image = true_flux * profile + rng.normal(0.0, 1.0, shape) * noise + 3.0
            measured = forced_flux(image, x, y, PSF, gain=GAIN)
            pulls.append((measured.flux - true_flux) / measured.fluxerr)
            errors.append(measured.fluxerr)
        pulls = np.array(pulls)
        assert abs(pulls.mean()) < 0.15, true_flux
        assert 0.9 < pulls.std() < 1.1, true_flux
        # The star's own Poisson noise adds sum(P^3) F / gain / sum(P^2)^2 in quadrature.
        poisson = np.sqrt(true_flux / GAIN * np.sum(window**3)) / np.sum(window**2)
        expected = np.hypot(sky_limited, poisson)
        assert np.median(errors) == pytest.approx(expected, rel=0.06)


def test_correlated_noise_widens_the_error_by_its_factor() -> None:
    rng = np.random.default_rng(3)
    half = stamp_half_size(PSF)
    image = rng.normal(0.0, 5.0, (2 * half + 1, 2 * half + 1))
    plain = forced_flux(image, half, half, PSF, gain=GAIN)
    correlated = forced_flux(image, half, half, PSF, gain=GAIN, noise_correlation=1.7)
    assert correlated.flux == pytest.approx(plain.flux)
    assert correlated.fluxerr == pytest.approx(1.7 * plain.fluxerr, rel=1e-6)


def test_statuses_say_what_limited_the_measurement() -> None:
    half = stamp_half_size(PSF)
    shape = (2 * half + 1, 2 * half + 1)
    image = 3000.0 * moffat_stamp(shape, half, half, PSF.fwhm, PSF.beta)
    core = np.zeros(shape, dtype=bool)
    core[half, half + 1] = True
    assert forced_flux(image, half, half, PSF, gain=GAIN, unusable=core).status \
        is ForcedStatus.BAD_PIXELS
    # Near the image's edge: the cutout stops two pixels beyond the position.
    edge = forced_flux(image[:, : half + 3], half, half, PSF, gain=GAIN)
    assert edge.status is ForcedStatus.NEAR_EDGE
    assert edge.flux == pytest.approx(3000.0, rel=0.02)
    everything = np.ones(shape, dtype=bool)
    gone = forced_flux(image, half, half, PSF, gain=GAIN, unusable=everything,
                       fallback_rms=1.0)
    assert gone.status is ForcedStatus.NO_PIXELS and np.isnan(gone.flux)
    outside = forced_flux(image, -5.0, half, PSF, gain=GAIN)
    assert outside.status is ForcedStatus.NO_PIXELS
    unknown = forced_flux(image, half, half, Psf(float("nan"), 3.0, 0), gain=GAIN)
    assert unknown.status is ForcedStatus.NO_CALIBRATION
