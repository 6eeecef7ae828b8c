"""Which images caught a moving object: the pure steps of the moving-object search.

The search runs in three stages, each cheaper per image than the next and each keeping only
what could still be a match:

1. ``coarse_path``: the ephemeris on a grid over the whole span (``predict`` at every node and
   at every interval's midpoint, in one call), interpolated by cubic Hermite on unit vectors
   using the predicted rates. The midpoints measure the interpolation error of each interval,
   and that measured error (doubled, plus a floor) is the margin every later radius carries, so
   candidates are never lost to the coarse path's approximation.
2. Candidates: exposures whose pointing is within the camera's radius of the path at their
   mid-time (``near_pointings``), then readout quadrants whose centre is within their own
   radius (largest centre-to-corner distance) of it (``near_quadrants``).
3. The exact check: ``predict`` at each candidate's mid-exposure time, then the point must lie
   inside the quadrilateral of the image's four corners, whose edges are great circles
   (``skyvault.geometry.inside_convex_polygon``), and its pixel position comes from the image's
   stored WCS (``skyvault.tansip.TanSip``, all candidates at once).

Everything here works on numpy arrays and an ``Orbit``; the database side is ``search_db``.
Sky geometry (unit vectors, separations, projections) is ``skyvault.geometry``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from skyvault.geometry import angle_between, unit_vectors

from .ephemeris import Ephemeris, predict
from .orbits import Orbit

ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
RAD_PER_ARCSEC_HOUR_TO_PER_DAY = 24.0 / ARCSEC_PER_RAD
SECONDS_PER_DAY = 86400.0
JD_MINUS_MJD = 2400000.5

CAMERA_RADIUS_DEG = 5.6
"""Largest distance from an exposure's pointing (telra, teldec) to any point of any of its
readout quadrants. The ZTF mosaic is 16 CCDs of 6144 x 6160 pixels with gaps, 7.0 x 7.0 deg
at 1.012"/pixel: half-diagonal 4.95 deg, plus the optics' radial distortion (0.02 deg at the
corner) and pointing errors (arcseconds). 5.6 deg leaves room for all of that."""

COARSE_STEP_DAYS = 0.25
"""Grid step of the coarse path. Its own interpolation error is measured, not assumed."""
COARSE_MIN_STEP_DAYS = 1.0 / 96.0
COARSE_MAX_ERROR_DEG = 0.25
"""Above this measured interpolation error, the grid is refined (close approaches)."""
MARGIN_FLOOR_DEG = 60.0 / 3600.0
"""Added to every radius on top of twice the measured interpolation error."""
MAX_COARSE_NODES = 400_000


# --------------------------------------------------------------------------- geometry


def footprint_radius_deg(
    centre_ra: ArrayLike, centre_dec: ArrayLike, corners_ra: ArrayLike, corners_dec: ArrayLike
) -> NDArray[np.float64]:
    """Largest distance from each image's centre to its corners: a circle holding the image."""
    centre = unit_vectors(centre_ra, centre_dec)[:, None, :]
    corners = unit_vectors(corners_ra, corners_dec)
    return angle_between(centre, corners).max(axis=1)


# --------------------------------------------------------------------------- the coarse path


def _hermite(
    u0: NDArray[np.float64],
    d0: NDArray[np.float64],
    u1: NDArray[np.float64],
    d1: NDArray[np.float64],
    s: NDArray[np.float64],
    step: NDArray[np.float64],
) -> NDArray[np.float64]:
    s = s[:, None]
    step = step[:, None]
    s2, s3 = s * s, s * s * s
    value = (
        (2 * s3 - 3 * s2 + 1) * u0
        + (s3 - 2 * s2 + s) * step * d0
        + (-2 * s3 + 3 * s2) * u1
        + (s3 - s2) * step * d1
    )
    return value / np.linalg.norm(value, axis=1, keepdims=True)


