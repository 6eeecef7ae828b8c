"""The moving-object search's pure steps against independent references: footprints and pixels
(skyvault.geometry, and skyvault.tansip over many images at once) against astropy's WCS, the
coarse path against direct predictions, the uncertainty rule."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from skyvault.geometry import angle_between, inside_convex_polygon, radec_of, unit_vectors
from skyvault.sso.ephemeris import predict
from skyvault.sso.orbits import load_demo_orbits
from skyvault.sso.search import (
    coarse_path,
    footprint_radius_deg,
    near_pointings,
    positional_uncertainty_arcsec,
    runoff_arcsec_per_decade,
)
from skyvault.tansip import TanSip

ORBITS = {orbit.designation: orbit for orbit in load_demo_orbits()}


def _wcs(ra: float, dec: float, rotation: float, scale: float, n1: int, n2: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(n1 + 1) / 2 + 3.3, (n2 + 1) / 2 - 7.1]
    angle = np.radians(rotation)
    w.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return w


def _images(rng: np.random.Generator, count: int) -> list[tuple[WCS, int, int]]:
    images = []
    for k in range(count):
        # Include the poles' neighbourhood and RA = 0/360 on purpose.
        dec = [89.7, -89.6][k] if k < 2 else rng.uniform(-80, 85)
        ra = 359.95 if k == 2 else rng.uniform(0, 360)
        n1, n2 = int(rng.integers(50, 3072)), int(rng.integers(50, 3080))
        images.append((_wcs(ra, dec, rng.uniform(0, 360), rng.uniform(0.3, 2.0) / 3600, n1, n2),
                       n1, n2))
    return images


def test_inside_footprints_agrees_with_pixel_bounds() -> None:
    """A point is inside the quadrilateral of the pixel-centre corners (1,1), (n1,1), (n1,n2),
    (1,n2) exactly when its TAN pixel coordinates lie within [1, n1] x [1, n2]: TAN maps great
    circles to straight lines, so the two tests agree everywhere but on the edges themselves."""
    rng = np.random.default_rng(8)
    points_ra, points_dec, centre_ra, centre_dec, corner_ra, corner_dec, expected = (
        [], [], [], [], [], [], [])
    for w, n1, n2 in _images(rng, 200):
        corners = w.all_pix2world(np.array([1, n1, n1, 1]), np.array([1, 1, n2, n2]), 1)
        centre = w.all_pix2world(np.array([(n1 + 1) / 2]), np.array([(n2 + 1) / 2]), 1)
        # Points spread over twice the image (pixels -n/2 .. 1.5 n), most near the edges.
        x = rng.uniform(-0.5 * n1, 1.5 * n1, 60)
        y = rng.uniform(-0.5 * n2, 1.5 * n2, 60)
        x[:20] = rng.choice([1.0, float(n1)], 20) + rng.normal(0, 0.5, 20)
        y[20:40] = rng.choice([1.0, float(n2)], 20) + rng.normal(0, 0.5, 20)
        ra, dec = w.all_pix2world(x, y, 1)
        back_x, back_y = w.all_world2pix(ra, dec, 1)
        margin = np.minimum.reduce([np.abs(back_x - 1), np.abs(back_x - n1),
                                    np.abs(back_y - 1), np.abs(back_y - n2)])
        keep = margin > 1e-4
        points_ra += list(ra[keep])
        points_dec += list(dec[keep])
        inside = (back_x >= 1) & (back_x <= n1) & (back_y >= 1) & (back_y <= n2)
        expected += list(inside[keep])
        for _ in range(int(keep.sum())):
            centre_ra.append(centre[0][0])
            centre_dec.append(centre[1][0])
            corner_ra.append(corners[0])
            corner_dec.append(corners[1])
    found = inside_convex_polygon(np.array(points_ra), np.array(points_dec),
                                  np.array(corner_ra), np.array(corner_dec))
    expected_array = np.array(expected)
    assert expected_array.sum() > 2000 and (~expected_array).sum() > 2000
    assert np.array_equal(found, expected_array)


def test_a_point_on_the_far_side_of_the_sky_is_never_inside() -> None:
    corners_ra = np.array([[9.0, 11.0, 11.0, 9.0]])
    corners_dec = np.array([[-1.0, -1.0, 1.0, 1.0]])
    # The antipode projects to the image's plane "behind" it: it must not count.
    assert not inside_convex_polygon(np.array([190.0]), np.array([0.0]), corners_ra,
                                     corners_dec)[0]
    assert inside_convex_polygon(np.array([10.5]), np.array([0.2]), corners_ra, corners_dec)[0]


def test_stored_linear_wcs_pixels_match_astropy() -> None:
    rng = np.random.default_rng(3)
    images = _images(rng, 100)
    ra_points, dec_points, columns, expected_x, expected_y = [], [], [], [], []
    for w, n1, n2 in images:
        x, y = rng.uniform(-100, n1 + 100, 5), rng.uniform(-100, n2 + 100, 5)
        ra, dec = w.all_pix2world(x, y, 1)
        ra_points += list(ra)
        dec_points += list(dec)
        expected_x += list(x)
        expected_y += list(y)
        columns += [(*w.wcs.crval, *w.wcs.crpix, *w.wcs.cd.ravel())] * 5
    values = np.array(columns)
    wcs = TanSip(crval=(values[:, 0], values[:, 1]), crpix=(values[:, 2], values[:, 3]),
                 cd=values[:, 4:8].T.reshape(2, 2, -1))
    x, y = wcs.world_to_pixel(np.array(ra_points), np.array(dec_points))
    assert np.max(np.abs(x - expected_x)) < 1e-6
    assert np.max(np.abs(y - expected_y)) < 1e-6


def test_footprint_radius_is_the_farthest_corner() -> None:
    radius = footprint_radius_deg(np.array([10.0]), np.array([0.0]),
                                  np.array([[9.0, 11.0, 11.0, 9.0]]),
                                  np.array([[-2.0, -1.0, 1.0, 1.0]]))
    assert radius[0] == pytest.approx(np.hypot(1.0, 2.0), rel=2e-3)


@pytest.mark.parametrize("designation", ["4", "433", "2P"])
def test_coarse_path_error_stays_within_its_margin(designation: str) -> None:
    """Interpolated positions at random times over a year stay within the margin the path
    reports, measured against predict() itself: a main-belt asteroid (Vesta), a near-Earth
    asteroid (Eros) and a comet close to the Sun (Encke, perihelion 2027-02)."""
    orbit = ORBITS[designation]
    path = coarse_path(orbit, 61000.0, 61365.0)
    times = np.sort(np.random.default_rng(5).uniform(61000.0, 61365.0, 3000))
    exact = predict(orbit, times)
    vectors, margin = path.at(times)
    error = angle_between(vectors, unit_vectors(exact.ra, exact.dec))
    assert np.all(error <= margin), float(np.max(error / margin))
    # The margin is useful only if it is small against a quadrant (0.43 deg half-width).
    assert float(np.max(margin)) < 0.1


def test_near_pointings_finds_what_the_exact_path_says() -> None:
    orbit = ORBITS["433"]
    rng = np.random.default_rng(11)
    times = np.sort(rng.uniform(61100.0, 61200.0, 4000))
    exact = predict(orbit, times)
    # Pointings scattered around the true positions, 0-8 degrees away.
    offsets = rng.uniform(0, 8, times.size)
    angle = rng.uniform(0, 2 * np.pi, times.size)
    ra = exact.ra + offsets * np.cos(angle) / np.cos(np.radians(exact.dec))
    dec = np.clip(exact.dec + offsets * np.sin(angle), -89.9, 89.9)
    truth = angle_between(unit_vectors(exact.ra, exact.dec), unit_vectors(ra, dec))
    path = coarse_path(orbit, float(times[0]), float(times[-1]))
    found = near_pointings(path, times, ra, dec, 5.0)
    assert set(np.flatnonzero(truth <= 5.0)) <= set(found.tolist())
    # Nothing found is farther than radius plus the margin allows.
    assert np.all(truth[found] <= 5.0 + 2 * path.margin_deg.max())


def test_radec_round_trip() -> None:
    ra, dec = radec_of(unit_vectors([0.0, 359.999, 123.4], [-89.0, 0.0, 45.0]))
    assert np.allclose(ra, [0.0, 359.999, 123.4]) and np.allclose(dec, [-89.0, 0.0, 45.0])


def test_uncertainty_from_the_mpc_u_parameter() -> None:
    """U is int(ln(RUNOFF)/1.1513 + 1), RUNOFF in arcsec per decade: its bin's upper end is
    10^(U/2) (https://minorplanetcenter.net/iau/info/UValue.html)."""
    assert runoff_arcsec_per_decade("0") == pytest.approx(1.0)
    assert runoff_arcsec_per_decade(4) == pytest.approx(100.0)
    assert runoff_arcsec_per_decade("9") == pytest.approx(10**4.5)
    for flag in (None, "E", "D", "", "12"):
        assert runoff_arcsec_per_decade(flag) is None
    # Ten years from the epoch, seen from 1 au at r = 2 au: twice the runoff.
    value = positional_uncertainty_arcsec("4", 60000.0, np.array([60000.0 + 3652.5]),
                                          np.array([2.0]), np.array([1.0]))
    assert value[0] == pytest.approx(200.0)
    assert np.isnan(positional_uncertainty_arcsec(None, 0.0, np.array([1.0]), 1.0, 1.0)[0])
