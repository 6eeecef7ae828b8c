"""Translated ADQL run on real PostgreSQL with q3c and pgsphere, checked against numpy.

Every geometry predicate is compared with a brute-force great-circle computation on generated
sources and footprints (in temporary tables). Points closer to a boundary than a micro-degree
are left out of the comparison: pgsphere decides boundary cases with a 1e-9 radian tolerance.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from sky_truth import in_box, in_polygon, separation, spherical_area, unit

from skyvault.schema.model import (
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    POLYGON,
    TEXT,
    TIMESTAMP,
    Column,
    Index,
    Table,
)
from skyvault.vo.adql import catalog_from_tables, translate

POINTS = Table("cat", "points", "Generated sources", (
    Column("id", LONG, "Source id", ucd="meta.id;meta.main"),
    Column("ra", DOUBLE, "Right ascension", unit="deg", ucd="pos.eq.ra;meta.main"),
    Column("dec", DOUBLE, "Declination", unit="deg", ucd="pos.eq.dec;meta.main"),
    Column("mag", FLOAT, "Magnitude", unit="mag", ucd="phot.mag"),
    Column("flags", INT, "Flags", ucd="meta.code"),
    Column("name", TEXT, "Name", ucd="meta.id"),
    Column("obs", TIMESTAMP, "Observation time", ucd="time.epoch"),
), indexes=(Index("adql_points_q3c", "q3c_ang2ipix(ra, dec)"),))
REGIONS = Table("cat", "regions", "Generated footprints", (
    Column("rid", INT, "Region id", ucd="meta.id;meta.main"),
    Column("footprint", POLYGON, "Footprint", unit="deg", ucd="pos.outline;obs.field"),
), indexes=(Index("adql_regions_gist", "footprint", method="gist"),))
PROBES = Table("cat", "probes", "An upload-like list of positions", (
    Column("pid", INT, "Probe id", ucd="meta.id"),
    Column("pra", DOUBLE, "Right ascension", unit="deg", ucd="pos.eq.ra"),
    Column("pdec", DOUBLE, "Declination", unit="deg", ucd="pos.eq.dec"),
))
CATALOG = catalog_from_tables(
    [POINTS, REGIONS, PROBES],
    sql_names={"cat.points": "pg_temp.adql_points", "cat.regions": "pg_temp.adql_regions",
               "cat.probes": "pg_temp.adql_probes"})

MARGIN = 1e-6
"""Degrees: points nearer a boundary than this may fall either way."""


# -- the generated sky -------------------------------------------------------------------------

@dataclass
class Sky:
    connection: psycopg.Connection
    ra: np.ndarray
    dec: np.ndarray
    footprints: list[np.ndarray]
    probe_ra: np.ndarray
    probe_dec: np.ndarray

    def rows(self, adql: str, **options) -> list[tuple]:
        query = translate(adql, CATALOG, **options)
        with self.connection.cursor() as cursor:
            cursor.execute(query.sql, query.params)
            assert len(cursor.description) == len(query.fields)
            return cursor.fetchall()

    def ids(self, adql: str) -> set[int]:
        return {row[0] for row in self.rows(adql)}

    def plan(self, adql: str) -> str:
        query = translate(adql, CATALOG)
        with self.connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + query.sql)
            return "\n".join(row[0] for row in cursor.fetchall())


def _quadrilateral(rng, ra: float, dec: float, size: float) -> np.ndarray:
    # a quadrilateral around the centre, one corner per quarter: simple, mostly convex
    angles = rng.uniform(0, 2 * np.pi) + np.arange(4) * np.pi / 2 + rng.uniform(-0.4, 0.4, 4)
    radius = size * rng.uniform(0.6, 1.0, 4)
    cos_dec = np.cos(np.radians(dec))
    return np.stack([(ra + radius * np.cos(angles) / cos_dec) % 360,
                     dec + radius * np.sin(angles)], axis=1)


@pytest.fixture(scope="module")
def sky(database) -> Sky:
    rng = np.random.default_rng(20240601)
    uniform = 8000
    z = rng.uniform(-1, 1, uniform)
    clusters = [(150.0, 20.0, 3.0, 8000), (0.0, 0.0, 1.5, 2000), (45.0, 88.5, 1.0, 2000)]
    ra = [rng.uniform(0, 360, uniform)]
    dec = [np.degrees(np.arcsin(z))]
    for centre_ra, centre_dec, spread, count in clusters:
        ra.append((centre_ra + rng.normal(0, spread, count)
                   / np.cos(np.radians(centre_dec))) % 360)
        dec.append(np.clip(centre_dec + rng.normal(0, spread, count), -89.999, 89.999))
    ra_all, dec_all = np.concatenate(ra), np.concatenate(dec)
    footprints = [_quadrilateral(rng, 150 + rng.normal(0, 3), 20 + rng.normal(0, 3),
                                 rng.uniform(0.1, 1.0)) for _ in range(150)]
    probe = rng.choice(len(ra_all), 300, replace=False)
    probe_ra = (ra_all[probe] + rng.normal(0, 0.3 / 3600, 300)) % 360
    probe_dec = dec_all[probe] + rng.normal(0, 0.3 / 3600, 300)

    connection = database.admin(autocommit=True)
    connection.execute("CREATE TEMPORARY TABLE adql_points (id bigint, ra double precision, "
                       "dec double precision, mag real, flags integer, name text, "
                       "obs timestamptz)")
    moment = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    with connection.cursor().copy("COPY adql_points FROM STDIN") as copy:
        for k in range(len(ra_all)):
            copy.write_row((k, float(ra_all[k]), float(dec_all[k]), 14 + (k % 70) / 10,
                            k % 16, f"ZTF{k:06d}", moment + datetime.timedelta(hours=k)))
    connection.execute("CREATE INDEX adql_points_q3c ON adql_points (q3c_ang2ipix(ra, dec))")
    connection.execute("CREATE TEMPORARY TABLE adql_regions (rid integer, footprint spoly)")
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO adql_regions VALUES (%s, %s::spoly)",
            [(k, "{" + ",".join(f"({float(a)!r}d,{float(d)!r}d)" for a, d in fp) + "}")
             for k, fp in enumerate(footprints)])
    connection.execute("CREATE INDEX adql_regions_gist ON adql_regions USING gist (footprint)")
    connection.execute("CREATE TEMPORARY TABLE adql_probes (pid integer, pra double precision,"
                       " pdec double precision)")
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO adql_probes VALUES (%s, %s, %s)",
                           [(k, float(probe_ra[k]), float(probe_dec[k])) for k in range(300)])
    connection.execute("ANALYZE adql_points; ANALYZE adql_regions; ANALYZE adql_probes")
    yield Sky(connection, ra_all, dec_all, footprints, probe_ra, probe_dec)
    connection.close()


def agree(found: set[int], inside: np.ndarray, margin: np.ndarray) -> None:
    """The query found exactly the points inside, except points on the boundary."""
    clear = margin > MARGIN
    expected = set(np.flatnonzero(inside & clear).tolist())
    found_clear = {k for k in found if clear[k]}
    assert found_clear == expected
    assert len(expected) > 0 or not inside.any()


# -- point in circle ---------------------------------------------------------------------------

CIRCLES = [(150.0, 20.0, 0.7), (0.3, -0.2, 1.2), (45.0, 89.2, 1.5), (230.0, -40.0, 15.0),
           (359.9, 0.5, 0.05),
           (45.0, 3.0, 33.0), (313.359065, 0.104946, 34.611497)]
"""The last two are cones for which q3c 2.0's pixel ranges miss rows (segasai/q3c #49)."""


