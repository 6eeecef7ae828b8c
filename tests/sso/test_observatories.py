"""Observatory codes and the site's GCRS position, against astropy's EarthLocation."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from astropy.time import Time

from skyvault.sso.observatories import (
    Observatory,
    UnknownObservatoryError,
    get_observatory,
    known_observatory_codes,
    observer_gcrs,
)
from skyvault.sso.planets import AU_KM


def test_known_codes() -> None:
    assert {"500", "I41", "X05", "W84"} <= set(known_observatory_codes())
    i41 = get_observatory("i41")
    assert i41.name == "Palomar Mountain--ZTF" and i41.lon_deg == 243.14022
    with pytest.raises(UnknownObservatoryError, match="unknown observatory code 'Q99'"):
        get_observatory("Q99")


def test_geodetic_position_reproduces_the_mpc_parallax_constants() -> None:
    """ZTF's geodetic position gives the MPC's I41 constants to a few metres."""
    site = Observatory.from_geodetic("I41", "ZTF", -116.859787, 33.357336, 1663.96)
    mpc = get_observatory("I41")
    assert site.rho_cos_phi == pytest.approx(mpc.rho_cos_phi, abs=5e-6)
    assert site.rho_sin_phi == pytest.approx(mpc.rho_sin_phi, abs=5e-6)


def test_gcrs_position_and_velocity_agree_with_astropy() -> None:
    site = get_observatory("I41")
    mjd = np.linspace(58000.0, 61000.0, 40) + 0.3217
    position, velocity = observer_gcrs(site, mjd)
    location = EarthLocation.from_geocentric(*site.itrs_km(), unit=u.km)
    reference_r, reference_v = location.get_gcrs_posvel(Time(mjd, format="mjd", scale="utc"))
    error_m = np.abs(position - reference_r.xyz.to_value(u.au).T).max() * AU_KM * 1000
    assert error_m < 0.5
    error_mm_s = np.abs(velocity - reference_v.xyz.to_value(u.au / u.day).T).max()
    assert error_mm_s * AU_KM * 1e6 / 86400 < 1.0
    # The radius is the site's distance from the geocentre, 0.99 Earth radii for Palomar.
    radius = np.linalg.norm(position, axis=1) * AU_KM
    np.testing.assert_allclose(radius, np.linalg.norm(site.itrs_km()), rtol=1e-9)


def test_geocentre_is_zero() -> None:
    position, velocity = observer_gcrs(get_observatory("500"), [60000.0, 60001.0])
    assert not position.any() and not velocity.any()
