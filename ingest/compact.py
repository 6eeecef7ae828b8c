"""Compaction: sealed nights of a catalog moved into its sky cells, for good.

A catalog declared with a ``SkyLayout`` is ``PARTITION BY LIST (placement)``: its nights
(``<catalog>_nights``, one partition per night, see partitions.py) and its sky
(``<catalog>_sky``, partitioned by ranges of the layout's q3c key, one partition per *cell*, a
q3c pixel of the layout's depth). A cone search has no night condition, so it probes every
night partition, but q3c's ranges prune the sky to the one to four cells the cone touches:
moving nights to the sky keeps a cone's cost flat in the age of the archive (BENCHMARKS.md).

``compact_night`` moves one sealed night in one transaction: it takes the night's lock
(exclusive: loaders, seals and deletions of superseded rows hold it too), creates the cells
its rows need (each a plain table given the catalog's row-level security, then attached, which
does not block readers), copies the rows into the sky in key order (so each cell grows by
runs of neighbouring rows) and drops the night's partition. A crash before the COMMIT leaves
everything as it was, after it the night is in the sky: rows are never in both places or in
neither, and running it again moves what is left. Dropping the partition takes a brief
exclusive lock on ``<catalog>_nights``, which every query of the catalog reads; it is tried with
a short lock timeout, again and again, so that a long query delays the compaction, not the
queries that arrive behind it.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass

import psycopg

from skyvault.crash import crash_point
from skyvault.ingest.partitions import (
    ATTACHED_SCHEMA,
    CATALOGS,
    night_lock_key,
    partition_name,
    partitions,
    secure,
)
from skyvault.ingest.q3c import cell_range, cell_shift
from skyvault.schema.ddl import quote_ident
from skyvault.schema.model import SkyLayout, Table

COMPACT_LOCK = zlib.crc32(b"skyvault.ingest.compact") & 0x7FFFFFFF
"""Advisory lock (with the catalog's index) held by the one compaction of a catalog at a time:
two would race to create the same cell."""
CELL_NAME = re.compile(r"^(?P<catalog>\w+?)_c(?P<depth>\d+)_(?P<number>\d+)$")


class CompactionBusy(RuntimeError):
    """Queries kept the night's partition locked through every attempt to drop it."""


@dataclass(frozen=True)
class SkyCell:
    table: Table
    """The sky-laid-out catalog the cell belongs to."""
    depth: int
    number: int

    @property
    def name(self) -> str:
        return f"{self.table.name}_c{self.depth}_{self.number}"

    @property
    def qualified_name(self) -> str:
        return f"{self.table.schema}.{self.name}"

    @property
    def bounds(self) -> tuple[int, int]:
        return cell_range(self.number, self.depth)


@dataclass(frozen=True)
class Compacted:
    catalog: str
    nid: int
    rows: int
    seconds: float
    new_cells: int

    def line(self) -> str:
        return (f"{partition_name(self.catalog, self.nid)}: {self.rows:,} rows to the sky in "
                f"{self.seconds:.1f} s" + (f", {self.new_cells} new cells" if self.new_cells
                                           else ""))


def compaction_lock_key(catalog: str) -> tuple[int, int]:
    return COMPACT_LOCK, sorted(CATALOGS).index(catalog)


def layout_of(catalog: str) -> SkyLayout:
    layout = CATALOGS[catalog].sky_layout
    assert layout is not None
    return layout


def sky_table(catalog: str | Table) -> str:
    """The sky half of a catalog (a name among CATALOGS, or a table declaration)."""
    table = CATALOGS[catalog] if isinstance(catalog, str) else catalog
    return f"{table.schema}.{SkyLayout.sky_table(table.name)}"


def sky_cells(connection: psycopg.Connection, catalog: str | Table) -> list[SkyCell]:
    """The cells attached to the catalog's sky."""
    table = CATALOGS[catalog] if isinstance(catalog, str) else catalog
    cells = []
    for (name,) in connection.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY c.relname", (sky_table(table),)):
        match = CELL_NAME.match(name)
        if match and match["catalog"] == table.name:
            cells.append(SkyCell(table, int(match["depth"]), int(match["number"])))
    return cells


def create_cell(connection: psycopg.Connection, cell: SkyCell) -> None:
    """A cell, in the caller's transaction: created apart, secured, then attached (ATTACH takes a
    lock that readers do not wait for; CREATE TABLE ... PARTITION OF would block them)."""
    low, high = cell.bounds
    connection.execute(f"CREATE TABLE {cell.qualified_name}"
                       f" (LIKE {cell.table.qualified_name} INCLUDING DEFAULTS)")
    secure(connection, cell.table, cell.table.schema, cell.name)
    connection.execute(f"ALTER TABLE {sky_table(cell.table)} ATTACH PARTITION"
                       f" {cell.qualified_name} FOR VALUES FROM ({low}) TO ({high})")
    # The attach created the catalog's indexes on the cell; mark the sky key's for CLUSTER.
    key = cell.table.sky_layout.key if cell.table.sky_layout else "q3c_ang2ipix"
    pattern = "%q3c_ang2ipix%" if "q3c_ang2ipix" in key else f"%({key})%"
    index = connection.execute(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND pg_get_indexdef(x.indexrelid) LIKE %s",
        (cell.qualified_name, pattern)).fetchone()
    if index is not None:
        connection.execute(f"ALTER TABLE {cell.qualified_name} CLUSTER ON"
                           f" {quote_ident(index[0])}")


def _drop_partition(connection: psycopg.Connection, table: str, lock_timeout_ms: int,
                    attempts: int) -> None:
    """Drop a night's partition inside the caller's transaction, waiting for the exclusive lock
    at most ``lock_timeout_ms`` at a time (a savepoint undoes each failed try), so that queries
    never queue long behind the compaction."""
    for attempt in range(attempts):
        try:
            with connection.transaction():
                connection.execute("SELECT set_config('lock_timeout', %s, true)",
                                   (f"{lock_timeout_ms}ms",))
                connection.execute(f"DROP TABLE {table}")
            return
        except psycopg.errors.LockNotAvailable:
            time.sleep(min(0.05 * (attempt + 1), 1.0))
    raise CompactionBusy(f"{table} stayed locked by queries through {attempts} attempts")


def compact_night(connection: psycopg.Connection, catalog: str, nid: int, *,
                  lock_timeout_ms: int = 200, attempts: int = 100) -> Compacted | None:
    """Move a sealed night of ``catalog`` into its sky cells; None when the night has no sealed
    partition (loading, compacted already, or never loaded). One transaction: see the module's
    documentation."""
    layout = layout_of(catalog)
    started = time.perf_counter()
    name = partition_name(catalog, nid)
    night = f"{ATTACHED_SCHEMA}.{name}"
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", compaction_lock_key(catalog))
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", night_lock_key(catalog, nid))
        current = partitions(connection, catalog, nid)
        if not current or not current[0].attached:
            return None
        shift = cell_shift(layout.depth)
        needed = {row[0] for row in connection.execute(
            f"SELECT DISTINCT ({layout.key}) >> {shift} FROM {night}")}
        present = {cell.number for cell in sky_cells(connection, catalog)
                   if cell.depth == layout.depth}
        missing = sorted(needed - present)
        for number in missing:
            create_cell(connection, SkyCell(CATALOGS[catalog], layout.depth, number))
        crash_point("compact:cells")
        columns = ", ".join(quote_ident(c) for c in CATALOGS[catalog].column_names)
        moved = connection.execute(
            f"INSERT INTO {sky_table(catalog)} ({columns}, {SkyLayout.PLACEMENT_COLUMN})"
            f" SELECT {columns}, {SkyLayout.SKY} FROM {night} ORDER BY {layout.key}").rowcount
        crash_point("compact:moved")
        _drop_partition(connection, night, lock_timeout_ms, attempts)
    crash_point("compact:after")
    return Compacted(catalog, nid, moved, time.perf_counter() - started, len(missing))


def compactable_nights(connection: psycopg.Connection, catalog: str,
                       keep_latest: int = 0) -> list[int]:
    """The sealed nights of a catalog, oldest first, less the ``keep_latest`` most recent
    (a night still being observed with ``ingest --watch`` is sealed from its first exposure)."""
    sealed = sorted(p.nid for p in partitions(connection, catalog) if p.attached)
    return sealed[:max(len(sealed) - keep_latest, 0)]


def compact_all(connection: psycopg.Connection, *, keep_latest: int = 0,
                catalogs: list[str] | None = None) -> list[Compacted]:
    """Compact every sealed night of the catalogs (default: all) but the latest
    ``keep_latest``; nights still loading wait for their seal."""
    done = []
    for catalog in catalogs or sorted(CATALOGS):
        for nid in compactable_nights(connection, catalog, keep_latest):
            result = compact_night(connection, catalog, nid)
            if result is not None:
                done.append(result)
    return done