@pytest.mark.parametrize(("ra0", "dec0", "radius"), CIRCLES)
def test_cone_forms_match_brute_force(sky: Sky, ra0: float, dec0: float, radius: float):
    """ADQL 2.1 section 4.2.2: every equivalent form of a cone gives the same rows."""
    distance = separation(sky.ra, sky.dec, ra0, dec0)
    inside = distance <= radius
    margin = np.abs(distance - radius)
    base = "SELECT id FROM cat.points WHERE "
    forms = [
        f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0}, {dec0}, {radius}))",
        f"CONTAINS(POINT(ra, dec), CIRCLE(POINT({ra0}, {dec0}), {radius})) = 1",
        f"DISTANCE(POINT(ra, dec), POINT({ra0}, {dec0})) < {radius}",
        f"DISTANCE({ra0}, {dec0}, ra, dec) <= {radius}",
        f"INTERSECTS(CIRCLE({ra0}, {dec0}, {radius}), POINT(ra, dec)) = 1",
    ]
    for form in forms:
        agree(sky.ids(base + form), inside, margin)
    outside = sky.ids(base + f"CONTAINS(POINT(ra, dec), CIRCLE({ra0}, {dec0}, {radius})) = 0")
    agree(outside, ~inside, margin)


def test_distance_values(sky: Sky):
    rows = sky.rows("SELECT id, DISTANCE(POINT(ra, dec), POINT(150, 20)) AS d, "
                    "DISTANCE(ra, dec, 0, 90) FROM cat.points WHERE id < 3000")
    ids = np.array([row[0] for row in rows])
    assert np.allclose([row[1] for row in rows], separation(sky.ra[ids], sky.dec[ids], 150, 20),
                       atol=1e-9, rtol=0)
    assert np.allclose([row[2] for row in rows], 90 - sky.dec[ids], atol=1e-9, rtol=0)


