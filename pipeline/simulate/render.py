"""Drawing one readout quadrant as the camera records it: sky and objects through the optics and
the atmosphere's Moffat PSF, times the pixel response, Poisson noise, cosmic rays, then gain,
bias structure, read noise, overscan and saturation, as 16-bit ADU."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve

from skyvault.pipeline.camera import CameraGeometry
from skyvault.pipeline.psfmodel import add_point_sources, moffat_pixels
from skyvault.pipeline.simulate import instrument as inst
from skyvault.pipeline.simulate import sky
from skyvault.pipeline.skygeom import Optics, Pointing

COSMIC_RATE = 1.2e-6
"""Cosmic-ray hits per pixel per second (exposure plus 10 s of readout)."""
READOUT_SECONDS = 10.0
MARGIN = 40
"""Pixels beyond the quadrant edge from which objects still spill light in."""


@dataclass(frozen=True)
class MovingSource:
    """A solar-system object during one exposure: positions sampled across the exposure."""

    name: str
    ra: np.ndarray
    dec: np.ndarray
    mag: float


@dataclass(frozen=True)
class Conditions:
    """What the sky and telescope were really like during one exposure (the truth)."""

    expid: int
    imgtype: str
    filtercode: str
    jd: float
    exptime: float
    pointing: Pointing
    fwhm: float
    """arcsec."""
    beta: float
    sky_mag: float
    """mag per square arcsec."""
    magzp: float
    """True zero point of the flat-fielded image in DN over the exposure."""
    flat_level: float = 0.0
    """Dome-flat illumination, electrons per pixel."""
    bias_drift: float = 0.0
    """ADU added to the whole quadrant, overscan included, in this frame."""
    moving: tuple[MovingSource, ...] = field(default_factory=tuple)
    transient_rate: float = sky.TRANSIENT_RATE
    """Transients per sky cell per year (``sky.transients_in_cell``)."""
    variable_fraction: float = sky.VARIABLE_FRACTION
    """Share of the sky's stars that vary (pipeline/simulate/sky.py)."""

    @property
    def mjd_mid(self) -> float:
        return self.jd - 2400000.5 + self.exptime / 2 / 86400


def _quadrant_cells(optics: Optics, geometry: CameraGeometry, ccdid: int, qid: int):
    nx, ny = geometry.quadrant_nx, geometry.quadrant_ny
    x = np.array([-MARGIN, nx + MARGIN, nx + MARGIN, -MARGIN], dtype=float)
    y = np.array([-MARGIN, -MARGIN, ny + MARGIN, ny + MARGIN], dtype=float)
    ra, dec = optics.pixel_to_sky(ccdid, qid, x, y)
    return sky.cells_in_polygon(ra, dec)


def _inside(x: np.ndarray, y: np.ndarray, geometry: CameraGeometry, margin: float) -> np.ndarray:
    return (
        (x > -margin)
        & (x < geometry.quadrant_nx + margin)
        & (y > -margin)
        & (y < geometry.quadrant_ny + margin)
    )


def _sersic_b(n: float) -> float:
    return 2.0 * n - 1.0 / 3.0 + 0.009876 / n


