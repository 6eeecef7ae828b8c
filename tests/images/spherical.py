"""Brute-force spherical geometry in numpy, independent of pgsphere: the reference the SIA
footprint search is compared with. Polygons are convex (image footprints and query polygons);
edges are great-circle arcs; RANGE boxes have meridian and parallel edges."""

from __future__ import annotations

import numpy as np


def unit(ra: float, dec: float) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])


def vertices(points: list[tuple[float, float]]) -> np.ndarray:
    return np.array([unit(ra, dec) for ra, dec in points])


def _inward_normals(corners: np.ndarray) -> np.ndarray:
    normals = np.cross(corners, np.roll(corners, -1, axis=0))
    return normals * np.sign(normals @ corners.sum(axis=0))[:, None]


def inside_convex_many(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    return np.all(points @ _inward_normals(corners).T >= 0, axis=1)


def inside_convex(point: np.ndarray, corners: np.ndarray) -> bool:
    return bool(inside_convex_many(point[None, :], corners)[0])


def _on_arc(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    normal = np.cross(a, b)
    return np.cross(a, point) @ normal >= 0 and np.cross(point, b) @ normal >= 0


def arc_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians) from a point to the great-circle arc a-b."""
    normal = np.cross(a, b)
    normal /= np.linalg.norm(normal)
    foot = point - (point @ normal) * normal
    if np.linalg.norm(foot) > 1e-15:
        foot /= np.linalg.norm(foot)
        if _on_arc(foot, a, b):
            return float(np.arcsin(min(1.0, abs(point @ normal))))
    return float(min(np.arccos(np.clip(point @ a, -1, 1)), np.arccos(np.clip(point @ b, -1, 1))))


def arcs_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    line = np.cross(np.cross(a, b), np.cross(c, d))
    norm = np.linalg.norm(line)
    if norm < 1e-15:
        return False
    line /= norm
    return any(_on_arc(p, a, b) and _on_arc(p, c, d) for p in (line, -line))


def _edges(corners: np.ndarray):
    for i in range(len(corners)):
        yield corners[i], corners[(i + 1) % len(corners)]


def circle_meets_polygon(ra: float, dec: float, radius: float, corners: np.ndarray) -> bool:
    centre = unit(ra, dec)
    if inside_convex(centre, corners):
        return True
    limit = np.radians(radius)
    return any(arc_distance(centre, a, b) <= limit for a, b in _edges(corners))


def polygons_meet(first: np.ndarray, second: np.ndarray) -> bool:
    if any(inside_convex(p, second) for p in first) or any(inside_convex(p, first)
                                                          for p in second):
        return True
    return any(arcs_cross(a, b, c, d) for a, b in _edges(first) for c, d in _edges(second))


def _radec(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra = np.degrees(np.arctan2(points[:, 1], points[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(points[:, 2], -1, 1)))
    return ra, dec


def _densified(corners: np.ndarray, per_edge: int = 400) -> np.ndarray:
    parts = []
    for a, b in _edges(corners):
        t = np.linspace(0.0, 1.0, per_edge)[:, None]
        chord = (1 - t) * a + t * b
        parts.append(chord / np.linalg.norm(chord, axis=1)[:, None])
    return np.vstack(parts)


Box = tuple[float, float, float, float]


def _in_range(ra: np.ndarray, dec: np.ndarray, box: Box) -> np.ndarray:
    ra_min, ra_max, dec_min, dec_max = box
    in_dec = (dec >= dec_min) & (dec <= dec_max)
    if ra_max - ra_min >= 360:
        return in_dec
    if ra_min <= ra_max:
        return in_dec & (ra >= ra_min) & (ra <= ra_max)
    return in_dec & ((ra >= ra_min) | (ra <= ra_max))


def range_meets_polygon(box: Box, corners: np.ndarray) -> bool:
    """A lon/lat box against a convex polygon: the polygon's boundary (densely sampled) enters
    the box, or the box's boundary (densely sampled) enters the polygon."""
    ra, dec = _radec(_densified(corners))
    if _in_range(ra, dec, box).any():
        return True
    ra_min, ra_max, dec_min, dec_max = box
    span = 360.0 if ra_max - ra_min >= 360 else (ra_max - ra_min) % 360.0
    ras = (ra_min + np.linspace(0.0, span, 2000)) % 360.0
    decs = np.linspace(dec_min, dec_max, 2000)
    edge_ra = [ras, ras]
    edge_dec = [np.full_like(ras, dec_min), np.full_like(ras, dec_max)]
    if span < 360:
        edge_ra += [np.full_like(decs, ras[0]), np.full_like(decs, ras[-1])]
        edge_dec += [decs, decs]
    r, d = np.radians(np.concatenate(edge_ra)), np.radians(np.concatenate(edge_dec))
    points = np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
    return bool(inside_convex_many(points, corners).any())