def test_circle_circle_intersection(sky: Sky):
    found = sky.ids("SELECT id FROM cat.points WHERE "
                    "INTERSECTS(CIRCLE(ra, dec, 0.2), CIRCLE(150, 20, 0.5)) = 1")
    distance = separation(sky.ra, sky.dec, 150, 20)
    agree(found, distance <= 0.7, np.abs(distance - 0.7))


# -- point in polygon and box ------------------------------------------------------------------

POLYGONS = [
    [(149.0, 19.0), (151.5, 19.2), (151.0, 21.0), (149.2, 20.8)],
    [(148.0, 18.0), (152.0, 18.0), (152.0, 22.0), (150.0, 19.5), (148.0, 22.0)],  # concave
    [(359.0, -1.0), (1.0, -1.0), (1.2, 1.0), (358.8, 1.0)],  # across ra = 0
    [(0.0, 88.0), (90.0, 88.0), (180.0, 88.0), (270.0, 88.0)],  # around the pole
    [(100.0, -40.0), (200.0, -40.0), (200.0, 40.0), (100.0, 40.0)],  # too wide for q3c
]


@pytest.mark.parametrize("vertices", POLYGONS)
def test_point_in_polygon_matches_brute_force(sky: Sky, vertices):
    corners = np.array(vertices)
    inside, margin = in_polygon(sky.ra, sky.dec, corners)
    flat = ", ".join(f"{v}" for vertex in vertices for v in vertex)
    points = ", ".join(f"POINT({a}, {d})" for a, d in vertices)
    for polygon in (f"POLYGON({flat})", f"POLYGON('ICRS', {points})"):
        found = sky.ids(f"SELECT id FROM cat.points WHERE "
                        f"CONTAINS(POINT(ra, dec), {polygon}) = 1")
        agree(found, inside, margin)


def test_a_polygon_closed_by_repeating_its_first_vertex_is_the_same_polygon(sky: Sky):
    vertices = POLYGONS[0] + [POLYGONS[0][0]]
    flat = ", ".join(f"{v}" for vertex in vertices for v in vertex)
    found = sky.ids(f"SELECT id FROM cat.points WHERE CONTAINS(POINT(ra, dec), "
                    f"POLYGON({flat})) = 1")
    agree(found, *in_polygon(sky.ra, sky.dec, np.array(POLYGONS[0])))


