"""Palomar: sidereal time, altitude and azimuth, Sun and Moon, in numpy (no network)."""

from __future__ import annotations

import warnings

import numpy as np

LATITUDE = 33.3563
LONGITUDE = -116.8650
"""East longitude, deg."""
ELEVATION_M = 1712.0


def local_sidereal_time(jd: np.ndarray) -> np.ndarray:
    """Local mean sidereal time (deg); accurate to about a second of time, ample for planning."""
    d = np.asarray(jd, dtype=float) - 2451545.0
    return (280.46061837 + 360.98564736629 * d + LONGITUDE) % 360.0


def altaz(ra: np.ndarray, dec: np.ndarray, jd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Altitude and azimuth (deg, azimuth from north through east), geometric."""
    hour_angle = np.radians(local_sidereal_time(jd) - np.asarray(ra))
    d, lat = np.radians(dec), np.radians(LATITUDE)
    sin_alt = np.sin(d) * np.sin(lat) + np.cos(d) * np.cos(lat) * np.cos(hour_angle)
    alt = np.arcsin(np.clip(sin_alt, -1, 1))
    az = np.arctan2(
        -np.cos(d) * np.sin(hour_angle),
        np.sin(d) * np.cos(lat) - np.cos(d) * np.sin(lat) * np.cos(hour_angle),
    )
    return np.degrees(alt), np.degrees(az) % 360.0


def airmass(altitude: np.ndarray) -> np.ndarray:
    """Pickering (2002): finite at the horizon, within 0.1% of plane-parallel high up."""
    h = np.maximum(np.asarray(altitude, dtype=float), 1.0)
    return 1.0 / np.sin(np.radians(h + 244.0 / (165.0 + 47.0 * h**1.1)))


def sun_moon(jd: np.ndarray) -> dict[str, np.ndarray]:
    """Apparent RA/Dec of Sun and Moon, and the Moon's illuminated fraction."""
    from astropy.coordinates import get_body
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False
    times = Time(np.atleast_1d(jd), format="jd", scale="utc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sun = get_body("sun", times)
        moon = get_body("moon", times)
    elongation = sun.separation(moon).radian
    # Phase angle from elongation with the Earth-Sun and Earth-Moon distances.
    sun_distance = sun.distance.to_value("km")
    moon_distance = moon.distance.to_value("km")
    phase = np.arctan2(
        sun_distance * np.sin(elongation), moon_distance - sun_distance * np.cos(elongation)
    )
    return {
        "sun_ra": np.asarray(sun.ra.deg),
        "sun_dec": np.asarray(sun.dec.deg),
        "moon_ra": np.asarray(moon.ra.deg),
        "moon_dec": np.asarray(moon.dec.deg),
        "moon_illumination": np.asarray((1 + np.cos(phase)) / 2),
    }
