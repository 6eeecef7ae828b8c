"""Ephemeris speed: one object over a year of epochs, and many objects over one night.

    .venv/bin/python -m benchmarks.bench_ephemeris [--epochs 50000] [--objects 10000]
                                                   [--exposures 700] [--seed 1]

1. One object, one year, ``--epochs`` epochs (ZTF-like: 700 exposures a night, nights of
   ~8.5 h, so the epochs are clustered by night): seconds for ``predict`` (integration once,
   interpolation, light time, topocentric I41), for a near-Earth asteroid, a distant
   asteroid and a comet. Baseline in the same run: the straightforward loop that asks ASSIST
   for the object's position at each epoch (``integrate_or_interpolate``, no light time, no
   observer), i.e. the floor of any per-epoch approach: "predict / bare" near 1 means that
   light time, observer, geometry and magnitudes together cost about as much as merely
   reading ASSIST once per epoch.
2. ``--objects`` synthetic orbits (main belt, near-Earth, Jupiter-family comets; MPCORB-like
   epoch 2026-06-09, i.e. two years after the night) against one night of ``--exposures``
   exposure times: objects per minute with ``predict_night`` in its exact mode (ASSIST to
   mid-night, then vectorised Kepler) and its two-body coarse mode, and the positional
   error of each against ``predict`` on a sample.

Wall-clock and process CPU time are both printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from skyvault.geometry import separation
from skyvault.sso import integrator
from skyvault.sso.batch import predict_night
from skyvault.sso.ephemeris import predict
from skyvault.sso.integrator import ForceModel, initial_barycentric_state
from skyvault.sso.orbits import Orbit, load_demo_orbits, orbit_from_elements
from skyvault.sso.timescales import JD_MJD_OFFSET, utc_to_tdb

NIGHT_START_MJD = 60400.15  # 2024-04-08 03:36 UTC, a spring night at Palomar
EPOCH_MJD = 61200.0  # 2026-06-09, the epoch of the MPCORB file the demo orbits come from


def timed(call: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def survey_year(epochs: int, per_night: int = 700) -> np.ndarray:
    """``epochs`` exposure times over a year: nights of ``per_night`` exposures in 8.5 h."""
    nights = math.ceil(epochs / per_night)
    night_starts = 60310.15 + np.linspace(0.0, 364.0, nights)
    within = np.linspace(0.0, 0.354, per_night)
    return (night_starts[:, None] + within[None, :]).ravel()[:epochs]


def naive_positions(orbit: Orbit, mjd_utc: np.ndarray) -> np.ndarray:
    """Baseline: one ASSIST call per epoch (forward in time), positions only."""
    import assist
    import rebound

    ephem = integrator._assist_ephem()
    position, velocity = initial_barycentric_state(orbit)
    sim = rebound.Simulation()
    sim.add(
        x=position[0], y=position[1], z=position[2], vx=velocity[0], vy=velocity[1], vz=velocity[2]
    )
    sim.t = orbit.epoch_mjd_tdb + JD_MJD_OFFSET - ephem.jd_ref
    extras = assist.Extras(sim, ephem)
    extras.forces = ForceModel().assist_forces(orbit)
    sim.ri_ias15.adaptive_mode = 2
    times = np.sort(utc_to_tdb(mjd_utc)) + JD_MJD_OFFSET - ephem.jd_ref
    out = np.empty((times.size, 3))
    extras.integrate_or_interpolate(times[0])
    for i, t in enumerate(times):
        extras.integrate_or_interpolate(t)
        p = sim._particles[0]
        out[i] = (p.x, p.y, p.z)
    return out


def synthetic_population(count: int, seed: int) -> list[Orbit]:
    """Main-belt (80%), near-Earth (15%) and Jupiter-family comet (5%) orbits."""
    rng = np.random.default_rng(seed)
    orbits = []
    for i in range(count):
        kind = rng.uniform()
        common = {
            "epoch_mjd_tdb": EPOCH_MJD,
            "node_deg": rng.uniform(0, 360),
            "peri_deg": rng.uniform(0, 360),
            "designation": f"S{i:05d}",
        }
        if kind < 0.80:
            orbits.append(
                orbit_from_elements(
                    a_au=rng.uniform(2.1, 3.3),
                    e=rng.uniform(0.0, 0.3),
                    incl_deg=rng.uniform(0, 25),
                    mean_anomaly_deg=rng.uniform(0, 360),
                    h=rng.uniform(12, 19),
                    g=0.15,
                    **common,
                )
            )
        elif kind < 0.95:
            orbits.append(
                orbit_from_elements(
                    a_au=rng.uniform(0.9, 2.5),
                    e=rng.uniform(0.1, 0.7),
                    incl_deg=rng.uniform(0, 35),
                    mean_anomaly_deg=rng.uniform(0, 360),
                    h=rng.uniform(16, 24),
                    g=0.15,
                    **common,
                )
            )
        else:
            q = rng.uniform(1.0, 2.5)
            orbits.append(
                orbit_from_elements(
                    q_au=q,
                    e=rng.uniform(0.3, 0.7),
                    incl_deg=rng.uniform(0, 20),
                    tp_mjd_tdb=EPOCH_MJD + rng.uniform(-1500, 1500),
                    h=rng.uniform(10, 16),
                    k1=10.0,
                    orbit_type="comet",
                    **common,
                )
            )
    return orbits


def separation_arcsec(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray
) -> np.ndarray:
    # Great-circle distance: the flat-sky formula this replaced was wrong across RA 0.
    return separation(ra1, dec1, ra2, dec2) * 3600.0


def one_object_year(epochs: int) -> None:
    times = survey_year(epochs)
    print(
        f"1. One object over a year: {times.size} epochs in {math.ceil(epochs / 700)} nights, "
        "observatory I41"
    )
    print(
        f"   {'object':22s} {'predict wall s':>15s} {'cpu s':>7s} "
        f"{'bare ASSIST loop wall s':>24s} {'predict / bare':>15s}"
    )
    demo = {o.label: o for o in load_demo_orbits()}
    for label in ("(433) Eros", "(944) Hidalgo", "2P/Encke"):
        orbit = demo[label]
        predict(orbit, times[:10])  # load DE440, IERS table and ASSIST once, outside the timing
        wall, cpu, _ = timed(lambda orbit=orbit: predict(orbit, times, "I41"))
        naive_wall, _, _ = timed(lambda orbit=orbit: naive_positions(orbit, times))
        print(
            f"   {label:22s} {wall:15.3f} {cpu:7.3f} {naive_wall:24.3f} {wall / naive_wall:15.2f}"
        )


def many_objects_one_night(count: int, exposures: int, seed: int) -> None:
    night = NIGHT_START_MJD + np.linspace(0.0, 0.354, exposures)
    orbits = synthetic_population(count, seed)
    print(
        f"\n2. {count} synthetic orbits (epoch 2026-06-09) against one night of {exposures} "
        "exposures (2024-04-08, I41)"
    )
    predict_night(orbits[:5], night[:3])  # warm-up
    results = {}
    for method in ("nbody", "kepler"):
        wall, cpu, batch = timed(
            lambda method=method: predict_night(orbits, night, "I41", method=method)
        )
        results[method] = batch
        print(
            f"   predict_night(method={method!r}): {wall:8.2f} s wall, {cpu:8.2f} s cpu  "
            f"-> {count / wall * 60:10,.0f} objects per minute"
        )
    sample = np.random.default_rng(seed + 1).choice(count, size=min(30, count), replace=False)
    worst_nbody = 0.0
    coarse_errors = []
    for i in sample:
        exact = predict(orbits[i], night, "I41")
        nbody, kepler = results["nbody"], results["kepler"]
        worst_nbody = max(
            worst_nbody,
            float(separation_arcsec(nbody.ra[i], nbody.dec[i], exact.ra, exact.dec).max()),
        )
        coarse_errors.append(
            float(separation_arcsec(kepler.ra[i], kepler.dec[i], exact.ra, exact.dec).max())
        )
    coarse = np.array(coarse_errors)
    print(
        f'   error against predict() on {sample.size} of them: nbody max {worst_nbody:.5f}"; '
        f'kepler (two years from the epoch) median {np.median(coarse):.0f}", '
        f'max {coarse.max():.0f}"'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50_000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--exposures", type=int, default=700)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    one_object_year(args.epochs)
    many_objects_one_night(args.objects, args.exposures, args.seed)


if __name__ == "__main__":
    main()
