"""Night partitions of the catalogs: loaded unindexed, then indexed and attached.

Every catalog declared with a ``SkyLayout`` in schema/tables.py (``SKY_LAID_OUT_TABLES``:
survey.psf_sources, survey.aperture_sources, survey.candidates) is filed by night while it
loads: ``survey.<catalog>_nights`` is partitioned by night (``nid``), and a night's partition
goes through two states (see ingest/README.md for why):

- *loading*: ``archive.<catalog>_n<nid>``, a plain table outside the partition tree, with no
  index. Exposure transactions COPY into it; nothing keeps an index up to date row by row. Its
  CHECK constraints on ``nid`` and ``placement`` are checked per row at no cost and let ATTACH
  skip its scan.
- *attached*: ``survey.<catalog>_n<nid>``, indexed (the catalog's declared indexes: q3c, and
  pid or diffid...) by bulk builds, marked CLUSTER ON its q3c index, attached to
  ``<catalog>_nights``. Queries through the catalog see it.

``seal`` moves a night from the first state to the second in one transaction. Live ingest
(``--watch``) creates the attached partition up front instead, so that every exposure is
queryable when it commits, paying the row-by-row index upkeep for it. Sealed nights are later
moved to the sky cells by ``skyvault.ingest.compact``.

Every partition has row-level security and the embargo policy of its parent, because
PostgreSQL applies only the queried table's policies and a partition can be named directly;
none is granted to any role but the owner.
"""

from __future__ import annotations

import dataclasses
import re
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg

from skyvault.crash import crash_point
from skyvault.schema.ddl import embargo_policy
from skyvault.schema.model import SkyLayout, Table
from skyvault.schema.tables import SKY_LAID_OUT_TABLES

CATALOGS: dict[str, Table] = {table.name: table for table in SKY_LAID_OUT_TABLES}
LOADING_SCHEMA = "archive"
ATTACHED_SCHEMA = "survey"
_NAMES = "|".join(sorted(CATALOGS))
PARTITION_NAME = re.compile(rf"^(?P<catalog>{_NAMES})_n(?P<nid>-?\d+)$")
LOCK_CLASS = zlib.crc32(b"skyvault.ingest.partition") & 0x7FFFFFFF
"""First key of the advisory locks on a night's partitions: loaders hold it shared (many may
COPY at once), creation, sealing and compaction exclusive."""


@dataclass(frozen=True)
class NightPartition:
    catalog: str
    nid: int
    schema: str
    attached: bool

    @property
    def name(self) -> str:
        return partition_name(self.catalog, self.nid)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


def partition_name(catalog: str, nid: int) -> str:
    return f"{catalog}_n{nid}"


def nights_table(catalog: str) -> str:
    """The partitioned half of a catalog that holds its nights."""
    return f"{ATTACHED_SCHEMA}.{SkyLayout.nights_table(catalog)}"


def night_lock_key(catalog: str, nid: int) -> tuple[int, int]:
    """One advisory lock per (catalog, night); the second key must fit an int4."""
    order = sorted(CATALOGS)
    return LOCK_CLASS, (nid * len(order) + order.index(catalog)) & 0x7FFFFFFF


def partitions(connection: psycopg.Connection, catalog: str | None = None,
               nid: int | None = None) -> list[NightPartition]:
    rows = connection.execute(
        """SELECT n.nspname, c.relname, c.relispartition
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname IN (%s, %s)
              AND c.relname ~ %s
            ORDER BY c.relname""",
        (LOADING_SCHEMA, ATTACHED_SCHEMA, f"^({_NAMES})_n-?[0-9]+$"),
    ).fetchall()
    found = []
    for schema, name, attached in rows:
        match = PARTITION_NAME.match(name)
        if match is None:
            continue
        entry = NightPartition(match["catalog"], int(match["nid"]), schema, attached)
        if (catalog is None or entry.catalog == catalog) and (nid is None or entry.nid == nid):
            found.append(entry)
    return found


def secure(connection: psycopg.Connection, catalog: str | Table, schema: str,
           name: str) -> None:
    """Row-level security and the embargo policy of ``catalog`` (a name among CATALOGS, or a
    table declaration) on one of its partitions."""
    declared = CATALOGS[catalog] if isinstance(catalog, str) else catalog
    if declared.embargo is None:
        return
    for statement in embargo_policy(dataclasses.replace(declared, schema=schema, name=name)):
        connection.execute(statement)


