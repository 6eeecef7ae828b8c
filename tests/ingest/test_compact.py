"""Sky layout: nights compacted into sky cells answer cones exactly, prune, and stay embargoed.

Rows are loaded night by night as ingest does (loading table, seal), then every night but the
latest is compacted into the sky cells (``skyvault ingest compact``), for each sky-laid-out
catalog in turn: survey.psf_sources (sources of science images) and survey.candidates
(detections of difference images, keyed by diffid and candid). Cone answers, through SQL as
the service runs it and through ADQL, must equal a numpy brute force over every row, with
cones across cell boundaries, cube-face edges and corners, the RA wrap and both poles; the
plans must probe only the cells a cone touches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import release_calendar

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database, DatabaseUrls
from skyvault.ingest.compact import (
    compact_all,
    compact_night,
    compactable_nights,
    sky_cells,
)
from skyvault.ingest.partitions import delete_rows_of, partitions, seal
from skyvault.ingest.q3c import ang2ipix, cell_of
from skyvault.ingest.testing import fresh_database, load_image_rows
from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.vo.adql.catalog import catalog_from_tables
from skyvault.vo.adql.translator import translate

NIGHTS = (10, 11, 12, 13, 14)
KEPT = 14
"""The latest night stays a night partition (compacted with keep_latest=1)."""
DEPTH = 4
FACE_CORNER_DEC = float(np.degrees(np.arcsin(1 / np.sqrt(3))))
# (ra, dec, radius in degrees): cell and face boundaries, a cube corner, the RA wrap, the poles.
CONES = [
    (0.0, 0.0, 0.3),            # four cells meet on the RA wrap
    (359.99, 0.01, 2 / 3600),
    (0.0, 0.0, 1.0),
    (45.0, 0.0, 0.5),           # the edge between two equatorial faces
    (0.0, 45.0, 0.2),           # the edge of the north face
    (45.0, FACE_CORNER_DEC, 0.4),  # where three faces meet
    (180.0, 90.0, 1.5),         # the north pole, inside the cone
    (17.0, -89.95, 0.2),        # close to the south pole, the pole inside
    (11.25, 5.625, 0.05),       # a cell corner inside a face
    (300.0, 60.0, 5.0),         # wide: many cells
    (123.4, -33.3, 60 / 3600),
]
PROGRAM_EMBARGOED = release_calendar.NEVER_RELEASED
"""Rows of program 1 are public (the session's release covers their nights), rows of this
program never are but to its members (tests/release_calendar.py)."""
MEMBER = Requester(user_id=1, username="member", programs=frozenset({PROGRAM_EMBARGOED}))


@dataclass(frozen=True)
class Catalog:
    """A sky-laid-out catalog under test: the column naming a row's image, the column unique
    within it, and that column's value for the n-th row (1-based) of image ``image``."""

    name: str
    image_key: str
    row_key: str
    candidates: bool = False

    def row_value(self, image: np.ndarray, number: np.ndarray) -> np.ndarray:
        return image * 1_000_000 + number if self.candidates else number


CATALOGS = [Catalog("psf_sources", "pid", "sourceid"),
            Catalog("candidates", "diffid", "candid", candidates=True)]


def _cap(rng: np.random.Generator, ra0: float, dec0: float, radius: float,
         count: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in a spherical cap."""
    cos_r = np.cos(np.radians(radius))
    z = rng.uniform(cos_r, 1, count)
    phi = rng.uniform(0, 2 * np.pi, count)
    s = np.sqrt(1 - z ** 2)
    local = np.stack([s * np.cos(phi), s * np.sin(phi), z])
    a, d = np.radians(ra0), np.radians(dec0)
    # rotate the cap's axis from the pole to (ra0, dec0)
    rot_y = np.array([[np.sin(d), 0, np.cos(d)], [0, 1, 0], [-np.cos(d), 0, np.sin(d)]])
    rot_z = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    x, y, zz = rot_z @ rot_y @ local
    return np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arcsin(np.clip(zz, -1, 1)))


def _distance(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra0r, dec0r, rar, decr = map(np.radians, (ra0, dec0, ra, dec))
    hav = (np.sin((decr - dec0r) / 2) ** 2
           + np.cos(dec0r) * np.cos(decr) * np.sin((rar - ra0r) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))


class Sources:
    """Every loaded row: positions and keys, and whether anonymous users may see it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.ra: list[np.ndarray] = []
        self.dec: list[np.ndarray] = []
        self.pid: list[np.ndarray] = []
        self.sourceid: list[np.ndarray] = []
        self.public: list[np.ndarray] = []

    def add(self, pid: int, ra: np.ndarray, dec: np.ndarray, public: bool) -> None:
        self.ra.append(ra)
        self.dec.append(dec)
        self.pid.append(np.full(len(ra), pid))
        self.sourceid.append(self.catalog.row_value(pid, np.arange(1, len(ra) + 1)))
        self.public.append(np.full(len(ra), public))

    def freeze(self) -> None:
        for name in ("ra", "dec", "pid", "sourceid", "public"):
            setattr(self, name, np.concatenate(getattr(self, name)))

    def in_cone(self, ra0: float, dec0: float, radius: float, public_only: bool,
                ) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
        """Keys of the sources inside, and of those too close to the edge to call."""
        distance = _distance(ra0, dec0, self.ra, self.dec)  # type: ignore[arg-type]
        shown = self.public if public_only else np.ones(len(distance), bool)

        def keys(selected: np.ndarray) -> set[tuple[int, int]]:
            return {(int(self.pid[i]), int(self.sourceid[i]))  # type: ignore[index]
                    for i in np.nonzero(selected & shown)[0]}

        return keys(distance <= radius), keys(np.abs(distance - radius) < 1e-8)


@pytest.fixture(scope="module", params=CATALOGS, ids=lambda catalog: catalog.name)
def layout(request, database: Database) -> Iterator[tuple[Database, Sources]]:
    catalog: Catalog = request.param
    handle = fresh_database(database.urls.admin, f"sky_layout_{catalog.name}")
    app = handle.urls.admin.replace("://skyvault@", "://skyvault_app@")
    service = Database(DatabaseUrls(admin=handle.urls.admin, app=app))
    rng = np.random.default_rng(20261125)
    sources = Sources(catalog)
    pid = 0
    with service.admin(autocommit=True) as connection:
        release_calendar.prepare(connection)
        for nid in NIGHTS:
            # the whole sky, thinly; then every cone's neighbourhood, densely
            chunks = [(rng.uniform(0, 360, 20_000),
                       np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000))))]
            chunks += [_cap(rng, ra0, dec0, min(radius * 1.5, 6.0), 1_500)
                       for ra0, dec0, radius in CONES]
            for index, (ra, dec) in enumerate(chunks):
                pid += 1
                public = index % 3 != 1
                load_image_rows(connection, catalog.name, nid, pid, ra, dec,
                                programid=1 if public else PROGRAM_EMBARGOED,
                                seal_night=False)
                sources.add(pid, ra, dec, public)
            seal(connection, catalog.name, nid)
        compact_all(connection, keep_latest=1)
    sources.freeze()
    yield service, sources
    service.close()