def direction_rates(ephemeris: Ephemeris) -> NDArray[np.float64]:
    """d(unit vector)/dt in rad/day from the predicted RA/Dec rates (arcsec/hour)."""
    ra = np.radians(ephemeris.ra)
    dec = np.radians(ephemeris.dec)
    east = np.stack([-np.sin(ra), np.cos(ra), np.zeros_like(ra)], axis=-1)
    north = np.stack(
        [-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)], axis=-1
    )
    scale = RAD_PER_ARCSEC_HOUR_TO_PER_DAY
    return (
        ephemeris.ra_rate[:, None] * scale * east + ephemeris.dec_rate[:, None] * scale * north
    )


@dataclass(frozen=True)
class CoarsePath:
    """An object's sky path over a span, interpolable anywhere in it with a known error bound."""

    mjd: NDArray[np.float64]
    """Nodes, MJD UTC, increasing."""
    directions: NDArray[np.float64]
    """Unit vectors (N, 3) at the nodes."""
    rates: NDArray[np.float64]
    """Their time derivatives (N, 3), rad/day."""
    margin_deg: NDArray[np.float64]
    """Per interval (N - 1): a bound on the interpolation error, with a safety factor."""
    ephemeris: Ephemeris
    """The predictions at the nodes (for plotting the path)."""

    @property
    def start(self) -> float:
        return float(self.mjd[0])

    @property
    def stop(self) -> float:
        return float(self.mjd[-1])

    def at(self, mjd: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Interpolated unit vectors (M, 3) and the margin (deg) to allow around each."""
        t = np.atleast_1d(np.asarray(mjd, dtype=float))
        if t.size and (t.min() < self.start - 1e-9 or t.max() > self.stop + 1e-9):
            raise ValueError("time outside the coarse path")
        index = np.clip(np.searchsorted(self.mjd, t, side="right") - 1, 0, self.mjd.size - 2)
        step = self.mjd[index + 1] - self.mjd[index]
        s = (t - self.mjd[index]) / step
        vectors = _hermite(
            self.directions[index],
            self.rates[index],
            self.directions[index + 1],
            self.rates[index + 1],
            s,
            step,
        )
        return vectors, self.margin_deg[index]


def coarse_path(
    orbit: Orbit,
    start_mjd: float,
    stop_mjd: float,
    observatory: str = "I41",
    step_days: float = COARSE_STEP_DAYS,
) -> CoarsePath:
    """The path over [start, stop] (MJD UTC), refined until its measured error is small.

    Raises the ephemeris' own errors (``EphemerisRangeError`` outside DE440, integration
    failures) for the caller to report.
    """
    if not stop_mjd >= start_mjd:
        raise ValueError("the span ends before it starts")
    while True:
        count = max(2, math.ceil((stop_mjd - start_mjd) / step_days) + 1)
        nodes = np.linspace(start_mjd, max(stop_mjd, start_mjd + step_days * 1e-3), count)
        if 2 * count > MAX_COARSE_NODES:
            raise ValueError("the span is too long for the coarse path at this step")
        middles = 0.5 * (nodes[:-1] + nodes[1:])
        ephemeris = predict(orbit, np.concatenate([nodes, middles]), observatory)
        directions = unit_vectors(ephemeris.ra, ephemeris.dec)
        rates = direction_rates(ephemeris)
        at_nodes, at_middles = slice(0, count), slice(count, None)
        u, d = directions[at_nodes], rates[at_nodes]
        step = np.diff(nodes)
        guessed = _hermite(u[:-1], d[:-1], u[1:], d[1:], np.full(count - 1, 0.5), step)
        error = angle_between(guessed, directions[at_middles])
        if error.max() <= COARSE_MAX_ERROR_DEG or step_days <= COARSE_MIN_STEP_DAYS:
            node_ephemeris = _select(ephemeris, at_nodes)
            # The midpoint is where a cubic's error peaks; the factor 2 covers the shape of the
            # error curve differing from the ideal quartic within an interval.
            return CoarsePath(nodes, u, d, 2.0 * error + MARGIN_FLOOR_DEG, node_ephemeris)
        step_days = max(step_days / 4.0, COARSE_MIN_STEP_DAYS)


def _select(ephemeris: Ephemeris, which: slice | NDArray[np.intp]) -> Ephemeris:
    return Ephemeris(
        orbit=ephemeris.orbit,
        observatory=ephemeris.observatory,
        **{
            name: getattr(ephemeris, name)[which]
            for name in (
                "mjd_utc", "mjd_tdb", "ra", "dec", "ra_rate", "dec_rate", "delta", "r",
                "phase", "elong", "vmag", "light_time",
            )
        },
    )


# --------------------------------------------------------------------------- candidates


def mid_exposure_mjd(obsjd: ArrayLike, exptime_s: ArrayLike) -> NDArray[np.float64]:
    """MJD (UTC) at mid-exposure from the start JD and the exposure time in seconds."""
    exptime = np.nan_to_num(np.asarray(exptime_s, dtype=float), nan=0.0)
    return np.asarray(obsjd, dtype=float) - JD_MINUS_MJD + exptime / (2.0 * SECONDS_PER_DAY)


def near_pointings(
    path: CoarsePath,
    mid_mjd: ArrayLike,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    radius_deg: ArrayLike,
) -> NDArray[np.intp]:
    """Indices of the pointings (exposures or images) within ``radius`` (plus the path's margin)
    of the path at their time; times outside the path are never near."""
    t = np.asarray(mid_mjd, dtype=float)
    within = np.flatnonzero((t >= path.start) & (t <= path.stop))
    if within.size == 0:
        return within
    vectors, margin = path.at(t[within])
    centres = unit_vectors(np.asarray(ra_deg, dtype=float)[within],
                           np.asarray(dec_deg, dtype=float)[within])
    radius = np.broadcast_to(np.asarray(radius_deg, dtype=float), t.shape)[within]
    near = angle_between(vectors, centres) <= radius + margin
    return within[near]


# --------------------------------------------------------------------------- uncertainty


def runoff_arcsec_per_decade(u: str | int | None) -> float | None:
    """Upper end of the MPC uncertainty parameter's bin of in-orbit longitude runoff.

    The MPC defines U = int(ln(RUNOFF) / 1.1513 + 1), RUNOFF being the 3-sigma runoff in mean
    anomaly in arcsec per decade (https://minorplanetcenter.net/iau/info/UValue.html), so a
    given U means RUNOFF < exp(1.1513 U) = 10^(U/2). U = 9 has no upper end: 10^4.5 is used.
    Letters (E, D, F: orbits from few observations) carry no number: None.
    """
    if u is None:
        return None
    text = str(u).strip()
    if len(text) != 1 or not text.isdigit():
        return None
    return float(10.0 ** (int(text) / 2.0))


def positional_uncertainty_arcsec(
    u: str | int | None,
    epoch_mjd_tdb: float,
    mjd: ArrayLike,
    r_au: ArrayLike,
    delta_au: ArrayLike,
) -> NDArray[np.float64]:
    """A rough 3-sigma sky-plane uncertainty (arcsec) from the MPC U parameter; NaN without U.

    The runoff grows linearly with time from the orbit's epoch (at least a year's worth is
    kept, since the epoch is not when the orbit is best known) and is an angle seen from the
    Sun along the orbit; seen from the observer it scales by r / delta.
    """
    t = np.asarray(mjd, dtype=float)
    runoff = runoff_arcsec_per_decade(u)
    if runoff is None:
        return np.full(t.shape, np.nan)
    decades = np.maximum(np.abs(t - epoch_mjd_tdb) / 3652.5, 0.1)
    return runoff * decades * np.asarray(r_au, dtype=float) / np.asarray(delta_au, dtype=float)
