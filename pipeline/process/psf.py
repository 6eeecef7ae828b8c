"""The PSF of an image, and PSF-fit photometry.

The model is the pixel-integrated Moffat of ``skyvault.pipeline.psfmodel`` with a FWHM and beta
fitted to bright isolated stars. PSF photometry fits flux and position of every source at once,
vectorised: each source's stamp is a row of an (n, k) array and Gauss-Newton steps solve n
3 x 3 systems together. A second pass subtracts the fitted neighbours before refitting, which
keeps blended pairs honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from skyvault.pipeline.psfmodel import (
    add_point_sources,
    moffat_alpha,
    moffat_pixels,
    moffat_pixels_derivatives,
    noise_equivalent_area,
)


class PsfError(RuntimeError):
    """Too few usable stars to measure the PSF."""


@dataclass(frozen=True)
class Psf:
    fwhm: float
    """pixels."""
    beta: float
    nstars: int

    @property
    def noise_area(self) -> float:
        return noise_equivalent_area(self.fwhm, self.beta)

    def fraction_within(self, radius: float) -> float:
        """Fraction of a star's light inside a circular aperture of ``radius`` pixels."""
        alpha2 = moffat_alpha(self.fwhm, self.beta) ** 2
        return float(1 - (1 + radius**2 / alpha2) ** (1 - self.beta))


@dataclass
class PsfFit:
    x: np.ndarray
    """0-based pixel positions."""
    y: np.ndarray
    flux: np.ndarray
    fluxerr: np.ndarray
    chi: np.ndarray
    """Reduced chi-square of the stamp."""
    sharpness: np.ndarray
    """Excess of the central 3 x 3 pixels over the model, in units of the flux: about 0 for
    stars, negative for extended sources, positive for cosmic-ray-like spikes."""
    npix_bad: np.ndarray
    """Unusable pixels within one FWHM of the source."""
    converged: np.ndarray


FIT_RADIUS_FWHM = 2.0
"""Half-size of the stamp a source's flux is fitted on, in FWHM."""

SYSTEMATIC_FRACTION = 0.01
"""Fractional error added to every model pixel: flat-field noise and the limits of the model
dominate the Poisson noise of bright stars, which would otherwise steer every fit."""


def _variance(sky_var, model: np.ndarray, gain: float) -> np.ndarray:
    source = np.maximum(model, 0)
    return sky_var + source / gain + (SYSTEMATIC_FRACTION * source) ** 2


def _stamps(image: np.ndarray, x: np.ndarray, y: np.ndarray, radius: int):
    offsets = np.arange(-radius, radius + 1)
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    px = ix[:, None, None] + offsets[None, None, :]
    py = iy[:, None, None] + offsets[None, :, None]
    px, py = np.broadcast_arrays(px, py)
    inside = (px >= 0) & (px < image.shape[1]) & (py >= 0) & (py < image.shape[0])
    pxc = np.clip(px, 0, image.shape[1] - 1)
    pyc = np.clip(py, 0, image.shape[0] - 1)
    return px, py, pxc, pyc, inside


