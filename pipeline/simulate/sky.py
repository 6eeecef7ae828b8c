"""The simulated sky: stars, galaxies and supernova-like transients as pure functions of position.

The sky is cut into HEALPix cells (nested, nside 256, about 0.23 deg across); each cell's objects
are drawn from a generator seeded by (catalog seed, kind, cell), so any two exposures that
overlap see the same objects, whatever order they are simulated in and on whichever worker.
Star counts follow log N(<m) rising 0.3 dex per magnitude, denser towards the Galactic plane;
galaxy counts rise 0.45 dex per magnitude. The density of transients is far above nature's so
that a few square degrees hold some; the light curves are SN-like (fast rise, slower decline).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import healpy as hp
import numpy as np

NSIDE = 256
SUBPIXEL_ORDER = 12
"""Positions are drawn as random sub-cells 2^12 times finer (0.2"), plus a jitter within."""

STAR_MAG_RANGE = (8.0, 23.5)
GALAXY_MAG_RANGE = (15.0, 22.5)
TRANSIENT_RATE = 6.0
"""Transients per cell per year (enriched: nature's is about a thousand times lower)."""
TRANSIENT_EPOCH_MJD = 61000.0
"""Peak times are drawn within a year of this (2025-12-19 .. 2026-12-19) plus spill-over."""
TRANSIENT_SPAN_DAYS = 400.0

VARIABLE_FRACTION = 0.02
"""Fraction of stars that vary (sinusoids of 0.05-0.6 mag semi-amplitude, periods 0.1-31.6 d,
log-uniform). A survey may ask for more (``variable_fraction``) to study light curves: the draws
are the same, only the share of stars that vary changes, so the sky is otherwise identical."""

_KIND_STAR, _KIND_GALAXY, _KIND_TRANSIENT = 1, 2, 3
BANDS = ("zg", "zr", "zi")

# ICRS -> Galactic rotation (Hipparcos), rows are the Galactic axes in ICRS.
_GALACTIC = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [0.4941094278755837, -0.4448296299600112, 0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669],
    ]
)


def galactic_latitude(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    vec = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)
    return np.degrees(np.arcsin(np.clip(vec @ _GALACTIC[2], -1, 1)))


@dataclass(frozen=True)
class Stars:
    id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    mag: dict[str, np.ndarray]
    """Mean magnitude per filtercode."""
    var_amplitude: np.ndarray
    """Semi-amplitude in magnitudes; 0 for constant stars."""
    var_period: np.ndarray
    """days."""
    var_phase: np.ndarray

    def __len__(self) -> int:
        return int(self.id.size)

    def mag_at(self, band: str, mjd: float) -> np.ndarray:
        phase = 2 * np.pi * (mjd / np.where(self.var_period > 0, self.var_period, 1.0))
        return self.mag[band] + self.var_amplitude * np.sin(phase + self.var_phase)


@dataclass(frozen=True)
class Galaxies:
    id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    mag: dict[str, np.ndarray]
    r_eff: np.ndarray
    """Half-light radius, arcsec."""
    sersic_n: np.ndarray
    axis_ratio: np.ndarray
    position_angle: np.ndarray
    """deg east of north."""

    def __len__(self) -> int:
        return int(self.id.size)


@dataclass(frozen=True)
class Transients:
    id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    peak_mjd: np.ndarray
    peak_mag: np.ndarray
    """r-band peak magnitude."""
    rise_days: np.ndarray
    decline: np.ndarray
    """mag/day after peak in r."""

    def __len__(self) -> int:
        return int(self.id.size)

    def mag_at(self, band: str, mjd: float) -> np.ndarray:
        """Magnitude at a time; +inf before explosion. Rise is a parabola in flux over
        rise_days, decline is linear in magnitude; g fades faster and i slower than r."""
        t = mjd - self.peak_mjd
        rising = t < 0
        fraction = np.clip(1 - (t / self.rise_days) ** 2, 0, 1)
        with np.errstate(divide="ignore"):
            rise_mag = self.peak_mag - 2.5 * np.log10(fraction)
        slope = self.decline * {"zg": 1.4, "zr": 1.0, "zi": 0.8}[band]
        mag = np.where(rising, rise_mag, self.peak_mag + slope * np.maximum(t, 0))
        colour = {"zg": -0.1, "zr": 0.0, "zi": 0.15}[band] + np.where(
            rising, 0.0, {"zg": 0.02, "zr": 0.0, "zi": -0.005}[band] * np.maximum(t, 0)
        )
        return mag + colour