def test_polygons_with_vertices_from_columns(sky: Sky):
    found = sky.ids("SELECT id FROM cat.points WHERE id < 12000 AND CONTAINS(POINT(150, 20), "
                    "POLYGON(ra - 1, dec - 1, ra + 1, dec - 1, ra, dec + 1)) = 1")
    expected = set()
    for k in range(8000, 12000):  # the cluster around (150, 20)
        ra, dec = sky.ra[k], sky.dec[k]
        triangle = np.array([(ra - 1, dec - 1), (ra + 1, dec - 1), (ra, dec + 1)])
        inside, margin = in_polygon(np.array([150.0]), np.array([20.0]), triangle)
        if inside[0] and margin[0] > MARGIN:
            expected.add(k)
        elif margin[0] <= MARGIN:
            found.discard(k)
    assert {k for k in found if k >= 8000} == expected and expected


def test_box_matches_its_definition(sky: Sky):
    """Section 4.2.5: a box's sides are great circles through the ends of the arms of a cross,
    at right angles to the arms; inside is on the centre's side of all four."""
    ra0, dec0, width, height = 150.0, 21.0, 3.0, 2.0
    inside, margin = in_box(sky.ra, sky.dec, ra0, dec0, width, height)
    found = sky.ids(f"SELECT id FROM cat.points WHERE "
                    f"1 = CONTAINS(POINT(ra, dec), BOX({ra0}, {dec0}, {width}, {height}))")
    agree(found, inside, margin)


# -- regions (pgsphere) ------------------------------------------------------------------------

def circle_meets_polygon(ra0: float, dec0: float, radius: float, corners: np.ndarray) -> bool:
    if (separation(corners[:, 0], corners[:, 1], ra0, dec0) <= radius).any():
        return True
    if in_polygon(np.array([ra0]), np.array([dec0]), corners)[0][0]:
        return True
    centre = unit(ra0, dec0)
    vectors = unit(corners[:, 0], corners[:, 1])
    for a, b in zip(vectors, np.roll(vectors, -1, axis=0), strict=True):
        normal = np.cross(a, b)
        normal /= np.linalg.norm(normal)
        foot = centre - (centre @ normal) * normal
        foot /= np.linalg.norm(foot)
        between = np.dot(np.cross(a, foot), normal) >= 0 and np.dot(np.cross(foot, b), normal) >= 0
        if between and np.degrees(np.arccos(np.clip(foot @ centre, -1, 1))) <= radius:
            return True
    return False


def test_regions_intersecting_and_inside_a_circle(sky: Sky):
    ra0, dec0, radius = 150.5, 20.5, 2.0
    meets = {k for k, fp in enumerate(sky.footprints)
             if circle_meets_polygon(ra0, dec0, radius, fp)}
    within = {k for k, fp in enumerate(sky.footprints)
              if (separation(fp[:, 0], fp[:, 1], ra0, dec0) <= radius).all()}
    assert sky.ids(f"SELECT rid FROM cat.regions WHERE "
                   f"INTERSECTS(footprint, CIRCLE({ra0}, {dec0}, {radius})) = 1") == meets
    assert sky.ids(f"SELECT rid FROM cat.regions WHERE "
                   f"1 = INTERSECTS(CIRCLE({ra0}, {dec0}, {radius}), footprint)") == meets
    assert sky.ids(f"SELECT rid FROM cat.regions WHERE "
                   f"CONTAINS(footprint, CIRCLE({ra0}, {dec0}, {radius})) = 1") == within
    assert 0 < len(within) < len(meets) < len(sky.footprints)


def test_footprints_containing_a_point(sky: Sky):
    found = sky.ids("SELECT rid FROM cat.regions WHERE "
                    "CONTAINS(POINT(150.2, 20.1), footprint) = 1")
    expected = {k for k, fp in enumerate(sky.footprints)
                if in_polygon(np.array([150.2]), np.array([20.1]), fp)[0][0]}
    assert found == expected


def test_sources_in_footprints_join(sky: Sky):
    pairs = set(sky.rows("SELECT p.id, r.rid FROM cat.points AS p JOIN cat.regions AS r "
                         "ON CONTAINS(POINT(p.ra, p.dec), r.footprint) = 1"))
    expected = set()
    uncertain = set()
    for k, fp in enumerate(sky.footprints):
        inside, margin = in_polygon(sky.ra, sky.dec, fp)
        expected |= {(int(i), k) for i in np.flatnonzero(inside & (margin > MARGIN))}
        uncertain |= {(int(i), k) for i in np.flatnonzero(margin <= MARGIN)}
    assert pairs - uncertain == expected


