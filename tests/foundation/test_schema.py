"""The archive schema: migrations, TAP_SCHEMA against the live catalog, q3c cone searches."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from skyvault.db import Database
from skyvault.schema.migrate import current_revision, downgrade, head_revision, upgrade
from skyvault.schema.model import SkyLayout
from skyvault.schema.tables import PUBLISHED_TABLES, SKY_LAID_OUT_TABLES, table_by_name
from skyvault.schema.tap_schema import adql_column_name

# What TAP_SCHEMA's datatype says for each PostgreSQL type the catalog reports.
CATALOG_TYPES = {
    "smallint": ("short", None), "integer": ("int", None), "bigint": ("long", None),
    "real": ("float", None), "double precision": ("double", None), "text": ("char", "*"),
    "timestamp with time zone": ("char", "*"), "smallint[]": ("short", "*"),
    "double precision[]": ("double", "*"),
    "spoly": ("double", "*"), "character(2)": ("char", "2"), "character(1)": ("char", "1"),
    "character(64)": ("char", "64"),
}


def _other_database(database: Database, name: str) -> str:
    with database.admin(autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return database.urls.admin.replace("/skyvault?", f"/{name}?")


def test_schema_builds_from_nothing_and_round_trips(database: Database) -> None:
    url = _other_database(database, "roundtrip")
    upgrade(url)
    assert current_revision(url) == head_revision()
    upgrade(url)  # idempotent
    assert current_revision(url) == head_revision()
    downgrade(url, "base")
    assert current_revision(url) is None
    with psycopg.connect(url) as connection:
        left = connection.execute(
            "SELECT count(*) FROM pg_namespace "
            "WHERE nspname IN ('survey', 'ivoa', 'caom', 'tap_schema')"
        ).fetchone()[0]
    assert left == 0
    upgrade(url)
    with psycopg.connect(url) as connection:
        programs = connection.execute("SELECT count(*) FROM survey.programs").fetchone()[0]
        columns = connection.execute("SELECT count(*) FROM tap_schema.columns").fetchone()[0]
    assert programs == 3
    assert columns == sum(len(t.columns) for t in PUBLISHED_TABLES)


_IN_ARCHIVE = "n.nspname IN ('survey', 'ivoa', 'caom', 'tap_schema', 'archive')"
SNAPSHOT = {
    "columns": f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE {_IN_ARCHIVE} AND c.relkind IN ('r', 'p', 'v') AND a.attnum > 0
           AND NOT a.attisdropped ORDER BY 1, 2, a.attnum""",
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
               coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
               coalesce(p.relname, ''), c.reloptions::text, c.relacl::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
          LEFT JOIN pg_class p ON p.oid = i.inhparent
         WHERE {_IN_ARCHIVE} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1, 2""",
    "policies": """
        SELECT schemaname, tablename, policyname, cmd, roles::text, qual, with_check
          FROM pg_policies ORDER BY 1, 2, 3""",
    "indexes": f"""
        SELECT n.nspname, t.relname, i.relname, pg_get_indexdef(x.indexrelid),
               x.indisclustered
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE {_IN_ARCHIVE} ORDER BY 1, 2, 3""",
    "constraints": f"""
        SELECT n.nspname, c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE {_IN_ARCHIVE} ORDER BY 1, 2, 3""",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_functiondef(p.oid), p.proacl::text
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {_IN_ARCHIVE} ORDER BY 1, 2, 3""",
    "views": """
        SELECT schemaname, viewname, definition FROM pg_views
         WHERE schemaname IN ('survey', 'ivoa', 'caom', 'tap_schema', 'archive') ORDER BY 1, 2""",
    "programs": "SELECT to_jsonb(p)::text FROM survey.programs p ORDER BY programid",
}
"""What migrations make, as the catalogs describe it (column positions aside: a column a
migration dropped leaves a gap in attnum)."""


