"""The association step of ingest: an exposure's PSF detections into objects, in the transaction
that loads them (ingest/README.md, "Objects and light curves").

Per quadrant, the objects of the exposure's filter around it are read from the registry
(``survey.object_registry``, by its q3c index), the detections are associated with them by the pure
rule of skyvault/lightcurves/association.py, the new objects are written to the registry by
binary COPY, and every detection's ``oid`` is set in the COPY batch before the batch is sent.
The same rows, with their oid, make the image's light-curve points (``lightcurve_points``:
survey.lightcurves, filed under their objects). Nothing is updated afterwards: a detection is
written once, with its object.

One transaction-level advisory lock serialises association (two exposures of overlapping sky
associated at once would each create the objects the other does not see yet). It is held from
the read of the registry to the group's COMMIT: a few hundred milliseconds per exposure.

Crash-safe as the rest of the group: a crash before COMMIT leaves neither the objects nor the
detections. A manifest ingested again is skipped before this step; a reprocessed image's
detections join the objects its superseded version's detections belonged to (the same stars at
the same places), and objects left with no detection are removed by the ensemble step
(skyvault/lightcurves/ensemble.py), which ``record_superseded`` tells which objects to check.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from skyvault.crash import crash_point
from skyvault.ingest.catalogs import CatalogLoad, copy_columns
from skyvault.ingest.compact import sky_table
from skyvault.ingest.copybinary import HEADER, TRAILER, CopyColumn, RecordBatch, copy_statement
from skyvault.ingest.errors import GroupRejected, ImpossibleValue
from skyvault.ingest.partitions import night_lock_key, partitions
from skyvault.ingest.q3c import near_their_objects
from skyvault.lightcurves import association
from skyvault.schema.tables import LIGHTCURVES, OBJECT_REGISTRY, PSF_SOURCES

ASSOCIATION_LOCK = zlib.crc32(b"skyvault.ingest.objects") & 0x7FFFFFFF
REGISTRY = OBJECT_REGISTRY.qualified_name
REGISTRY_COLUMNS = (
    CopyColumn("oid", "bigint"), CopyColumn("ra", "double precision"),
    CopyColumn("dec", "double precision"), CopyColumn("field", "integer"),
    CopyColumn("ccdid", "smallint"), CopyColumn("qid", "smallint"),
    CopyColumn("rcid", "smallint"), CopyColumn("fid", "smallint"),
    CopyColumn("filtercode", "char(2)"),
)
REACH_MARGIN_ARCSEC = association.RADIUS_MAX_ARCSEC + 0.5
"""How far beyond a quadrant's detections the registry is read."""


@dataclass
class QuadrantDetections:
    """One science image's PSF catalog, with what association needs of its image."""

    pid: int
    field: int
    ccdid: int
    qid: int
    rcid: int
    fid: int
    filtercode: str
    seeing_arcsec: float
    astrometric_rms_arcsec: float
    load: CatalogLoad


@dataclass(frozen=True)
class AssociationResult:
    detections: int
    new_objects: int


def _cone(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float, float]:
    """A circle (degrees) around the detections, widened by the largest match radius."""
    r, d = np.radians(ra), np.radians(dec)
    vectors = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)
    centre = vectors.sum(axis=0)
    centre /= np.linalg.norm(centre)
    radius = float(np.degrees(np.arccos(np.clip(vectors @ centre, -1, 1)).max()))
    centre_ra = float(np.degrees(np.arctan2(centre[1], centre[0])) % 360.0)
    centre_dec = float(np.degrees(np.arcsin(np.clip(centre[2], -1, 1))))
    return centre_ra, centre_dec, radius + REACH_MARGIN_ARCSEC / 3600.0


