"""Time scales for ephemerides: UTC -> TT -> TDB, and UT1 for the Earth's rotation.

Everything is vectorised over numpy arrays of MJD. Leap seconds come from erfa (its table is
compiled in; it refuses dates before 1960). UT1-UTC and polar motion come from the IERS table
bundled with astropy (astropy-iers-data); nothing is downloaded: beyond the table, UT1-UTC is
held at its last value and polar motion at zero, which moves a topocentric observer by at most
a few hundred metres (well under a milliarcsecond for anything beyond the Moon).
"""

from __future__ import annotations

import functools
import warnings

import erfa
import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import SsoError

TT_MINUS_TAI_S = 32.184
SECONDS_PER_DAY = 86400.0
MJD_J2000 = 51544.5
JD_MJD_OFFSET = 2400000.5


class TimeRangeError(SsoError, ValueError):
    """Times the time-scale conversion cannot handle (before 1960, or not finite)."""


def tdb_minus_tt_seconds(mjd_tt: ArrayLike) -> NDArray[np.float64]:
    """TDB - TT at the geocentre, the two leading periodic terms (error < 30 microseconds)."""
    days = np.asarray(mjd_tt, dtype=float) - MJD_J2000
    g = np.radians(357.53 + 0.98560028 * days)
    return 0.001657 * np.sin(g) + 0.000014 * np.sin(2.0 * g)


def tt_to_tdb(mjd_tt: ArrayLike) -> NDArray[np.float64]:
    mjd = np.asarray(mjd_tt, dtype=float)
    return mjd + tdb_minus_tt_seconds(mjd) / SECONDS_PER_DAY


def tdb_to_tt(mjd_tdb: ArrayLike) -> NDArray[np.float64]:
    mjd = np.asarray(mjd_tdb, dtype=float)
    # TDB - TT changes by < 1e-9 s over the correction itself, so one step is exact enough.
    return mjd - tdb_minus_tt_seconds(mjd) / SECONDS_PER_DAY


def calendar_to_mjd(year: int, month: int, day: float) -> float:
    """Gregorian calendar date (day may carry a fraction) -> MJD on the same time scale."""
    whole_day = int(np.floor(day))
    try:
        jd0, jd1 = erfa.cal2jd(year, month, whole_day)
    except erfa.ErfaError as err:
        raise ValueError(f"{year}-{month:02d}-{day} is not a calendar date") from err
    return float(jd0 + jd1 - JD_MJD_OFFSET + (day - whole_day))


def tai_minus_utc_seconds(mjd_utc: ArrayLike) -> NDArray[np.float64]:
    """Leap-second count (TAI - UTC) for each UTC MJD, from erfa's compiled-in table."""
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    if not np.all(np.isfinite(mjd)):
        raise TimeRangeError("times must be finite")
    if mjd.size and mjd.min() < 36934.0:  # 1960-01-01: erfa has no UTC before it
        raise TimeRangeError("UTC times before 1960 are not supported")
    # Leap seconds change at midnight only, so evaluate once per distinct day.
    days, inverse = np.unique(np.floor(mjd), return_inverse=True)
    iy, im, id_, _ = erfa.jd2cal(JD_MJD_OFFSET, days)
    with warnings.catch_warnings():
        # "dubious year" for dates past erfa's table: the last leap second then holds,
        # the same assumption Horizons documents for future UTC.
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        delta_at_day = erfa.dat(iy, im, id_, 0.0)
    # Before 1972 TAI-UTC drifted within the day; later it is an integer per day.
    if days.min() < 41317.0:
        frac = mjd - np.floor(mjd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", erfa.ErfaWarning)
            return np.asarray(erfa.dat(iy[inverse], im[inverse], id_[inverse], frac), dtype=float)
    return np.asarray(delta_at_day, dtype=float)[inverse]


def _checked(mjd_utc: ArrayLike) -> NDArray[np.float64]:
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    if not np.all(np.isfinite(mjd)):
        raise TimeRangeError("times must be finite")
    if mjd.size and mjd.min() < 36934.0:
        raise TimeRangeError("UTC times before 1960 are not supported")
    return mjd


def utc_to_tt(mjd_utc: ArrayLike) -> NDArray[np.float64]:
    """UTC MJD -> TT MJD with erfa's convention (a day with a leap second has 86401 s)."""
    mjd = _checked(mjd_utc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year": future UTC
        tai1, tai2 = erfa.utctai(JD_MJD_OFFSET, mjd)
    return (tai1 - JD_MJD_OFFSET) + tai2 + TT_MINUS_TAI_S / SECONDS_PER_DAY


def utc_to_tdb(mjd_utc: ArrayLike) -> NDArray[np.float64]:
    return tt_to_tdb(utc_to_tt(mjd_utc))


def tt_to_utc(mjd_tt: ArrayLike) -> NDArray[np.float64]:
    """TT MJD -> UTC MJD (inverse of utc_to_tt)."""
    mjd_tt = np.atleast_1d(np.asarray(mjd_tt, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        utc1, utc2 = erfa.taiutc(JD_MJD_OFFSET, mjd_tt - TT_MINUS_TAI_S / SECONDS_PER_DAY)
    return (utc1 - JD_MJD_OFFSET) + utc2


@functools.cache
def _earth_orientation_table() -> tuple[NDArray[np.float64], ...]:
    """(mjd, ut1-utc s, x_p rad, y_p rad) from astropy's bundled IERS tables, never downloaded."""
    from astropy.utils import iers

    # Module-level effect on astropy, on purpose: this process must never reach for the network.
    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    table = iers.IERS_Auto.open()
    mjd = np.asarray(table["MJD"].value, dtype=float)
    dut1 = np.asarray(table["UT1_UTC"].value, dtype=float)
    xp = np.asarray(table["PM_x"].to_value("rad"), dtype=float)
    yp = np.asarray(table["PM_y"].to_value("rad"), dtype=float)
    good = np.isfinite(dut1) & np.isfinite(xp) & np.isfinite(yp)
    return mjd[good], dut1[good], xp[good], yp[good]


def earth_orientation(
    mjd_utc: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """UT1-UTC (s) and polar motion x_p, y_p (rad) at each UTC MJD.

    Outside the bundled table UT1-UTC keeps its edge value (so the leap-second steps stay out of
    the extrapolation) and polar motion is taken as zero.
    """
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    table_mjd, dut1, xp, yp = _earth_orientation_table()
    # Interpolating UT1-UTC across a leap second would smear the 1 s step over a day:
    # interpolate UT1-TAI instead, which is smooth, then add the leap seconds back.
    ut1_tai = dut1 - tai_minus_utc_seconds(table_mjd)
    ut1_utc = np.interp(mjd, table_mjd, ut1_tai) + tai_minus_utc_seconds(mjd)
    inside = (mjd >= table_mjd[0]) & (mjd <= table_mjd[-1])
    x = np.where(inside, np.interp(mjd, table_mjd, xp), 0.0)
    y = np.where(inside, np.interp(mjd, table_mjd, yp), 0.0)
    # Beyond the table, UT1-UTC jumps with any future leap second that erfa does not know about;
    # without one, holding UT1-TAI constant keeps |UT1-UTC| < 0.9 s as the IERS does.
    ut1_utc = np.where(np.abs(ut1_utc) < 1.0, ut1_utc, np.sign(ut1_utc) * 0.9)
    return ut1_utc, x, y