def _add_galaxies(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    galaxies: sky.Galaxies,
    index: np.ndarray,
    rotation: float,
    pixel_scale: float,
    fwhm: float,
    beta: float,
) -> None:
    """Sersic profiles (n = 1 discs, n = 4 spheroids) convolved with the PSF, each on a stamp."""
    ny, nx = image.shape
    psf_radius = int(np.ceil(4 * fwhm))
    grid = np.arange(-psf_radius, psf_radius + 1, dtype=float)
    kernel = moffat_pixels(grid[None, :], grid[:, None], fwhm, beta)
    oversample = 3
    for k, g in enumerate(index):
        r_e = galaxies.r_eff[g] / pixel_scale
        n = galaxies.sersic_n[g]
        half = int(np.clip(np.ceil(max(4 * r_e * (1.5 if n > 2 else 1.0), 2 * fwhm)), 3, 40))
        ix, iy = int(np.rint(x[k])), int(np.rint(y[k]))
        fine = (np.arange((2 * half + 1) * oversample) + 0.5) / oversample - half - 0.5
        gx, gy = np.meshgrid(fine - (x[k] - ix), fine - (y[k] - iy))
        # Position angle east of north; +x is west, +y north on an unrotated camera.
        theta = np.radians(galaxies.position_angle[g] + rotation)
        major = -gx * np.sin(theta) + gy * np.cos(theta)
        minor = gx * np.cos(theta) + gy * np.sin(theta)
        radius = np.hypot(major, minor / galaxies.axis_ratio[g])
        profile = np.exp(-_sersic_b(n) * ((radius / r_e) ** (1.0 / n) - 1.0))
        size = 2 * half + 1
        stamp = profile.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
        stamp *= flux[k] / stamp.sum()
        stamp = fftconvolve(stamp, kernel, mode="same")
        x0, y0 = ix - half, iy - half
        sx0, sy0 = max(0, -x0), max(0, -y0)
        sx1, sy1 = min(size, nx - x0), min(size, ny - y0)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        image[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] += stamp[sy0:sy1, sx0:sx1]


def _add_cosmic_rays(
    electrons: np.ndarray, seconds: float, rng: np.random.Generator
) -> list[dict]:
    """Hits as short straight tracks; returns each track's ends (0-based pixels), the truth
    that tells a candidate on a missed hit from a real source."""
    ny, nx = electrons.shape
    count = int(rng.poisson(COSMIC_RATE * nx * ny * seconds))
    tracks = []
    for _ in range(count):
        length = rng.uniform(0.5, 7.0)
        angle = rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        steps = np.linspace(0, length, max(2, int(length * 3)))
        px = np.clip((x0 + steps * np.cos(angle)).astype(int), 0, nx - 1)
        py = np.clip((y0 + steps * np.sin(angle)).astype(int), 0, ny - 1)
        pixels = np.unique(py * nx + px)
        electrons.reshape(-1)[pixels] += rng.uniform(1500, 15000, pixels.size)
        tracks.append(
            {"x0": float(px[0]), "y0": float(py[0]), "x1": float(px[-1]), "y1": float(py[-1])}
        )
    return tracks


@dataclass
class QuadrantTruth:
    """What was drawn that tests need beyond the static catalogs."""

    transients: list[dict] = field(default_factory=list)
    asteroids: list[dict] = field(default_factory=list)
    cosmic_rays: list[dict] = field(default_factory=list)
    """Track ends (x0, y0, x1, y1) of every hit."""


