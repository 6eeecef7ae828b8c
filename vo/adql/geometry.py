"""ADQL geometry in PostgreSQL: q3c where the positional index can serve, pgsphere otherwise.

Positions (ra, dec in degrees) of the q3c-indexed columns are tested with ``q3c_join`` (point in
circle; it plans in about 0.2 ms where ``q3c_radial_query`` needs about 3 ms). A point in a
polygon up to 20 degrees across is a cone search on a circle holding the polygon (the index:
``q3c_join`` for a small circle, ``q3c_radial_query``'s finer ranges for a larger one) and
``q3c_in_poly`` (the exact test); larger polygons are pgsphere's exact test.

q3c's caches decide what is safe. They live in per-backend memory, which a pooled connection
carries from one user's query to the next. ``q3c_poly_query`` is not used: its pixel ranges are
cached under the polygon's leading vertices whatever their count (segasai/q3c #53), so a
polygon could be searched with the ranges of another planned before it on the same backend.
``q3c_join`` and ``q3c_radial_query`` key their caches on all their inputs (centre, radius),
and ``q3c_in_poly`` keeps its polygon only for one call site of one execution, whose polygon
here is always a constant. q3c 2.0 also loses rows for circles just below 35 degrees
(segasai/q3c #49), so larger circles are tested by distance alone.

Everything else, and every region-on-region test, uses pgsphere objects built in radians and
its GiST-indexable operators ``<@``, ``@>`` and ``&&``. Values leaving the query are DALI arrays
of doubles in degrees (DALI 1.1 section 3.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skyvault.vo.adql import valuetypes as vt
from skyvault.vo.adql.sqltext import number
from skyvault.vo.adql.values import Geo, GeoCircle, GeoPoint, GeoPolygon, GeoSphere, Value

SQUARE_DEGREES_PER_STERADIAN = (180.0 / math.pi) ** 2
Vector = tuple[float, float, float]

# -- coordinates --------------------------------------------------------------------------------


def point_coordinates(point: GeoPoint | GeoSphere) -> tuple[str, str]:
    """SQL for the right ascension and declination (degrees) of a point."""
    if isinstance(point, GeoPoint):
        return point.ra.sql, point.dec.sql
    return f"degrees(long({point.sql}))", f"degrees(lat({point.sql}))"


def indexed_entry(point: GeoPoint | GeoSphere) -> int | None:
    return point.indexed_entry if isinstance(point, GeoPoint) else None


# -- pgsphere -----------------------------------------------------------------------------------


def pg_point(point: GeoPoint | GeoSphere) -> str:
    if isinstance(point, GeoSphere):
        return point.sql
    return f"spoint(radians({point.ra.sql}), radians({point.dec.sql}))"


def pg_circle(circle: GeoCircle) -> str:
    return f"scircle({pg_point(circle.center)}, radians({circle.radius.sql}))"


def pg_polygon(polygon: GeoPolygon) -> str:
    vertices = polygon.vertices
    constants = [_constant_point(vertex) for vertex in vertices]
    if all(c is not None for c in constants):
        body = ",".join(f"({_deg(ra)}d,{_deg(dec)}d)"  # type: ignore[misc]
                        for ra, dec in constants)
        return f"'{{{body}}}'::spoly"
    rows = ", ".join(f"({k}, {pg_point(vertex)})" for k, vertex in enumerate(vertices, 1))
    return f"(SELECT spoly(v.p ORDER BY v.n) FROM (VALUES {rows}) AS v(n, p))"


def _deg(value: float) -> str:
    return repr(float(value))


def _constant_point(point: GeoPoint | GeoSphere) -> tuple[float, float] | None:
    if isinstance(point, GeoPoint) and point.ra.const is not None \
            and point.dec.const is not None:
        return float(point.ra.const), float(point.dec.const)
    return None


def to_pgsphere(geo: Geo) -> str:
    if isinstance(geo, GeoPoint | GeoSphere):
        return pg_point(geo) if isinstance(geo, GeoPoint) else geo.sql
    if isinstance(geo, GeoCircle):
        return pg_circle(geo)
    return pg_polygon(geo)


# -- DALI serialisation -----------------------------------------------------------------------


def dali_array(geo: Geo) -> str:
    """SQL giving the DALI double[] (degrees) of a geometry value."""
    if isinstance(geo, GeoPoint):
        return f"ARRAY[{geo.ra.sql}, {geo.dec.sql}]::float8[]"
    if isinstance(geo, GeoCircle):
        ra, dec = point_coordinates(geo.center)
        return f"ARRAY[{ra}, {dec}, {geo.radius.sql}]::float8[]"
    if isinstance(geo, GeoPolygon):
        parts = []
        for vertex in geo.vertices:
            parts.extend(point_coordinates(vertex))
        return f"ARRAY[{', '.join(parts)}]::float8[]"
    return sphere_dali_array(geo.sql, geo.shape)


def stcs_text(geo: Geo) -> str:
    """SQL giving the STC-S text ('Polygon ICRS ra dec ...') of a stored region."""
    return f"archive.spoly_to_stcs({geo.sql})"


def sphere_dali_array(sql: str, shape: str) -> str:
    if shape == "point":
        return f"ARRAY[degrees(long({sql})), degrees(lat({sql}))]"
    if shape == "circle":
        return (f"ARRAY[degrees(long(center({sql}))), degrees(lat(center({sql}))), "
                f"degrees(radius({sql}))]")
    # pgsphere 1.2 has no accessor for a polygon's vertices; its text form in the default
    # output mode (radians) is "{(lon , lat),(lon , lat),...}" with 15 significant digits.
    return (f"(SELECT array_agg(degrees(u.x::float8) ORDER BY u.n) FROM unnest("
            f"string_to_array(translate(({sql})::text, '{{}}() ', ''), ',')) "
            f"WITH ORDINALITY AS u(x, n))")


# -- predicates ----------------------------------------------------------------------------------


Q3C_RADIUS_LIMIT = 30.0
"""Degrees: q3c 2.0's index ranges can miss rows of larger circles (segasai/q3c #49, fixed
after 2.0.5); measured on uniform positions, a 33-degree cone at (45, +3) found 12219 of 24191
rows through q3c_join."""

Q3C_POLYGON_LIMIT = 10.0
"""Degrees: the largest radius of the circle around a polygon for q3c_in_poly, which refuses
polygons wider than about 23 degrees."""

Q3C_MAX_VERTICES = 100
"""q3c_in_poly refuses polygons with more vertices; pgsphere takes them."""

Q3C_JOIN_CAP = 0.2
"""Degrees: up to this radius of the circle around a polygon the index is reached through
q3c_join (four pixel ranges, cheap to plan); beyond it q3c_radial_query (up to a hundred
finer ranges) reads fewer rows. Measured on 25,000 sources per square degree (BENCHMARKS.md):
a 1-arcminute polygon took 4 ms through q3c_join and 27 ms through q3c_radial_query; one in a
0.28-degree circle 130 ms and 62 ms."""


def point_in_circle(point: GeoPoint | GeoSphere, center: GeoPoint | GeoSphere, radius: Value,
                    point_refs: frozenset[int], center_refs: frozenset[int],
                    strict: bool = False, prefer: dict[int, int] | None = None,
                    sky_keys: dict[int, tuple[str, float]] | None = None) -> str:
    """Point within ``radius`` degrees of ``center``, with q3c_join on an indexed position.

    q3c_join(ra0, dec0, ra, dec, r) uses the index on q3c_ang2ipix(ra, dec), so the indexed
    position goes third and fourth; the centre and radius must not read that same row.
    ``sky_keys`` names, per FROM item, a sky key that is not the position's own q3c pixel (an
    object identifier holding its object's pixel, schema/model.py ``SkyLayout``) with how far
    rows lie from that pixel at most: the key's ranges around the cone, widened by that much,
    are added so that the table's sky cells are pruned as q3c_join prunes position keys.
    """
    ra, dec = point_coordinates(point)
    ra0, dec0 = point_coordinates(center)
    candidates = []
    point_entry = indexed_entry(point)
    if point_entry is not None and point_entry not in (center_refs | radius.refs):
        candidates.append((point_entry, f"q3c_join({ra0}, {dec0}, {ra}, {dec}, {radius.sql})",
                           (ra0, dec0)))
    center_entry = indexed_entry(center)
    if center_entry is not None and center_entry not in (point_refs | radius.refs):
        candidates.append((center_entry,
                           f"q3c_join({ra}, {dec}, {ra0}, {dec0}, {radius.sql})", (ra, dec)))
    if candidates and not (radius.const is not None and radius.const > Q3C_RADIUS_LIMIT):
        ranking = prefer or {}
        # a declared q3c index first, then the later FROM item (usually the big catalogue)
        candidates.sort(key=lambda c: (ranking.get(c[0], 0), c[0]), reverse=True)
        entry, join, (cone_ra, cone_dec) = candidates[0]
        key = (sky_keys or {}).get(entry)
        if key is None:
            return join
        reach = f"({radius.sql} + {number(key[1])})"
        return f"({join} AND {sky_key_ranges(key[0], cone_ra, cone_dec, reach)})"
    op = "<" if strict else "<="
    return f"(q3c_dist({ra}, {dec}, {ra0}, {dec0}) {op} {radius.sql})"


def sky_key_ranges(key: str, ra: str, dec: str, radius: str) -> str:
    """``key`` (a q3c pixel number) within the q3c pixel ranges that cover a circle: the form
    q3c_join gives its own pixel test, which partition pruning understands."""
    pairs = [f"({key} BETWEEN q3c_nearby_it({ra}, {dec}, {radius}, {k})"
             f" AND q3c_nearby_it({ra}, {dec}, {radius}, {k + 1}))" for k in (0, 2, 4, 6)]
    return f"({' OR '.join(pairs)})"


CAP_MARGIN = 1e-6
"""Degrees added to a polygon's bounding circle: the exact tests count points within about
1e-9 radian of an edge as inside."""


@dataclass(frozen=True)
class Cap:
    """A circle on the sky (degrees) that holds a polygon."""

    ra: float
    dec: float
    radius: float


def constant_vertices(polygon: GeoPolygon) -> list[tuple[float, float]] | None:
    """The vertices (degrees) if all are constants, else None."""
    corners = [_constant_point(vertex) for vertex in polygon.vertices]
    if any(corner is None for corner in corners):
        return None
    return corners  # type: ignore[return-value]


def bounding_cap(vertices: list[tuple[float, float]]) -> Cap:
    """The circle about the vertices' mean direction through the farthest vertex. A circle
    smaller than a hemisphere is convex on the sphere, so it holds the polygon's edges (minor
    great-circle arcs) and the region they enclose."""
    ra, dec = centroid_of_vertices(vertices)
    centre = _unit(ra, dec)
    radius = max(_angle(centre, _unit(a, d)) for a, d in vertices)
    return Cap(ra, dec, radius + CAP_MARGIN)


def _angle(u: Vector, v: Vector) -> float:
    """Degrees between two unit vectors, accurate at small and large angles."""
    cross = _cross(u, v)
    sine = math.sqrt(cross[0] ** 2 + cross[1] ** 2 + cross[2] ** 2)
    return math.degrees(math.atan2(sine, u[0] * v[0] + u[1] * v[1] + u[2] * v[2]))


def edges_cross(vertices: list[tuple[float, float]]) -> bool:
    """Whether two edges that do not share a vertex cross (great-circle arcs, each shorter
    than 180 degrees). A vertex repeated next to itself (a polygon closed by repeating its
    first vertex) is one vertex, as pgsphere reads it."""
    points: list[Vector] = []
    for ra, dec in vertices:
        point = _unit(ra, dec)
        if not points or _angle(points[-1], point) > 1e-12:
            points.append(point)
    if len(points) > 1 and _angle(points[0], points[-1]) <= 1e-12:
        points.pop()
    edges = [(points[k], points[(k + 1) % len(points)]) for k in range(len(points))]
    for i in range(len(edges)):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # the last edge ends where the first begins
            if _arcs_cross(*edges[i], *edges[j]):
                return True
    return False


def _arcs_cross(a: Vector, b: Vector, c: Vector, d: Vector) -> bool:
    """Whether arc a-b and arc c-d meet: the line where their great circles meet must lie
    on both arcs."""
    line = _cross(_cross(a, b), _cross(c, d))
    if math.sqrt(sum(x * x for x in line)) < 1e-15:
        return False  # the same great circle: overlapping edges, which pgsphere refuses
    for sign in (1.0, -1.0):
        p = (sign * line[0], sign * line[1], sign * line[2])
        if _between(p, a, b) and _between(p, c, d):
            return True
    return False


def _between(p: Vector, a: Vector, b: Vector) -> bool:
    normal = _cross(a, b)
    return _dot(_cross(a, p), normal) >= 0 and _dot(_cross(p, b), normal) >= 0


def _dot(u: Vector, v: Vector) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def point_in_polygon(point: GeoPoint | GeoSphere, polygon: GeoPolygon) -> str:
    """A constant polygon up to 20 degrees across: a cone search on its bounding circle (for
    an indexed position) and q3c_in_poly; a larger one, or one whose vertices vary: pgsphere,
    behind q3c_join on the bounding circle where the index can serve and q3c is exact."""
    vertices = constant_vertices(polygon)
    if vertices is None:
        return f"({pg_point(point)} <@ {pg_polygon(polygon)})"
    cap = bounding_cap(vertices)
    ra, dec = point_coordinates(point)
    if cap.radius <= Q3C_POLYGON_LIMIT and len(vertices) <= Q3C_MAX_VERTICES:
        array = ", ".join(f"{_deg(v)}::float8" for vertex in vertices for v in vertex)
        exact = f"q3c_in_poly({ra}, {dec}, ARRAY[{array}]::float8[])"
        if indexed_entry(point) is None:
            return exact
        centre = f"{_deg(cap.ra)}::float8, {_deg(cap.dec)}::float8"
        radius = f"{_deg(cap.radius)}::float8"
        if cap.radius <= Q3C_JOIN_CAP:
            return f"(q3c_join({centre}, {ra}, {dec}, {radius}) AND {exact})"
        return f"(q3c_radial_query({ra}, {dec}, {centre}, {radius}) AND {exact})"
    exact = f"({pg_point(point)} <@ {pg_polygon(polygon)})"
    if indexed_entry(point) is None or cap.radius > Q3C_RADIUS_LIMIT:
        return exact
    return (f"(q3c_join({_deg(cap.ra)}::float8, {_deg(cap.dec)}::float8, {ra}, {dec}, "
            f"{_deg(cap.radius)}::float8) AND {exact})")


# -- BOX, CENTROID, AREA ---------------------------------------------------------------------------


def _unit(ra: float, dec: float) -> Vector:
    a, d = math.radians(ra), math.radians(dec)
    return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))


def _cross(u: Vector, v: Vector) -> Vector:
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


def _norm(u: Vector) -> Vector:
    length = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    return (u[0] / length, u[1] / length, u[2] / length)


def _angles(u: Vector) -> tuple[float, float]:
    ra = math.degrees(math.atan2(u[1], u[0])) % 360.0
    dec = math.degrees(math.asin(max(-1.0, min(1.0, u[2]))))
    return ra, dec


def box_vertices(ra: float, dec: float, width: float, height: float
                 ) -> list[tuple[float, float]]:
    """The corners of an ADQL BOX (section 4.2.5; STC Box).

    The box is a cross through the centre with arms parallel to the axes, of half the width
    and half the height; its sides are great circles through the arms' ends, at right angles
    to the arms. Each corner is where an east-west side meets a north-south side.
    """
    c = _unit(ra, dec)
    a, d = math.radians(ra), math.radians(dec)
    east = (-math.sin(a), math.cos(a), 0.0)
    north = (-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d))
    half_w, half_h = math.radians(width) / 2, math.radians(height) / 2
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        arm_x = tuple(math.cos(half_w) * c[k] + sx * math.sin(half_w) * east[k] for k in range(3))
        arm_y = tuple(math.cos(half_h) * c[k] + sy * math.sin(half_h) * north[k]
                      for k in range(3))
        side_x = _cross(arm_x, north)  # plane through the east/west arm end, along north
        side_y = _cross(arm_y, east)  # plane through the north/south arm end, along east
        corner = _norm(_cross(side_x, side_y))
        if sum(corner[k] * c[k] for k in range(3)) < 0:
            corner = (-corner[0], -corner[1], -corner[2])
        corners.append(_angles(corner))
    return corners


def centroid_of_vertices(vertices: list[tuple[float, float]]) -> tuple[float, float]:
    """The centre of mass of the vertices on the sphere (the mean unit vector)."""
    total = [0.0, 0.0, 0.0]
    for ra, dec in vertices:
        u = _unit(ra, dec)
        for k in range(3):
            total[k] += u[k]
    return _angles(_norm((total[0], total[1], total[2])))


def area_sql(geo: Geo) -> str:
    """Square degrees covered by a geometry value."""
    if isinstance(geo, GeoPoint) or (isinstance(geo, GeoSphere) and geo.shape == "point"):
        return "0::float8"
    if isinstance(geo, GeoCircle):
        return (f"(2 * pi() * (1 - cos(radians({geo.radius.sql}))) * "
                f"{number(SQUARE_DEGREES_PER_STERADIAN)})")
    return f"(area({to_pgsphere(geo)}) * {number(SQUARE_DEGREES_PER_STERADIAN)})"


def constant_value(value: float) -> Value:
    return Value(number(value), vt.DOUBLE, "deg", const=value, exact=True)
