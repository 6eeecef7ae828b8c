"""UTC, TT, TDB and UT1: checked against astropy's Time, and never a download."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time
from astropy.utils import iers

from skyvault.sso.timescales import (
    TimeRangeError,
    earth_orientation,
    tai_minus_utc_seconds,
    tdb_to_tt,
    tt_to_utc,
    utc_to_tdb,
    utc_to_tt,
)


def test_utc_to_tdb_agrees_with_astropy() -> None:
    mjd = np.array([41317.5, 51544.0, 57203.99999, 57204.00001, 60000.25, 61200.0])
    reference = Time(mjd, format="mjd", scale="utc")
    np.testing.assert_allclose((utc_to_tt(mjd) - reference.tt.mjd) * 86400, 0, atol=1e-6)
    # Two-term TDB-TT is good to tens of microseconds; astropy uses the full series.
    np.testing.assert_allclose((utc_to_tdb(mjd) - reference.tdb.mjd) * 86400, 0, atol=5e-5)


def test_leap_seconds() -> None:
    assert tai_minus_utc_seconds([57203.9]).tolist() == [35.0]  # before 2015-07-01
    assert tai_minus_utc_seconds([57204.1]).tolist() == [36.0]
    assert tai_minus_utc_seconds([60000.0]).tolist() == [37.0]


def test_round_trips() -> None:
    mjd = np.linspace(45000.0, 62000.0, 37) + 0.123
    np.testing.assert_allclose(tt_to_utc(utc_to_tt(mjd)), mjd, atol=1e-11)
    np.testing.assert_allclose(tdb_to_tt(utc_to_tdb(mjd)), utc_to_tt(mjd), atol=1e-11)


def test_times_before_1960_and_nan_are_refused() -> None:
    with pytest.raises(TimeRangeError):
        utc_to_tt([30000.0])
    with pytest.raises(TimeRangeError):
        utc_to_tt([np.nan])


def test_earth_orientation_inside_and_beyond_the_bundled_table() -> None:
    dut1, xp, yp = earth_orientation([58000.0])
    reference = Time(58000.0, format="mjd", scale="utc")
    assert dut1[0] == pytest.approx(reference.delta_ut1_utc, abs=1e-4)
    assert 0 < abs(xp[0]) < 3e-6 and 0 < abs(yp[0]) < 3e-6  # a fraction of an arcsecond
    # Far beyond any table: graceful (bounded UT1-UTC, no polar motion), no exception.
    dut1, xp, yp = earth_orientation([80000.0])
    assert abs(dut1[0]) < 1.0 and xp[0] == 0.0 and yp[0] == 0.0
    assert iers.conf.auto_download is False