def _snapshot(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as connection:
        return {name: connection.execute(query).fetchall() for name, query in SNAPSHOT.items()}


def _old_policy(connection: psycopg.Connection, relation: str) -> None:
    """Row-level security and the embargo policy before migration 0016 (a stored release date
    per row), as ingest and compaction gave their partitions."""
    connection.execute(f"ALTER TABLE {relation} ENABLE ROW LEVEL SECURITY")
    connection.execute(
        f"CREATE POLICY embargo ON {relation} FOR SELECT USING (release_date <= now()"
        " OR programid = ANY ((SELECT archive.member_programs())::smallint[]))")


def _cluster_on_q3c(connection: psycopg.Connection, relation: str) -> None:
    q3c = connection.execute(
        "SELECT x.indexrelid::regclass::text FROM pg_index x WHERE x.indrelid ="
        " %s::regclass AND pg_get_indexdef(x.indexrelid) LIKE '%%q3c_ang2ipix%%'",
        (relation,)).fetchone()[0]
    connection.execute(f"ALTER TABLE {relation} CLUSTER ON {q3c.split('.')[-1]}")


def _night_tables_before_0016(url: str, catalog: str, nid: int) -> None:
    """A night of ``catalog`` attached (``nid``) and one still loading (``nid + 1``), as ingest
    made them before migration 0016: each row stored its release date, and each table's policy
    read it (ingest/partitions.py of that time)."""
    with psycopg.connect(url) as connection:
        for night, relation in ((nid, f"survey.{catalog}_n{nid}"),
                                (nid + 1, f"archive.{catalog}_n{nid + 1}")):
            if relation.startswith("survey."):
                connection.execute(f"CREATE TABLE {relation} PARTITION OF survey.{catalog}"
                                   f" FOR VALUES FROM ({night}) TO ({night + 1})")
                _cluster_on_q3c(connection, relation)
            else:
                connection.execute(
                    f"CREATE TABLE {relation} (LIKE survey.{catalog} INCLUDING DEFAULTS,"
                    f" CONSTRAINT {catalog}_n{night}_nid CHECK (nid >= {night}"
                    f" AND nid < {night + 1})) WITH (autovacuum_enabled = false)")
            _old_policy(connection, relation)


CELL_DEPTH = SkyLayout().depth
CELL_NUMBER = 1234
"""A sky cell of the default layout (schema/model.py ``SkyLayout``)."""
BEFORE_0018 = ("psf_sources", "aperture_sources", "candidates")
"""The catalogs laid out by night and sky cell before migration 0018 added survey.lightcurves."""


def _sky_cell_before_0016(url: str, catalog: str, number: int) -> None:
    """A sky cell of ``catalog`` as compaction made it before migration 0016 (ingest/compact.py
    ``create_cell`` of that time): the catalog's columns, its policy reading the stored release
    date, attached to the sky half, marked CLUSTER ON its q3c index."""
    from skyvault.ingest.q3c import cell_range

    low, high = cell_range(number, CELL_DEPTH)
    cell = f"survey.{catalog}_c{CELL_DEPTH}_{number}"
    with psycopg.connect(url) as connection:
        connection.execute(f"CREATE TABLE {cell} (LIKE survey.{catalog} INCLUDING DEFAULTS)")
        _old_policy(connection, cell)
        connection.execute(f"ALTER TABLE survey.{catalog}_sky ATTACH PARTITION {cell}"
                           f" FOR VALUES FROM ({low}) TO ({high})")
        _cluster_on_q3c(connection, cell)


def test_a_database_migrated_from_0010_ends_as_one_built_from_nothing(
        database: Database) -> None:
    """Migrations bring an archive that holds nights (attached partitions and loading tables of
    every catalog, made by the ingest of their time) and sky cells (made by the compaction of
    revision 0015) to exactly what a new archive is when today's ingest and compaction make
    the same: tables, columns, policies (migration 0016 re-dates every relation by the rule of
    the table whose rows it holds), indexes, functions, views, privileges."""
    from skyvault.ingest.compact import SkyCell, create_cell
    from skyvault.ingest.partitions import CATALOGS, target_for_rows

    old, new = _other_database(database, "from_0010"), _other_database(database, "from_nothing")
    upgrade(old, "0010")
    for catalog in ("psf_sources", "aperture_sources"):
        _night_tables_before_0016(old, catalog, 100)
    upgrade(old, "0017")
    _night_tables_before_0016(old, "candidates", 100)
    upgrade(old, "0015")
    for catalog in BEFORE_0018:  # light-curve points come with migration 0018
        _sky_cell_before_0016(old, catalog, CELL_NUMBER)
    upgrade(old)
    upgrade(new)
    with psycopg.connect(new) as connection:
        for catalog in BEFORE_0018:
            target_for_rows(connection, catalog, 100, live=True)
            target_for_rows(connection, catalog, 101, live=False)
            create_cell(connection, SkyCell(CATALOGS[catalog], CELL_DEPTH, CELL_NUMBER))
    assert current_revision(old) == current_revision(new) == head_revision()
    migrated, built = _snapshot(old), _snapshot(new)
    assert {"candidates_n100", "candidates_n101", f"candidates_c{CELL_DEPTH}_{CELL_NUMBER}"} \
        <= {row[1] for row in built["relations"]}
    for name in SNAPSHOT:
        assert migrated[name] == built[name], name


def test_tap_schema_agrees_with_the_live_catalog(database: Database) -> None:
    """TAP 1.1 section 4: TAP_SCHEMA describes exactly the published tables and columns."""
    with database.admin() as connection:
        described = connection.execute(
            "SELECT table_name, column_name, datatype, arraysize, column_index "
            "FROM tap_schema.columns ORDER BY table_name, column_index"
        ).fetchall()
        live = connection.execute("""
            SELECT n.nspname || '.' || c.relname, a.attname,
                   format_type(a.atttypid, a.atttypmod), a.attnum
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('survey', 'ivoa', 'caom', 'tap_schema') AND a.attnum > 0
               AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'p')
               AND NOT c.relispartition
        """).fetchall()
        tables = {row[0] for row in connection.execute("SELECT table_name FROM tap_schema.tables")}
    # The placement column of a sky-laid-out catalog is internal: ADQL cannot name it.
    internal = {(t.qualified_name, SkyLayout.PLACEMENT_COLUMN) for t in SKY_LAID_OUT_TABLES}
    live_columns = {(table, name): pg_type for table, name, pg_type, _ in live
                    if (table, name) not in internal}
    assert {table for table, _ in live_columns} == tables
    assert len(described) == len(live_columns)
    for table, column_name, datatype, arraysize, _ in described:
        pg_type = live_columns[(table, column_name.strip('"'))]
        expected = CATALOG_TYPES[pg_type]
        if (datatype, arraysize) == ("char", "*") and pg_type == "spoly":
            expected = ("char", "*")  # an ADQL REGION: the polygon published as STC-S text
        if (datatype, arraysize) == ("unicodeChar", "*") and pg_type == "text":
            expected = ("unicodeChar", "*")  # free text (schema.model.UNICODE_TEXT)
        assert expected == (datatype, arraysize), (table, column_name, pg_type)
    for table in PUBLISHED_TABLES:
        indices = [row[4] for row in described if row[0] == table.qualified_name]
        assert indices == list(range(1, len(table.columns) + 1))


def test_tap_schema_quotes_reserved_column_names(database: Database) -> None:
    """TAP 1.1 section 4.3: "size" is a delimited identifier and must carry its quotes."""
    with database.admin() as connection:
        names = [row[0] for row in connection.execute(
            "SELECT column_name FROM tap_schema.columns WHERE table_name = 'tap_schema.columns'"
        )]
    assert '"size"' in names
    assert adql_column_name(table_by_name("tap_schema.columns").column("size")) == '"size"'


@pytest.fixture(scope="module")
def million_sources(database: Database):
    """One million sources spread uniformly over the sphere, in a partition of psf_sources."""
    rng = np.random.default_rng(20261121)
    count = 1_000_000
    ra = rng.uniform(0, 360, count)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, count)))
    with database.admin() as connection:
        connection.execute("CREATE TABLE survey.psf_sources_test PARTITION OF"
                           " survey.psf_sources_nights FOR VALUES FROM (-100) TO (-1)")
        with connection.cursor().copy(
            "COPY survey.psf_sources_test (sourceid, pid, nid, ra, dec, obsjd, programid)"
            " FROM STDIN"
        ) as copy:
            for index in range(count):
                copy.write_row((index, 1, -50, ra[index], dec[index], 2460000.5, 1))
        connection.execute("ANALYZE survey.psf_sources_test")
    yield ra, dec
    with database.admin() as connection:
        connection.execute("DROP TABLE survey.psf_sources_test")


