"""One product group into the archive, in one transaction.

Inside the transaction, in this order: the group's lock; skip if this exact manifest is in;
the programs (one survey.programs does not know rejects the group: no release rule could date
its rows); exposure rows; per product, its
processing version (unchanged products are left alone, changed ones supersede the current
version); files placed in the store (complete and synced before COMMIT, so a committed row
never names a missing file; a crash before COMMIT leaves only orphans, which the next run
adopts or ``ingest check`` removes); file rows; catalog rows by binary COPY; the manifest
record; COMMIT.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from skyvault.crash import crash_point
from skyvault.filestore import FileStore, Placement, SourceRejected
from skyvault.ingest import layout
from skyvault.ingest.catalogs import (
    CATALOG_OF,
    CATALOG_TABLES,
    REFERENCE_CATALOG_TABLES,
    CatalogLoad,
    loaded_tables,
    set_image_values,
)
from skyvault.ingest.copybinary import (
    HEADER,
    TRAILER,
    RecordBatch,
    copy_statement,
    timestamp_to_wire,
)
from skyvault.ingest.errors import (
    ArchiveInconsistent,
    ChecksumMismatch,
    DependencyMissing,
    GroupRejected,
    MissingFile,
    UnknownProgram,
)
from skyvault.ingest.objects import (
    QuadrantDetections,
    associate_exposure,
    lightcurve_points,
    record_superseded,
)
from skyvault.ingest.partitions import CATALOGS, delete_rows_of, target_for_rows
from skyvault.ingest.plan import GroupPlan, Product, parse_time
from skyvault.releases.dating import COADD_TABLE, file_obsjd, unknown_programs
from skyvault.schema.tables import table_by_name

GROUP_LOCK_CLASS = zlib.crc32(b"skyvault.ingest.group") & 0x7FFFFFFF
COPY_CHUNK = 8 << 20


@dataclass
class GroupResult:
    name: str
    status: str
    """ingested, unchanged (new manifest, no new content), skipped (this manifest is in),
    quarantined, deferred."""
    files: int = 0
    bytes: int = 0
    rows: int = 0
    new_versions: int = 0
    """Product rows written: first versions and reprocessed ones."""
    reprocessed: int = 0
    """Of those, new versions that supersede an archived product."""
    message: str = ""
    nights: set[int] = field(default_factory=set)


def copy_batches(connection: psycopg.Connection, table: str, batches: list[RecordBatch],
                 crash_midway: bool = False) -> None:
    """Send batches of one table by one binary COPY (one statement per exposure and table,
    not per quadrant), in chunks that keep memory flat on both sides."""
    if not batches:
        return
    total = sum(batch.records.nbytes for batch in batches)
    sent = 0
    crashed = not crash_midway
    with connection.cursor() as cursor, \
            cursor.copy(copy_statement(table, batches[0].columns)) as copy:
        copy.write(HEADER)
        for batch in batches:
            payload = batch.payload()
            for start in range(0, len(payload), COPY_CHUNK):
                chunk = payload[start:start + COPY_CHUNK]
                copy.write(chunk)
                sent += len(chunk)
                if not crashed and sent * 2 >= total:
                    crashed = True
                    crash_point("copy:mid")
        copy.write(TRAILER)


class _Transaction:
    def __init__(self, connection: psycopg.Connection, store: FileStore, plan: GroupPlan,
                 live: bool) -> None:
        self.connection = connection
        self.store = store
        self.plan = plan
        self.live = live
        self.placements: list[Placement] = []
        self.file_rows: list[tuple] = []
        self.result = GroupResult(plan.name, "ingested")

    # -- lookups ----------------------------------------------------------------------------

    def check_programs(self) -> None:
        programs = [e.values["programid"] for e in self.plan.exposures]
        programs += [p for product in self.plan.products for p in product.programs]
        unknown = unknown_programs(self.connection, programs)
        if unknown:
            raise GroupRejected([UnknownProgram(
                self.plan.manifest_path,
                f"programid {'/'.join(map(str, unknown))} is not in survey.programs:"
                " no release rule can date its data")])

    def current(self, table: str, id_column: str, key: dict[str, Any],
                columns: tuple[str, ...] = ()) -> tuple | None:
        where = " AND ".join(f"{name} = %s" for name in key)
        extra = "".join(f", {c}" for c in columns)
        return self.connection.execute(
            f"SELECT {id_column}, proc_version{extra} FROM survey.{table}"
            f" WHERE {where} AND is_current = 1 FOR UPDATE",
            tuple(key.values()),
        ).fetchone()

    def resolve(self, product: Product) -> dict[str, int | None]:
        resolved: dict[str, int | None] = {}
        for column, ref in product.refs.items():
            key = dict(ref.key)
            id_column = table_by_name(f"survey.{ref.table}").key
            where = " AND ".join(f"{name} = %s" for name in key)
            row = self.connection.execute(
                f"SELECT {id_column} FROM survey.{ref.table} WHERE {where} AND is_current = 1",
                tuple(key.values()),
            ).fetchone()
            if row is None and ref.required:
                raise DependencyMissing(
                    f"{product.label} needs {ref.table} "
                    + ", ".join(f"{k}={v}" for k, v in key.items()) + ", not archived yet")
            resolved[column] = row[0] if row else None
        return resolved

    # -- the steps --------------------------------------------------------------------------

    def already_ingested(self) -> bool:
        return self.connection.execute(
            "SELECT 1 FROM archive.ingested_manifests WHERE manifest_sha256 = %s",
            (self.plan.manifest_sha256,),
        ).fetchone() is not None

    def insert_exposures(self) -> None:
        for exposure in self.plan.exposures:
            values = exposure.values
            names = list(values)
            self.connection.execute(
                f"INSERT INTO survey.exposures ({', '.join(names)}) VALUES "
                f"({', '.join('%s' for _ in names)}) ON CONFLICT (expid) DO NOTHING",
                tuple(values.values()),
            )

    def product(self, product: Product) -> None:
        refs = self.resolve(product)
        required = tuple(c for c, r in product.refs.items() if r.required)
        current = self.current(product.table, product.id_column, product.key, required)
        if current is not None:
            archived = set(self.connection.execute(
                "SELECT product, sha256 FROM survey.files WHERE image_table = %s"
                " AND image_id = %s", (product.table, current[0])).fetchall())
            planned = {(f.product_type, f.sha256) for f in product.files}
            same_refs = all(current[2 + i] == refs[c] for i, c in enumerate(required))
            if archived == planned and same_refs:
                return
        where = " AND ".join(f"{name} = %s" for name in product.key)
        version = self.connection.execute(
            f"SELECT coalesce(max(proc_version), 0) + 1 FROM survey.{product.table}"
            f" WHERE {where}", tuple(product.key.values()),
        ).fetchone()[0]
        if current is not None:
            self.supersede(product, current[0])
            self.result.reprocessed += 1
        values = {**product.values, **refs, "proc_version": version, "is_current": 1}
        names = list(values)
        casts = {"footprint": "::spoly", "programids": "::smallint[]"}
        new_id = self.connection.execute(
            f"INSERT INTO survey.{product.table} ({', '.join(names)}) VALUES "
            f"({', '.join('%s' + casts.get(n, '') for n in names)}) RETURNING {product.id_column}",
            tuple(values.values()),
        ).fetchone()[0]
        programs = product.programs
        # A co-add's files are dated by their ingested_at: now(), the co-add's own.
        dated = file_obsjd(product.table, product.values)
        for planned_file in product.files:
            path = product.store_path(planned_file, version)
            self.placements.append(Placement(path, planned_file.source, planned_file.size,
                                             planned_file.sha256, planned_file.product_type))
            self.file_rows.append((
                path, planned_file.product_type, product.table, new_id,
                layout.content_type(path), planned_file.size, planned_file.sha256, version,
                programs, dated,
            ))
        self.connection.execute(
            "INSERT INTO archive.provenance (image_table, image_id, pipeline_version, inputs,"
            " processed_at, manifest_sha256, proc_version, supersedes)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (product.table, new_id, self.plan.manifest.provenance.pipeline_version,
             Jsonb(self.provenance_inputs(product)),
             parse_time(self.plan.manifest.provenance.created),
             self.plan.manifest_sha256, version, current[0] if current else None),
        )
        for load in product.catalogs:
            if product.table == COADD_TABLE:
                set_image_values(load, self.reference_values(product, new_id))
                continue
            set_image_values(load, {
                "pid": refs.get("pid", new_id), "expid": product.values["expid"],
                "nid": product.values["nid"], "field": product.values["field"],
                "rcid": product.values["rcid"], "fid": product.values["fid"],
                "filtercode": str(product.values["filtercode"]).encode(),
                "obsjd": product.values["obsjd"], "jd": product.values["obsjd"],
                "programid": product.values["programid"], "diffid": new_id,
            })
        self.result.new_versions += 1
        if product.catalogs:
            self.pending_catalogs.append((product, new_id))

    def reference_values(self, product: Product, refid: int) -> dict[str, Any]:
        """What every row of a reference's catalogs repeats: the co-add's keys and its
        ``ingested_at`` (the transaction's start, the co-add row's default), which dates them."""
        started = self.connection.execute("SELECT now()").fetchone()[0]
        return {"refid": refid, "field": product.values["field"],
                "rcid": product.values["rcid"], "fid": product.values["fid"],
                "filtercode": str(product.values["filtercode"]).encode(),
                "ingested_at": timestamp_to_wire(started)}

    def provenance_inputs(self, product: Product) -> list[dict[str, Any]]:
        provenance = self.plan.manifest.provenance
        return [*product.inputs, {
            "role": "software", "manifest": self.plan.name,
            "software": provenance.software, "parameters": provenance.parameters,
        }]

    def supersede(self, product: Product, old_id: int) -> None:
        self.connection.execute(
            f"UPDATE survey.{product.table} SET is_current = 0 WHERE {product.id_column} = %s",
            (old_id,))
        self.connection.execute(
            "UPDATE survey.files SET is_current = 0 WHERE image_table = %s AND image_id = %s",
            (product.table, old_id))
        # Catalog tables hold current detections only: the superseded catalog stays archived
        # as a file (is_current = 0), its rows leave the tables, light-curve points included.
        catalogs = [(product_type, table.name)
                    for product_type, of in CATALOG_OF.items() if of.image_table == product.table
                    for table in loaded_tables(product_type)]
        objects = record_superseded(self.connection, product.values["nid"], old_id) \
            if product.table == "science_images" else []
        for product_type, catalog in catalogs:
            layout = CATALOGS[catalog].sky_layout
            delete_rows_of(self.connection, catalog, product.values["nid"], old_id,
                           CATALOG_OF[product_type].image_key,
                           sky_keys=objects if layout and layout.key == "oid" else None)
        if catalogs:
            self.connection.execute(
                "DELETE FROM archive.catalog_loads WHERE pid = %s AND catalog = ANY(%s)",
                (old_id, [catalog for _, catalog in catalogs]))
        if product.table == COADD_TABLE:
            for table in REFERENCE_CATALOG_TABLES.values():
                self.connection.execute(
                    f"DELETE FROM {table.qualified_name} WHERE refid = %s", (old_id,))

    def place_files(self) -> None:
        paths = [placement.path for placement in self.placements]
        taken = self.connection.execute(
            "SELECT path FROM survey.files WHERE path = ANY(%s)", (paths,)).fetchall()
        if taken:
            raise ArchiveInconsistent(
                f"{self.plan.name}: store paths already archived: "
                + ", ".join(row[0] for row in taken[:5]))
        try:
            self.result.bytes = self.store.put_many(self.placements)
        except SourceRejected as rejected:
            kind = MissingFile if rejected.missing else ChecksumMismatch
            raise GroupRejected([kind(rejected.source, rejected.reason,
                                      rejected.product_type)]) from rejected
        self.result.files = len(self.placements)
        if self.file_rows:
            with self.connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO survey.files (path, product, image_table, image_id,"
                    " content_type, size_bytes, sha256, proc_version, is_current, programids,"
                    " obsjd) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, %s::smallint[],"
                    " %s)", self.file_rows)

    def associate(self) -> list[tuple[Product, int, CatalogLoad]]:
        """Every PSF detection gets its object before it is copied, and the same rows make the
        image's light-curve points (ingest/objects.py)."""
        psf = [(product, pid, load) for product, pid in self.pending_catalogs
               for load in product.catalogs if load.product_type == "psfcat"]
        associate_exposure(self.connection, [
            QuadrantDetections(
                pid, product.values["field"], product.values["ccdid"], product.values["qid"],
                product.values["rcid"], product.values["fid"], product.values["filtercode"],
                float(product.values["seeing"] or 0.0),
                float(product.values["astrom_rms"] or -1.0), load)
            for product, pid, load in psf])
        return [(product, pid, lightcurve_points(load)) for product, pid, load in psf]

    def copy_reference_catalogs(self) -> None:
        """A co-add's catalogs go straight into their tables (not filed by night)."""
        loads = [load for product, _ in self.pending_catalogs if product.table == COADD_TABLE
                 for load in product.catalogs]
        for table in REFERENCE_CATALOG_TABLES.values():
            copy_batches(self.connection, table.qualified_name,
                         [load.batch for load in loads if load.table is table])
        self.result.rows += sum(load.rows for load in loads)

    def copy_catalogs(self) -> None:
        self.copy_reference_catalogs()
        loads = [(product, pid, load) for product, pid in self.pending_catalogs
                 if product.table != COADD_TABLE for load in product.catalogs]
        loads += self.associate()
        targets: dict[tuple[str, int], list[tuple[int, CatalogLoad]]] = {}
        for product, pid, load in loads:
            key = (load.table.name, product.values["nid"])
            targets.setdefault(key, []).append((pid, load))
        for index, ((catalog, nid), batches) in enumerate(sorted(targets.items())):
            target = target_for_rows(self.connection, catalog, nid, live=self.live)
            copy_batches(self.connection, target, [load.batch for _, load in batches],
                         crash_midway=index == 0)
            with self.connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO archive.catalog_loads (catalog, pid, nid, nrows)"
                    " VALUES (%s, %s, %s, %s)",
                    [(catalog, pid, nid, load.rows) for pid, load in batches])
            # Rows read from the products; the light-curve points made from them are extra.
            self.result.rows += sum(load.rows for _, load in batches
                                    if load.table is CATALOG_TABLES[load.product_type])
            self.result.nights.add(nid)

    def record_manifest(self) -> None:
        expid = self.plan.exposures[0].values["expid"] \
            if self.plan.manifest.kind == "exposure" and self.plan.exposures else None
        self.connection.execute(
            "INSERT INTO archive.ingested_manifests (manifest_sha256, manifest_path, expid,"
            " manifest_name, kind, nfiles, nbytes, nrows, new_versions)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.plan.manifest_sha256, str(self.plan.manifest_path), expid, self.plan.name,
             self.plan.manifest.kind, self.result.files, self.result.bytes, self.result.rows,
             self.result.new_versions))
        # A group that once failed and now arrives whole resolves its quarantine entries.
        self.connection.execute(
            "UPDATE archive.quarantine SET resolved_at = now() WHERE manifest_name = %s"
            " AND resolved_at IS NULL", (self.plan.name,))

    def run(self) -> GroupResult:
        self.pending_catalogs: list[tuple[Product, int]] = []
        self.connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                                (GROUP_LOCK_CLASS, self.plan.name))
        if self.already_ingested():
            self.result.status = "skipped"
            return self.result
        self.check_programs()
        self.insert_exposures()
        for product in self.plan.products:
            self.product(product)
        crash_point("db:rows")
        self.place_files()
        self.copy_catalogs()
        self.record_manifest()
        if self.result.new_versions == 0:
            self.result.status = "unchanged"
        return self.result


def load_group(connection: psycopg.Connection, store: FileStore, plan: GroupPlan,
               *, live: bool = False) -> GroupResult:
    """Archive one planned group; raises GroupRejected (nothing committed, quarantine it) or
    DependencyMissing (nothing committed, try again later). ``connection`` is in autocommit
    mode; the group is one transaction on it."""
    with connection.transaction():
        result = _Transaction(connection, store, plan, live).run()
        crash_point("commit:before")
    crash_point("commit:after")
    return result
