"""Catalogs laid out by night while they load, by sky cell once compacted.

survey.psf_sources, survey.aperture_sources and survey.candidates (revision 0017) were
partitioned by night only, so a cone search (no night condition) probed every night's q3c
index: 0.3 ms over one night, 290 ms over 1,500. Each becomes ``PARTITION BY LIST
(placement)`` over two halves (schema/model.py ``SkyLayout``, ingest/README.md):

- ``<catalog>_nights`` (placement 0): the former table, renamed, its night partitions
  untouched; ingest loads and seals nights there as before;
- ``<catalog>_sky`` (placement 1): partitioned by ranges of ``q3c_ang2ipix(ra, dec)``, one
  partition per sky cell, filled by ``skyvault ingest compact``. A cone's q3c ranges prune it
  to the cells the cone touches.

``placement`` is a column of the table that ADQL, TAP_SCHEMA and the exports do not show. Its
default (0) costs nothing to add; attaching the former table as the nights half checks each
existing row once (a one-off scan of the catalog). Row-level security on the new relations is
copied from the former table's own policy, whatever form earlier revisions gave it.

Downgrade moves compacted rows back into night partitions, then undoes the layout.

Revision ID: 0015
Revises: 0017
"""

import psycopg
from alembic import op

revision = "0015"
down_revision = "0017"
branch_labels = None
depends_on = None

READER = "skyvault_reader"
KEY = "q3c_ang2ipix(ra, dec)"
INDEXES = {
    "psf_sources": (("q3c", KEY, "q3c_ang2ipix"), ("pid", "pid", "pid")),
    "aperture_sources": (("q3c", KEY, "q3c_ang2ipix"), ("pid", "pid", "pid")),
    "candidates": (("q3c", KEY, "q3c_ang2ipix"), ("diffid", "diffid", "diffid"),
                   ("objectid", "objectid", "objectid")),
}
"""Each catalog's indexes at this revision: ``<catalog>_<kind>_idx`` on the expression, and
the name PostgreSQL gives that index of ``<catalog>_nights`` when it derives it from the
parent's (``<catalog>_nights_<suffix>_idx``), as a database built by schema/ddl.py has it."""
CATALOGS = tuple(INDEXES)


def _policy(connection, table: str) -> str:
    schema, name = table.split(".")
    row = connection.execute(
        "SELECT qual FROM pg_policies WHERE schemaname = %s AND tablename = %s"
        " AND policyname = 'embargo'", (schema, name)).fetchone()
    assert row is not None, f"{table} has no embargo policy"
    return row[0]


def _secure(connection, table: str, qual: str) -> None:
    connection.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    connection.execute(f"CREATE POLICY embargo ON {table} FOR SELECT USING ({qual})")


def _loading_tables(connection, catalog: str) -> list[str]:
    return [f"archive.{row[0]}" for row in connection.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'archive' AND c.relkind = 'r' AND c.relname ~ %s",
        (f"^{catalog}_n-?[0-9]+$",))]


def _names(catalog: str) -> tuple[str, str, str]:
    """The catalog, its nights and its sky."""
    return f"survey.{catalog}", f"survey.{catalog}_nights", f"survey.{catalog}_sky"


def _rename_indexes(connection, catalog: str, *, to_nights: bool) -> None:
    """The former table's indexes, named as the catalog's or as its nights' (``INDEXES``)."""
    for kind, _, suffix in INDEXES[catalog]:
        parent, nights = f"{catalog}_{kind}_idx", f"{catalog}_nights_{suffix}_idx"
        old, new = (parent, nights) if to_nights else (nights, parent)
        connection.execute(f"ALTER INDEX survey.{old} RENAME TO {new}")


def upgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    for catalog in CATALOGS:
        table, nights, sky = _names(catalog)
        qual = _policy(connection, table)
        connection.execute(f"ALTER TABLE {table} RENAME TO {catalog}_nights")
        _rename_indexes(connection, catalog, to_nights=True)
        connection.execute(f"ALTER TABLE {nights} ADD COLUMN placement smallint NOT NULL DEFAULT 0")
        for loading in _loading_tables(connection, catalog):
            name = loading.split(".")[1]
            connection.execute(f"ALTER TABLE {loading} ADD COLUMN placement smallint NOT NULL"
                               f" DEFAULT 0, ADD CONSTRAINT {name}_placement CHECK (placement = 0)")
        connection.execute(f"CREATE TABLE {table} (LIKE {nights} INCLUDING DEFAULTS)"
                           " PARTITION BY LIST (placement)")
        connection.execute(f"ALTER TABLE {table} ATTACH PARTITION {nights} FOR VALUES IN (0)")
        for kind, expression, _ in INDEXES[catalog]:
            connection.execute(f"CREATE INDEX {catalog}_{kind}_idx ON {table}"
                               f" USING btree ({expression})")
        connection.execute(f"CREATE TABLE {sky} PARTITION OF {table} FOR VALUES IN (1)"
                           f" PARTITION BY RANGE ({KEY})")
        _secure(connection, table, qual)
        _secure(connection, sky, qual)
        connection.execute(f"REVOKE ALL ON {nights} FROM {READER}")
        connection.execute(f"GRANT SELECT ON {table} TO {READER}")


def downgrade() -> None:
    connection = op.get_bind().connection.driver_connection
    for catalog in CATALOGS:
        table, nights, sky = _names(catalog)
        qual = _policy(connection, nights)
        columns = ", ".join(f'"{row[0]}"' for row in connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attname <> 'placement' ORDER BY attnum", (table,)))
        # Compacted rows go back to their nights, in partitions created where a night has none.
        for (nid,) in connection.execute(f"SELECT DISTINCT nid FROM {sky} ORDER BY 1").fetchall():
            move = (f"INSERT INTO {nights} ({columns}) SELECT {columns} FROM {sky}"
                    f" WHERE nid = {nid:d}")
            try:
                with connection.transaction():
                    connection.execute(move)
            except psycopg.errors.CheckViolation:  # no partition of the nights takes it
                partition = f"survey.{catalog}_n{nid}"
                connection.execute(f"CREATE TABLE {partition} PARTITION OF {nights}"
                                   f" FOR VALUES FROM ({nid}) TO ({nid + 1})")
                _secure(connection, partition, qual)
                connection.execute(move)
        connection.execute(f"DROP TABLE {sky}")
        connection.execute(f"ALTER TABLE {table} DETACH PARTITION {nights}")
        connection.execute(f"DROP TABLE {table}")
        connection.execute(f"ALTER TABLE {nights} RENAME TO {catalog}")
        _rename_indexes(connection, catalog, to_nights=False)
        connection.execute(f"ALTER TABLE {table} DROP COLUMN placement")
        for loading in _loading_tables(connection, catalog):
            connection.execute(f"ALTER TABLE {loading} DROP COLUMN placement")
        connection.execute(f"GRANT SELECT ON {table} TO {READER}")