def _create_loading(connection: psycopg.Connection, catalog: str, nid: int) -> None:
    name = partition_name(catalog, nid)
    qualified = f"{LOADING_SCHEMA}.{name}"
    connection.execute(
        f"CREATE TABLE {qualified} (LIKE {ATTACHED_SCHEMA}.{catalog} INCLUDING DEFAULTS,"
        f" CONSTRAINT {name}_nid CHECK (nid >= {nid} AND nid < {nid + 1}),"
        f" CONSTRAINT {name}_placement CHECK ({SkyLayout.PLACEMENT_COLUMN} = {SkyLayout.NIGHTS}))"
        # No autovacuum while the night loads (it would scan the table again and again as
        # rows arrive); the seal analyzes it and hands it back to autovacuum.
        " WITH (autovacuum_enabled = false)"
    )
    secure(connection, catalog, LOADING_SCHEMA, name)


def _create_attached(connection: psycopg.Connection, catalog: str, nid: int) -> None:
    name = partition_name(catalog, nid)
    connection.execute(
        f"CREATE TABLE {ATTACHED_SCHEMA}.{name} PARTITION OF {nights_table(catalog)}"
        f" FOR VALUES FROM ({nid}) TO ({nid + 1})"
    )
    secure(connection, catalog, ATTACHED_SCHEMA, name)
    connection.execute(
        f"ALTER TABLE {ATTACHED_SCHEMA}.{name} CLUSTER ON {_q3c_index_of(connection, name)}"
    )


def _q3c_index_of(connection: psycopg.Connection, name: str) -> str:
    row = connection.execute(
        """SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE t.relname = %s AND n.nspname = %s
              AND pg_get_indexdef(x.indexrelid) LIKE '%%q3c_ang2ipix%%'""",
        (name, ATTACHED_SCHEMA),
    ).fetchone()
    assert row is not None, f"no q3c index on {name}"
    return row[0]


def target_for_rows(connection: psycopg.Connection, catalog: str, nid: int,
                    *, live: bool) -> str:
    """The table a transaction COPYs a night's rows into, creating it when the night has none:
    the loading table (bulk) or the attached partition (live). Call inside the transaction;
    the lock taken keeps a concurrent seal from moving the table until it commits."""
    key = night_lock_key(catalog, nid)
    existing = partitions(connection, catalog, nid)
    if not existing:
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
        existing = partitions(connection, catalog, nid)
        if not existing:
            if live:
                _create_attached(connection, catalog, nid)
            else:
                _create_loading(connection, catalog, nid)
            existing = partitions(connection, catalog, nid)
    else:
        connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", key)
        existing = partitions(connection, catalog, nid)  # a seal may have just moved it
    return existing[0].qualified_name


def ensure_live(connection: psycopg.Connection, catalog: str, nid: int) -> None:
    """An attached partition for the night, so that rows are visible at commit: a leftover
    loading table is sealed first. Own short transaction: creating a partition locks the
    parent, which must not stay locked for a whole exposure."""
    with connection.transaction():
        current = partitions(connection, catalog, nid)
        if current and current[0].attached:
            return
    if current:
        seal(connection, catalog, nid)
        return
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           night_lock_key(catalog, nid))
        if not partitions(connection, catalog, nid):
            _create_attached(connection, catalog, nid)


Connect = Callable[[], psycopg.Connection]
"""Opens another autocommit connection to the same database (for work side by side)."""

def indexes(catalog: str) -> dict[str, str]:
    """The catalog's declared indexes, by kind (``q3c``, ``pid``...: the declared name less the
    catalog's and ``_idx``), each a partition builds before it is attached."""
    prefix = f"{catalog}_"
    return {index.name.removeprefix(prefix).removesuffix("_idx"): index.expression
            for index in CATALOGS[catalog].indexes}


def _create_index_sql(catalog: str, table: str, name: str, kind: str) -> str:
    return (f"CREATE INDEX IF NOT EXISTS {name}_{kind}_idx ON {table}"
            f" ({indexes(catalog)[kind]})")


def _prebuild_index(connect: Connect, catalog: str, nid: int, kind: str) -> None:
    """Build one index of a loading table in its own committed transaction. Loaders may go on
    (the shared lock is theirs too); a concurrent seal's attach waits, and so does another
    build of the same index."""
    name = partition_name(catalog, nid)
    with connect() as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)",
                      night_lock_key(catalog, nid))
        other.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{name}_{kind}_idx",))
        # Two builds at once already keep two cores busy: each gets half the parallel workers
        # less itself (none on two cores, where a worker each made both slower: 4.7 s vs 3.9).
        other.execute("SELECT set_config('max_parallel_maintenance_workers', greatest("
                      "current_setting('max_parallel_workers')::int / 2 - 1, 0)::text, true)")
        current = partitions(other, catalog, nid)
        if current and not current[0].attached:
            other.execute(_create_index_sql(catalog, current[0].qualified_name, name, kind))


