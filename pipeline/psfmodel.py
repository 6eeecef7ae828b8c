"""The Moffat point-spread function, integrated over pixels.

The simulator draws stars with it and the processing fits it: a Moffat profile describes
ground-based seeing well (Trujillo et al. 2001), and sampling each pixel 3 x 3 keeps the model
honest for the ~2-pixel FWHM of a 1"/pixel camera in 2" seeing.
"""

from __future__ import annotations

import numpy as np

SUBSAMPLE = (np.arange(3) - 1.0) / 3.0


def moffat_alpha(fwhm: float, beta: float) -> float:
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_pixels(dx: np.ndarray, dy: np.ndarray, fwhm: float, beta: float) -> np.ndarray:
    """Fraction of a unit-flux star falling in the pixel whose centre is (dx, dy) from the star."""
    alpha2 = moffat_alpha(fwhm, beta) ** 2
    norm = (beta - 1.0) / (np.pi * alpha2)
    total = np.zeros(np.broadcast(dx, dy).shape)
    for sx in SUBSAMPLE:
        for sy in SUBSAMPLE:
            r2 = (dx + sx) ** 2 + (dy + sy) ** 2
            total += (1.0 + r2 / alpha2) ** (-beta)
    return total * (norm / SUBSAMPLE.size**2)


def moffat_pixels_derivatives(
    dx: np.ndarray, dy: np.ndarray, fwhm: float, beta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model and its derivatives with respect to the star's x and y position.

    Computed in float32 (the fits need a few significant digits, and half the memory traffic
    is most of the cost); (1 + r^2/a^2)^-beta as exp(-beta log(...)) shares the logarithm."""
    alpha2 = np.float32(moffat_alpha(fwhm, beta) ** 2)
    norm = (beta - 1.0) / (np.pi * float(alpha2))
    dx = np.asarray(dx, dtype=np.float32)
    dy = np.asarray(dy, dtype=np.float32)
    shape = np.broadcast(dx, dy).shape
    value = np.zeros(shape, np.float32)
    d_x = np.zeros(shape, np.float32)
    d_y = np.zeros(shape, np.float32)
    minus_beta = np.float32(-beta)
    factor = np.float32(2.0 * beta) / alpha2
    for sx in SUBSAMPLE.astype(np.float32):
        ux = dx + sx
        ux2 = ux * ux
        for sy in SUBSAMPLE.astype(np.float32):
            uy = dy + sy
            base = 1.0 + (ux2 + uy * uy) / alpha2
            term = np.exp(minus_beta * np.log(base))
            value += term
            # d/dx0 of (1 + ((x - x0)^2 + ..)/a2)^-b = 2 b (x - x0) / a2 * base^(-b-1)
            common = factor * term / base
            d_x += common * ux
            d_y += common * uy
    scale = norm / SUBSAMPLE.size**2
    scale = np.float32(scale)
    return value * scale, d_x * scale, d_y * scale


def enclosed_outside(radius: float, fwhm: float, beta: float) -> float:
    """Fraction of the light beyond ``radius`` pixels (for stamp sizes)."""
    alpha2 = moffat_alpha(fwhm, beta) ** 2
    return float((1.0 + radius**2 / alpha2) ** (1.0 - beta))


def noise_equivalent_area(fwhm: float, beta: float) -> float:
    """1 / sum(P^2): the number of pixels whose sky noise a PSF-fit flux carries."""
    radius = int(np.ceil(8 * fwhm))
    grid = np.arange(-radius, radius + 1, dtype=float)
    p = moffat_pixels(grid[None, :], grid[:, None], fwhm, beta)
    return float(1.0 / np.sum(p**2))


def stamp_radius(flux: np.ndarray, fwhm: float, beta: float, noise: float) -> np.ndarray:
    """Stamp half-size (pixels) for each star: large enough that the light left out is
    below the noise and at most 0.1% of the flux."""
    tiers = np.array([3.0, 6.0, 12.0, 30.0, 60.0]) * max(fwhm, 1.0)
    radius = np.full(np.shape(flux), tiers[-1])
    for tier in tiers[::-1]:
        lost = np.asarray(flux) * enclosed_outside(tier, fwhm, beta)
        good_enough = lost < np.maximum(noise, 1e-3 * np.asarray(flux))
        radius = np.where(good_enough, tier, radius)
    return np.ceil(radius).astype(int)


def add_point_sources(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    fwhm: float,
    beta: float,
    noise: float,
    chunk: int = 4000,
) -> None:
    """Add Moffat stars (0-based pixel positions, flux in image units) to ``image`` in place.
    Stars are drawn in groups of equal stamp size, vectorised, and accumulated with bincount."""
    ny, nx = image.shape
    x, y, flux = (np.asarray(v, dtype=float) for v in (x, y, flux))
    radii = stamp_radius(flux, fwhm, beta, noise)
    flat = image.reshape(-1)
    for radius in np.unique(radii):
        selected = np.flatnonzero(radii == radius)
        offsets = np.arange(-radius, radius + 1)
        per_chunk = max(1, chunk * 169 // (2 * radius + 1) ** 2)
        for start in range(0, selected.size, per_chunk):
            index = selected[start : start + per_chunk]
            ix, iy = np.rint(x[index]).astype(int), np.rint(y[index]).astype(int)
            px = ix[:, None, None] + offsets[None, None, :]
            py = iy[:, None, None] + offsets[None, :, None]
            values = (
                moffat_pixels(px - x[index, None, None], py - y[index, None, None], fwhm, beta)
                * flux[index, None, None]
            )
            inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
            inside = np.broadcast_to(inside, values.shape)
            target = np.broadcast_to(py * nx + px, values.shape)[inside]
            flat += np.bincount(target, weights=values[inside], minlength=flat.size).astype(
                flat.dtype
            )