def fit_sources(
    image: np.ndarray,
    variance_sky: np.ndarray | float,
    bad: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    psf: Psf,
    gain: float,
    iterations: int = 5,
    fit_position: bool = True,
    radius_fwhm: float = FIT_RADIUS_FWHM,
) -> PsfFit:
    """PSF-fit flux (and position) of sources on a background-subtracted image.

    ``variance_sky`` is the background variance (DN^2) per pixel or one value; the sources' own
    Poisson noise is added from the model. ``bad`` marks pixels given no weight.
    """
    n = x.size
    radius = max(3, int(np.ceil(radius_fwhm * psf.fwhm)))
    if n == 0:
        empty = np.zeros(0)
        return PsfFit(empty, empty, empty, empty, empty, empty, empty.astype(int), empty > 0)
    px, py, pxc, pyc, inside = _stamps(image, x, y, radius)
    data = image[pyc, pxc].astype(np.float64)
    sky_var = (
        np.broadcast_to(variance_sky, image.shape)[pyc, pxc]
        if np.ndim(variance_sky)
        else np.full(data.shape, float(variance_sky))
    )
    usable = inside & ~bad[pyc, pxc]
    x0, y0 = x.astype(np.float64).copy(), y.astype(np.float64).copy()
    flux = np.maximum(np.sum(np.where(usable, data, 0), axis=(1, 2)), 1.0)
    converged = np.ones(n, dtype=bool)
    steps = iterations if fit_position else 1
    for _ in range(steps):
        dx, dy = px - x0[:, None, None], py - y0[:, None, None]
        if fit_position:
            model, dmx, dmy = moffat_pixels_derivatives(dx, dy, psf.fwhm, psf.beta)
        else:
            model = moffat_pixels(dx, dy, psf.fwhm, psf.beta)
        weight = np.where(usable, 1.0 / _variance(sky_var, flux[:, None, None] * model, gain), 0.0)
        if not fit_position:
            break
        residual = data - flux[:, None, None] * model
        jac = np.stack(
            [model, flux[:, None, None] * dmx, flux[:, None, None] * dmy], axis=-1
        ).reshape(n, -1, 3)
        w = weight.reshape(n, -1)
        normal = np.einsum("nki,nk,nkj->nij", jac, w, jac)
        rhs = np.einsum("nki,nk,nk->ni", jac, w, residual.reshape(n, -1))
        normal += (
            np.eye(3)[None]
            * 1e-9
            * np.maximum(np.trace(normal, axis1=1, axis2=2), 1e-30)[:, None, None]
        )
        try:
            delta = np.linalg.solve(normal, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            delta = np.zeros((n, 3))
        delta = np.nan_to_num(delta)
        flux = flux + delta[:, 0]
        shift = np.clip(delta[:, 1:], -0.5, 0.5)
        x0 += shift[:, 0]
        y0 += shift[:, 1]
    # Sources that wandered far from their detection keep the detection position.
    wandered = (np.hypot(x0 - x, y0 - y) > max(1.5, psf.fwhm)) | ~np.isfinite(x0 + y0)
    converged &= ~wandered
    x0 = np.where(wandered, x, x0)
    y0 = np.where(wandered, y, y0)
    # Final linear flux at the fitted position, weighted by the sky's variance alone. Weights
    # with the source's own noise would sample a bright star's wings and a faint star's core:
    # a PSF model a little off in shape (beta 2.74 for 3.22 in a sparse quadrant) then made
    # faint stars 3.5% too bright and bright ones 8% too faint, a bias no zero point or
    # aperture correction can take out. With the same weights for all, it is one factor.
    dx, dy = px - x0[:, None, None], py - y0[:, None, None]
    model = moffat_pixels(dx, dy, psf.fwhm, psf.beta)
    sky_weight = np.where(usable, 1.0 / sky_var, 0.0)
    wpp = np.sum(sky_weight * model**2, axis=(1, 2))
    scale = 1.0 / np.maximum(wpp, 1e-30)
    flux = np.where(wpp > 0, np.sum(sky_weight * model * data, axis=(1, 2)) * scale, 0)
    variance = _variance(sky_var, flux[:, None, None] * model, gain)
    spread = np.sum(sky_weight**2 * model**2 * variance, axis=(1, 2))
    fluxerr = np.where(wpp > 0, np.sqrt(spread) * scale, np.inf)
    weight = np.where(usable, 1.0 / variance, 0.0)
    residual = data - flux[:, None, None] * model
    dof = np.maximum(np.sum(usable, axis=(1, 2)) - 3, 1)
    chi = np.sum(weight * residual**2, axis=(1, 2)) / dof
    core = (np.abs(dx) <= 1.5) & (np.abs(dy) <= 1.5)
    sharpness = np.sum(np.where(core & usable, residual, 0), axis=(1, 2)) / np.where(
        flux != 0, np.abs(flux), 1
    )
    near = np.hypot(dx, dy) <= psf.fwhm
    npix_bad = np.sum(near & inside & bad[pyc, pxc], axis=(1, 2))
    return PsfFit(x0, y0, flux, fluxerr, chi, sharpness, npix_bad, converged)


def fitted_flux_ratio(model: Psf, star_fwhm: float, star_beta: float) -> float:
    """The flux a fit with ``model`` gives a noiseless star of unit flux and another Moffat
    shape: the final, sky-weighted linear fit of ``fit_sources`` on its stamp, averaged over
    where the star falls within its pixel. What one shape's aperture correction becomes for
    another: fitted to stars of a shape whose correction is a, a model needs a / this."""
    radius = max(3, int(np.ceil(FIT_RADIUS_FWHM * model.fwhm)))
    grid = np.arange(-radius, radius + 1, dtype=float)
    phase = np.array([0.0, 0.25, 0.5])
    dx = grid[None, None, None, :] - phase[:, None, None, None]
    dy = grid[None, None, :, None] - phase[None, :, None, None]
    fitted = moffat_pixels(dx, dy, model.fwhm, model.beta)
    star = moffat_pixels(dx, dy, star_fwhm, star_beta)
    ratios = np.sum(fitted * star, axis=(2, 3)) / np.sum(fitted * fitted, axis=(2, 3))
    return float(np.mean(ratios))


def fit_sources_deblended(
    image: np.ndarray,
    variance_sky: np.ndarray | float,
    bad: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    psf: Psf,
    gain: float,
    noise: float,
    saturated: np.ndarray | None = None,
) -> PsfFit:
    """Two passes: fit everything, then refit each source with its neighbours' models removed.

    ``saturated`` sources keep their given (extraction) positions and get only a flux, fitted
    to their wings: the clipped plateau is symmetric about the true centre, so the centroid
    holds to a tenth of a pixel, while a position fitted to the wings alone (where the model,
    a default PSF in a sparse field and the neighbours' light are least certain) drifted by
    up to 1.5 pixels on saturated simulated asteroids, and their halo, modelled there, spoilt
    the fits of the stars around them.
    """
    first = fit_sources(image, variance_sky, bad, x, y, psf, gain)
    if saturated is not None and saturated.any():
        fixed = fit_sources(
            image, variance_sky, bad, x[saturated], y[saturated], psf, gain, fit_position=False
        )
        _overwrite(first, fixed, saturated)
    if x.size < 2:
        return first
    everyone = np.zeros(image.shape, dtype=np.float64)
    positive = first.flux > 0
    add_point_sources(
        everyone,
        first.x[positive],
        first.y[positive],
        first.flux[positive],
        psf.fwhm,
        psf.beta,
        noise,
    )
    second = _refit_on_residual(image - everyone, variance_sky, bad, first, psf, gain)
    if saturated is not None and saturated.any():
        _overwrite(second, first, saturated, from_subset=False)
    return second


def _overwrite(fit: PsfFit, other: PsfFit, where: np.ndarray, from_subset: bool = True) -> None:
    """Replace the ``where`` sources' measurements in ``fit`` by those of ``other`` (which
    holds just those sources if ``from_subset``, or all of them)."""
    for name in ("x", "y", "flux", "fluxerr", "chi", "sharpness"):
        values = getattr(other, name)
        getattr(fit, name)[where] = values if from_subset else values[where]


def _refit_on_residual(
    residual_image: np.ndarray,
    variance_sky: np.ndarray | float,
    bad: np.ndarray,
    first: PsfFit,
    psf: Psf,
    gain: float,
) -> PsfFit:
    """Refit each source on (image minus all models) plus its own first-pass model, stamp by
    stamp, so that neighbours are gone but the source itself is whole."""
    n = first.x.size
    radius = max(3, int(np.ceil(FIT_RADIUS_FWHM * psf.fwhm)))
    px, py, pxc, pyc, inside = _stamps(residual_image, first.x, first.y, radius)
    own = moffat_pixels(
        px - first.x[:, None, None], py - first.y[:, None, None], psf.fwhm, psf.beta
    )
    stamps = residual_image[pyc, pxc] + np.where(first.flux > 0, first.flux, 0)[:, None, None] * own
    # Reuse the general fitter on a synthetic image made of the stamps laid side by side.
    size = 2 * radius + 1
    columns = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    mosaic = np.zeros((rows * size, columns * size))
    mosaic_bad = np.ones(mosaic.shape, dtype=bool)
    mosaic_var = np.full(mosaic.shape, 1.0)
    sky_var = (
        np.broadcast_to(variance_sky, residual_image.shape)[pyc, pxc]
        if np.ndim(variance_sky)
        else np.full(stamps.shape, float(variance_sky))
    )
    row, col = np.divmod(np.arange(n), columns)
    ox, oy = col * size, row * size
    ys, xs = np.mgrid[0:size, 0:size]
    target_y = (oy[:, None, None] + ys[None]).reshape(-1)
    target_x = (ox[:, None, None] + xs[None]).reshape(-1)
    mosaic[target_y, target_x] = stamps.reshape(-1)
    mosaic_bad[target_y, target_x] = (~inside | bad[pyc, pxc]).reshape(-1)
    mosaic_var[target_y, target_x] = sky_var.reshape(-1)
    ix, iy = np.rint(first.x).astype(int), np.rint(first.y).astype(int)
    local_x = first.x - ix + radius + ox
    local_y = first.y - iy + radius + oy
    fit = fit_sources(mosaic, mosaic_var, mosaic_bad, local_x, local_y, psf, gain, iterations=2)
    fit.x = fit.x - ox - radius + ix
    fit.y = fit.y - oy - radius + iy
    fit.npix_bad = first.npix_bad
    fit.converged &= first.converged
    return fit


def measure_psf(
    image: np.ndarray,
    variance_sky: float,
    bad: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    gain: float,
    fwhm_guess: float,
) -> Psf:
    """FWHM and beta minimising the total chi-square of PSF fits to the given stars.

    Two rounds: a compact galaxy or an unresolved pair among the stars fits badly whatever
    the PSF, and left in it drags FWHM and beta (which trade against each other) off; stars
    fitting far worse than the median at the first solution are dropped for the second.
    """
    if x.size < 3:
        raise PsfError(f"{x.size} PSF stars; at least 3 are needed")
    chosen = np.arange(x.size)
    start = np.array([fwhm_guess, 3.0])
    for _ in range(2):
        best = _fit_shape(image, variance_sky, bad, x[chosen], y[chosen], gain, start)
        fit = fit_sources(
            image, variance_sky, bad, x, y, Psf(*best, x.size), gain, 3, radius_fwhm=2.5
        )
        typical = float(np.median(fit.chi[chosen]))
        keep = np.flatnonzero(fit.chi < 3.0 * max(typical, 1.0))
        if keep.size < 3 or np.array_equal(keep, chosen):
            break
        chosen, start = keep, best
    return Psf(float(best[0]), float(best[1]), int(chosen.size))


def _fit_shape(image, variance_sky, bad, x, y, gain, start) -> np.ndarray:
    def cost(parameters: np.ndarray) -> float:
        fwhm, beta = parameters
        if not (0.8 < fwhm < 15 and 1.5 < beta < 8):
            return 1e30
        # Stamps out to 2.5 FWHM: the wings tell beta from FWHM, and the flux scale of every
        # PSF fit depends on getting beta right.
        fit = fit_sources(
            image, variance_sky, bad, x, y, Psf(fwhm, beta, x.size), gain, 3, radius_fwhm=2.5
        )
        return float(np.sum(np.clip(fit.chi, 0, 1e4)))

    best = minimize(
        cost,
        start,
        method="Nelder-Mead",
        options={"xatol": 0.01, "fatol": 1e-3 * max(cost(start), 1.0), "maxiter": 80},
    )
    return best.x