def test_every_night_but_the_latest_moved_to_the_sky(layout) -> None:
    service, sources = layout
    name, image, row = sources.catalog.name, sources.catalog.image_key, sources.catalog.row_key
    with service.admin() as connection:
        nights = [(p.nid, p.attached) for p in partitions(connection, name)]
        placed = dict(connection.execute(
            f"SELECT placement, count(*) FROM survey.{name} GROUP BY 1").fetchall())
        per_night = dict(connection.execute(
            f"SELECT nid, count(*) FROM survey.{name} GROUP BY 1").fetchall())
        duplicates = connection.execute(
            f"SELECT count(*) FROM (SELECT {image}, {row} FROM survey.{name}"
            " GROUP BY 1, 2 HAVING count(*) > 1) AS d").fetchone()[0]
        cells = sky_cells(connection, name)
        wrong_cell = connection.execute(
            f"SELECT count(*) FROM survey.{name}_sky s"
            " WHERE (q3c_ang2ipix(s.ra, s.dec) >> %s) <> substring(s.tableoid::regclass::text"
            " from '_([0-9]+)$')::bigint", (60 - 2 * DEPTH,)).fetchone()[0]
    assert nights == [(KEPT, True)]
    per_image = len(sources.ra) // len(NIGHTS)
    assert placed == {0: per_image, 1: per_image * (len(NIGHTS) - 1)}
    assert per_night == {nid: per_image for nid in NIGHTS}
    assert duplicates == 0
    assert wrong_cell == 0
    expected = set(cell_of(ang2ipix(sources.ra, sources.dec), DEPTH).tolist())
    assert {cell.number for cell in cells} == expected
    assert all(cell.depth == DEPTH for cell in cells)