def _rng(seed: int, kind: int, cell: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, kind, cell, NSIDE]))


def _positions(rng: np.random.Generator, cell: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions inside a nested HEALPix cell: random equal-area sub-cells, jittered."""
    fine = NSIDE << SUBPIXEL_ORDER
    sub = cell * (4**SUBPIXEL_ORDER) + rng.integers(0, 4**SUBPIXEL_ORDER, size=count)
    ra, dec = hp.pix2ang(fine, sub, nest=True, lonlat=True)
    half = np.degrees(hp.nside2resol(fine)) / 2
    dec = np.clip(dec + rng.uniform(-half, half, count), -90, 90)
    ra = (ra + rng.uniform(-half, half, count) / np.maximum(np.cos(np.radians(dec)), 1e-3)) % 360
    return ra, dec


def _power_law_mags(rng: np.random.Generator, count: int, slope: float, lo: float, hi: float):
    """Magnitudes with dN/dm proportional to 10^(slope m) between lo and hi."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.uniform(0, 1, count) * (b - a)) / slope


def _cell_area_deg2() -> float:
    return hp.nside2pixarea(NSIDE, degrees=True)


def _cell_centre(cell: int) -> tuple[float, float]:
    ra, dec = hp.pix2ang(NSIDE, cell, nest=True, lonlat=True)
    return float(ra), float(dec)


def star_density_20(b: float) -> float:
    """Stars per square degree brighter than magnitude 20 (r) at Galactic latitude b."""
    return 1000.0 + 12000.0 * np.exp(-abs(b) / 12.0)


@lru_cache(maxsize=4096)
def stars_in_cell(seed: int, cell: int, variable_fraction: float = VARIABLE_FRACTION) -> Stars:
    rng = _rng(seed, _KIND_STAR, cell)
    ra0, dec0 = _cell_centre(cell)
    b = float(galactic_latitude(np.array(ra0), np.array(dec0)))
    lo, hi = STAR_MAG_RANGE
    expected = star_density_20(b) * 10 ** (0.3 * (hi - 20)) * _cell_area_deg2()
    count = int(rng.poisson(expected))
    ra, dec = _positions(rng, cell, count)
    r = _power_law_mags(rng, count, 0.3, lo, hi)
    # Two stellar populations: blue turn-off stars and red dwarfs.
    red = rng.uniform(0, 1, count) < 0.35
    g_r = np.where(red, rng.normal(1.3, 0.15, count), rng.normal(0.55, 0.2, count))
    g_r = np.clip(g_r, -0.3, 1.7)
    r_i = np.clip(0.42 * g_r - 0.05 + rng.normal(0, 0.04, count), -0.2, 1.2)
    variable = rng.uniform(0, 1, count) < variable_fraction
    amplitude = np.where(variable, rng.uniform(0.05, 0.6, count), 0.0)
    period = np.where(variable, 10 ** rng.uniform(-1, 1.5, count), 0.0)
    phase = rng.uniform(0, 2 * np.pi, count)
    ids = (np.int64(cell) << 20) + np.arange(count, dtype=np.int64)
    return Stars(
        id=ids,
        ra=ra,
        dec=dec,
        mag={"zg": r + g_r, "zr": r, "zi": r - r_i},
        var_amplitude=amplitude,
        var_period=period,
        var_phase=phase,
    )


@lru_cache(maxsize=4096)
def galaxies_in_cell(seed: int, cell: int) -> Galaxies:
    rng = _rng(seed, _KIND_GALAXY, cell)
    lo, hi = GALAXY_MAG_RANGE
    expected = 260.0 * 10 ** (0.45 * (hi - 20)) * _cell_area_deg2()
    count = int(rng.poisson(expected))
    ra, dec = _positions(rng, cell, count)
    r = _power_law_mags(rng, count, 0.45, lo, hi)
    g_r = rng.normal(0.75, 0.25, count)
    r_i = rng.normal(0.35, 0.1, count)
    r_eff = np.clip(10 ** (rng.normal(0.15, 0.2, count)) * 10 ** (-0.15 * (r - 19)), 0.3, 15)
    sersic_n = np.where(rng.uniform(0, 1, count) < 0.7, 1.0, 4.0)
    ids = (np.int64(cell) << 20) + (1 << 19) + np.arange(count, dtype=np.int64)
    return Galaxies(
        id=ids,
        ra=ra,
        dec=dec,
        mag={"zg": r + g_r, "zr": r, "zi": r - r_i},
        r_eff=r_eff,
        sersic_n=sersic_n,
        axis_ratio=rng.uniform(0.3, 1.0, count),
        position_angle=rng.uniform(0, 180, count),
    )


@lru_cache(maxsize=4096)
def transients_in_cell(seed: int, cell: int, rate: float = TRANSIENT_RATE) -> Transients:
    """The cell's transients; ``rate`` per cell per year (a denser sky of transients gives the
    real/bogus classifier and the completeness tests more to work with)."""
    rng = _rng(seed, _KIND_TRANSIENT, cell)
    count = int(rng.poisson(rate * TRANSIENT_SPAN_DAYS / 365.25))
    galaxies = galaxies_in_cell(seed, cell)
    ra, dec = _positions(rng, cell, count)
    if len(galaxies) and count:
        # Most sit in a host: offset from a random galaxy by about its half-light radius.
        host = rng.integers(0, len(galaxies), count)
        hosted = rng.uniform(0, 1, count) < 0.85
        offset = rng.normal(0, 1, (2, count)) * galaxies.r_eff[host] / 3600.0
        cos_dec = np.maximum(np.cos(np.radians(galaxies.dec[host])), 1e-3)
        ra = np.where(hosted, (galaxies.ra[host] + offset[0] / cos_dec) % 360, ra)
        dec = np.where(hosted, galaxies.dec[host] + offset[1], dec)
    ids = (np.int64(cell) << 20) + (3 << 18) + np.arange(count, dtype=np.int64)
    return Transients(
        id=ids,
        ra=ra,
        dec=dec,
        peak_mjd=TRANSIENT_EPOCH_MJD - 35 + rng.uniform(0, TRANSIENT_SPAN_DAYS, count),
        peak_mag=rng.uniform(17.0, 20.0, count),
        rise_days=rng.uniform(12, 22, count),
        decline=rng.uniform(0.015, 0.05, count),
    )


def cells_in_polygon(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Cells touching a convex spherical polygon given by its corners (deg)."""
    r, d = np.radians(ra), np.radians(dec)
    vertices = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)
    return hp.query_polygon(NSIDE, vertices, inclusive=True, nest=True)


def _concat(items, cls):
    if not items:
        empty = np.zeros(0)
        values = {}
        for name in cls.__dataclass_fields__:
            values[name] = {b: empty for b in BANDS} if name == "mag" else empty
        values["id"] = np.zeros(0, dtype=np.int64)
        return cls(**values)
    values = {}
    for name in cls.__dataclass_fields__:
        if name == "mag":
            values[name] = {b: np.concatenate([it.mag[b] for it in items]) for b in BANDS}
        else:
            values[name] = np.concatenate([getattr(it, name) for it in items])
    return cls(**values)


def stars_in_cells(seed: int, cells, variable_fraction: float = VARIABLE_FRACTION) -> Stars:
    return _concat([stars_in_cell(seed, int(c), variable_fraction) for c in cells], Stars)


def galaxies_in_cells(seed: int, cells) -> Galaxies:
    return _concat([galaxies_in_cell(seed, int(c)) for c in cells], Galaxies)


def transients_in_cells(seed: int, cells, rate: float = TRANSIENT_RATE) -> Transients:
    return _concat([transients_in_cell(seed, int(c), rate) for c in cells], Transients)
