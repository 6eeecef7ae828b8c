"""Ephemerides of many objects over one night, vectorised over objects and times.

Two methods:

``"nbody"``: each orbit is integrated with ASSIST (full force model) from its epoch to one
reference time in the night; from that osculating state the motion over the night is
two-body (the f and g series, vectorised over objects x times; ``kepler.propagate_short``).
Over half a night the neglected planetary perturbations move a main-belt asteroid by
metres and a near-Earth asteroid 0.05 au from the Earth by at most a few km;
tests/sso/test_batch.py measures the difference from ``predict``.

``"kepler"``: two-body from each orbit's own epoch to the night (universal variables), no
integration at all. It is the coarse
first pass of a search: fast, but its error grows with the distance in time from the epoch
(arcminutes after a year for a main-belt asteroid, measured in the same test). Candidates it
finds must be checked with ``"nbody"`` or ``predict`` and a generous search radius.

Both run the same light-time iteration and topocentric geometry as ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .ephemeris import (
    SPEED_OF_LIGHT_AU_PER_DAY,
    _check_times,
    observer_state,
    sky_coordinates,
)
from .errors import SsoError
from .integrator import ForceModel, IntegrationError, check_integrable, integrate_unguarded
from .isolation import run_guarded
from .kepler import GM_SUN, heliocentric_state_at_epoch, propagate, propagate_short
from .observatories import Observatory, get_observatory
from .orbits import Orbit
from .planets import barycentric_state
from .timescales import utc_to_tdb

Method = Literal["nbody", "kepler"]
OBJECTS_PER_CHUNK = 200  # bounds memory: a chunk holds ~ 200 x times x 3 doubles per array


@dataclass(frozen=True)
class BatchEphemeris:
    """Astrometric positions of N objects at T times: arrays of shape (N, T)."""

    orbits: list[Orbit]
    observatory: Observatory
    mjd_utc: NDArray[np.float64]
    ra: NDArray[np.float64]
    dec: NDArray[np.float64]
    ra_rate: NDArray[np.float64]
    dec_rate: NDArray[np.float64]
    delta: NDArray[np.float64]
    r: NDArray[np.float64]


def reference_states(
    orbits: list[Orbit], mjd_tdb: float, method: Method, forces: ForceModel | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Heliocentric ICRF states (N, 3) at ``mjd_tdb``: integrated (nbody) or two-body (kepler)."""
    positions = np.empty((len(orbits), 3))
    velocities = np.empty((len(orbits), 3))
    if method == "kepler":
        for i, orbit in enumerate(orbits):
            positions[i], velocities[i] = heliocentric_state_at_epoch(orbit)
        epochs = np.array([orbit.epoch_mjd_tdb for orbit in orbits])
        return propagate(positions, velocities, mjd_tdb - epochs, GM_SUN)
    for orbit in orbits:
        try:
            check_integrable(orbit, mjd_tdb, mjd_tdb)
        except SsoError as error:
            raise IntegrationError(f"{orbit.label}: {error}") from None
    # One trip to a guarded child for the whole batch, not one per orbit.
    barycentric = run_guarded(_barycentric_states, orbits, mjd_tdb, forces)
    sun_r, sun_v = barycentric_state("sun", mjd_tdb)
    return barycentric[:, :3] - sun_r[0], barycentric[:, 3:] - sun_v[0]


def _barycentric_states(orbits: list[Orbit], mjd_tdb: float,
                        forces: ForceModel | None) -> NDArray[np.float64]:
    """(N, 6) barycentric states at ``mjd_tdb`` of checked orbits (runs in a guarded child)."""
    states = np.empty((len(orbits), 6))
    for i, orbit in enumerate(orbits):
        trajectory = integrate_unguarded(orbit, mjd_tdb, mjd_tdb, forces)
        states[i, :3] = trajectory.positions[0]
        states[i, 3:] = trajectory.velocities[0]
    return states


