"""The dense trajectory: interpolation error against ASSIST itself, legs, windows and gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyvault.sso import integrator
from skyvault.sso.integrator import ForceModel, initial_barycentric_state, integrate
from skyvault.sso.kepler import ECLIPTIC_TO_ICRF, GM_SUN
from skyvault.sso.orbits import Orbit, load_demo_orbits, orbit_from_elements
from skyvault.sso.planets import AU_KM, barycentric_state

JD_MJD = 2400000.5


def demo(label: str) -> Orbit:
    return next(o for o in load_demo_orbits() if o.label == label)


def direct_positions(orbit: Orbit, times: np.ndarray) -> np.ndarray:
    """ASSIST run straight to each time (exact finish), one fresh simulation per time."""
    import assist
    import rebound

    names = ForceModel().assist_forces(orbit)
    ephem = integrator._assist_ephem()
    position, velocity = initial_barycentric_state(orbit)
    out = []
    for t in times:
        sim = rebound.Simulation()
        sim.add(
            x=position[0],
            y=position[1],
            z=position[2],
            vx=velocity[0],
            vy=velocity[1],
            vz=velocity[2],
        )
        sim.t = orbit.epoch_mjd_tdb + JD_MJD - ephem.jd_ref
        extras = assist.Extras(sim, ephem)
        extras.forces = names
        sim.ri_ias15.adaptive_mode = 2
        sim.integrate(t + JD_MJD - ephem.jd_ref)
        particle = sim.particles[0]
        out.append([particle.x, particle.y, particle.z])
        del extras
    return np.array(out)


def flyby_orbit(closest_km: float, when_mjd: float) -> Orbit:
    """Elements of a body that passes the Earth at ``closest_km`` at ``when_mjd`` (7 km/s)."""
    earth_r, earth_v = barycentric_state("earth", when_mjd)
    sun_r, sun_v = barycentric_state("sun", when_mjd)
    relative_v = np.array([0.004, 0.001, 0.0])
    offset = np.cross(relative_v, [0.0, 0.0, 1.0])
    offset *= closest_km / AU_KM / np.linalg.norm(offset)
    r = ECLIPTIC_TO_ICRF.T @ (earth_r[0] + offset - sun_r[0])
    v = ECLIPTIC_TO_ICRF.T @ (earth_v[0] + relative_v - sun_v[0])
    h = np.cross(r, v)
    e_vec = np.cross(v, h) / GM_SUN - r / np.linalg.norm(r)
    e = float(np.linalg.norm(e_vec))
    node_vec = np.cross([0.0, 0.0, 1.0], h)
    incl = math.degrees(math.acos(h[2] / np.linalg.norm(h)))
    node = math.degrees(math.atan2(node_vec[1], node_vec[0])) % 360
    peri = math.degrees(math.acos(node_vec @ e_vec / np.linalg.norm(node_vec) / e))
    peri = peri if e_vec[2] >= 0 else 360 - peri
    true_anomaly = math.acos(np.clip(e_vec @ r / e / np.linalg.norm(r), -1, 1))
    true_anomaly = true_anomaly if r @ v >= 0 else 2 * math.pi - true_anomaly
    a = 1.0 / (2.0 / np.linalg.norm(r) - v @ v / GM_SUN)
    ecc_anomaly = 2 * math.atan(math.sqrt((1 - e) / (1 + e)) * math.tan(true_anomaly / 2))
    mean_anomaly = math.degrees(ecc_anomaly - e * math.sin(ecc_anomaly)) % 360
    return orbit_from_elements(
        epoch_mjd_tdb=when_mjd,
        e=e,
        a_au=float(a),
        incl_deg=incl,
        node_deg=node,
        peri_deg=peri,
        mean_anomaly_deg=mean_anomaly,
        designation="flyby",
    )


@pytest.mark.parametrize(
    ("label", "start", "stop", "tolerance_m"),
    [
        ("(1) Ceres", 61200.0, 61565.0, 5.0),  # a year after the epoch
        ("(433) Eros", 60835.0, 61200.0, 5.0),  # a year before it
        ("2P/Encke", 61400.0, 61500.0, 5.0),
    ],  # through the 2027 perihelion (q = 0.34 au)
)
def test_interpolation_matches_direct_integration(
    label: str, start: float, stop: float, tolerance_m: float
) -> None:
    orbit = demo(label)
    trajectory = integrate(orbit, start, stop)
    times = np.sort(np.random.default_rng(5).uniform(start, stop, 12))
    interpolated, _ = trajectory.state(times)
    error_m = np.abs(interpolated - direct_positions(orbit, times)).max() * AU_KM * 1000
    assert error_m < tolerance_m


def test_close_earth_approach_is_resolved() -> None:
    """20,000 km from the Earth's centre: nodes crowd in, interpolation stays within metres.

    With ASSIST's own default (IAS15's legacy step control) this integration takes 0.1 s steps
    and minutes of CPU; integrator.py switches to REBOUND's PRS23 control.
    """
    when = 61300.0
    orbit = flyby_orbit(20000.0, when)
    trajectory = integrate(orbit, when - 3.0, when + 3.0)
    earth, _ = barycentric_state("earth", trajectory.times)
    closest_km = np.min(np.linalg.norm(trajectory.positions - earth, axis=1)) * AU_KM
    assert 19000.0 < closest_km < 20001.0
    times = when + np.linspace(-0.2, 0.2, 9) + 0.0123
    interpolated, _ = trajectory.state(times)
    error_m = np.abs(interpolated - direct_positions(orbit, times)).max() * AU_KM * 1000
    assert error_m < 10.0
    node_spacing = np.diff(trajectory.times)
    assert node_spacing.min() < 0.001 < 0.02 < node_spacing.max()  # dense only near the Earth


def test_velocity_is_the_derivative_of_position() -> None:
    trajectory = integrate(demo("(433) Eros"), 61200.0, 61230.0)
    times = np.array([61210.3, 61221.7])
    step = 1e-3
    ahead, _ = trajectory.state(times + step)
    behind, _ = trajectory.state(times - step)
    _, velocity = trajectory.state(times)
    np.testing.assert_allclose((ahead - behind) / (2 * step), velocity, rtol=1e-6)


def test_spans_on_both_sides_of_the_epoch_join_at_the_epoch() -> None:
    orbit = demo("(4) Vesta")
    epoch = orbit.epoch_mjd_tdb
    both = integrate(orbit, epoch - 10.0, epoch + 10.0)
    assert both.start == pytest.approx(epoch - 10.0) and both.stop == pytest.approx(epoch + 10.0)
    assert np.all(np.diff(both.times) > 0)
    position, _ = both.state([epoch])
    start_r, _ = initial_barycentric_state(orbit)
    assert np.linalg.norm(position[0] - start_r) * AU_KM < 1e-6


def test_windows_keep_nodes_only_where_asked_and_refuse_the_gaps() -> None:
    orbit = demo("(1) Ceres")
    windows = [(60000.0, 60001.0), (60500.0, 60500.5)]
    trajectory = integrate(orbit, 60000.0, 60500.5, windows=windows)
    assert trajectory.times.size < 30
    trajectory.state([60000.5, 60500.25])
    with pytest.raises(ValueError, match="without keeping nodes"):
        trajectory.state([60250.0])
    with pytest.raises(ValueError, match="outside"):
        trajectory.state([60600.0])
    full = integrate(orbit, 60000.0, 60500.5)
    a, _ = trajectory.state([60000.5, 60500.25])
    b, _ = full.state([60000.5, 60500.25])
    assert np.abs(a - b).max() * AU_KM * 1000 < 5.0


def test_force_model_choices() -> None:
    ceres, eros, encke = demo("(1) Ceres"), demo("(433) Eros"), demo("2P/Encke")
    # A perturber asteroid is never integrated in a field that contains itself.
    assert "ASTEROIDS" not in ForceModel().assist_forces(ceres)
    if integrator.asteroid_perturbers_path() is not None:
        assert "ASTEROIDS" in ForceModel().assist_forces(eros)
    assert "ASTEROIDS" not in ForceModel(asteroids=False).assist_forces(eros)
    # Non-gravitational forces only for orbits that carry them.
    assert "NON_GRAVITATIONAL" not in ForceModel().assist_forces(encke)
    with_a2 = orbit_from_elements(
        epoch_mjd_tdb=61000.0,
        e=0.8,
        incl_deg=10.0,
        node_deg=1.0,
        peri_deg=2.0,
        q_au=0.5,
        tp_mjd_tdb=61010.0,
        nongrav_a2=1e-9,
    )
    assert "NON_GRAVITATIONAL" in ForceModel().assist_forces(with_a2)
    assert "GR_EIH" in ForceModel().assist_forces(eros)
