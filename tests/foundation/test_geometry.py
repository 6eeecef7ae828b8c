"""The sky geometry of ``skyvault.geometry`` against astropy on random positions, the poles and
the RA wrap included: separations against ``SkyCoord.separation``, unit vectors against its
Cartesian form, the gnomonic projection against ``astropy.wcs`` (RA---TAN), and point in
polygon against a planar crossing test in astropy's own TAN plane."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from skyvault.geometry import (
    angle_between,
    gnomonic,
    gnomonic_inverse,
    inside_convex_polygon,
    radec_of,
    separation,
    unit_vectors,
)

RNG_SEED = 20261207


def random_positions(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the sphere, plus the poles, RA 0 and just below 360."""
    ra = rng.uniform(0.0, 360.0, count)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, count)))
    ra[:6] = [0.0, 359.9999999, 0.0, 180.0, 359.99, 0.01]
    dec[:6] = [90.0, -90.0, 0.0, 89.9999, -89.99, 45.0]
    return ra, dec


def test_unit_vectors_and_back_agree_with_astropy() -> None:
    rng = np.random.default_rng(RNG_SEED)
    ra, dec = random_positions(rng, 2000)
    vectors = unit_vectors(ra, dec)
    cartesian = SkyCoord(ra * u.deg, dec * u.deg).cartesian.xyz.value.T
    assert np.max(np.abs(vectors - cartesian)) < 1e-15
    back_ra, back_dec = radec_of(vectors * rng.uniform(0.1, 10.0, (len(ra), 1)))
    assert np.max(np.abs(back_dec - dec)) < 1e-12
    away_from_poles = np.abs(dec) < 89.9
    wrap = (back_ra - ra + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(wrap[away_from_poles])) < 1e-9
    assert np.all((back_ra >= 0.0) & (back_ra < 360.0))


