"""Brute-force spherical geometry in numpy, independent of q3c and pgsphere: the reference every
ADQL spatial predicate is compared with.

Edges of polygons and boxes are great-circle arcs; positions are (ra, dec) in degrees. Each test
returns, besides inside/outside, the distance (degrees) to the nearest boundary, so that points
closer to a boundary than a test's margin can be left out of the comparison.
"""

from __future__ import annotations

import numpy as np


def unit(ra, dec) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def separation(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance in degrees (haversine, accurate at small angles)."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def in_cone(ra, dec, ra0: float, dec0: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(inside, distance to the circle) of points and a cone."""
    distance = separation(ra, dec, ra0, dec0)
    return distance <= radius, np.abs(distance - radius)


def in_polygon(ra, dec, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside, distance to the nearest edge's great circle) for a polygon smaller than a
    hemisphere: a gnomonic projection about its centre maps edges to straight lines, where
    the even-odd rule decides."""
    corners = unit(vertices[:, 0], vertices[:, 1])
    centre = corners.sum(axis=0)
    centre /= np.linalg.norm(centre)
    east = np.cross([0.0, 0.0, 1.0], centre)
    if np.linalg.norm(east) < 1e-12:
        east = np.array([1.0, 0.0, 0.0])
    east /= np.linalg.norm(east)
    north = np.cross(centre, east)

    def project(vectors):
        depth = vectors @ centre
        return np.stack([vectors @ east / depth, vectors @ north / depth], axis=-1), depth

    points = unit(ra, dec)
    plane, depth = project(points)
    polygon, _ = project(corners)
    inside = np.zeros(len(points), dtype=bool)
    x, y = plane[:, 0], plane[:, 1]
    for k in range(len(polygon)):
        (x1, y1), (x2, y2) = polygon[k], polygon[(k + 1) % len(polygon)]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at)
    inside &= depth > 0
    normals = np.cross(corners, np.roll(corners, -1, axis=0))
    normals /= np.linalg.norm(normals, axis=1)[:, None]
    margin = np.degrees(np.abs(np.arcsin(np.clip(points @ normals.T, -1, 1)))).min(axis=1)
    return inside, margin


def in_box(ra, dec, ra0: float, dec0: float, width: float,
           height: float) -> tuple[np.ndarray, np.ndarray]:
    """(inside, distance to the nearest side) for an ADQL BOX (ADQL 2.1 section 4.2.5): its
    sides are great circles through the ends of the arms of a cross, at right angles to the
    arms; inside is on the centre's side of all four."""
    c = unit(ra0, dec0)
    east = np.array([-np.sin(np.radians(ra0)), np.cos(np.radians(ra0)), 0.0])
    north = np.cross(c, east)
    points = unit(ra, dec)
    inside = np.ones(len(points), dtype=bool)
    margin = np.full(len(points), np.inf)
    for along, across, half in ((east, north, width / 2), (north, east, height / 2)):
        for sign in (1, -1):
            arm_end = np.cos(np.radians(half)) * c + sign * np.sin(np.radians(half)) * along
            normal = np.cross(arm_end, across)
            normal /= np.linalg.norm(normal)
            side = points @ normal
            inside &= np.sign(side) == np.sign(c @ normal)
            margin = np.minimum(margin, np.degrees(np.abs(np.arcsin(np.clip(side, -1, 1)))))
    return inside, margin


def spherical_area(vertices: np.ndarray) -> float:
    """Square degrees of a convex polygon (sum of the triangles of a fan, L'Huilier)."""
    corners = unit(vertices[:, 0], vertices[:, 1])
    total = 0.0
    for k in range(1, len(corners) - 1):
        a, b, c = corners[0], corners[k], corners[k + 1]
        total += 2 * np.arctan2(abs(np.dot(a, np.cross(b, c))),
                                1 + np.dot(a, b) + np.dot(b, c) + np.dot(c, a))
    return float(total * (180 / np.pi) ** 2)
