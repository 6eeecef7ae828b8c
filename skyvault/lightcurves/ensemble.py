"""The ensemble step: after ingest has associated new epochs, what needs the objects' whole light
curves (ingest/README.md, "Objects and light curves").

1. Orphans: objects left without any detection (a superseded image's rows were deleted and
   its successor's joined other objects) leave the registry.
2. Relative photometry (relphot.py) of the images waiting for it, solved per filter over every
   epoch of the objects they hold, the corrections of earlier images kept fixed; written to
   science_images.relphot_corr.
3. survey.objects_released: the statistics (metrics.py, ``light-curve``) of the epochs the
   public may see, read as the anonymous requester through row-level security (the rule is
   nowhere else), for every object touched.

Steps 1-2 are one transaction; step 3 works through a list of stale objects
(``archive.released_stale``) in chunks, one transaction each, deleting each chunk's entries
as it commits its rows. A crash anywhere leaves the work lists as they were before the
unfinished transaction: running again finishes the job, and running it twice changes nothing.
Declaring a data release changes which epochs are public: ``refresh_all`` marks every object.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg

from skyvault.access import ANONYMOUS
from skyvault.db import Database, session_setup_sql
from skyvault.ingest.crash import crash_point
from skyvault.ingest.partitions import partitions
from skyvault.lightcurves import relphot
from skyvault.lightcurves.access import good_epochs, lightcurve_arrays
from skyvault.lightcurves.metrics import Epochs, collapse
from skyvault.schema.ddl import quote_ident
from skyvault.schema.objects_sql import GOOD_FLAGS_MASK, METRIC_NAMES
from skyvault.schema.tables import LIGHTCURVES, OBJECT_REGISTRY, OBJECTS_RELEASED, PSF_SOURCES

ENSEMBLE_LOCK = zlib.crc32(b"skyvault.lightcurves.ensemble") & 0x7FFFFFFF
CHUNK = 20_000
IDENTITY = ("oid", "ra", "dec", "field", "ccdid", "qid", "rcid", "fid", "filtercode")


@dataclass
class EnsembleSummary:
    images_corrected: int = 0
    images_without_correction: int = 0
    orphans_removed: int = 0
    objects_refreshed: int = 0
    released_rows: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"ensemble: {self.images_corrected} images corrected"
                f" ({self.images_without_correction} without enough constant stars),"
                f" {self.orphans_removed} orphan objects removed, {self.objects_refreshed}"
                f" objects' released statistics ({self.released_rows} with public epochs)"
                f" in {self.seconds:.1f} s")


def _detections_sql(where: str) -> str:
    return f"""
SELECT d.oid, d.pid, d.mag, d.magerr, d.flags, i.relphot_corr, i.fid,
       i.field::bigint * 64 + i.rcid
  FROM {OBJECT_REGISTRY.qualified_name} o
  JOIN LATERAL (SELECT oid, pid, mag, magerr, flags FROM {LIGHTCURVES.qualified_name} s
                 WHERE s.oid = o.oid OFFSET 0) d ON true
  JOIN survey.science_images i ON i.pid = d.pid
 WHERE {where}"""


def _touched_objects(connection: psycopg.Connection, pids: list[int]) -> list[int]:
    rows = connection.execute(
        f"SELECT DISTINCT oid FROM {PSF_SOURCES.qualified_name} WHERE pid = ANY(%s)"
        " AND oid IS NOT NULL"
        " UNION SELECT oid FROM archive.ensemble_dirty", (pids,)).fetchall()
    return [row[0] for row in rows]


def _sealed(connection: psycopg.Connection, pending: list[tuple[int, int]]) -> list[int]:
    """The pending images whose night's detections are queryable: a night still loading
    (ingest/partitions.py) waits for its seal."""
    loading = {p.nid for p in partitions(connection, LIGHTCURVES.name) if not p.attached}
    return [pid for pid, nid in pending if nid not in loading]


def _remove_orphans(connection: psycopg.Connection, oids: list[int]) -> int:
    return connection.execute(f"""
