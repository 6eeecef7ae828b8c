"""ingest/plan.py's sky geometry on its own: a CCD's centre and outline from its four quadrants'
footprints, against astropy (the CCD's own TAN WCS and SkyCoord), across RA 0 and near a pole."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from skyvault.ingest.plan import ccd_geometry
from skyvault.pipeline.manifest import Footprint

SIDE = 6144  # CCD pixels on a side; quadrants are its four 3072 x 3072 corners


def ccd_wcs(ra: float, dec: float, rotation: float) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(SIDE + 1) / 2, (SIDE + 1) / 2]
    angle = np.radians(rotation)
    scale = 1.012 / 3600
    wcs.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)],
                                   [np.sin(angle), np.cos(angle)]])
    return wcs


def quadrant_footprints(wcs: WCS) -> list[Footprint]:
    half = SIDE // 2
    footprints = []
    for x0, y0 in ((1, 1), (half + 1, 1), (half + 1, half + 1), (1, half + 1)):
        x1, y1 = x0 + half - 1, y0 + half - 1
        ra, dec = wcs.all_pix2world([(x0 + x1) / 2, x0, x1, x1, x0],
                                    [(y0 + y1) / 2, y0, y0, y1, y1], 1)
        footprints.append(Footprint(ra[0], dec[0], ra[1], dec[1], ra[2], dec[2], ra[3], dec[3],
                                    ra[4], dec[4]))
    return footprints


@pytest.mark.parametrize("ra, dec, rotation", [
    (150.0, 2.0, 0.0), (0.05, -10.0, 30.0), (359.98, 45.0, -75.0), (200.0, 87.5, 10.0),
    (10.0, -88.0, 135.0),
])
def test_a_ccd_outline_is_its_four_outer_corners_in_order(ra: float, dec: float,
                                                          rotation: float) -> None:
    wcs = ccd_wcs(ra, dec, rotation)
    quadrants = quadrant_footprints(wcs)
    values = ccd_geometry(quadrants)
    centres = SkyCoord([q.ra for q in quadrants] * u.deg, [q.dec for q in quadrants] * u.deg)
    mean = SkyCoord(centres.cartesian.mean(), representation_type="cartesian").spherical
    expected_centre = SkyCoord(mean.lon, mean.lat)
    assert SkyCoord(values["ra"] * u.deg, values["dec"] * u.deg).separation(
        expected_centre).arcsec < 1e-6
    x, y = wcs.all_world2pix([values[f"ra{k}"] for k in range(1, 5)],
                             [values[f"dec{k}"] for k in range(1, 5)], 1)
    corners = [(round(float(a)), round(float(b))) for a, b in zip(x, y, strict=True)]
    outline = [(1, 1), (SIDE, 1), (SIDE, SIDE), (1, SIDE)]
    start = outline.index(corners[0])
    turns = [outline[(start + k) % 4] for k in range(4)]
    backwards = [outline[(start - k) % 4] for k in range(4)]
    assert corners in (turns, backwards), corners
    assert values["footprint"].startswith("{(") and values["footprint"].count("d,") == 4


def test_fewer_quadrants_give_a_centre_and_no_outline() -> None:
    quadrants = quadrant_footprints(ccd_wcs(0.01, 5.0, 0.0))[:3]
    values = ccd_geometry(quadrants)
    assert set(values) == {"ra", "dec"}
    assert 0.0 <= values["ra"] < 360.0