def _prebuild_indexes(connect: Connect, catalog: str, nid: int) -> None:
    """The index builds side by side, each sorting on its own core: the longest step of a
    seal (a night of 9 M rows, q3c and pid: 7.2 s one after the other, 4 s together on 2
    cores)."""
    kinds = list(indexes(catalog))
    with ThreadPoolExecutor(len(kinds)) as pool:
        for built in [pool.submit(_prebuild_index, connect, catalog, nid, kind)
                      for kind in kinds]:
            built.result()


def seal(connection: psycopg.Connection, catalog: str, nid: int, *,
         cluster: bool = False, timings: dict[str, float] | None = None,
         connect: Connect | None = None) -> bool:
    """Index a loading table, attach it as the night's partition; True if there was one.

    The attach is one transaction: after a crash the night is either still loading (and sealed
    by the next run) or attached with its indexes. With ``connect`` the two indexes are built
    first, side by side on connections of their own; a crash after them leaves a loading table
    with indexes, which the next seal keeps. ``cluster`` also rewrites the table in q3c order
    (rows are already in q3c order within each image, so this is rarely worth its cost).
    """
    name = partition_name(catalog, nid)
    loading = f"{LOADING_SCHEMA}.{name}"
    step = _Stopwatch(timings)
    if connect is not None:
        _prebuild_indexes(connect, catalog, nid)
        step("indexes side by side")
        crash_point("seal:prebuilt")
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           night_lock_key(catalog, nid))
        current = partitions(connection, catalog, nid)
        if not current or current[0].attached:
            return False
        for kind in indexes(catalog):
            connection.execute(_create_index_sql(catalog, loading, name, kind))
            step(f"{kind} index")
        crash_point("seal:indexed")
        if cluster:
            connection.execute(f"CLUSTER {loading} USING {name}_q3c_idx")
            step("cluster")
        else:
            connection.execute(f"ALTER TABLE {loading} CLUSTER ON {name}_q3c_idx")
        connection.execute(f"ALTER TABLE {loading} RESET (autovacuum_enabled)")
        connection.execute(f"ALTER TABLE {loading} SET SCHEMA {ATTACHED_SCHEMA}")
        connection.execute(
            f"ALTER TABLE {nights_table(catalog)} ATTACH PARTITION {ATTACHED_SCHEMA}.{name}"
            f" FOR VALUES FROM ({nid}) TO ({nid + 1})"
        )
        step("attach")
        connection.execute(f"ANALYZE {ATTACHED_SCHEMA}.{name}")
        step("analyze")
    crash_point("seal:after")
    return True


class _Stopwatch:
    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def seal_all(connection: psycopg.Connection, *, cluster: bool = False,
             connect: Connect | None = None) -> list[str]:
    """Seal every loading table (this run's and any a crashed run left); ``connect`` lets the
    index builds run side by side (see ``seal``)."""
    sealed = []
    with connection.transaction():
        pending = [p for p in partitions(connection) if not p.attached]
    for partition in pending:
        if seal(connection, partition.catalog, partition.nid, cluster=cluster,
                connect=connect):
            sealed.append(partition.name)
    return sealed


def delete_rows_of(connection: psycopg.Connection, catalog: str, nid: int, image_id: int,
                   key: str = "pid", *, sky_keys: list[int] | None = None) -> int:
    """Remove a superseded image's rows (``key``: pid, or diffid for candidates), wherever
    its night's rows are: in the night's partition, or in the sky cells once the night is
    compacted. The night's lock, shared, keeps a compaction of the night from copying rows
    this transaction is deleting.

    A catalog filed under another key than its rows' positions (light-curve points, under
    their objects: ``SkyLayout.key``) has no index on ``key``: ``sky_keys``, the image's rows'
    values of the layout's key, make the deletion read their index ranges (and, in the sky,
    only their cells) instead of every row."""
    connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)",
                       night_lock_key(catalog, nid))
    layout = CATALOGS[catalog].sky_layout
    among, values = "", [image_id]
    if sky_keys is not None and layout is not None:
        among = f" AND {layout.key} = ANY(%s)"
        values.append(sorted(set(sky_keys)))
    deleted = 0
    for partition in partitions(connection, catalog, nid):
        deleted += connection.execute(
            f"DELETE FROM {partition.qualified_name} WHERE {key} = %s{among}", values
        ).rowcount
    deleted += connection.execute(
        f"DELETE FROM {ATTACHED_SCHEMA}.{SkyLayout.sky_table(catalog)}"
        f" WHERE {key} = %s{among} AND nid = %s", [*values, nid]).rowcount
    return deleted
