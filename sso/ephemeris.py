"""Topocentric astrometric ephemerides of asteroids and comets, Horizons-style.

``predict(orbit, times)`` integrates the orbit once over the requested span (``integrator``),
then, vectorised over all times: the observer's barycentric position (DE440 Earth plus the
site in the GCRS, ``observatories``), the light-time iteration, and the astrometric direction.

"Astrometric" follows JPL Horizons' definition (its "R.A._(ICRF), DEC_(ICRF)" columns): the
direction from the observer at the observation time t to the object at t - tau, where tau is
the down-leg light time, in the ICRF, with no stellar aberration and no light deflection.
Such positions are directly comparable with star-catalogue (Gaia) astrometry of the images.
Rates are d(RA)/dt cos(Dec) and d(Dec)/dt of that direction, in the ICRF, in arcsec per hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SsoError
from .integrator import ForceModel, Trajectory, integrate
from .kepler import heliocentric_state_at_epoch, propagate
from .observatories import Observatory, get_observatory, observer_gcrs
from .orbits import Orbit
from .photometry import comet_total_magnitude, hg_magnitude
from .planets import barycentric_state
from .timescales import utc_to_tdb

SPEED_OF_LIGHT_AU_PER_DAY = 173.14463267424034  # 299792.458 km/s in au/day
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
MAX_TIMES = 5_000_000


class EphemerisRequestError(SsoError, ValueError):
    """Times that cannot be used (none, not finite, too many)."""


@dataclass(frozen=True)
class Ephemeris:
    """Positions of one object at N times. All arrays have shape (N,).

    ra, dec: astrometric ICRF (deg). ra_rate (includes cos dec), dec_rate: arcsec/hour.
    delta: distance from the observer (au); r: from the Sun (au); phase: Sun-object-observer
    angle (deg); elong: Sun-observer-object angle (deg); vmag: predicted V (NaN if unknown);
    light_time: days. Times are given back both as UTC and TDB MJD.
    """

    orbit: Orbit
    observatory: Observatory
    mjd_utc: NDArray[np.float64]
    mjd_tdb: NDArray[np.float64]
    ra: NDArray[np.float64]
    dec: NDArray[np.float64]
    ra_rate: NDArray[np.float64]
    dec_rate: NDArray[np.float64]
    delta: NDArray[np.float64]
    r: NDArray[np.float64]
    phase: NDArray[np.float64]
    elong: NDArray[np.float64]
    vmag: NDArray[np.float64]
    light_time: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ra.size)


def _check_times(times_mjd_utc: ArrayLike) -> NDArray[np.float64]:
    times = np.atleast_1d(np.asarray(times_mjd_utc, dtype=float)).ravel()
    if times.size == 0:
        raise EphemerisRequestError("no times given")
    if times.size > MAX_TIMES:
        raise EphemerisRequestError(f"at most {MAX_TIMES} times per request")
    if not np.all(np.isfinite(times)):
        raise EphemerisRequestError("times must be finite numbers (MJD UTC)")
    return times


def _unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _angle_deg(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Angle between vectors, robust near 0 and 180 degrees (atan2 of |a x b| and a.b)."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.einsum("...i,...i->...", a, b)))


def observer_state(
    observatory: Observatory, mjd_utc: NDArray[np.float64], mjd_tdb: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Barycentric ICRF position (au) and velocity (au/day) of the observer, shape (N, 3)."""
    earth_r, earth_v = barycentric_state("earth", mjd_tdb)
    site_r, site_v = observer_gcrs(observatory, mjd_utc)
    return earth_r + site_r, earth_v + site_v


def sky_coordinates(
    rho: NDArray[np.float64], rho_dot: NDArray[np.float64]
) -> tuple[NDArray[np.float64], ...]:
    """RA, Dec (deg) and their rates (arcsec/h, RA rate times cos Dec) of line-of-sight vectors.

    ``rho`` is observer -> object, ``rho_dot`` its time derivative (au/day); shape (..., 3).
    """
    distance = np.linalg.norm(rho, axis=-1)
    x, y, z = rho[..., 0], rho[..., 1], rho[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arcsin(np.clip(z / distance, -1.0, 1.0)))
    ra_rad, dec_rad = np.radians(ra), np.radians(dec)
    east = np.stack([-np.sin(ra_rad), np.cos(ra_rad), np.zeros_like(ra_rad)], axis=-1)
    north = np.stack(
        [-np.sin(dec_rad) * np.cos(ra_rad), -np.sin(dec_rad) * np.sin(ra_rad), np.cos(dec_rad)],
        axis=-1,
    )
    to_arcsec_per_hour = ARCSEC_PER_RAD / 24.0
    ra_rate = np.einsum("...i,...i->...", rho_dot, east) / distance * to_arcsec_per_hour
    dec_rate = np.einsum("...i,...i->...", rho_dot, north) / distance * to_arcsec_per_hour
    return ra, dec, ra_rate, dec_rate, distance