def _great_circle_deg(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra0r, dec0r, rar, decr = map(np.radians, (ra0, dec0, ra, dec))
    hav = (np.sin((decr - dec0r) / 2) ** 2
           + np.cos(dec0r) * np.cos(decr) * np.sin((rar - ra0r) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))


CONES = [(10.0, 20.0, 1.0), (359.9, -0.5, 0.7), (180.0, 89.5, 2.0), (0.05, -89.9, 0.3),
         (123.4, 45.6, 0.3)]


@pytest.mark.parametrize("ra0, dec0, radius", CONES)
def test_cone_search_matches_brute_force(database: Database, million_sources, ra0, dec0,
                                         radius) -> None:
    ra, dec = million_sources
    expected = set(np.nonzero(_great_circle_deg(ra0, dec0, ra, dec) <= radius)[0].tolist())
    # Points within 1e-9 deg of the edge could fall either way with rounding; there are none.
    margin = np.abs(_great_circle_deg(ra0, dec0, ra, dec) - radius)
    assert margin.min() > 1e-9
    with database.admin() as connection:
        found = {row[0] for row in connection.execute(
            "SELECT sourceid FROM survey.psf_sources WHERE q3c_join(%s, %s, ra, dec, %s)",
            (ra0, dec0, radius),
        )}
    assert expected
    assert found == expected


def test_cone_search_plan_uses_the_q3c_index(database: Database, million_sources) -> None:
    with database.admin() as connection:
        plan = "\n".join(row[0] for row in connection.execute(
            "EXPLAIN SELECT sourceid FROM survey.psf_sources"
            " WHERE q3c_join(10.0, 20.0, ra, dec, 0.1)"
        ))
    assert "psf_sources_test_q3c_ang2ipix_idx" in plan or "q3c" in plan.lower()
    assert "Index" in plan and "Seq Scan" not in plan


def test_table_documentation_is_generated_from_the_model() -> None:
    from pathlib import Path

    from skyvault.schema.docs import tables_markdown

    committed = Path(__file__).resolve().parents[2] / "docs" / "TABLES.md"
    assert committed.read_text() == tables_markdown() + "\n", (
        "docs/TABLES.md is stale: python -m skyvault.schema.docs > docs/TABLES.md")


def test_identifiers_come_from_the_declared_primary_keys() -> None:
    """The image table -> key column map is the schema's, not restated (issue 14 item 4): the
    publisher DIDs' collections and ingest's references read ``Table.key``, which is the
    database's primary key."""
    from skyvault.vo.publisher_did import COLLECTIONS

    for collection in COLLECTIONS.values():
        table = table_by_name(f"survey.{collection.table}")
        assert collection.key == table.key
        assert [c.name for c in table.columns if c.primary_key] == [table.key]
    assert table_by_name("survey.calibration_images").key == "calid"
    with pytest.raises(ValueError, match="no one-column primary key"):
        _ = table_by_name("tap_schema.key_columns").key


def test_primary_keys_in_the_database_are_the_declared_keys(database: Database) -> None:
    with database.admin() as connection:
        for collection_table in ("raw_images", "calibration_images", "science_images",
                                 "reference_images", "difference_images"):
            found = connection.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (f"survey.{collection_table}",)).fetchall()
            assert found == [(table_by_name(f"survey.{collection_table}").key,)]