def test_areas(sky: Sky):
    rows = sky.rows("SELECT rid, AREA(footprint) FROM cat.regions WHERE rid < 20 ORDER BY rid")
    for rid, area in rows:
        assert area == pytest.approx(spherical_area(sky.footprints[rid]), rel=1e-6)
    (circle, square), = sky.rows("SELECT TOP 1 AREA(CIRCLE(10, 20, 1)), "
                                 "AREA(POLYGON(0, -1, 2, -1, 2, 1, 0, 1)) FROM cat.points")
    assert circle == pytest.approx(2 * np.pi * (1 - np.cos(np.radians(1))) * (180 / np.pi) ** 2)
    assert square == pytest.approx(spherical_area(np.array([(0, -1), (2, -1), (2, 1), (0, 1)])))


def test_crossmatch_with_distance(sky: Sky):
    radius = 2 / 3600
    pairs = set(sky.rows(f"SELECT q.pid, p.id FROM cat.probes AS q JOIN cat.points AS p "
                         f"ON DISTANCE(POINT(q.pra, q.pdec), POINT(p.ra, p.dec)) < {radius}"))
    distance = separation(sky.probe_ra[:, None], sky.probe_dec[:, None], sky.ra[None, :],
                          sky.dec[None, :])
    expected = {(int(a), int(b)) for a, b in zip(*np.nonzero(distance < radius), strict=True)}
    assert pairs == expected
    assert len(expected) >= 300


# -- geometry values ---------------------------------------------------------------------------

def test_geometry_values_are_dali_arrays(sky: Sky):
    rows = sky.rows("SELECT rid, footprint FROM cat.regions WHERE rid < 10 ORDER BY rid")
    for rid, footprint in rows:
        assert np.allclose(np.array(footprint).reshape(-1, 2), sky.footprints[rid], atol=1e-9)
    (point, circle, polygon, centroid, c1, c2, system), = sky.rows(
        "SELECT POINT(ra, dec), CIRCLE(ra, dec, 0.5), POLYGON(1, 2, 3, 4, 5, 6), "
        "CENTROID(CIRCLE(ra, dec, 1)), COORD1(CENTROID(CIRCLE(ra, dec, 1))), COORD2(POINT(ra, "
        "dec)), COORDSYS(POINT(ra, dec)) FROM cat.points WHERE id = 7")
    ra, dec = sky.ra[7], sky.dec[7]
    assert point == pytest.approx([ra, dec]) and circle == pytest.approx([ra, dec, 0.5])
    assert polygon == [1, 2, 3, 4, 5, 6] and centroid == pytest.approx([ra, dec])
    assert (c1, c2, system) == (pytest.approx(ra), pytest.approx(dec), "ICRS")


def test_healpix_index_matches_healpy(sky: Sky):
    import healpy

    rows = sky.rows("SELECT id, ivo_healpix_index(10, ra, dec) FROM cat.points WHERE id < 2000")
    ids = np.array([row[0] for row in rows])
    expected = healpy.ang2pix(2**10, sky.ra[ids], sky.dec[ids], nest=True, lonlat=True)
    assert [row[1] for row in rows] == expected.tolist()


# -- the planner uses the indexes --------------------------------------------------------------

def test_cone_query_plans_use_the_q3c_index(sky: Sky):
    for condition in ("1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150, 20, 0.1))",
                      "DISTANCE(POINT(ra, dec), POINT(150, 20)) < 0.1",
                      "CONTAINS(POINT(ra, dec), POLYGON(150, 20, 150.1, 20, 150.1, 20.1)) = 1"):
        plan = sky.plan(f"SELECT id, mag FROM cat.points WHERE {condition}")
        assert "adql_points_q3c" in plan, plan
        assert "Seq Scan" not in plan, plan


def test_crossmatch_plan_uses_the_q3c_index(sky: Sky):
    plan = sky.plan("SELECT q.pid, p.id FROM cat.probes AS q JOIN cat.points AS p "
                    "ON DISTANCE(q.pra, q.pdec, p.ra, p.dec) < 0.001")
    assert "adql_points_q3c" in plan, plan


