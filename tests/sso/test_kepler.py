"""Two-body motion: the universal-variable propagator on every kind of conic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyvault.sso.kepler import GM_SUN, heliocentric_state_at_epoch, propagate, propagate_short
from skyvault.sso.orbits import orbit_from_elements


def perihelion_state(q: float, e: float) -> tuple[np.ndarray, np.ndarray]:
    return np.array([q, 0.0, 0.0]), np.array([0.0, math.sqrt(GM_SUN * (1 + e) / q), 0.0])


@pytest.mark.parametrize("e", [0.0, 0.2, 0.9, 0.999, 1.0, 1.001, 1.5, 4.0])
def test_energy_and_angular_momentum_are_conserved(e: float) -> None:
    r0, v0 = perihelion_state(0.8, e)
    dt = np.array([-4000.0, -30.0, -1e-6, 0.0, 0.5, 25.0, 3000.0])
    r, v = propagate(r0, v0, dt)
    energy = np.einsum("ij,ij->i", v, v) / 2 - GM_SUN / np.linalg.norm(r, axis=1)
    momentum = np.cross(r, v)
    assert np.allclose(energy, v0 @ v0 / 2 - GM_SUN / np.linalg.norm(r0), rtol=1e-9, atol=1e-15)
    assert np.allclose(momentum, np.cross(r0, v0), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("e", [0.1, 0.97, 1.0, 2.5])
def test_there_and_back_returns_to_the_start(e: float) -> None:
    r0, v0 = perihelion_state(1.3, e)
    r1, v1 = propagate(r0, v0, 987.6)
    r2, v2 = propagate(r1, v1, -987.6)
    assert np.abs(r2 - r0).max() < 1e-11 and np.abs(v2 - v0).max() < 1e-13


def test_whole_periods_change_nothing() -> None:
    a = 2.5
    period = 2 * math.pi * math.sqrt(a**3 / GM_SUN)
    r0, v0 = perihelion_state(a * (1 - 0.3), 0.3)
    r, _ = propagate(r0, v0, np.array([period, 7 * period, -3 * period]))
    assert np.abs(r - r0).max() < 1e-10


def test_mean_anomaly_advances_at_the_mean_motion() -> None:
    """From elements (a, M) at the epoch, propagating dt is the same as M + n dt."""
    base = {
        "epoch_mjd_tdb": 61000.0,
        "e": 0.25,
        "incl_deg": 12.0,
        "node_deg": 80.0,
        "peri_deg": 30.0,
        "a_au": 2.2,
    }
    n_deg = math.degrees(math.sqrt(GM_SUN / 2.2**3))
    start = orbit_from_elements(mean_anomaly_deg=10.0, **base)
    later = orbit_from_elements(mean_anomaly_deg=10.0 + n_deg * 400.0, **base)
    r0, v0 = heliocentric_state_at_epoch(start)
    r1, v1 = heliocentric_state_at_epoch(later)
    r, v = propagate(r0, v0, 400.0)
    assert np.abs(r[0] - r1).max() < 1e-12 and np.abs(v[0] - v1).max() < 1e-14


def test_vectorised_over_states_and_times_at_once() -> None:
    rng = np.random.default_rng(2)
    states = [
        perihelion_state(q, e)
        for q, e in zip(rng.uniform(0.3, 5, 50), rng.uniform(0, 3, 50), strict=True)
    ]
    r0 = np.array([s[0] for s in states])
    v0 = np.array([s[1] for s in states])
    dt = rng.uniform(-2000, 2000, 50)
    r, _ = propagate(r0, v0, dt)
    one_by_one = np.array([propagate(r0[i], v0[i], dt[i])[0][0] for i in range(50)])
    assert np.abs(r - one_by_one).max() < 1e-12


def test_short_arc_series_matches_the_universal_solver() -> None:
    """The f, g series used for a night: sub-metre from the exact two-body solution."""
    rng = np.random.default_rng(7)
    count = 5000
    q, e = rng.uniform(0.3, 6.0, count), rng.uniform(0.0, 0.99, count)
    r0 = np.column_stack([q, np.zeros(count), np.zeros(count)])
    v0 = np.column_stack([np.zeros(count), np.sqrt(GM_SUN * (1 + e) / q), np.zeros(count)])
    r0, v0 = propagate(r0, v0, rng.uniform(-400, 400, count))  # anywhere along the orbits
    dt = rng.uniform(-0.25, 0.25, count)
    exact_r, exact_v = propagate(r0, v0, dt)
    series_r, series_v = propagate_short(r0, v0, dt)
    assert np.abs(series_r - exact_r).max() * 1.495978707e11 < 1.0  # metres
    assert (
        np.linalg.norm(series_v - exact_v, axis=1) / np.linalg.norm(exact_v, axis=1)
    ).max() < 1e-8
    # Too long an arc for the series: handed to the universal solver, same answer.
    long_r, _ = propagate_short(r0[:10], v0[:10], np.full(10, 400.0))
    np.testing.assert_allclose(long_r, propagate(r0[:10], v0[:10], 400.0)[0], atol=1e-12)