def _chunk(
    r0: NDArray[np.float64],
    v0: NDArray[np.float64],
    t0: NDArray[np.float64],
    observer_r: NDArray[np.float64],
    observer_v: NDArray[np.float64],
    mjd_tdb: NDArray[np.float64],
) -> tuple[NDArray[np.float64], ...]:
    """Light-time solution and sky positions for n objects x T times (all flattened)."""
    n, t = r0.shape[0], mjd_tdb.size
    start_r = np.repeat(r0, t, axis=0)
    start_v = np.repeat(v0, t, axis=0)
    elapsed = np.tile(mjd_tdb, n) - np.repeat(t0, t)
    obs_r = np.tile(observer_r, (n, 1))
    obs_v = np.tile(observer_v, (n, 1))
    sun_r, sun_v = barycentric_state("sun", mjd_tdb)
    # Heliocentric object minus heliocentric observer; the Sun's own motion during the light
    # time (13 m/s x minutes) is carried by its velocity.
    obs_helio_r = obs_r - np.tile(sun_r, (n, 1))
    sun_velocity = np.tile(sun_v, (n, 1))
    # Start from the light time of the reference state (right to ~1e-5 day within a night,
    # so two passes usually do), then iterate as ephemeris.predict does: once the change is
    # below 1e-8 day, moving the state back by it leaves < 1e-12 day of error (< 1 m).
    light_time = (
        np.repeat(np.linalg.norm(r0 - (observer_r - sun_r).mean(axis=0), axis=1), t)
        / SPEED_OF_LIGHT_AU_PER_DAY
    )
    for _ in range(10):
        heliocentric, velocity = propagate_short(start_r, start_v, elapsed - light_time, GM_SUN)
        position = heliocentric - sun_velocity * light_time[:, None]
        new_light_time = np.linalg.norm(position - obs_helio_r, axis=1) / SPEED_OF_LIGHT_AU_PER_DAY
        correction = new_light_time - light_time
        light_time = new_light_time
        if np.max(np.abs(correction)) < 1e-8:
            heliocentric = heliocentric - velocity * correction[:, None]
            position = position - velocity * correction[:, None]
            break
    else:
        raise ArithmeticError("light-time iteration did not converge")
    rho = position - obs_helio_r
    barycentric_v = velocity + sun_velocity
    # d/dt of x(t - tau(t)) - x_obs(t), as in ephemeris.predict.
    range_rate = np.einsum("ij,ij->i", rho, barycentric_v - obs_v) / np.linalg.norm(rho, axis=1)
    rho_dot = barycentric_v * (1.0 - range_rate / SPEED_OF_LIGHT_AU_PER_DAY)[:, None] - obs_v
    ra, dec, ra_rate, dec_rate, delta = sky_coordinates(rho, rho_dot)
    # From the Sun as the object saw it (r/c earlier), as in ephemeris.predict.
    r_geometric = np.linalg.norm(heliocentric, axis=1)
    r = np.linalg.norm(
        heliocentric + sun_velocity * (r_geometric / SPEED_OF_LIGHT_AU_PER_DAY)[:, None], axis=1
    )
    return tuple(a.reshape(n, t) for a in (ra, dec, ra_rate, dec_rate, delta, r))


def predict_night(
    orbits: list[Orbit],
    times_mjd_utc: ArrayLike,
    observatory: str | Observatory = "I41",
    *,
    method: Method = "nbody",
    forces: ForceModel | None = None,
) -> BatchEphemeris:
    """Positions of every orbit at every time (a night: hours, not weeks, for ``"nbody"``)."""
    site = get_observatory(observatory)
    mjd_utc = _check_times(times_mjd_utc)
    mjd_tdb = utc_to_tdb(mjd_utc)
    observer_r, observer_v = observer_state(site, mjd_utc, mjd_tdb)
    reference = float(0.5 * (mjd_tdb.min() + mjd_tdb.max()))
    r0, v0 = reference_states(orbits, reference, method, forces)
    t0 = np.full(len(orbits), reference)
    parts = [
        _chunk(
            r0[i : i + OBJECTS_PER_CHUNK],
            v0[i : i + OBJECTS_PER_CHUNK],
            t0[i : i + OBJECTS_PER_CHUNK],
            observer_r,
            observer_v,
            mjd_tdb,
        )
        for i in range(0, len(orbits), OBJECTS_PER_CHUNK)
    ]
    ra, dec, ra_rate, dec_rate, delta, r = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    return BatchEphemeris(list(orbits), site, mjd_utc, ra, dec, ra_rate, dec_rate, delta, r)
