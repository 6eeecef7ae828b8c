"""``skyvault ingest check``: does the store hold exactly what the database says it holds?

- missing: a survey.files row whose file is absent;
- mismatched: present, but of another size or SHA-256 (``quick`` checks sizes only);
- orphans: files in the store no row names (what a crashed run placed before its COMMIT, and
  temporary names), removable with ``remove_orphans``;
- unsealed: night partitions still loading (a run died before sealing), sealed by ``repair``;
- with ``deep``, catalogs: per science image, the rows in the catalog tables against the count
  recorded when they were loaded (nothing lost, nothing twice), and current images whose
  catalog was never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from skyvault.db import Database
from skyvault.db import database as default_database
from skyvault.filestore import FileStore, archive_store
from skyvault.ingest.catalogs import CATALOG_OF, CATALOG_TABLES, CatalogOf, loaded_tables
from skyvault.ingest.compact import sky_table
from skyvault.ingest.partitions import partitions, seal_all
from skyvault.ingest.run import RUN_LOCK


class IngestRunning(RuntimeError):
    """Orphans cannot be told from files a running ingest is about to commit."""


@dataclass
class CheckReport:
    files: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unsealed: list[str] = field(default_factory=list)
    catalog_problems: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    sealed: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.mismatched or self.unsealed or self.catalog_problems
                    or (set(self.orphans) - set(self.removed)))

    def lines(self) -> list[str]:
        out = [f"{self.files} archived files ({self.bytes / 1e6:.1f} MB) checked"]
        for title, items in (("missing from the store", self.missing),
                             ("wrong size or checksum", self.mismatched),
                             ("orphans (in the store, not in the database)", self.orphans),
                             ("night partitions not sealed", self.unsealed),
                             ("catalog rows", self.catalog_problems),
                             ("removed orphans", self.removed),
                             ("sealed", self.sealed)):
            if items:
                out.append(f"{title}: {len(items)}")
                out += [f"  {item}" for item in items[:50]]
                if len(items) > 50:
                    out.append(f"  ... and {len(items) - 50} more")
        out.append("clean" if self.clean else "NOT clean")
        return out


def _rows_against_loads(connection: psycopg.Connection, catalog: str, of: CatalogOf,
                        loaded: dict[tuple[str, int], int]) -> list[str]:
    """Per image, the rows of one catalog table against the counts recorded at load."""
    problems: list[str] = []
    # Night partitions (loading or sealed) and the sky cells of compacted nights.
    tables = [p.qualified_name for p in partitions(connection, catalog)]
    tables.append(sky_table(catalog))
    union = " UNION ALL ".join(
        f"SELECT {of.image_key} AS image_id, {of.row_key} AS row_key FROM {t}" for t in tables)
    found = {pid: (rows, distinct) for pid, rows, distinct in connection.execute(
        f"SELECT image_id, count(*), count(DISTINCT row_key) FROM ({union}) AS s"
        " GROUP BY image_id")}
    expected = {pid: rows for (c, pid), rows in loaded.items() if c == catalog}
    for pid in sorted(set(found) | set(expected)):
        rows, distinct = found.get(pid, (0, 0))
        if rows != expected.get(pid, 0):
            problems.append(f"{catalog} {of.image_key} {pid}: {rows} rows, "
                            f"{expected.get(pid, 0)} loaded")
        elif rows != distinct:
            problems.append(f"{catalog} {of.image_key} {pid}: {rows - distinct} duplicated "
                            f"{of.row_key}s")
    return problems


def _deep_catalogs(connection: psycopg.Connection) -> list[str]:
    problems: list[str] = []
    loaded_rows = {(catalog, pid): rows for catalog, pid, rows in connection.execute(
        "SELECT catalog, pid, nrows FROM archive.catalog_loads")}
    for product, table in CATALOG_TABLES.items():
        of = CATALOG_OF[product]
        for loaded in loaded_tables(product):
            problems += _rows_against_loads(connection, loaded.name, of, loaded_rows)
        # Tables made from the catalog (light curves) were not made for images archived before
        # them: only the catalog's own table must have been loaded for every current image.
        for (pid,) in connection.execute(
                "SELECT f.image_id FROM survey.files f WHERE f.product = %s"
                " AND f.image_table = %s AND f.is_current = 1"
                " AND NOT EXISTS (SELECT 1 FROM archive.catalog_loads l"
                "   WHERE l.catalog = %s AND l.pid = f.image_id)",
                (product, of.image_table, table.name)):
            problems.append(f"{table.name} {of.image_key} {pid}: current {product} never loaded")
    return problems


def check_archive(*, database: Database | None = None, store: FileStore | None = None,
                  quick: bool = False, deep: bool = False, remove_orphans: bool = False,
                  repair: bool = False) -> CheckReport:
    handle = database or default_database()
    store = store or archive_store()
    report = CheckReport()
    with handle.admin(autocommit=True) as connection:
        if remove_orphans or repair:
            # No ingest may run meanwhile: its placed-but-uncommitted files look orphaned.
            got = connection.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
            if not got[0]:
                raise IngestRunning("an ingest is running; try again when it has finished")
        if repair:
            report.sealed = seal_all(connection)
        archived: set[str] = set()
        with connection.transaction(), connection.cursor(name="archived_files") as cursor:
            cursor.execute("SELECT path, size_bytes, sha256 FROM survey.files ORDER BY path")
            for path, size, sha256 in cursor:
                archived.add(path)
                report.files += 1
                report.bytes += size
                found = store.size(path)
                if found is None:
                    report.missing.append(path)
                elif found != size:
                    report.mismatched.append(f"{path}: {found} bytes, archived {size}")
                elif not quick and store.sha256(path) != sha256.strip():
                    report.mismatched.append(f"{path}: sha256 differs from the archived one")
        report.orphans = sorted(path for path in store.walk() if path not in archived)
        report.unsealed = [p.qualified_name for p in partitions(connection) if not p.attached]
        if deep:
            report.catalog_problems = _deep_catalogs(connection)
        if remove_orphans and report.orphans:
            still = {row[0] for row in connection.execute(
                "SELECT path FROM survey.files WHERE path = ANY(%s)", (report.orphans,))}
            for path in report.orphans:
                if path not in still:
                    store.delete(path)
                    report.removed.append(path)
    return report