def test_region_predicates_are_indexable(sky: Sky):
    sky.connection.execute("SET enable_seqscan = off")
    try:
        for condition in ("INTERSECTS(footprint, CIRCLE(150, 20, 1)) = 1",
                          "CONTAINS(POINT(150, 20), footprint) = 1"):
            plan = sky.plan(f"SELECT rid FROM cat.regions WHERE {condition}")
            assert "adql_regions_gist" in plan, plan
    finally:
        sky.connection.execute("SET enable_seqscan = on")


# -- the rest of the language on real rows -----------------------------------------------------

PYTHON_TYPES = {"short": int, "int": int, "long": int, "float": float, "double": float,
                "char": str, "boolean": bool}


def test_language_features_run_and_types_match_metadata(sky: Sky):
    queries = [
        "SELECT TOP 3 * FROM cat.points ORDER BY id",
        "SELECT TOP 2 ABS(-3), CEILING(mag), DEGREES(PI()), EXP(1), FLOOR(mag), LOG(10), "
        "LOG10(100), MOD(7, 3), MOD(7.5, 2), POWER(2, 10), RADIANS(180), RAND(), ROUND(mag, 1), "
        "SQRT(2), TRUNCATE(-2.7), TRUNCATE(mag, 1), ACOS(1), ASIN(0), ATAN(1), ATAN2(1, 1), "
        "COS(0), COT(1), SIN(0), TAN(0) FROM cat.points",
        "SELECT TOP 2 LOWER(name), UPPER(name), name || '_x', CAST(mag AS INTEGER), "
        "CAST(id AS SMALLINT), CAST(id AS CHAR(4)), CAST(name AS VARCHAR(5)), "
        "CAST('2021-01-14T11:25:00' AS TIMESTAMP), CAST(1 AS BIGINT), CAST(1 AS REAL), "
        "COALESCE(NULL, mag), CASE WHEN mag > 15 THEN 'faint' ELSE 'bright' END, "
        "IN_UNIT(ra, 'rad'), flags & 3, flags | 16, flags ^ 1, ~flags, 0xFF, "
        "mag + 1, mag * 2, id / 2, 1.5 + id, AVG(mag) , SUM(flags), COUNT(*) FROM cat.points "
        "GROUP BY name, mag, id, ra, flags",
        "SELECT flags, COUNT(*) AS n, AVG(mag), MIN(mag), MAX(mag), SUM(mag), SUM(id) "
        "FROM cat.points GROUP BY flags HAVING COUNT(*) > 10 ORDER BY n DESC, 1",
        "SELECT TOP 3 ivo_healpix_index(6, ra, dec), ivo_hashlist_has('a#ZTF000001', name), "
        "ivo_nocasematch(name, 'ztf00000%'), ivo_hasword('big bright star', 'Bright'), "
        "ivo_to_mjd(obs), ivo_to_jd(obs), ivo_interval_overlaps(1, 2, 1.5, 3) FROM cat.points",
        "SELECT ivo_string_agg(name, ',') FROM (SELECT TOP 3 name FROM cat.points "
        "ORDER BY id) AS q",
        "WITH b AS (SELECT id, mag FROM cat.points WHERE mag < 14.5) SELECT TOP 3 * FROM b "
        "ORDER BY id",
        "SELECT id FROM cat.points WHERE id < 5 UNION SELECT id FROM cat.points WHERE id "
        "BETWEEN 3 AND 7 ORDER BY id",
        "(SELECT TOP 2 id FROM cat.points ORDER BY id) UNION ALL "
        "(SELECT TOP 2 id FROM cat.points ORDER BY id DESC)",
        "SELECT TOP 3 * FROM cat.points JOIN (SELECT id, mag AS m2 FROM cat.points) AS q "
        "USING (id) ORDER BY id",
        "SELECT TOP 3 * FROM cat.points NATURAL JOIN (SELECT id, name FROM cat.points) AS q",
        "SELECT id FROM cat.points AS p WHERE EXISTS (SELECT * FROM cat.points AS q WHERE "
        "q.id = p.id + 1) AND id IN (SELECT id FROM cat.points WHERE id < 3) ORDER BY id",
        "SELECT TOP 3 q.p, COORD1(q.p) FROM (SELECT POINT(ra, dec) AS p FROM cat.points) AS q",
        "SELECT TOP 1 1, 'const', NULL, 1 + 0.1, 3000000000, -2, 1.5E3, 2 / 3, 2. / 3 "
        "FROM cat.points",
    ]
    for adql in queries:
        query = translate(adql, CATALOG, max_rows=50)
        with sky.connection.cursor() as cursor:
            cursor.execute(query.sql, query.params)
            rows = cursor.fetchall()
        assert rows, adql
        for row in rows:
            for value, field in zip(row, query.fields, strict=True):
                if value is None:
                    continue
                if field.xtype == "timestamp":
                    assert isinstance(value, datetime.datetime), (adql, field)
                elif field.arraysize is not None and field.datatype != "char":
                    assert isinstance(value, list), (adql, field)
                else:
                    assert isinstance(value, PYTHON_TYPES[field.datatype]), (adql, field, value)


