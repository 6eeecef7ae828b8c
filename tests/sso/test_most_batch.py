"""Many objects against one night (sso/search_batch.py) against a brute-force oracle: every
object predicted with ``predict`` at every image's mid-exposure time and tested against every
image's corners. The night is synthetic (sso/synthetic.py: ZTF-like 64-quadrant exposures),
half of its exposures pointed near objects so that there is plenty to find."""

from __future__ import annotations

import numpy as np

from skyvault.geometry import gnomonic_inverse, inside_convex_polygon
from skyvault.sso.ephemeris import predict
from skyvault.sso.orbits import load_demo_orbits
from skyvault.sso.search import mid_exposure_mjd
from skyvault.sso.search_batch import NightImages, search_night
from skyvault.sso.synthetic import camera_quadrants, random_orbits

NIGHT_MJD = 61400.15


def _night(orbits, rng: np.random.Generator) -> NightImages:
    starts = NIGHT_MJD + np.sort(rng.uniform(0.0, 0.35, 40))
    mid = mid_exposure_mjd(starts + 2400000.5, 30.0)
    telra = rng.uniform(0, 360, starts.size)
    teldec = rng.uniform(-30, 80, starts.size)
    for k in range(0, starts.size, 2):
        # Every other exposure points within a camera's width of one of the objects.
        orbit = orbits[int(rng.integers(len(orbits)))]
        where = predict(orbit, [mid[k]])
        telra[k], teldec[k] = gnomonic_inverse(rng.uniform(-3.5, 3.5), rng.uniform(-3.5, 3.5),
                                               where.ra[0], where.dec[0])
    quadrants = camera_quadrants(telra, teldec)
    n = starts.size
    return NightImages(
        exposure_mid_mjd=mid, telra=telra, teldec=teldec,
        image_id=np.arange(n * 64, dtype=np.int64),
        image_exposure=np.repeat(np.arange(n), 64),
        centre_ra=quadrants.centre_ra.ravel(), centre_dec=quadrants.centre_dec.ravel(),
        corners_ra=quadrants.corners_ra.reshape(-1, 4),
        corners_dec=quadrants.corners_dec.reshape(-1, 4))


def test_search_night_finds_what_brute_force_finds() -> None:
    rng = np.random.default_rng(42)
    orbits = random_orbits(24, NIGHT_MJD - 20.0, rng, near_earth_fraction=0.25)
    orbits += load_demo_orbits()
    night = _night(orbits, rng)
    found = search_night(orbits, night)
    expected = set()
    for index, orbit in enumerate(orbits):
        ephemeris = predict(orbit, night.exposure_mid_mjd)
        ra = ephemeris.ra[night.image_exposure]
        dec = ephemeris.dec[night.image_exposure]
        inside = inside_convex_polygon(ra, dec, night.corners_ra, night.corners_dec)
        expected |= {(index, int(i)) for i in np.flatnonzero(inside)}
    pairs = set(zip(found.orbit_index.tolist(), found.image_index.tolist(), strict=True))
    assert len(expected) >= 15
    assert pairs == expected
    # The candidates were a small part of all (object, image) pairs.
    assert found.candidate_pairs < 0.02 * len(orbits) * night.image_id.size
