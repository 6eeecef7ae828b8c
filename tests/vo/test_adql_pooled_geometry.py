"""Spatial predicates on pooled connections give the brute-force answer, whatever ran before.

q3c keeps per-backend caches in static memory; a pooled connection carries them from one
user's query to the next. Its polygon functions decide "same polygon as last time" by comparing
the new vertices with the cached ones, not the vertex count (segasai/q3c issue #53 (a)), so a
quadrilateral that shares its vertices with a pentagon planned before it on the same backend
can be searched with the pentagon's pixel ranges: rows go missing with QUERY_STATUS OK.

Queries here run exactly as TAP runs them (translated ADQL, the reader role, the
requester's transaction, the LIMIT 0 describe, then binary COPY) against survey.psf_sources,
and every answer is compared with numpy (tests/vo/sky_truth.py): one test interleaves
polygons that differ only in their vertex count on ONE pooled connection; the other runs a
random mix of polygons, cones, boxes and malformed queries from several threads on a small
pool, across RA = 0 and around the pole.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import psycopg
import pytest
from sky_truth import in_box, in_cone, in_polygon, separation, unit

from skyvault.access import ANONYMOUS
from skyvault.db import Database
from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.server.tap.copy_out import copy_chunks
from skyvault.server.tap.query import column_pg_types
from skyvault.vo.adql import AdqlError, catalog_from_tables, translate
from skyvault.vo.votable.pgcopy import decode_copy_stream

NID = 55_550
"""Night of the generated sources: a partition of its own, far from every other seed's."""
PARTITION = "survey.psf_sources_pooledgeo"
CATALOG = catalog_from_tables(list(PUBLISHED_TABLES))
MARGIN = 1e-6
"""Degrees: points nearer a boundary than this may fall either way (pgsphere decides boundary
cases with a 1e-9 radian tolerance, q3c with its own arithmetic)."""

CENTRE = (45.0, 45.0)
"""The dense field, away from every other seed of the test session."""
CLUSTERS = (
    (CENTRE[0], CENTRE[1], 0.5, 200_000),
    (0.0, 5.0, 0.6, 8_000),  # across RA = 0
    (120.0, 89.4, 0.5, 8_000),  # around the north pole
    (200.0, -88.9, 0.6, 4_000),  # near the south pole
)


@dataclass(frozen=True)
class Sky:
    ra: np.ndarray
    dec: np.ndarray
    pid: np.ndarray
    sourceid0: int

    @cached_property
    def vectors(self) -> np.ndarray:
        return unit(self.ra, self.dec)

    def near(self, ra0: float, dec0: float, radius: float) -> np.ndarray:
        """Indices of the positions within ``radius`` degrees (and a margin) of a point: the
        only ones a region within that circle needs to be computed for."""
        cosine = np.cos(np.radians(min(radius + 0.01, 180.0)))
        return np.flatnonzero(self.vectors @ unit(ra0, dec0) >= cosine)


@pytest.fixture(scope="module")
def sky(database: Database) -> Iterator[Sky]:
    rng = np.random.default_rng(13)
    ra_parts, dec_parts = [], []
    for ra0, dec0, half, count in CLUSTERS:
        dec = np.clip(dec0 + rng.uniform(-half, half, count), -89.99, 89.99)
        spread = half / max(np.cos(np.radians(dec0)), 0.02) if dec0 != CENTRE[1] else half
        ra_parts.append((ra0 + rng.uniform(-spread, spread, count)) % 360)
        dec_parts.append(dec)
    ra, dec = np.concatenate(ra_parts), np.concatenate(dec_parts)
    pid = np.arange(len(ra)) // 1000 + 770_000_000
    sourceid0 = 770_000_000_000
    with database.admin() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {PARTITION}")
        connection.execute(f"CREATE TABLE {PARTITION} PARTITION OF survey.psf_sources_nights"
                           f" FOR VALUES FROM ({NID}) TO ({NID + 1})")
        with connection.cursor().copy(
                f"COPY {PARTITION} (sourceid, pid, nid, ra, dec, obsjd, programid)"
                " FROM STDIN") as copy:
            # Program 1 observed in 2023: in the session's release (tests/release_calendar.py).
            for k in range(len(ra)):
                copy.write_row((sourceid0 + k, int(pid[k]), NID, float(ra[k]), float(dec[k]),
                                2460000.5, 1))
        connection.execute(f"CREATE INDEX ON {PARTITION} (q3c_ang2ipix(ra, dec))")
        connection.execute(f"ANALYZE {PARTITION}")
    yield Sky(ra, dec, pid, sourceid0)
    with database.admin() as connection:
        connection.execute(f"DROP TABLE {PARTITION}")