def test_computed_values(sky: Sky):
    (row,) = sky.rows(
        "SELECT MOD(7.5, 2), LOG(EXP(2)), TRUNCATE(-2.7), ROUND(2.567, 2), 0x1F & 7, 6 ^ 3, "
        "~0, IN_UNIT(ra, 'arcmin'), ivo_to_mjd(CAST('2000-01-01T12:00:00' AS TIMESTAMP)), "
        "ivo_hashlist_has('a#B#c', 'b'), ivo_nocasematch('NGC 104', 'ngc%'), "
        "CAST('2021-01-14T11:25:00Z' AS TIMESTAMP) FROM cat.points WHERE id = 3")
    assert row[:7] == (1.5, pytest.approx(2), -2.0, pytest.approx(2.57), 7, 5, -1)
    assert row[7] == pytest.approx(sky.ra[3] * 60)
    assert row[8] == pytest.approx(51544.5)
    assert row[9:11] == (1, 1)
    assert row[11] == datetime.datetime(2021, 1, 14, 11, 25, tzinfo=datetime.UTC)


def test_like_has_no_escape_character(sky: Sky):
    assert sky.ids("SELECT id FROM cat.points WHERE name LIKE 'ZTF00001_' ORDER BY id") == \
        set(range(10, 20))
    assert sky.ids("SELECT id FROM cat.points WHERE name ILIKE 'ztf\\%'") == set()


def test_limits_on_real_rows(sky: Sky):
    query = translate("SELECT id FROM cat.points", CATALOG, max_rows=25)
    with sky.connection.cursor() as cursor:
        cursor.execute(query.sql, query.params)
        assert len(cursor.fetchall()) == query.overflow_limit == 26
    assert len(sky.rows("SELECT TOP 5 id FROM cat.points", max_rows=25)) == 5
    assert [row[0] for row in sky.rows("SELECT TOP 3 id FROM cat.points ORDER BY id "
                                       "OFFSET 10")] == [10, 11, 12]


# -- the published tables, as the reader role --------------------------------------------------

def test_every_published_table_can_be_queried_as_the_reader(database):
    from skyvault.schema.tables import PUBLISHED_TABLES

    published = catalog_from_tables(PUBLISHED_TABLES)
    queries = [f"SELECT TOP 1 * FROM {table.qualified_name}" for table in PUBLISHED_TABLES]
    queries += [
        "SELECT TOP 5 obs_publisher_did, s_region FROM ivoa.obscore "
        "WHERE INTERSECTS(s_region, CIRCLE(10, 20, 1)) = 1",
        "SELECT table_name, description FROM TAP_SCHEMA.tables ORDER BY table_name",
    ]
    with database.reading(user_query=True) as connection:
        for adql in queries:
            query = translate(adql, published, max_rows=10)
            with connection.cursor() as cursor:
                cursor.execute(query.sql, query.params)
                cursor.fetchall()
                assert [d.name for d in cursor.description] == [f.name for f in query.fields]
