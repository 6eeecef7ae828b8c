"""Predicted visual magnitudes: the IAU H,G system for asteroids, M1/K1 total magnitude for comets.

Both are the formulas JPL Horizons prints (its "APmag" and "T-mag" columns).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_G = 0.15  # the MPC's default when a slope parameter has not been measured


def hg_magnitude(
    h: float | None, g: float | None, r_au: ArrayLike, delta_au: ArrayLike, phase_deg: ArrayLike
) -> NDArray[np.float64]:
    """V = H + 5 log10(r delta) - 2.5 log10((1-G) phi1 + G phi2) (Bowell et al. 1989)."""
    r = np.asarray(r_au, dtype=float)
    delta = np.asarray(delta_au, dtype=float)
    if h is None:
        return np.full(np.broadcast(r, delta).shape, np.nan)
    slope = DEFAULT_G if g is None else g
    tan_half = np.tan(np.radians(np.asarray(phase_deg, dtype=float)) / 2.0)
    phi1 = np.exp(-3.33 * tan_half**0.63)
    phi2 = np.exp(-1.87 * tan_half**1.22)
    return h + 5.0 * np.log10(r * delta) - 2.5 * np.log10((1.0 - slope) * phi1 + slope * phi2)


def comet_total_magnitude(
    m1: float | None, k1: float | None, r_au: ArrayLike, delta_au: ArrayLike
) -> NDArray[np.float64]:
    """T-mag = M1 + 5 log10(delta) + K1 log10(r); NaN when either parameter is unknown."""
    r = np.asarray(r_au, dtype=float)
    delta = np.asarray(delta_au, dtype=float)
    if m1 is None or k1 is None:
        return np.full(np.broadcast(r, delta).shape, np.nan)
    return m1 + 5.0 * np.log10(delta) + k1 * np.log10(r)
