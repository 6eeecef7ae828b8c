"""predict(): behaviour around the numbers (the numbers are in test_horizons_accuracy.py)."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.sso.ephemeris import SPEED_OF_LIGHT_AU_PER_DAY, EphemerisRequestError, predict
from skyvault.sso.errors import SsoError
from skyvault.sso.observatories import UnknownObservatoryError
from skyvault.sso.orbits import Orbit, load_demo_orbits, orbit_from_elements
from skyvault.sso.planets import EphemerisRangeError


def demo(label: str) -> Orbit:
    return next(o for o in load_demo_orbits() if o.label == label)


def test_every_quantity_has_one_value_per_time_in_the_order_given() -> None:
    times = np.array([61210.4, 61200.1, 61205.0, 61200.1])  # unsorted, with a repeat
    ephemeris = predict(demo("(433) Eros"), times)
    assert len(ephemeris) == 4 and ephemeris.observatory.code == "I41"
    np.testing.assert_array_equal(ephemeris.mjd_utc, times)
    for name in (
        "ra",
        "dec",
        "ra_rate",
        "dec_rate",
        "delta",
        "r",
        "phase",
        "elong",
        "vmag",
        "light_time",
        "mjd_tdb",
    ):
        assert getattr(ephemeris, name).shape == (4,), name
    assert ephemeris.ra[1] == ephemeris.ra[3]
    one_by_one = [predict(demo("(433) Eros"), [t]).ra[0] for t in times[:3]]
    np.testing.assert_allclose(ephemeris.ra[:3], one_by_one, atol=1e-10)
    # TDB runs 69.18 s ahead of UTC in 2026.
    np.testing.assert_allclose((ephemeris.mjd_tdb - times) * 86400, 69.184, atol=0.002)


def test_rates_are_the_derivatives_of_the_positions() -> None:
    eros = demo("(433) Eros")
    t = 61203.37
    step = 1.0 / 24.0  # an hour
    ahead, behind, now = (predict(eros, [t + dt]) for dt in (step, -step, 0.0))
    dec = np.radians(now.dec[0])
    ra_rate = (ahead.ra[0] - behind.ra[0]) * 3600 * np.cos(dec) / 2  # arcsec per hour
    dec_rate = (ahead.dec[0] - behind.dec[0]) * 3600 / 2
    assert now.ra_rate[0] == pytest.approx(ra_rate, abs=0.01)
    assert now.dec_rate[0] == pytest.approx(dec_rate, abs=0.01)


def test_light_time_is_distance_over_c_and_geometry_is_consistent() -> None:
    ephemeris = predict(demo("(4) Vesta"), 61200.0 + np.arange(0, 200, 20.0))
    np.testing.assert_allclose(ephemeris.light_time, ephemeris.delta / SPEED_OF_LIGHT_AU_PER_DAY)
    assert np.all((ephemeris.phase >= 0) & (ephemeris.phase <= 180))
    assert np.all((ephemeris.elong >= 0) & (ephemeris.elong <= 180))
    assert np.all((ephemeris.dec >= -90) & (ephemeris.dec <= 90))
    assert np.all((ephemeris.ra >= 0) & (ephemeris.ra < 360))
    # Triangle Sun-Earth-Vesta: r, delta and the phase angle fit the law of sines with ~1 au.
    earth_sun = (
        ephemeris.r * np.sin(np.radians(ephemeris.phase)) / np.sin(np.radians(ephemeris.elong))
    )
    np.testing.assert_allclose(earth_sun, 1.0, atol=0.02)
    assert np.all(np.isfinite(ephemeris.vmag)) and np.all(ephemeris.vmag < 9)


def test_magnitude_is_nan_without_h() -> None:
    orbit = orbit_from_elements(
        epoch_mjd_tdb=61200.0,
        e=0.1,
        incl_deg=3.0,
        node_deg=10.0,
        peri_deg=20.0,
        a_au=2.6,
        mean_anomaly_deg=50.0,
    )
    assert np.isnan(predict(orbit, [61200.0]).vmag).all()


def test_comet_magnitude_from_m1_k1() -> None:
    encke = demo("2P/Encke")
    ephemeris = predict(encke, [61440.0])
    expected = encke.h + 5 * np.log10(ephemeris.delta) + encke.k1 * np.log10(ephemeris.r)
    np.testing.assert_allclose(ephemeris.vmag, expected)


def test_dense_year_and_sparse_decade_give_the_same_positions() -> None:
    """Nodes are only kept near the times asked; sparse requests lose nothing."""
    orbit = demo("(944) Hidalgo")
    dense = np.linspace(60000.0, 60365.0, 3000)
    sparse = np.concatenate([dense[::500], [57000.0, 63000.0]])
    a = predict(orbit, dense)
    b = predict(orbit, sparse)
    np.testing.assert_allclose(b.ra[:-2], a.ra[::500], atol=1e-9)
    np.testing.assert_allclose(b.dec[:-2], a.dec[::500], atol=1e-9)


@pytest.mark.parametrize(
    ("times", "observatory", "error"),
    [
        ([], "I41", EphemerisRequestError),
        ([np.nan], "I41", EphemerisRequestError),
        ([61200.0], "ZZZ", UnknownObservatoryError),
        ([300000.0], "500", EphemerisRangeError),
    ],
)
def test_bad_requests_raise_sso_errors(
    times: list[float], observatory: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        predict(demo("(1) Ceres"), times, observatory)
    assert isinstance(caught.value, SsoError)
    assert str(caught.value)
