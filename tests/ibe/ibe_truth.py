"""The independent side of the IBE tests: which images a search must return, computed apart from
the service (rows read as the database owner, visibility by the rule written out, geometry by
astropy's gnomonic projection and shapely).

IRSA defines the search region as the convex spherical polygon with great-circle edges that POS
and SIZE make (width along the east axis at POS, height along the north axis), compared with
each image's polygon of its four corners. In the gnomonic projection at POS great circles are
straight lines, so both polygons are exact plane polygons there: the search region is the
rectangle |x| <= tan(width/2), |y| <= tan(height/2) (x east, y north), and each predicate is a
plane predicate. astropy (wcslib) does the projection, shapely the predicates.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS
from shapely.geometry import Point, Polygon

from skyvault.db import Database
from skyvault.releases.dating import release_date_sql
from skyvault.schema.tables import table_by_name

KEYS = {"sci": ("science_images", "pid", "programid"), "raw": ("raw_images", "rawid", "programid"),
        "ref": ("reference_images", "refid", "programids"),
        "cal": ("calibration_images", "calid", "programids")}


@dataclass(frozen=True)
class Image:
    key: int
    corners: tuple[tuple[float, float], ...]
    centre: tuple[float, float]
    programs: frozenset[int]
    release: dt.datetime | None
    """When the releases declared so far make it public (None: none does)."""

    def visible_to(self, programs: frozenset[int]) -> bool:
        released = self.release is not None and self.release <= dt.datetime.now(dt.UTC)
        return released or bool(self.programs & programs)


def images(database: Database, table: str, where: str) -> list[Image]:
    """Current images of a table (sci, raw, ref), as the owner reads them."""
    name, key, program = KEYS[table]
    found = []
    with database.admin() as connection:
        for row in connection.execute(
                f"SELECT {key}, ra1, dec1, ra2, dec2, ra3, dec3, ra4, dec4, ra, dec, {program},"
                f" {release_date_sql(table_by_name(f'survey.{name}').embargo)}"
                f" FROM survey.{name} WHERE is_current = 1 AND {where}"):
            programs = frozenset(row[11] if isinstance(row[11], list) else [row[11]])
            corners = tuple((row[i], row[i + 1]) for i in range(1, 9, 2))
            found.append(Image(row[0], corners, (row[9], row[10]), programs, row[12]))
    return found


def gnomonic(ra: float, dec: float) -> WCS:
    """Tangent-plane coordinates at (ra, dec) in degrees of the projection plane: a 'pixel'
    offset x is the plane coordinate (180/pi) tan(angle), as wcslib's TAN defines it."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [1.0, 1.0]  # FITS pixel 1 is 0 in the 0-based output below
    wcs.wcs.cdelt = [1.0, 1.0]  # the search rectangle is symmetric: east or west is the same
    return wcs


def plane(wcs: WCS, points) -> list[tuple[float, float]]:
    ra = np.array([p[0] for p in points], float)
    dec = np.array([p[1] for p in points], float)
    x, y = wcs.wcs_world2pix(ra, dec, 0)
    return list(zip(x.tolist(), y.tolist(), strict=True))


def search_region(ra: float, dec: float, width: float, height: float) -> Polygon:
    half_x = math.degrees(math.tan(math.radians(width / 2)))
    half_y = math.degrees(math.tan(math.radians(height / 2)))
    return Polygon([(-half_x, -half_y), (half_x, -half_y), (half_x, half_y), (-half_x, half_y)])


def expected(found: list[Image], programs: frozenset[int], ra: float, dec: float,
             width: float = 0.0, height: float = 0.0, intersect: str = "OVERLAPS") -> set[int]:
    """The keys IBE must return for POS/SIZE/INTERSECT, to a requester in ``programs``."""
    wcs = gnomonic(ra, dec)
    keys = set()
    for image in found:
        if not image.visible_to(programs):
            continue
        polygon = Polygon(plane(wcs, image.corners))
        if width == 0 and height == 0:
            hit = intersect != "ENCLOSED" and polygon.covers(Point(0.0, 0.0))
        else:
            region = search_region(ra, dec, width, height)
            hit = {"OVERLAPS": polygon.intersects(region), "COVERS": polygon.covers(region),
                   "ENCLOSED": region.covers(polygon),
                   "CENTER": polygon.covers(Point(0.0, 0.0))}[intersect]
        if hit:
            keys.add(image.key)
    return keys


def most_centred(found: list[Image], programs: frozenset[int], ra: float,
                 dec: float) -> set[int]:
    """The images containing POS whose centres are nearest it (all of them, if tied)."""
    containing = [i for i in found if i.key in expected(found, programs, ra, dec)]
    if not containing:
        return set()

    def distance(image: Image) -> float:
        a, b = np.radians(image.centre), np.radians((ra, dec))
        term = (np.sin((a[1] - b[1]) / 2) ** 2
                + np.cos(a[1]) * np.cos(b[1]) * np.sin((a[0] - b[0]) / 2) ** 2)
        return float(2 * np.arcsin(np.sqrt(term)))

    nearest = min(distance(i) for i in containing)
    return {i.key for i in containing if distance(i) <= nearest + 1e-12}