def _objects_near(connection: psycopg.Connection, fid: int,
                  cones: list[tuple[float, float, float]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    oids: list[int] = []
    ras: list[float] = []
    decs: list[float] = []
    seen: set[int] = set()
    for ra, dec, radius in cones:
        for oid, obj_ra, obj_dec in connection.execute(
                f"SELECT oid, ra, dec FROM {REGISTRY}"
                " WHERE q3c_radial_query(ra, dec, %s, %s, %s) AND fid = %s",
                (ra, dec, radius, fid)):
            if oid not in seen:
                seen.add(oid)
                oids.append(oid)
                ras.append(obj_ra)
                decs.append(obj_dec)
    return (np.array(oids, dtype=np.int64), np.array(ras, dtype=np.float64),
            np.array(decs, dtype=np.float64))


def _register(connection: psycopg.Connection, rows: int, values: dict[str, object]) -> None:
    batch = RecordBatch(REGISTRY_COLUMNS, rows)
    for name, value in values.items():
        batch.set(name, value)  # type: ignore[arg-type]
    with connection.cursor() as cursor, \
            cursor.copy(copy_statement(REGISTRY, REGISTRY_COLUMNS)) as copy:
        copy.write(HEADER)
        copy.write(batch.payload())
        copy.write(TRAILER)


def associate_exposure(connection: psycopg.Connection,
                       quadrants: list[QuadrantDetections]) -> AssociationResult:
    """Associate an exposure's PSF detections (its quadrants, one filter) in the caller's
    transaction: the registry gains the new objects, each batch its ``oid`` column."""
    if not quadrants:
        return AssociationResult(0, 0)
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (ASSOCIATION_LOCK,))
    for empty in (q for q in quadrants if not q.load.rows):
        empty.load.batch.set("oid", np.zeros(0, dtype=np.int64))
    detections = new_objects = 0
    for fid in sorted({q.fid for q in quadrants}):
        group = [q for q in quadrants if q.fid == fid and q.load.rows]
        if not group:
            continue
        ra = [q.load.batch.values("ra") for q in group]
        dec = [q.load.batch.values("dec") for q in group]
        radius = [association.match_radius_arcsec(
            q.seeing_arcsec, q.load.batch.values("snr") if "snr" not in q.load.batch.null
            else np.full(q.load.rows, np.nan), q.astrometric_rms_arcsec) for q in group]
        image = [np.full(q.load.rows, q.pid, dtype=np.int64) for q in group]
        obj_oid, obj_ra, obj_dec = _objects_near(
            connection, fid, [_cone(r, d) for r, d in zip(ra, dec, strict=True)])
        result = association.associate(np.concatenate(ra), np.concatenate(dec),
                                       np.concatenate(image), np.concatenate(radius), fid,
                                       obj_oid, obj_ra, obj_dec)
        start = 0
        created: list[dict[str, np.ndarray]] = []
        for q, q_ra, q_dec in zip(group, ra, dec, strict=True):
            stop = start + q.load.rows
            oid, new = result.oid[start:stop], result.new[start:stop]
            q.load.batch.set("oid", oid)
            created.append({"oid": oid[new], "ra": q_ra[new], "dec": q_dec[new],
                            "field": np.full(int(new.sum()), q.field, dtype=np.int64),
                            "ccdid": np.full(int(new.sum()), q.ccdid, dtype=np.int64),
                            "qid": np.full(int(new.sum()), q.qid, dtype=np.int64),
                            "rcid": np.full(int(new.sum()), q.rcid, dtype=np.int64)})
            connection.execute(
                "INSERT INTO archive.association_log (pid, ndetections, nnew)"
                " VALUES (%s, %s, %s)", (q.pid, q.load.rows, int(new.sum())))
            connection.execute(
                "INSERT INTO archive.ensemble_pending (pid, fid) VALUES (%s, %s)", (q.pid, fid))
            start = stop
        if result.new_count:
            columns = {name: np.concatenate([c[name] for c in created]) for name in created[0]}
            _register(connection, result.new_count, {
                **columns, "fid": fid, "filtercode": group[0].filtercode.encode()})
        detections += len(result.oid)
        new_objects += result.new_count
    crash_point("associate:registered")
    return AssociationResult(detections, new_objects)


def lightcurve_points(load: CatalogLoad) -> CatalogLoad:
    """An associated PSF catalog's rows as light-curve points (survey.lightcurves), in object
    order. Every point must lie within the layout's margin of its object's pixel, which the
    cells' pruning of cones relies on; association keeps detections within that reach, and a
    batch that breaks it is refused rather than filed where cones would miss it."""
    source = load.batch
    columns = copy_columns(LIGHTCURVES)
    null = frozenset(column.name for column in columns if column.name in source.null)
    batch = RecordBatch(columns, load.rows, null=null)
    for column in columns:
        if column.name not in null:
            batch.set(column.name, source.values(column.name))
    oid = batch.values("oid")
    margin = LIGHTCURVES.sky_layout.key_margin_deg if LIGHTCURVES.sky_layout else None
    assert margin is not None
    far = ~near_their_objects(batch.values("ra"), batch.values("dec"), oid, margin)
    if far.any():
        raise GroupRejected([ImpossibleValue(
            load.path or Path(load.product_type),
            f"{int(far.sum())} detections lie farther than {margin * 3600:.2f}\" from their"
            " object's position", load.product_type)])
    order = np.argsort(oid, kind="stable")
    batch.take(order)
    return CatalogLoad(load.product_type, LIGHTCURVES, batch, load.sourceid[order], load.path)


def record_superseded(connection: psycopg.Connection, nid: int, pid: int) -> list[int]:
    """Before a superseded image's detections are deleted: the objects they belong to, which
    the ensemble step is to check (one may have lost its only detections) and which locate the
    image's light-curve points; the image is no longer waiting for the ensemble step."""
    connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)",
                       night_lock_key(PSF_SOURCES.name, nid))
    sources = [f"SELECT oid FROM {p.qualified_name} WHERE pid = %(pid)s"
               for p in partitions(connection, PSF_SOURCES.name, nid)]
    sources.append(f"SELECT oid FROM {sky_table(PSF_SOURCES.name)}"
                   " WHERE pid = %(pid)s AND nid = %(nid)s")
    oids = [row[0] for row in connection.execute(
        f"SELECT DISTINCT oid FROM ({' UNION ALL '.join(sources)}) AS s"
        " WHERE oid IS NOT NULL", {"pid": pid, "nid": nid})]
    connection.execute("INSERT INTO archive.ensemble_dirty (oid) SELECT unnest(%s::bigint[])"
                       " ON CONFLICT DO NOTHING", (oids,))
    connection.execute("DELETE FROM archive.ensemble_pending WHERE pid = %s", (pid,))
    connection.execute("DELETE FROM archive.association_log WHERE pid = %s", (pid,))
    return oids
