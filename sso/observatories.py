"""Observatories and where they are in the GCRS at a given time.

Sites are given, as in the MPC's list, by east longitude and the parallax constants
rho cos(phi'), rho sin(phi') in Earth equatorial radii. The terrestrial-to-celestial rotation
is the CIO-based IAU 2000B model with UT1-UTC and polar motion from the IERS table bundled with
astropy (see ``timescales``), evaluated directly with erfa and vectorised over time: the CIP
coordinates X, Y, s change slowly, so they are computed on a half-day grid and interpolated
(error < 0.01 mas, i.e. < 1 mm at the Earth's surface), while the Earth rotation angle and
polar motion are evaluated at every time.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from importlib import resources

import erfa
import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SsoError
from .planets import grid_nodes
from .timescales import JD_MJD_OFFSET, SECONDS_PER_DAY, earth_orientation, utc_to_tt

EARTH_EQUATORIAL_RADIUS_KM = 6378.137
AU_KM = 149597870.7
# Earth rotation angle rate (IERS Conventions 2010, eq. 5.15), radians per UT1 day.
ERA_RATE_RAD_PER_DAY = 2.0 * math.pi * 1.00273781191135448
XYS_GRID_STEP_DAYS = 0.5


class UnknownObservatoryError(SsoError, KeyError):
    """An observatory code this module has no position for."""

    def __str__(self) -> str:
        return f"unknown observatory code {self.args[0]!r}"


@dataclass(frozen=True, slots=True)
class Observatory:
    """A site fixed to the Earth (or the geocentre): MPC-style parallax constants."""

    code: str
    name: str
    lon_deg: float
    rho_cos_phi: float
    rho_sin_phi: float

    @classmethod
    def from_geodetic(
        cls, code: str, name: str, lon_deg: float, lat_deg: float, height_m: float
    ) -> Observatory:
        """A site from WGS84 geodetic longitude (east), latitude and height."""
        xyz = erfa.gd2gc(1, math.radians(lon_deg), math.radians(lat_deg), height_m)
        radius_m = EARTH_EQUATORIAL_RADIUS_KM * 1000.0
        return cls(
            code=code,
            name=name,
            lon_deg=lon_deg % 360.0,
            rho_cos_phi=float(math.hypot(xyz[0], xyz[1]) / radius_m),
            rho_sin_phi=float(xyz[2] / radius_m),
        )

    @property
    def is_geocentric(self) -> bool:
        return self.rho_cos_phi == 0.0 and self.rho_sin_phi == 0.0

    def itrs_km(self) -> NDArray[np.float64]:
        lon = math.radians(self.lon_deg)
        return EARTH_EQUATORIAL_RADIUS_KM * np.array(
            [self.rho_cos_phi * math.cos(lon), self.rho_cos_phi * math.sin(lon), self.rho_sin_phi]
        )


@functools.cache
def _known_observatories() -> dict[str, Observatory]:
    text = resources.files("skyvault.sso").joinpath("data/observatories.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {
        row["code"]: Observatory(
            code=row["code"],
            name=row["name"],
            lon_deg=float(row["lon_deg"]),
            rho_cos_phi=float(row["rho_cos_phi"]),
            rho_sin_phi=float(row["rho_sin_phi"]),
        )
        for row in rows
    }


def get_observatory(code: str | Observatory) -> Observatory:
    if isinstance(code, Observatory):
        return code
    try:
        return _known_observatories()[code.strip().upper()]
    except KeyError:
        raise UnknownObservatoryError(code) from None


def known_observatory_codes() -> list[str]:
    return sorted(_known_observatories())


def _interpolated_cip(mjd_tt: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """CIP X, Y and CIO locator s at each TT MJD, from IAU 2000B on a half-day grid.

    IAU 2000B differs from the full IAU 2006/2000A model by under a milliarcsecond here,
    i.e. 3 cm at the Earth's surface, and costs a fortieth as much.
    """
    nodes, left, fraction = grid_nodes(mjd_tt, XYS_GRID_STEP_DAYS)
    x, y, s = erfa.xys00b(JD_MJD_OFFSET, nodes)
    return tuple(a[left] + fraction * (a[left + 1] - a[left]) for a in (x, y, s))


def observer_gcrs(
    observatory: Observatory, mjd_utc: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Geocentric position (au) and velocity (au/day) of the site in the GCRS, shape (N, 3).

    Velocity is the Earth's rotation only (precession-nutation and polar motion rates are
    a millionth of it).
    """
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    if observatory.is_geocentric:
        zeros = np.zeros((mjd.size, 3))
        return zeros, zeros.copy()
    mjd_tt = utc_to_tt(mjd)
    dut1, xp, yp = earth_orientation(mjd)
    era = erfa.era00(JD_MJD_OFFSET, mjd + dut1 / SECONDS_PER_DAY)
    x, y, s = _interpolated_cip(mjd_tt)
    c2i = erfa.c2ixys(x, y, s)  # GCRS -> CIRS
    pom = erfa.pom00(xp, yp, erfa.sp00(JD_MJD_OFFSET, mjd_tt))  # TIRS -> ITRS
    tirs = np.einsum("nji,j->ni", pom, observatory.itrs_km())  # ITRS -> TIRS
    # TIRS -> CIRS is a rotation by -ERA about z (erfa's R3(ERA) maps CIRS to TIRS).
    cos_era, sin_era = np.cos(era), np.sin(era)
    cirs = np.stack(
        [
            cos_era * tirs[:, 0] - sin_era * tirs[:, 1],
            sin_era * tirs[:, 0] + cos_era * tirs[:, 1],
            tirs[:, 2],
        ],
        axis=1,
    )
    cirs_velocity = ERA_RATE_RAD_PER_DAY * np.stack(
        [-cirs[:, 1], cirs[:, 0], np.zeros_like(era)], axis=1
    )
    position = np.einsum("nji,nj->ni", c2i, cirs) / AU_KM
    velocity = np.einsum("nji,nj->ni", c2i, cirs_velocity) / AU_KM
    return position, velocity
