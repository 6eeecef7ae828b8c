"""ADQL geometry in PostgreSQL: q3c where the positional index can serve, pgsphere otherwise.

Positions (ra, dec in degrees) of the q3c-indexed columns are tested with ``q3c_join`` (point in
circle; it plans in about 0.2 ms where ``q3c_radial_query`` needs about 3 ms) and
``q3c_poly_query`` (point in polygon). Everything else, and every region-on-region test, uses
pgsphere objects built in radians and its GiST-indexable operators ``<@``, ``@>`` and ``&&``.
Values leaving the query are DALI arrays of doubles in degrees (DALI 1.1 section 3.3).
"""

from __future__ import annotations

import math

from skyvault.vo.adql import valuetypes as vt
from skyvault.vo.adql.sqltext import number
from skyvault.vo.adql.values import Geo, GeoCircle, GeoPoint, GeoPolygon, GeoSphere, Value

SQUARE_DEGREES_PER_STERADIAN = (180.0 / math.pi) ** 2

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
    if candidates:
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


Q3C_POLYGON_LIMIT = 20.0
"""Degrees: q3c refuses polygons wider than about 23 degrees; larger ones go to pgsphere."""


def polygon_diameter(polygon: GeoPolygon) -> float | None:
    """Largest distance between two vertices (degrees), if all vertices are constants."""
    corners = [_constant_point(vertex) for vertex in polygon.vertices]
    if any(corner is None for corner in corners):
        return None
    vectors = [_unit(ra, dec) for ra, dec in corners]  # type: ignore[misc]
    smallest = 1.0
    for k, (x, y, z) in enumerate(vectors):
        for u, v, w in vectors[k + 1:]:
            smallest = min(smallest, x * u + y * v + z * w)
    return math.degrees(math.acos(max(-1.0, smallest)))


def point_in_polygon(point: GeoPoint | GeoSphere, polygon: GeoPolygon) -> str:
    diameter = polygon_diameter(polygon)
    if diameter is None or diameter > Q3C_POLYGON_LIMIT:
        return f"({pg_point(point)} <@ {pg_polygon(polygon)})"
    ra, dec = point_coordinates(point)
    corners = []
    for vertex in polygon.vertices:
        corners.extend(point_coordinates(vertex))
    array = f"ARRAY[{', '.join(corners)}]::float8[]"
    if indexed_entry(point) is not None:
        return f"q3c_poly_query({ra}, {dec}, {array})"
    return f"q3c_in_poly({ra}, {dec}, {array})"


# -- BOX, CENTROID, AREA ---------------------------------------------------------------------------


def _unit(ra: float, dec: float) -> tuple[float, float, float]:
    a, d = math.radians(ra), math.radians(dec)
    return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))


def _cross(u: tuple[float, float, float], v: tuple[float, float, float]):
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


def _norm(u: tuple[float, float, float]) -> tuple[float, float, float]:
    length = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    return (u[0] / length, u[1] / length, u[2] / length)


def _angles(u: tuple[float, float, float]) -> tuple[float, float]:
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