DELETE FROM {OBJECT_REGISTRY.qualified_name} o WHERE o.oid = ANY(%s) AND NOT EXISTS (
    SELECT FROM {LIGHTCURVES.qualified_name} s WHERE s.oid = o.oid)""",
                              (oids,)).rowcount


def _relative_photometry(connection: psycopg.Connection, pending: set[int],
                         oids: list[int], summary: EnsembleSummary) -> None:
    rows = connection.execute(_detections_sql("o.oid = ANY(%s)"), (oids,)).fetchall()
    if not rows:
        return
    oid, pid, mag, magerr, flags, corr, fid, series = (
        np.array(column, dtype=object) for column in zip(*rows, strict=True))
    mag = mag.astype(float)
    magerr = magerr.astype(float)
    usable = good_epochs(flags.astype(np.int64), mag, magerr)
    images, image_index = np.unique(pid.astype(np.int64), return_inverse=True)
    _, object_index = np.unique(oid.astype(np.int64), return_inverse=True)
    known = np.array([np.nan if c is None else float(c) for c in corr])
    fixed = np.full(len(images), np.nan)
    fixed[image_index] = known
    quadrant = np.zeros(len(images), dtype=np.int64)
    quadrant[image_index] = series.astype(np.int64)
    solving = np.isin(images, list(pending))
    # Earlier images without a correction (too few stars) stay as they are: zero.
    fixed = np.where(solving, np.nan, np.nan_to_num(fixed, nan=0.0))
    updates = []
    for band in np.unique(fid.astype(np.int64)):
        mine = fid.astype(np.int64) == band
        used = np.unique(image_index[mine])
        remap = np.full(len(images), -1)
        remap[used] = np.arange(len(used))
        result = relphot.solve(remap[image_index[mine]], object_index[mine], mag[mine],
                               magerr[mine], usable[mine], fixed[used], quadrant[used])
        for k, image in enumerate(images[used]):
            if int(image) in pending:
                value, error = result.value[k], result.error[k]
                known_value = bool(np.isfinite(value))
                updates.append((float(value) if known_value else None,
                                float(error) if known_value and np.isfinite(error) else None,
                                int(result.nstars[k]), int(image)))
                summary.images_corrected += known_value
                summary.images_without_correction += not known_value
    with connection.cursor() as cursor:
        cursor.executemany("UPDATE survey.science_images SET relphot_corr = %s,"
                           " relphot_corr_err = %s, relphot_nstars = %s WHERE pid = %s",
                           updates)


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _released_rows(connection: psycopg.Connection, oids: list[int]) -> list[tuple]:
    """Statistics of the public epochs of these objects, read as the anonymous requester under
    the reader role (skyvault.db's session set-up, as for users' queries), so that row-level
    security applies although the connection is the owner's."""
    with connection.transaction():
        connection.execute(session_setup_sql(ANONYMOUS, user_query=True,
                                             statement_timeout_ms=None, base_url=None))
        curves = lightcurve_arrays(connection, oids)
    rows = []
    for oid, curve in curves.items():
        epochs = Epochs(curve["mjd"], curve["mag"], curve["magerr"],
                        good_epochs(curve["catflags"], curve["mag"], curve["magerr"]),
                        curve["ra"], curve["dec"])
        metrics = collapse(epochs)
        rows.append((oid, *(None if isinstance(v, float) and not np.isfinite(v) else v
                            for v in (metrics[name] for name in METRIC_NAMES))))
    return rows


def _refresh_released(connection: psycopg.Connection, oids: list[int],
                      summary: EnsembleSummary) -> None:
    rows = _released_rows(connection, oids)
    names = ", ".join(quote_ident(n) for n in (*IDENTITY, *METRIC_NAMES, "computed_at"))
    table = OBJECTS_RELEASED.qualified_name
    with connection.transaction():
        connection.execute(f"DELETE FROM {table} WHERE oid = ANY(%s)", (oids,))
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) SELECT o.oid, o.ra, o.dec, o.field,"
                    f" o.ccdid, o.qid, o.rcid, o.fid, o.filtercode,"
                    f" {', '.join('%s' for _ in METRIC_NAMES)}, now()"
                    f" FROM {OBJECT_REGISTRY.qualified_name} o WHERE o.oid = %s",
                    [(*row[1:], row[0]) for row in rows])
        crash_point("ensemble:released")
        connection.execute("DELETE FROM archive.released_stale WHERE oid = ANY(%s)", (oids,))
    summary.objects_refreshed += len(oids)
    summary.released_rows += len(rows)


def run_ensemble(database: Database, *, refresh_all: bool = False) -> EnsembleSummary:
    """The ensemble step over what ingest left waiting (see the module's documentation);
    ``refresh_all`` recomputes the released statistics of every object (after a release)."""
    started = time.perf_counter()
    summary = EnsembleSummary()
    with database.admin(autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (ENSEMBLE_LOCK,))
        with connection.transaction():
            pending = _sealed(connection, connection.execute(
                "SELECT p.pid, i.nid FROM archive.ensemble_pending p"
                " JOIN survey.science_images i USING (pid) ORDER BY p.pid FOR UPDATE OF p"
            ).fetchall())
            oids = _touched_objects(connection, pending)
            summary.orphans_removed = _remove_orphans(connection, oids)
            _relative_photometry(connection, set(pending), oids, summary)
            stale = f"SELECT oid FROM {OBJECT_REGISTRY.qualified_name}" if refresh_all else \
                "SELECT unnest(%s::bigint[])"
            connection.execute(f"INSERT INTO archive.released_stale (oid) {stale}"
                               " ON CONFLICT DO NOTHING",
                               () if refresh_all else (oids,))
            connection.execute("DELETE FROM archive.ensemble_pending WHERE pid = ANY(%s)",
                               (pending,))
            connection.execute("DELETE FROM archive.ensemble_dirty WHERE oid = ANY(%s)",
                               (oids,))
            crash_point("ensemble:relphot")
        stale_oids = [row[0] for row in connection.execute(
            "SELECT oid FROM archive.released_stale ORDER BY oid")]
        for chunk in _chunks(stale_oids, CHUNK):
            _refresh_released(connection, chunk, summary)
    summary.seconds = time.perf_counter() - started
    return summary


__all__ = ["GOOD_FLAGS_MASK", "EnsembleSummary", "run_ensemble"]