def tap_rows(pool: Database, adql: str) -> list[tuple]:
    """One ADQL query as /tap/sync runs it, on a connection of ``pool``."""
    query = translate(adql, CATALOG, max_rows=200_000)
    with pool.reading(ANONYMOUS, user_query=True, statement_timeout_ms=120_000) as connection, \
            connection.cursor() as cursor:
        pg_types = column_pg_types(cursor, query.sql, query.params)
        rows = []
        for batch in decode_copy_stream(copy_chunks(cursor, query.sql, query.params), pg_types):
            rows.extend(batch.rows())
        return rows


# -- what a query should return ----------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    adql: str
    """The ADQL region test on (ra, dec), e.g. 1 = CONTAINS(POINT(...), POLYGON(...))."""
    inside: np.ndarray
    margin: np.ndarray


def _outside_except(sky: Sky, near: np.ndarray, inside: np.ndarray,
                    margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inside and margin for every position, from those computed for the ``near`` ones."""
    everywhere_inside = np.zeros(len(sky.ra), dtype=bool)
    everywhere_margin = np.full(len(sky.ra), np.inf)
    everywhere_inside[near], everywhere_margin[near] = inside, margin
    return everywhere_inside, everywhere_margin


def polygon_region(sky: Sky, vertices: list[tuple[float, float]],
                   form: str = "CONTAINS") -> Region:
    flat = ", ".join(f"{float(v)!r}" for vertex in vertices for v in vertex)
    if form == "CONTAINS":
        adql = f"1 = CONTAINS(POINT('ICRS', ra, dec), POLYGON('ICRS', {flat}))"
    else:
        adql = f"INTERSECTS(POLYGON({flat}), POINT(ra, dec)) = 1"
    corners = np.array(vertices, dtype=float)
    centre = unit(corners[:, 0], corners[:, 1]).sum(axis=0)
    ra0 = float(np.degrees(np.arctan2(centre[1], centre[0])))
    dec0 = float(np.degrees(np.arcsin(centre[2] / np.linalg.norm(centre))))
    near = sky.near(ra0, dec0, float(separation(corners[:, 0], corners[:, 1], ra0, dec0).max()))
    inside, margin = in_polygon(sky.ra[near], sky.dec[near], corners)
    return Region(adql, *_outside_except(sky, near, inside, margin))


def cone_region(sky: Sky, ra0: float, dec0: float, radius: float, form: int) -> Region:
    adql = (f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0!r}, {dec0!r}, "
            f"{radius!r}))",
            f"DISTANCE(POINT(ra, dec), POINT({ra0!r}, {dec0!r})) <= {radius!r}",
            f"INTERSECTS(CIRCLE({ra0!r}, {dec0!r}, {radius!r}), POINT(ra, dec)) = 1")[form]
    inside, margin = in_cone(sky.ra, sky.dec, ra0, dec0, radius)
    return Region(adql, inside, margin)


def box_region(sky: Sky, ra0: float, dec0: float, width: float, height: float) -> Region:
    adql = (f"1 = CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', {ra0!r}, {dec0!r}, {width!r}, "
            f"{height!r}))")
    near = sky.near(ra0, dec0, float(np.hypot(width, height)))
    inside, margin = in_box(sky.ra[near], sky.dec[near], ra0, dec0, width, height)
    return Region(adql, *_outside_except(sky, near, inside, margin))


SHAPES = ("ids", "count", "per_image")


def where(region: Region, night_only: bool) -> str:
    return f"nid = {NID} AND {region.adql}" if night_only else region.adql


def check(pool: Database, sky: Sky, region: Region, shape: str,
          night_only: bool = True) -> str | None:
    """Run the region in one of the result shapes; None if the answer is right, else why.
    ``night_only`` restricts the query to the generated night (other tests' rows may lie in
    a region); without it the plan scans every partition, as most users' queries do."""
    clear = region.margin > MARGIN
    expected = region.inside & clear
    uncertain = int((~clear).sum())
    if shape == "ids":
        rows = tap_rows(pool, f"SELECT sourceid FROM survey.psf_sources "
                              f"WHERE {where(region, night_only)}")
        found = np.zeros(len(sky.ra), dtype=bool)
        found[np.array([r[0] for r in rows], dtype=np.int64) - sky.sourceid0] = True
        if np.array_equal(found & clear, expected):
            return None
        return (f"{int((expected & ~found).sum())} rows missing, "
                f"{int((found & clear & ~expected).sum())} extra")
    if shape == "count":
        rows = tap_rows(pool, f"SELECT COUNT(*) AS n FROM survey.psf_sources "
                              f"WHERE {where(region, night_only)}")
        counted = int(rows[0][0])
    else:
        rows = tap_rows(pool, f"SELECT pid, COUNT(*) AS n FROM survey.psf_sources "
                              f"WHERE {where(region, night_only)} GROUP BY pid")
        counted = sum(int(n) for _, n in rows)
        if uncertain == 0:
            truth = dict(zip(*np.unique(sky.pid[expected], return_counts=True), strict=True))
            if {int(p): int(n) for p, n in rows} != {int(p): int(n) for p, n in truth.items()}:
                return "per-image counts differ"
    wanted = int(expected.sum())
    if wanted <= counted <= wanted + uncertain:
        return None
    return f"{counted} rows counted, {wanted} expected (+{uncertain} on the boundary)"


# -- one pooled connection ---------------------------------------------------------------------

def test_polygons_differing_in_vertex_count_on_one_pooled_connection(database, sky: Sky):
    """A pentagon, the quadrilateral of its first four vertices and the triangle of its first
    three, planned one after the other on one backend (as a pool hands one connection from
    user to user): each gets exactly its own rows, in every round. (With q3c's polygon
    functions, rounds 2 to 5 of the per-image counts came back short, the same rows each time:
    the plan of a query with GROUP BY over every partition reuses the memory that held the
    previous polygon.)"""
    pool = Database(database.urls, pool_size=1)
    square = [(45.0, 45.0), (45.2, 45.0), (45.2, 45.2), (45.0, 45.2)]
    pentagon = [*square, (45.18, 45.18)]
    try:
        wrong = []
        for vertices in ([pentagon, square], [pentagon, square[:3]], [square, square[:3]]):
            family = [polygon_region(sky, v) for v in vertices]
            for round_ in range(8):
                for region in family:
                    why = check(pool, sky, region, "per_image", night_only=False)
                    if why:
                        wrong.append(f"round {round_}, {region.adql[:70]}...: {why}")
        assert not wrong, "\n".join(wrong)
    finally:
        pool.pool.close()


# -- many threads, a small pool ----------------------------------------------------------------

def _star_polygon(rng: np.random.Generator, ra0: float, dec0: float,
                  size: float) -> list[tuple[float, float]]:
    """3 to 8 vertices around a centre, in order of position angle: convex or concave,
    never self-crossing (star-shaped about the centre); built in the tangent plane, so it is
    as good at the poles as anywhere."""
    count = int(rng.integers(3, 9))
    # evenly spaced position angles, each moved by less than half the spacing: in order
    angles = (np.arange(count) + rng.uniform(-0.4, 0.4, count)) * 2 * np.pi / count
    radius = np.tan(np.radians(size * rng.uniform(0.3, 1.0, count)))
    centre = np.array([np.cos(np.radians(dec0)) * np.cos(np.radians(ra0)),
                       np.cos(np.radians(dec0)) * np.sin(np.radians(ra0)),
                       np.sin(np.radians(dec0))])
    east = np.cross([0.0, 0.0, 1.0], centre)
    east = east / np.linalg.norm(east) if np.linalg.norm(east) > 1e-9 else np.array([0, 1.0, 0])
    north = np.cross(centre, east)
    vertices = []
    for angle, r in zip(angles, radius, strict=True):
        v = centre + r * (np.cos(angle) * east + np.sin(angle) * north)
        v /= np.linalg.norm(v)
        vertices.append((round(float(np.degrees(np.arctan2(v[1], v[0])) % 360), 7),
                         round(float(np.degrees(np.arcsin(v[2]))), 7)))
    return vertices


MALFORMED = (
    "SELECT sourceid FROM survey.psf_sources WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(10, 10, 11, 11))",
    "SELECT sourceid FROM survey.psf_sources WHERE 1 = CONTAINS(POINT(ra, dec), "
    "CIRCLE(10, 95, 1))",
    "SELECT sourceid FROM survey.psf_sources WHERE 1 = CONTAINS(POINT(ra, dec), "
    "BOX(10, 10, 0, 1))",
    "SELECT sourceid FROM survey.psf_sources WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(45.0, 45.0, 45.1, 45.1, 45.1, 45.0, 45.0, 45.1))",
    "SELECT sourceid FROM survey.psf_sources WHERE 1 = CONTAINS(POINT(ra, dec), POLYGON(",
    f"SELECT 1 / (sourceid - sourceid) AS x FROM survey.psf_sources WHERE nid = {NID} AND "
    "1 = CONTAINS(POINT(ra, dec), POLYGON(44.9, 44.9, 45.1, 44.9, 45.0, 45.1))",
)
"""Queries that must fail with an error (never a wrong answer, never a broken connection):
too few vertices, a declination beyond the pole, an empty box, a self-crossing polygon, a
syntax error, an error while rows are read."""


def _random_region(rng: np.random.Generator, sky: Sky) -> Region:
    """A polygon, cone or box about one of the clusters; in the dense field a small one."""
    ra0, dec0, half, count = CLUSTERS[int(rng.integers(len(CLUSTERS)))]
    scale = min(1.0, 20_000 / count)  # about the same number of rows whatever the cluster
    ra0 = (ra0 + rng.normal(0, half / 2 / max(np.cos(np.radians(dec0)), 0.05))) % 360
    dec0 = float(np.clip(dec0 + rng.normal(0, half / 2), -89.9, 89.9))
    kind = rng.random()
    if kind < 0.5:
        vertices = _star_polygon(rng, ra0, dec0, scale * float(rng.uniform(0.02, 0.5)))
        if rng.random() < 0.3 and len(vertices) > 3:  # the same polygon less its last vertex
            vertices = vertices[:-1]
        return polygon_region(sky, vertices, "CONTAINS" if rng.random() < 0.8 else "INTERSECTS")
    if kind < 0.8:
        return cone_region(sky, round(ra0, 6), round(dec0, 6),
                           round(scale * float(rng.uniform(0.005, 0.6)), 6), int(rng.integers(3)))
    return box_region(sky, round(ra0, 6), round(dec0, 6),
                      round(scale * float(rng.uniform(0.02, 0.8)), 6),
                      round(scale * float(rng.uniform(0.02, 0.8)), 6))


def test_random_spatial_predicates_concurrently_match_brute_force(database, sky: Sky):
    """Four threads share a pool of two connections; each sends polygons (convex and concave,
    some the previous polygon less a vertex), cones in three ADQL forms and boxes, in three
    result shapes, mixed with malformed queries. Every answer equals the brute force."""
    pool = Database(database.urls, pool_size=2)
    wrong: list[str] = []
    failures: list[BaseException] = []
    counts = {"regions": 0, "refused": 0}
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(60):
                if rng.random() < 0.12:
                    adql = MALFORMED[int(rng.integers(len(MALFORMED)))]
                    with pytest.raises((AdqlError, psycopg.Error)):
                        tap_rows(pool, adql)
                    with lock:
                        counts["refused"] += 1
                    continue
                region = _random_region(rng, sky)
                shape = SHAPES[int(rng.integers(len(SHAPES)))]
                why = check(pool, sky, region, shape)
                with lock:
                    counts["regions"] += 1
                    if why:
                        wrong.append(f"{region.adql} ({shape}): {why}")
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pool.pool.close()
    if failures:
        raise failures[0]
    assert not wrong, "\n".join(wrong)
    assert counts["regions"] > 120 and counts["refused"] > 5
