"""Sky geometry in numpy: unit vectors, separations, the gnomonic projection, point in polygon.

The ground floor of every part that reasons about positions on the sky (the pipeline, the
moving-object search, cutouts, ingest's footprints, the web pages' drawings); it imports
nothing but numpy. Angles are degrees, right ascension in [0, 360); every function takes
arrays (or scalars) and broadcasts them.

- ``unit_vectors`` / ``radec_of``: (ra, dec) <-> unit vectors (..., 3).
- ``angle_between`` (vectors) and ``separation`` (positions): great-circle distances, from the
  arctangent of |a x b| and a . b, exact to rounding at every angle (the arccosine loses
  precision near 0 and 180 degrees, the haversine near 180).
- ``gnomonic`` / ``gnomonic_inverse``: the TAN projection of FITS (WCS paper II, LONPOLE 180):
  standard coordinates xi (towards east) and eta (north) about a tangent point. It maps great
  circles to straight lines; a point of the other hemisphere has no image (NaN).
- ``inside_convex_polygon``: whether points lie inside spherical polygons whose edges are great
  circles (image footprints, SODA and SIA polygons), either winding, edges included.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FRONT_LIMIT = 1e-9
"""cos of the angle from the tangent point beyond which ``gnomonic`` gives no position: a point
90 degrees away or more (the projection sends it to infinity, then behind)."""


def unit_vectors(ra: ArrayLike, dec: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors (..., 3) of positions in degrees."""
    ra_r = np.radians(np.asarray(ra, dtype=float))
    dec_r = np.radians(np.asarray(dec, dtype=float))
    cos_dec = np.cos(dec_r)
    return np.stack([cos_dec * np.cos(ra_r), cos_dec * np.sin(ra_r), np.sin(dec_r)], axis=-1)


def radec_of(vectors: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions (degrees, ra in [0, 360)) of vectors (..., 3) of any non-zero length."""
    v = np.asarray(vectors, dtype=float)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def angle_between(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Angle in degrees between vectors (..., 3) (of any non-zero lengths)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.einsum("...i,...i->...", a, b)))


def separation(ra1: ArrayLike, dec1: ArrayLike, ra2: ArrayLike,
               dec2: ArrayLike) -> NDArray[np.float64]:
    """Great-circle distance in degrees between positions (degrees)."""
    return angle_between(unit_vectors(ra1, dec1), unit_vectors(ra2, dec2))


def gnomonic(ra: ArrayLike, dec: ArrayLike, ra0: ArrayLike,
             dec0: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Standard coordinates (xi east, eta north; degrees) of positions about tangent points;
    NaN for a position 90 degrees or more from its tangent point."""
    ra_r = np.radians(np.asarray(ra, dtype=float))
    dec_r = np.radians(np.asarray(dec, dtype=float))
    ra0_r = np.radians(np.asarray(ra0, dtype=float))
    dec0_r = np.radians(np.asarray(dec0, dtype=float))
    d_ra = ra_r - ra0_r
    cos_dec, sin_dec = np.cos(dec_r), np.sin(dec_r)
    cos_dec0, sin_dec0 = np.cos(dec0_r), np.sin(dec0_r)
    cos_c = sin_dec0 * sin_dec + cos_dec0 * cos_dec * np.cos(d_ra)
    front = cos_c > FRONT_LIMIT
    safe = np.where(front, cos_c, 1.0)
    xi = np.where(front, cos_dec * np.sin(d_ra) / safe, np.nan)
    eta = np.where(front, (cos_dec0 * sin_dec - sin_dec0 * cos_dec * np.cos(d_ra)) / safe,
                   np.nan)
    return np.degrees(xi), np.degrees(eta)


def gnomonic_inverse(xi: ArrayLike, eta: ArrayLike, ra0: ArrayLike,
                     dec0: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions (degrees) of standard coordinates (degrees) about tangent points."""
    x = np.radians(np.asarray(xi, dtype=float))
    y = np.radians(np.asarray(eta, dtype=float))
    ra0_r = np.radians(np.asarray(ra0, dtype=float))
    dec0_r = np.radians(np.asarray(dec0, dtype=float))
    denominator = np.cos(dec0_r) - y * np.sin(dec0_r)
    ra = ra0_r + np.arctan2(x, denominator)
    dec = np.arctan2(np.sin(dec0_r) + y * np.cos(dec0_r), np.hypot(x, denominator))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def inside_convex_polygon(ra: ArrayLike, dec: ArrayLike, vertex_ra: ArrayLike,
                          vertex_dec: ArrayLike) -> NDArray[np.bool_]:
    """Whether each position lies inside a convex spherical polygon (edges included).

    ``vertex_ra`` / ``vertex_dec`` (..., N) are the polygon's vertices in order around it,
    either sense; their leading dimensions broadcast against the positions' (one polygon for
    all points, or polygon i for point i). Edges are great circles, and a convex polygon is the
    intersection of the hemispheres its edges bound on its own side, so a position is inside
    when it is on the polygon's side of every edge's great circle. The polygon must be smaller
    than a hemisphere (what pgsphere accepts too)."""
    corners = unit_vectors(vertex_ra, vertex_dec)
    normals = np.cross(corners, np.roll(corners, -1, axis=-2))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    centre = corners.sum(axis=-2, keepdims=True)
    side = np.where(np.einsum("...i,...i->...", normals, centre) >= 0.0, 1.0, -1.0)
    points = unit_vectors(ra, dec)[..., None, :]
    return np.all(np.einsum("...i,...i->...", normals, points) * side >= 0.0, axis=-1)