def _cone_adql(catalog: Catalog, ra0: float, dec0: float, radius: float) -> str:
    return translate(
        f"SELECT {catalog.image_key}, {catalog.row_key} FROM survey.{catalog.name} WHERE"
        f" 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0!r}, {dec0!r}, {radius!r}))",
        catalog_from_tables(PUBLISHED_TABLES)).sql


@pytest.mark.parametrize("ra0, dec0, radius", CONES)
@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_cones_equal_brute_force(layout, ra0, dec0, radius, who) -> None:
    """Through the service's own connection (app role, row-level security), in SQL as the
    cone search writes it and in ADQL as TAP translates it."""
    service, sources = layout
    catalog = sources.catalog
    requester = ANONYMOUS if who == "anonymous" else MEMBER
    inside, edge = sources.in_cone(ra0, dec0, radius, public_only=who == "anonymous")
    assert len(inside) > 0
    adql = _cone_adql(catalog, ra0, dec0, radius)
    with service.reading(requester) as connection:
        by_sql = set(connection.execute(
            f"SELECT {catalog.image_key}, {catalog.row_key} FROM survey.{catalog.name}"
            " WHERE q3c_join(%s, %s, ra, dec, %s)", (ra0, dec0, radius)).fetchall())
    with service.reading(requester, user_query=True) as connection:
        by_adql = set(connection.execute(adql).fetchall())
    for found in (by_sql, by_adql):
        assert inside - edge <= found <= inside | edge
        assert len(found) == len(set(found))


def _scanned(plan: str, catalog: str) -> list[str]:
    return re.findall(rf"on ({catalog}_\w+)", plan)


@pytest.mark.parametrize("ra0, dec0, radius", [(0.0, 0.0, 2 / 3600), (123.4, -33.3, 0.01),
                                               (11.25, 5.625, 0.05), (180.0, 90.0, 0.1)])
def test_cone_plans_probe_only_the_cells_they_touch(layout, ra0, dec0, radius) -> None:
    """The q3c ranges of ``q3c_join`` prune the sky cells at planning time (a cell is a range
    of q3c_ang2ipix, the sky's partition key), for SQL and for translated ADQL alike; the
    night partition not yet compacted is probed as well, through its q3c index."""
    service, sources = layout
    catalog = sources.catalog
    adql = _cone_adql(catalog, ra0, dec0, radius)
    with service.admin() as connection:
        total = len(sky_cells(connection, catalog.name))
    for sql, user_query in (
            (f"SELECT {catalog.image_key} FROM survey.{catalog.name}"
             f" WHERE q3c_join({ra0}, {dec0}, ra, dec, {radius})", False), (adql, True)):
        with service.reading(ANONYMOUS, user_query=user_query) as connection:
            connection.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(row[0] for row in connection.execute(f"EXPLAIN {sql}"))
        scanned = _scanned(plan, catalog.name)
        cells = [name for name in scanned if re.match(rf"{catalog.name}_c\d+_\d+$", name)]
        assert 1 <= len(cells) <= 4, plan
        assert total > 100
        assert f"{catalog.name}_n{KEPT}" in scanned, plan
        assert "Seq Scan" not in plan, plan
        assert "q3c_ang2ipix" in plan, plan


def test_every_cell_has_the_catalogs_row_level_security(layout) -> None:
    service, sources = layout
    name = sources.catalog.name
    with service.admin() as connection:
        tree = connection.execute(
            "SELECT t.relid::regclass::text, c.relrowsecurity, (SELECT qual FROM pg_policies p"
            "  WHERE p.schemaname = 'survey' AND p.tablename = c.relname"
            "   AND p.policyname = 'embargo'),"
            " has_table_privilege('skyvault_reader', t.relid, 'SELECT'),"
            " has_table_privilege('skyvault_app', t.relid, 'SELECT')"
            " FROM pg_partition_tree(%s) t JOIN pg_class c ON c.oid = t.relid",
            (f"survey.{name}",)).fetchall()
        parent = connection.execute(
            "SELECT qual FROM pg_policies WHERE schemaname = 'survey'"
            " AND tablename = %s AND policyname = 'embargo'", (name,)).fetchone()[0]
    assert len(tree) > 100
    for relation, secured, qual, reader, app in tree:
        assert secured and qual == parent, relation
        assert reader == app == (relation == f"survey.{name}"), relation