def render_quadrant(
    conditions: Conditions,
    seed: int,
    geometry: CameraGeometry,
    ccdid: int,
    qid: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, QuadrantTruth]:
    """The raw quadrant, (ny, nx + overscan) uint16, and the truth about what it holds."""
    instrument = inst.quadrant_instrument(seed, geometry, ccdid, qid)
    ny, nx = geometry.quadrant_ny, geometry.quadrant_nx
    truth = QuadrantTruth()
    electrons = np.zeros((ny, nx), dtype=np.float64)

    if conditions.imgtype == "object":
        pixel_scale = geometry.pixel_scale
        fwhm = conditions.fwhm / pixel_scale
        dn_per_mag0 = 10 ** (0.4 * conditions.magzp)
        to_electrons = dn_per_mag0 * instrument.gain
        sky_e = 10 ** (-0.4 * conditions.sky_mag) * to_electrons * pixel_scale**2
        yy, xx = np.mgrid[0:ny, 0:nx]
        gradient = rng.normal(0, 0.01, 2)
        electrons += sky_e * (1 + gradient[0] * (xx / nx - 0.5) + gradient[1] * (yy / ny - 0.5))
        noise = float(np.sqrt(sky_e + instrument.read_noise**2))

        optics = Optics(geometry, conditions.pointing)
        cells = _quadrant_cells(optics, geometry, ccdid, qid)
        mjd = conditions.mjd_mid
        band = conditions.filtercode

        stars = sky.stars_in_cells(seed, cells, conditions.variable_fraction)
        sx, sy = optics.sky_to_pixel(ccdid, qid, stars.ra, stars.dec)
        keep = _inside(sx, sy, geometry, MARGIN)
        star_flux = 10 ** (-0.4 * stars.mag_at(band, mjd)[keep]) * to_electrons
        add_point_sources(electrons, sx[keep], sy[keep], star_flux, fwhm, conditions.beta, noise)

        transients = sky.transients_in_cells(seed, cells, conditions.transient_rate)
        tx, ty = optics.sky_to_pixel(ccdid, qid, transients.ra, transients.dec)
        tmag = transients.mag_at(band, mjd)
        keep = _inside(tx, ty, geometry, MARGIN) & np.isfinite(tmag)
        add_point_sources(
            electrons,
            tx[keep],
            ty[keep],
            10 ** (-0.4 * tmag[keep]) * to_electrons,
            fwhm,
            conditions.beta,
            noise,
        )
        for k in np.flatnonzero(keep & _inside(tx, ty, geometry, 0)):
            truth.transients.append(
                {
                    "id": int(transients.id[k]),
                    "ra": float(transients.ra[k]),
                    "dec": float(transients.dec[k]),
                    "x": float(tx[k]),
                    "y": float(ty[k]),
                    "mag": float(tmag[k]),
                }
            )

        galaxies = sky.galaxies_in_cells(seed, cells)
        gx, gy = optics.sky_to_pixel(ccdid, qid, galaxies.ra, galaxies.dec)
        keep = np.flatnonzero(_inside(gx, gy, geometry, MARGIN))
        _add_galaxies(
            electrons,
            gx[keep],
            gy[keep],
            10 ** (-0.4 * galaxies.mag[band][keep]) * to_electrons,
            galaxies,
            keep,
            conditions.pointing.rotation,
            pixel_scale,
            fwhm,
            conditions.beta,
        )

        for source in conditions.moving:
            mx, my = optics.sky_to_pixel(ccdid, qid, source.ra, source.dec)
            if not np.any(_inside(mx, my, geometry, MARGIN)):
                continue
            flux = 10 ** (-0.4 * source.mag) * to_electrons / mx.size
            add_point_sources(
                electrons, mx, my, np.full(mx.size, flux), fwhm, conditions.beta, noise
            )
            middle = mx.size // 2
            if _inside(mx[middle : middle + 1], my[middle : middle + 1], geometry, 0)[0]:
                truth.asteroids.append(
                    {
                        "name": source.name,
                        "ra": float(source.ra[middle]),
                        "dec": float(source.dec[middle]),
                        "x": float(mx[middle]),
                        "y": float(my[middle]),
                        "mag": source.mag,
                    }
                )
    elif conditions.imgtype == "flat":
        electrons += conditions.flat_level

    if conditions.imgtype != "bias":
        electrons *= inst.pixel_response(seed, geometry, ccdid, qid, conditions.filtercode)
    electrons = rng.poisson(np.maximum(electrons, 0)).astype(np.float64)
    truth.cosmic_rays = _add_cosmic_rays(electrons, conditions.exptime + READOUT_SECONDS, rng)
    electrons = np.minimum(electrons, instrument.full_well * 1.05)

    gain = instrument.gain
    level = instrument.bias_level + conditions.bias_drift
    adu = electrons / gain + level + inst.bias_structure(seed, geometry, ccdid, qid)
    adu += rng.normal(0, instrument.read_noise / gain, (ny, nx))
    if instrument.hot_columns:
        hot = list(instrument.hot_columns)
        adu[:, hot] += rng.normal(0, inst.HOT_COLUMN_NOISE_ADU, (ny, len(hot)))
    overscan = level + rng.normal(0, instrument.read_noise / gain, (ny, geometry.overscan))
    raw = np.concatenate([adu, overscan], axis=1)
    raw = np.clip(np.rint(raw), 0, instrument.saturate_adu)
    return raw.astype(np.uint16), truth
