"""The ensemble step: after ingest has associated new epochs, what needs the objects' whole light
curves (ingest/README.md, "Objects and light curves").

1. Orphans: objects left without any detection (a superseded image's rows were deleted and
   its successor's joined other objects) leave the registry.
2. Relative photometry (relphot.py) of the images waiting for it, solved per filter over every
   epoch of the objects they hold, the corrections of earlier images kept fixed; written to
   science_images.relphot_corr.
3. survey.objects_released: the statistics (metrics.py, ``light-curve``) of the epochs the
   public may see, read as the anonymous requester through row-level security (the rule is
   nowhere else), for every object touched, and for every object with an epoch whose status
   changed since the last run: the release horizons (skyvault/releases/dating.py, per program
   the Julian date before which its observations are public) move with time (proprietary
   periods), with data releases whose date passes, and back when a release is withdrawn or
   postponed. The horizons of the last run are kept (``archive.released_horizons``); the
   objects detected in the images observed between them and today's, per program, are
   computed again. Each row names the programs of its epochs and each one's latest epoch, and
   its policy shows it only while they are all public: a horizon that moves back hides the
   rows it concerns at once, before they are computed again.

Steps 1-2 and the marking of step 3 are one transaction; step 3 then works through the list of
stale objects (``archive.released_stale``) in chunks, one transaction each, deleting each
chunk's entries as it commits its rows. A crash anywhere leaves the work lists as they were
before the unfinished transaction: running again finishes the job, and running it twice
changes nothing. ``refresh_all`` marks every object (a repair; nothing needs it otherwise).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg

from skyvault.access import ANONYMOUS
from skyvault.crash import crash_point
from skyvault.db import Database, session_setup_sql
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
SUMMARISED = ("computed_at", "programids", "lastobsjds")


@dataclass
class EnsembleSummary:
    images_corrected: int = 0
    images_without_correction: int = 0
    orphans_removed: int = 0
    objects_refreshed: int = 0
    objects_with_epochs_released_or_withdrawn: int = 0
    released_rows: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"ensemble: {self.images_corrected} images corrected"
                f" ({self.images_without_correction} without enough constant stars),"
                f" {self.orphans_removed} orphan objects removed, {self.objects_refreshed}"
                f" objects' released statistics ({self.released_rows} with public epochs;"
                f" {self.objects_with_epochs_released_or_withdrawn} marked by the release"
                f" horizons)"
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


def _summarised(curve: dict[str, np.ndarray]) -> tuple[list[int], list[float]]:
    """The programs of a light curve's epochs and each one's latest obsjd: what the row's
    policy compares with the release horizons (dating.py ``summary_released_sql``)."""
    programs = curve["programid"].astype(np.int64)
    ids = sorted({int(p) for p in programs})
    return ids, [float(curve["obsjd"][programs == p].max()) for p in ids]


def _released_rows(connection: psycopg.Connection, oids: list[int]) -> list[tuple]:
    """Statistics of the public epochs of these objects, read as the anonymous requester under
    the reader role (skyvault.db's session set-up, as for users' queries), so that row-level
    security applies although the connection is the owner's; then the programs and latest
    epochs they summarise."""
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
                            for v in (metrics[name] for name in METRIC_NAMES)),
                     *_summarised(curve)))
    return rows


def _refresh_released(connection: psycopg.Connection, oids: list[int],
                      summary: EnsembleSummary) -> None:
    rows = _released_rows(connection, oids)
    names = ", ".join(quote_ident(n) for n in (*IDENTITY, *METRIC_NAMES, *SUMMARISED))
    table = OBJECTS_RELEASED.qualified_name
    with connection.transaction():
        connection.execute(f"DELETE FROM {table} WHERE oid = ANY(%s)", (oids,))
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) SELECT o.oid, o.ra, o.dec, o.field,"
                    f" o.ccdid, o.qid, o.rcid, o.fid, o.filtercode,"
                    f" {', '.join('%s' for _ in METRIC_NAMES)}, now(), %s::smallint[],"
                    f" %s::double precision[]"
                    f" FROM {OBJECT_REGISTRY.qualified_name} o WHERE o.oid = %s",
                    [(*row[1:], row[0]) for row in rows])
        crash_point("ensemble:released")
        connection.execute("DELETE FROM archive.released_stale WHERE oid = ANY(%s)", (oids,))
    summary.objects_refreshed += len(oids)
    summary.released_rows += len(rows)


def _horizon_windows(connection: psycopg.Connection) -> list[tuple[int, float, float]] | None:
    """Per program whose release horizon moved since the last run: the observation times
    (Julian dates, [low, high)) whose epochs became public or hidden. None before the first
    run. Records today's horizons (the caller's transaction: with the objects it marks)."""
    rows = connection.execute(
        "SELECT p.programid, h.horizons[p.programid], r.horizons[p.programid], r.singleton"
        " FROM survey.programs p"
        " CROSS JOIN (SELECT archive.public_before_jd(now()) AS horizons) h"
        " LEFT JOIN archive.released_horizons r ON true ORDER BY p.programid").fetchall()
    connection.execute(
        "INSERT INTO archive.released_horizons (horizons, taken_at)"
        " VALUES (archive.public_before_jd(now()), now()) ON CONFLICT (singleton)"
        " DO UPDATE SET horizons = EXCLUDED.horizons, taken_at = EXCLUDED.taken_at")
    if rows and rows[0][3] is None:
        return None
    windows = []
    for programid, today, before, _ in rows:
        # NULL: a program unknown to the horizons then (added since): nothing was public.
        now_jd, then_jd = (-math.inf if v is None else float(v) for v in (today, before))
        if now_jd != then_jd:
            windows.append((programid, min(now_jd, then_jd), max(now_jd, then_jd)))
    return windows


def _objects_observed_in(connection: psycopg.Connection, programid: int, low: float,
                         high: float) -> int:
    """Marks stale the objects with an epoch of ``programid`` observed in [low, high), found
    through their images (science_images by obsjd, then their detections by pid in each
    night); returns how many it marked."""
    marked = 0
    for nid, pids in connection.execute(
            "SELECT nid, array_agg(pid) FROM survey.science_images WHERE programid = %s"
            " AND obsjd >= %s AND obsjd < %s GROUP BY nid ORDER BY nid",
            (programid, low, high)).fetchall():
        marked += connection.execute(
            "INSERT INTO archive.released_stale (oid)"
            f" SELECT DISTINCT oid FROM {PSF_SOURCES.qualified_name}"
            " WHERE nid = %s AND pid = ANY(%s) AND oid IS NOT NULL ON CONFLICT DO NOTHING",
            (nid, pids)).rowcount
    return marked


def _mark_stale(connection: psycopg.Connection, touched: list[int], refresh_all: bool,
                summary: EnsembleSummary) -> None:
    """Objects whose released statistics are to be computed again: those touched by ingest,
    and those with epochs the release horizons' moves made public or hidden (every object at
    the first run, or with ``refresh_all``)."""
    connection.execute("INSERT INTO archive.released_stale (oid) SELECT unnest(%s::bigint[])"
                       " ON CONFLICT DO NOTHING", (touched,))
    windows = _horizon_windows(connection)
    if windows is None or refresh_all:
        summary.objects_with_epochs_released_or_withdrawn += connection.execute(
            "INSERT INTO archive.released_stale (oid)"
            f" SELECT oid FROM {OBJECT_REGISTRY.qualified_name} ON CONFLICT DO NOTHING"
        ).rowcount
        return
    for programid, low, high in windows:
        summary.objects_with_epochs_released_or_withdrawn += _objects_observed_in(
            connection, programid, low, high)


def run_ensemble(database: Database, *, refresh_all: bool = False) -> EnsembleSummary:
    """The ensemble step over what ingest left waiting and what the release horizons changed
    (see the module's documentation); ``refresh_all`` recomputes the released statistics of
    every object."""
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
            _mark_stale(connection, oids, refresh_all, summary)
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
