"""Many objects over a night: the n-body batch equals predict(); two-body's error, measured."""

from __future__ import annotations

import numpy as np

from skyvault.sso.batch import predict_night
from skyvault.sso.ephemeris import predict
from skyvault.sso.orbits import load_demo_orbits


def separation_arcsec(ra1, dec1, ra2, dec2):  # type: ignore[no-untyped-def]
    return np.hypot((ra1 - ra2) * np.cos(np.radians(dec2)), dec1 - dec2) * 3600.0


NIGHT = 60400.15 + np.linspace(0.0, 0.35, 60)  # an 8.4-hour night in April 2024


def test_nbody_batch_matches_predict_for_every_object() -> None:
    orbits = load_demo_orbits()
    batch = predict_night(orbits, NIGHT, "I41")
    assert batch.ra.shape == (len(orbits), NIGHT.size)
    for i, orbit in enumerate(orbits):
        single = predict(orbit, NIGHT, "I41")
        assert separation_arcsec(batch.ra[i], batch.dec[i], single.ra, single.dec).max() < 0.001
        np.testing.assert_allclose(batch.ra_rate[i], single.ra_rate, atol=0.01)
        np.testing.assert_allclose(batch.delta[i], single.delta, rtol=1e-9)
        np.testing.assert_allclose(batch.r[i], single.r, rtol=1e-7)


def test_two_body_from_the_epoch_is_coarse_and_says_how_coarse() -> None:
    """The demo epochs are 2025-2026; two years earlier two-body misses by 15-100": fine for a
    first pass with a generous radius, not for the final answer (the n-body batch is)."""
    orbits = load_demo_orbits()
    coarse = predict_night(orbits, NIGHT, "I41", method="kepler")
    exact = predict_night(orbits, NIGHT, "I41")
    error = separation_arcsec(coarse.ra, coarse.dec, exact.ra, exact.dec)
    assert 5.0 < error.max() < 600.0