def test_compaction_runs_again_without_moving_anything(layout) -> None:
    service, sources = layout
    name = sources.catalog.name
    with service.admin(autocommit=True) as connection:
        before = connection.execute(f"SELECT count(*) FROM survey.{name}").fetchone()[0]
        assert compact_all(connection, keep_latest=1) == []
        assert compact_night(connection, name, NIGHTS[0]) is None  # in the sky
        assert compactable_nights(connection, name, keep_latest=1) == []
        assert compactable_nights(connection, name) == [KEPT]
        after = connection.execute(f"SELECT count(*) FROM survey.{name}").fetchone()[0]
    assert before == after


def test_a_superseded_image_leaves_the_sky(layout) -> None:
    """A reprocessed image of a compacted night: its old rows are deleted from the cells."""
    service, sources = layout
    catalog = sources.catalog
    pid = int(sources.pid[0])  # night NIGHTS[0], compacted
    with service.admin() as connection:
        deleted = delete_rows_of(connection, catalog.name, NIGHTS[0], pid, catalog.image_key)
        left = connection.execute(
            f"SELECT count(*) FROM survey.{catalog.name} WHERE {catalog.image_key} = %s",
            (pid,)).fetchone()[0]
        connection.rollback()
    assert deleted == int((sources.pid == pid).sum()) and left == 0


def test_sealing_a_night_attaches_without_scanning(layout) -> None:
    """The seal's ATTACH proves the night's rows belong (nid and placement CHECKs) instead of
    reading them: sealing costs the same whatever the size of the archive."""
    service, sources = layout
    name = sources.catalog.name
    notices: list[str] = []
    with service.admin(autocommit=True) as connection:
        load_image_rows(connection, name, 99, 10_000, np.array([1.0]),
                        np.array([1.0]), seal_night=False)
        connection.add_notice_handler(lambda notice: notices.append(notice.message_primary))
        connection.execute("SET client_min_messages = debug1")
        try:
            assert seal(connection, name, 99)
        finally:
            connection.execute("RESET client_min_messages")
            with connection.transaction():
                connection.execute(f"DROP TABLE survey.{name}_n99")
    assert any(f"{name}_n99" in note and "implied by existing constraints" in note
               for note in notices), notices


def test_loading_tables_are_invisible_until_sealed(layout) -> None:
    service, sources = layout
    catalog = sources.catalog
    with service.admin(autocommit=True) as connection:
        load_image_rows(connection, catalog.name, 98, 10_001, np.array([2.0]),
                        np.array([2.0]), seal_night=False)
        try:
            assert compact_night(connection, catalog.name, 98) is None
            seen = connection.execute(
                f"SELECT count(*) FROM survey.{catalog.name}"
                f" WHERE {catalog.image_key} = 10001").fetchone()[0]
        finally:
            connection.execute(f"DROP TABLE archive.{catalog.name}_n98")
    assert seen == 0


def test_compaction_waits_for_queries_instead_of_blocking_them(layout) -> None:
    """While a query holds the catalog, the compaction's DROP cannot take its lock: it gives up
    each try after lock_timeout, so a query arriving meanwhile waits at most that long, never
    behind the compaction for the whole length of the first query; and when the first query
    ends, the compaction goes through."""
    from concurrent.futures import ThreadPoolExecutor

    from skyvault.ingest.compact import CompactionBusy

    service, sources = layout
    name, image = sources.catalog.name, sources.catalog.image_key
    count = f"SELECT count(*) FROM survey.{name} WHERE {image} = 10002"
    with service.admin(autocommit=True) as writer:
        load_image_rows(writer, name, 97, 10_002, np.array([3.0]), np.array([3.0]))
    with service.admin() as long_query, ThreadPoolExecutor(1) as pool:
        long_query.execute(count)

        def compact(attempts: int):
            with service.admin(autocommit=True) as compactor:
                return compact_night(compactor, name, 97, lock_timeout_ms=50,
                                     attempts=attempts)

        with pytest.raises(CompactionBusy):
            compact(3)
        running = pool.submit(compact, 200)
        for _ in range(5):
            with service.admin() as newcomer:
                newcomer.execute("SET lock_timeout = '2s'")
                assert newcomer.execute(count).fetchone()[0] == 1
        assert not running.done()
        long_query.rollback()
        moved = running.result(timeout=60)
    with service.admin(autocommit=True) as connection:
        connection.execute(f"DELETE FROM survey.{name} WHERE {image} = 10002")
    assert moved is not None and moved.rows == 1
