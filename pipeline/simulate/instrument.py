"""The camera's signature per readout quadrant: gain, read noise, bias level and structure,
pixel response (flat) per filter, dead and hot columns, saturation.

It depends on the survey seed and the quadrant only, never on the night, so every night sees
the same camera (as a real one is, to first order); calibration frames reveal it to the
processing, which never reads this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from skyvault.pipeline.camera import CameraGeometry, rcid

ADC_MAX = 65535
DEAD_RESPONSE = 0.03
HOT_COLUMN_ADU = 250.0
HOT_COLUMN_NOISE_ADU = 25.0


@dataclass(frozen=True)
class QuadrantInstrument:
    ccdid: int
    qid: int
    gain: float
    """electrons per ADU."""
    read_noise: float
    """electrons."""
    bias_level: float
    """ADU."""
    full_well: float
    """electrons."""
    dead_columns: tuple[int, ...]
    hot_columns: tuple[int, ...]

    @property
    def saturate_adu(self) -> float:
        """Raw level at which pixels clip (full well or the ADC, whichever comes first)."""
        return float(min(ADC_MAX, np.floor(self.bias_level + self.full_well / self.gain)))

    @property
    def bad_columns(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.dead_columns) | set(self.hot_columns)))


def _rng(seed: int, ccdid: int, qid: int, what: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 48, ccdid, qid, what]))


@lru_cache(maxsize=128)
def quadrant_instrument(seed: int, geometry: CameraGeometry, ccdid: int, qid: int):
    rng = _rng(seed, ccdid, qid, 0)
    # About one bad column per 256 columns for the small camera, a few for the full one.
    n_dead = 1 + int(rng.poisson(geometry.quadrant_nx / 2048))
    n_hot = int(rng.integers(0, 2)) + int(rng.poisson(geometry.quadrant_nx / 3072))
    margin = max(8, geometry.quadrant_nx // 16)
    columns = rng.choice(
        np.arange(margin, geometry.quadrant_nx - margin), size=n_dead + n_hot, replace=False
    )
    return QuadrantInstrument(
        ccdid=ccdid,
        qid=qid,
        gain=float(rng.uniform(5.8, 6.6)),
        read_noise=float(rng.uniform(8.0, 10.0)),
        bias_level=float(rng.uniform(800, 1200) + 10 * rcid(ccdid, qid)),
        full_well=float(rng.uniform(300e3, 350e3)),
        dead_columns=tuple(int(c) for c in sorted(columns[:n_dead])),
        hot_columns=tuple(int(c) for c in sorted(columns[n_dead:])),
    )


class _ArrayCache:
    """Per-process memo of large arrays, bounded by bytes rather than count: small cameras keep
    every quadrant's arrays, full-size ones a few."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.items: dict[tuple, np.ndarray] = {}

    def get(self, key: tuple, make) -> np.ndarray:
        if key in self.items:
            return self.items[key]
        value = make()
        while (
            self.items and sum(v.nbytes for v in self.items.values()) + value.nbytes > self.budget
        ):
            self.items.pop(next(iter(self.items)))
        self.items[key] = value
        return value


_CACHE = _ArrayCache(400 << 20)


def bias_structure(seed: int, geometry: CameraGeometry, ccdid: int, qid: int) -> np.ndarray:
    return _CACHE.get(
        ("bias", seed, geometry, ccdid, qid), lambda: _bias_structure(seed, geometry, ccdid, qid)
    )


def pixel_response(
    seed: int, geometry: CameraGeometry, ccdid: int, qid: int, filtercode: str
) -> np.ndarray:
    return _CACHE.get(
        ("flat", seed, geometry, ccdid, qid, filtercode),
        lambda: _pixel_response(seed, geometry, ccdid, qid, filtercode),
    )


def _bias_structure(seed: int, geometry: CameraGeometry, ccdid: int, qid: int) -> np.ndarray:
    """The fixed 2-D bias pattern (ADU, above the overscan level) of a quadrant."""
    rng = _rng(seed, ccdid, qid, 1)
    instrument = quadrant_instrument(seed, geometry, ccdid, qid)
    ny, nx = geometry.quadrant_ny, geometry.quadrant_nx
    columns = rng.normal(0.0, 1.5, nx)
    rows = np.linspace(0.0, rng.uniform(-3, 3), ny)
    pattern = (columns[None, :] + rows[:, None]).astype(np.float32)
    pattern[:, list(instrument.hot_columns)] += HOT_COLUMN_ADU
    pattern.setflags(write=False)
    return pattern


def _pixel_response(
    seed: int, geometry: CameraGeometry, ccdid: int, qid: int, filtercode: str
) -> np.ndarray:
    """Relative quantum efficiency of every pixel in a filter, median 1: vignetting across the
    focal plane, a filter-dependent gradient, pixel-to-pixel scatter, dead columns."""
    instrument = quadrant_instrument(seed, geometry, ccdid, qid)
    ny, nx = geometry.quadrant_ny, geometry.quadrant_nx
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
    fx, fy = geometry.to_focal_plane(ccdid, qid, x, y)
    half_size = 2.0 * geometry.ccd_pitch_x
    vignetting = 1.0 - 0.05 * (fx**2 + fy**2) / (2 * half_size**2)
    band = {"zg": 1, "zr": 2, "zi": 3}[filtercode]
    f_rng = _rng(seed, ccdid, qid, 10 + band)
    gx, gy = f_rng.normal(0, 0.01, 2)
    gradient = 1.0 + gx * (x / nx - 0.5) + gy * (y / ny - 0.5)
    pixels = 1.0 + _rng(seed, ccdid, qid, 2).normal(0, 0.008, (ny, nx))
    pixels += f_rng.normal(0, 0.003, (ny, nx))
    response = (vignetting * gradient * pixels).astype(np.float32)
    response[:, list(instrument.dead_columns)] = DEAD_RESPONSE
    response /= np.median(response)
    response.setflags(write=False)
    return response