def _light_time_margin(orbit: Orbit, start_tdb: float, stop_tdb: float) -> float:
    """Days to integrate before the first time so that t - light time stays inside the span.

    A two-body estimate of the largest distance from the Sun over the span, plus the Earth's
    orbit, plus 20% and a minute: the exact light time is found later.
    """
    r0, v0 = heliocentric_state_at_epoch(orbit)
    ends = np.array([start_tdb, stop_tdb]) - orbit.epoch_mjd_tdb
    positions, _ = propagate(np.vstack([r0, r0]), np.vstack([v0, v0]), ends)
    farthest = float(np.linalg.norm(positions, axis=1).max())
    if orbit.q_au is None and orbit.a_au is not None:
        farthest = max(farthest, orbit.a_au * (1.0 + orbit.e))
    return 1.2 * (farthest + 1.1) / SPEED_OF_LIGHT_AU_PER_DAY + 1.0 / 1440.0


def _windows(mjd_tdb: NDArray[np.float64], margin: float) -> list[tuple[float, float]]:
    """Stretches of time where the object's states are needed: [t - margin, t], joined."""
    times = np.unique(mjd_tdb)
    breaks = np.flatnonzero(np.diff(times) > margin + 2.0) + 1
    starts = times[np.concatenate([[0], breaks])] - margin
    stops = times[np.concatenate([breaks - 1, [times.size - 1]])]
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def light_time_solution(
    trajectory: Trajectory, observer_r: NDArray[np.float64], mjd_tdb: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(object position, object velocity, light time) at emission for each observation time."""
    light_time = np.zeros_like(mjd_tdb)
    for _ in range(8):
        position, velocity = trajectory.state(mjd_tdb - light_time)
        new_light_time = np.linalg.norm(position - observer_r, axis=1) / SPEED_OF_LIGHT_AU_PER_DAY
        correction = new_light_time - light_time
        # Each pass shrinks the error by v/c ~ 1e-4. Once the change is below 1e-10 day, the
        # state at the new light time is the one just computed moved back by the change (to
        # first order, exact to 1e-20 au), and the new light time is off by < 1e-14 day.
        if np.max(np.abs(correction)) < 1e-10:
            return position - velocity * correction[:, None], velocity, new_light_time
        light_time = new_light_time
    raise ArithmeticError("light-time iteration did not converge")


def predict(
    orbit: Orbit,
    times_mjd_utc: ArrayLike,
    observatory: str | Observatory = "I41",
    *,
    forces: ForceModel | None = None,
) -> Ephemeris:
    """Astrometric topocentric ephemeris of ``orbit`` at the given UTC MJDs (any order)."""
    site = get_observatory(observatory)
    mjd_utc = _check_times(times_mjd_utc)
    mjd_tdb = utc_to_tdb(mjd_utc)
    observer_r, observer_v = observer_state(site, mjd_utc, mjd_tdb)

    start, stop = float(mjd_tdb.min()), float(mjd_tdb.max())
    margin = _light_time_margin(orbit, start, stop)
    trajectory = integrate(orbit, start - margin, stop, forces, _windows(mjd_tdb, margin))
    position, velocity, light_time = light_time_solution(trajectory, observer_r, mjd_tdb)

    rho = position - observer_r
    # d/dt of x(t - tau(t)) - x_obs(t), with d tau/dt = (range rate) / c.
    range_rate = np.einsum("ij,ij->i", _unit(rho), velocity - observer_v)
    rho_dot = velocity * (1.0 - range_rate / SPEED_OF_LIGHT_AU_PER_DAY)[:, None] - observer_v
    ra, dec, ra_rate, dec_rate, delta = sky_coordinates(rho, rho_dot)

    # The Sun as the object saw it: light left the Sun r/c before reaching the object.
    sun_at_emission, _ = barycentric_state("sun", mjd_tdb - light_time)
    r_geometric = np.linalg.norm(sun_at_emission - position, axis=1)
    sun_seen, _ = barycentric_state(
        "sun", mjd_tdb - light_time - r_geometric / SPEED_OF_LIGHT_AU_PER_DAY
    )
    sun_now, _ = barycentric_state("sun", mjd_tdb)
    object_to_sun = sun_seen - position
    r = np.linalg.norm(object_to_sun, axis=1)
    phase = _angle_deg(object_to_sun, observer_r - position)
    elong = _angle_deg(sun_now - observer_r, rho)
    if orbit.orbit_type == "comet":
        vmag = comet_total_magnitude(orbit.h, orbit.k1, r, delta)
    else:
        vmag = hg_magnitude(orbit.h, orbit.g, r, delta, phase)
    return Ephemeris(
        orbit=orbit,
        observatory=site,
        mjd_utc=mjd_utc,
        mjd_tdb=mjd_tdb,
        ra=ra,
        dec=dec,
        ra_rate=ra_rate,
        dec_rate=dec_rate,
        delta=delta,
        r=r,
        phase=phase,
        elong=elong,
        vmag=vmag,
        light_time=light_time,
    )