@pytest.mark.parametrize("scale", [1e-9, 1e-4, 1.0, 90.0, 180.0])
def test_separations_agree_with_skycoord(scale: float) -> None:
    """From a nanodegree to antipodes; pairs across RA 0 and over the poles."""
    rng = np.random.default_rng(RNG_SEED + int(scale * 1000))
    ra1, dec1 = random_positions(rng, 3000)
    target = SkyCoord(ra1 * u.deg, dec1 * u.deg).directional_offset_by(
        rng.uniform(0.0, 360.0, len(ra1)) * u.deg, rng.uniform(0.0, scale, len(ra1)) * u.deg)
    ra2, dec2 = target.ra.deg, target.dec.deg
    expected = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(
        SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
    found = separation(ra1, dec1, ra2, dec2)
    assert np.max(np.abs(found - expected)) < 1e-11  # 40 nano-arcsec
    assert np.allclose(angle_between(unit_vectors(ra1, dec1), unit_vectors(ra2, dec2)),
                       found, rtol=0, atol=1e-12)


def tan_wcs(ra0: float, dec0: float) -> WCS:
    """TAN about (ra0, dec0) whose pixel coordinates (1-based) are the standard coordinates in
    degrees: CRPIX 0 and an identity CD matrix. LONPOLE is 180 everywhere (FITS defaults it to
    0 for a tangent point exactly at a pole, which turns the plane by 180 degrees there)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = [0.0, 0.0]
    wcs.wcs.cd = np.eye(2)
    wcs.wcs.lonpole = 180.0
    return wcs


def test_gnomonic_projection_agrees_with_astropy_wcs() -> None:
    rng = np.random.default_rng(RNG_SEED + 1)
    centres_ra, centres_dec = random_positions(rng, 60)
    for ra0, dec0 in zip(centres_ra, centres_dec, strict=True):
        wcs = tan_wcs(ra0, dec0)
        around = SkyCoord(ra0 * u.deg, dec0 * u.deg).directional_offset_by(
            rng.uniform(0.0, 360.0, 300) * u.deg, rng.uniform(0.0, 80.0, 300) * u.deg)
        ra, dec = around.ra.deg, around.dec.deg
        xi, eta = gnomonic(ra, dec, ra0, dec0)
        x, y = wcs.wcs_world2pix(ra, dec, 1)
        scale = np.maximum(1.0, np.hypot(x, y))
        assert np.max(np.abs(xi - x) / scale) < 1e-10, (ra0, dec0)
        assert np.max(np.abs(eta - y) / scale) < 1e-10, (ra0, dec0)
        back_ra, back_dec = gnomonic_inverse(xi, eta, ra0, dec0)
        assert np.max(separation(back_ra, back_dec, ra, dec)) < 1e-9
        their_ra, their_dec = wcs.wcs_pix2world(x, y, 1)
        assert np.max(separation(back_ra, back_dec, their_ra, their_dec)) < 1e-9


def test_positions_a_hemisphere_away_have_no_projection() -> None:
    xi, eta = gnomonic(np.array([10.0, 190.0, 100.0]), np.array([0.0, 0.0, 0.0]), 10.0, 0.0)
    assert np.isfinite(xi[0]) and np.isnan(xi[1]) and np.isnan(eta[2])


def crossing_inside(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Planar crossing-number test, brute force over the edges."""
    inside = np.zeros(len(x), dtype=bool)
    for i in range(len(px)):
        j = i - 1
        crosses = (py[i] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = px[i] + (y - py[i]) * (px[j] - px[i]) / (py[j] - py[i])
        inside ^= crosses & (x < at)
    return inside


def test_inside_convex_polygon_agrees_with_a_planar_test_in_astropys_tan_plane() -> None:
    """Great circles are straight lines in the TAN plane, so a planar test there (astropy's
    projection about the polygon's centre) is an independent reference. Polygons of 3 to 8
    vertices from arcseconds to 40 degrees, at the poles and across RA 0, both windings."""
    rng = np.random.default_rng(RNG_SEED + 2)
    centres_ra, centres_dec = random_positions(rng, 80)
    inside_total = outside_total = 0
    for k, (ra0, dec0) in enumerate(zip(centres_ra, centres_dec, strict=True)):
        radius = 10 ** rng.uniform(-3, np.log10(40.0))
        bearings = np.sort(rng.uniform(0.0, 360.0, int(rng.integers(3, 9))))
        if k % 2:
            bearings = bearings[::-1]
        centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
        # On a small circle, in order: a convex polygon.
        vertices = centre.directional_offset_by(bearings * u.deg, radius * u.deg)
        points = centre.directional_offset_by(rng.uniform(0.0, 360.0, 400) * u.deg,
                                              rng.uniform(0.0, 1.5 * radius, 400) * u.deg)
        wcs = tan_wcs(ra0, dec0)
        vx, vy = wcs.wcs_world2pix(vertices.ra.deg, vertices.dec.deg, 1)
        x, y = wcs.wcs_world2pix(points.ra.deg, points.dec.deg, 1)
        expected = crossing_inside(x, y, vx, vy)
        # Leave out points within a micro-fraction of the size of an edge's line.
        ex, ey = np.roll(vx, -1) - vx, np.roll(vy, -1) - vy
        distance = np.min(np.abs(ex[:, None] * (y - vy[:, None]) - ey[:, None] * (x - vx[:, None]))
                          / np.hypot(ex, ey)[:, None], axis=0)
        clear = distance > 1e-9 * radius
        found = inside_convex_polygon(points.ra.deg, points.dec.deg, vertices.ra.deg,
                                      vertices.dec.deg)
        assert np.array_equal(found[clear], expected[clear]), (ra0, dec0, radius)
        inside_total += int(expected[clear].sum())
        outside_total += int((~expected[clear]).sum())
    assert inside_total > 5000 and outside_total > 5000


def test_each_point_against_its_own_polygon_and_the_far_side() -> None:
    corners_ra = np.array([[9.0, 11.0, 11.0, 9.0], [359.5, 0.5, 0.5, 359.5]])
    corners_dec = np.array([[-1.0, -1.0, 1.0, 1.0], [88.0, 88.0, 89.0, 89.0]])
    assert list(inside_convex_polygon([10.5, 0.0], [0.2, 88.5], corners_ra, corners_dec)) == [
        True, True]
    # Swapped: each point against the other's polygon; the antipode of a polygon's centre.
    assert not inside_convex_polygon([0.0, 10.5], [88.5, 0.2], corners_ra, corners_dec).any()
    assert not inside_convex_polygon(190.0, 0.0, corners_ra[0], corners_dec[0])
