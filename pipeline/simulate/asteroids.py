"""Real asteroids in the simulated sky, placed by the archive's own ephemeris engine.

Positions come from ``skyvault.sso.ephemeris.predict`` (numerical integration of real orbital
elements, topocentric at Palomar, light-time corrected), so the moving-object search can later
find each object in exactly the images the simulator put it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from skyvault.pipeline.simulate.plan import AsteroidTrack

OBSERVATORY = "I41"
SOLAR_COLOURS = {"zg": 0.35, "zr": -0.15, "zi": -0.3}
"""Filter magnitude minus V for a solar-coloured asteroid (roughly, for S and C types)."""


class EphemerisUnavailable(RuntimeError):
    """skyvault.sso is not installed or offers no demo orbits."""


@dataclass(frozen=True)
class Ephemerides:
    ra: np.ndarray
    dec: np.ndarray
    vmag: np.ndarray


def object_name(orbit: Any) -> str:
    for attribute in ("name", "designation", "number"):
        value = getattr(orbit, attribute, None)
        if value not in (None, ""):
            return str(value)
    return repr(orbit)


def load_orbits() -> list[Any]:
    try:
        from skyvault.sso.ephemeris import predict  # noqa: F401
        from skyvault.sso.orbits import load_demo_orbits
    except ImportError as error:
        raise EphemerisUnavailable(f"skyvault.sso.orbits: {error}") from error
    return list(load_demo_orbits())


def ephemerides(orbit: Any, mjd_utc: np.ndarray) -> Ephemerides:
    from skyvault.sso.ephemeris import predict

    result = predict(orbit, np.asarray(mjd_utc, dtype=float), observatory=OBSERVATORY)
    vmag = np.asarray(getattr(result, "vmag", np.full(np.size(mjd_utc), 18.0)), dtype=float)
    vmag = np.where(np.isfinite(vmag), vmag, 18.0)
    return Ephemerides(np.asarray(result.ra), np.asarray(result.dec), vmag)


PLANNING_FAINT_LIMIT = 21.0
"""Objects fainter than this (V) are not worth visits; they are still drawn wherever they fall."""


def night_tracks(orbits: list[Any], evening_jd: float, morning_jd: float) -> list[AsteroidTrack]:
    """Tracks through the night of the objects bright enough to plan visits for, faintest
    last (so bright, easily detected objects get the visits when there are few to give)."""
    jd = np.linspace(evening_jd, morning_jd, 25)
    tracks = []
    for orbit in orbits:
        eph = ephemerides(orbit, jd - 2400000.5)
        if np.median(eph.vmag) > PLANNING_FAINT_LIMIT:
            continue
        tracks.append(
            (float(np.median(eph.vmag)), AsteroidTrack(object_name(orbit), jd, eph.ra, eph.dec))
        )
    # Prefer objects that stay unsaturated (V 12..20) over the brightest ones.
    tracks.sort(key=lambda item: (not 12.0 <= item[0] <= 20.0, item[0]))
    return [track for _, track in tracks]
