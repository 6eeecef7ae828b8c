"""Objects and light curves: association rate, light curves by oid and by position, statistics.

    .venv/bin/python -m benchmarks.bench_lightcurves [--objects 10000000] [--exposures 3]
        [--lc-objects 100000] [--nights 1000] [--queries 200] [--keep DIR]

1. Association (ingest/objects.py) of ZTF-size exposures (64 quadrants of 0.86 deg, the
   detections of an archive of ``--objects`` objects in 470 square degrees, 21,000 per square
   degree, so about a million per exposure, 8 % of them new) against that archive: the whole
   step as ingest runs it (registry read by q3c per quadrant, matching, new objects written by
   COPY; rolled back after each exposure so every repeat sees the same archive), and the
   matching alone on arrays (the same run's baseline).
2. Light curves of ``--lc-objects`` objects with one epoch a night for ``--nights`` nights
   (100 million light-curve points by default) in survey.lightcurves, loaded as ingest loads
   nights (loading tables, sealed), read as the anonymous requester through row-level security
   as services read them (skyvault/lightcurves/access.py): by oid, by a 2" cone (objects there
   and their light curves; points there, an ADQL cone), and survey.objects by oid (statistics
   computed when asked), with a primary-key look-up of the registry as the floor of a round
   trip. Measured twice in the same run: with every night in its own partition (the baseline:
   one index probe per night), then after ``compact_all`` has filed them in the sky cells
   under their objects (one probe in one cell).
3. survey.objects_released with one row per archived object (``--objects``): a search by
   metric over the whole sky.
4. The statistics of 1,000-epoch light curves with the light-curve package against the same
   statistics in hand-written numpy.

A throwaway cluster under /tmp (the project's settings) is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import time
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.support import throwaway_cluster
from skyvault.access import ANONYMOUS
from skyvault.db import APP_ROLE, Database, DatabaseUrls
from skyvault.ingest.catalogs import catalog_load, set_image_values
from skyvault.ingest.compact import compact_all
from skyvault.ingest.copybinary import HEADER, TRAILER, RecordBatch, copy_statement
from skyvault.ingest.objects import (
    REGISTRY,
    REGISTRY_COLUMNS,
    QuadrantDetections,
    associate_exposure,
)
from skyvault.ingest.partitions import seal_all, target_for_rows
from skyvault.lightcurves import access, association
from skyvault.lightcurves.metrics import Epochs, collapse
from skyvault.releases.declare import declare_release
from skyvault.schema.objects_sql import METRIC_NAMES, metric_type
from skyvault.schema.tables import LIGHTCURVES, PUBLISHED_TABLES
from skyvault.vo.adql.catalog import catalog_from_tables
from skyvault.vo.adql.translator import translate

REGION = ((0.0, 22.0), (-10.0, 11.4))
"""470 square degrees near the equator for the association archive."""
QUADRANT_DEG = 0.86
EXPOSURE_CENTRE = (11.0, 0.7)
LC_CENTRE = (200.0, 30.0)
LC_AREA_DEG = 1.4
FIRST_NID = 3000
LC_FIRST_JD = 2455000.8
"""The light curves' first night (2009-06-18), one epoch a night after: observed before the
release that makes program 1 public (``RELEASED_THROUGH``), so the anonymous requester reads
every point, through row-level security."""
RELEASED_THROUGH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def _percentiles(times: list[float]) -> str:
    ms = np.array(times) * 1000
    return f"p50 {np.percentile(ms, 50):7.2f} ms  p90 {np.percentile(ms, 90):7.2f} ms" \
           f"  ({len(ms)} queries)"


def _backend_cpu(connection: psycopg.Connection) -> float:
    """CPU seconds the connection's server process has used (it runs on this machine)."""
    fields = Path(f"/proc/{connection.info.backend_pid}/stat").read_text().rsplit(")", 1)[1]
    user, system = fields.split()[11:13]
    return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")


def _copy(connection: psycopg.Connection, table: str, batch: RecordBatch) -> None:
    with connection.cursor() as cursor, \
            cursor.copy(copy_statement(table, batch.columns)) as copy:
        copy.write(HEADER)
        copy.write(batch.payload())
        copy.write(TRAILER)


# -- 1. association ---------------------------------------------------------------------------


def _archive_objects(rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    (ra0, ra1), (dec0, dec1) = REGION
    ra = rng.uniform(ra0, ra1, count)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(dec0)),
                                           np.sin(np.radians(dec1)), count)))
    oid = association.new_object_ids(ra, dec, 2, np.zeros(0, dtype=np.int64))
    return oid, ra, dec


def load_registry(connection: psycopg.Connection, oid: np.ndarray, ra: np.ndarray,
                  dec: np.ndarray) -> float:
    started = time.perf_counter()
    connection.execute("DROP INDEX survey.object_registry_q3c_idx")
    step = 1_000_000
    for start in range(0, len(oid), step):
        part = slice(start, start + step)
        rows = len(oid[part])
        batch = RecordBatch(REGISTRY_COLUMNS, rows)
        for name, value in {"oid": oid[part], "ra": ra[part], "dec": dec[part], "field": 1,
                            "ccdid": 1, "qid": 1, "rcid": 0, "fid": 2,
                            "filtercode": b"zr"}.items():
            batch.set(name, value)
        with connection.transaction():
            _copy(connection, REGISTRY, batch)
    connection.execute(f"CREATE INDEX object_registry_q3c_idx ON {REGISTRY}"
                       " (q3c_ang2ipix(ra, dec))")
    connection.execute(f"ANALYZE {REGISTRY}")
    return time.perf_counter() - started


def exposure_quadrants(rng: np.random.Generator, oid: np.ndarray, ra: np.ndarray,
                       dec: np.ndarray, expid: int) -> list[QuadrantDetections]:
    """The 64 quadrant catalogs of one exposure: 92 % of the archived objects in each quadrant
    seen again (0.15" errors), plus 8 % new detections."""
    from skyvault.ingest.synthetic import catalog_columns

    quadrants = []
    ra_c, dec_c = EXPOSURE_CENTRE
    for rcid in range(64):
        row, column = divmod(rcid, 8)
        q_ra = ra_c + (column - 3.5) * QUADRANT_DEG / np.cos(np.radians(dec_c))
        q_dec = dec_c + (row - 3.5) * QUADRANT_DEG
        half = QUADRANT_DEG / 2
        inside = np.flatnonzero((np.abs(dec - q_dec) < half) & (
            np.abs(ra - q_ra) * np.cos(np.radians(q_dec)) < half))
        seen = inside[rng.uniform(size=len(inside)) < 0.92]
        n_new = int(0.08 * len(inside))
        values = catalog_columns(rng, len(seen) + n_new, q_ra, q_dec, half)
        values["ra"] = np.concatenate([
            ra[seen] + rng.normal(0, 0.15 / 3600, len(seen)) / np.cos(np.radians(dec[seen])),
            values["ra"][len(seen):]])
        values["dec"] = np.concatenate([dec[seen] + rng.normal(0, 0.15 / 3600, len(seen)),
                                        values["dec"][len(seen):]])
        load = catalog_load(Path("bench"), "psfcat", values, with_objects=True)
        pid = expid * 100 + rcid
        set_image_values(load, {"pid": pid, "expid": expid, "nid": FIRST_NID, "field": 1,
                                "rcid": rcid, "fid": 2, "filtercode": b"zr",
                                "obsjd": 2461000.5, "programid": 1})
        quadrants.append(QuadrantDetections(pid, 1, rcid // 4 + 1, rcid % 4 + 1, rcid, 2,
                                            "zr", 2.0, 0.1, load))
    return quadrants


def bench_association(connection: psycopg.Connection, objects: int, exposures: int,
                      rng: np.random.Generator) -> tuple[list[str], tuple[np.ndarray, ...]]:
    oid, ra, dec = _archive_objects(rng, objects)
    loading = load_registry(connection, oid, ra, dec)
    lines = [f"registry: {objects:,} objects in {REGION} ({objects / 470:,.0f} per deg2),"
             f" loaded and indexed in {loading:.0f} s"]
    full, matching, cpu = [], [], []
    detections = 0
    for expid in range(exposures):
        quadrants = exposure_quadrants(rng, oid, ra, dec, 9000 + expid)
        detections = sum(q.load.rows for q in quadrants)
        # The matching alone, on arrays: the candidates ingest would read, given in memory.
        d_ra = np.concatenate([q.load.batch.values("ra") for q in quadrants])
        d_dec = np.concatenate([q.load.batch.values("dec") for q in quadrants])
        image = np.concatenate([np.full(q.load.rows, q.pid) for q in quadrants])
        radius = np.concatenate([association.match_radius_arcsec(
            2.0, q.load.batch.values("snr"), 0.1) for q in quadrants])
        near = (np.abs(ra - EXPOSURE_CENTRE[0]) < 4.5) & (np.abs(dec - EXPOSURE_CENTRE[1]) < 4)
        started = time.process_time()
        association.associate(d_ra, d_dec, image, radius, 2, oid[near], ra[near], dec[near])
        matching.append(time.process_time() - started)
        started, client, server = (time.perf_counter(), time.process_time(),
                                   _backend_cpu(connection))
        with connection.transaction(force_rollback=True):
            result = associate_exposure(connection, quadrants)
        full.append(time.perf_counter() - started)
        cpu.append(time.process_time() - client + _backend_cpu(connection) - server)
    # CPU time, client and server added: the step runs on one core at a time (Python, then
    # PostgreSQL), and on a shared machine wall time measures the neighbours.
    best = min(cpu)
    lines += [
        f"exposure: 64 quadrants, {detections:,} detections ({result.new_objects:,} new)",
        f"association as ingest runs it: {detections / best:>10,.0f} detections per CPU second"
        f"  ({best:.2f} CPU s per exposure, client and server; {min(full):.2f} s wall;"
        f" best of {exposures})",
        f"matching alone (arrays, baseline): {detections / min(matching):>10,.0f}"
        f" detections per CPU second  ({min(matching):.2f} s)",
        f"a ZTF night of 700 such exposures: {700 * best / 3600:.1f} h of one core"
        f" ({700 * detections / 1e6:,.0f} M detections)",
    ]
    return lines, (oid, ra, dec)


# -- 2. light curves --------------------------------------------------------------------------


def _lightcurve_archive(connection: psycopg.Connection, count: int, nights: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ra0, dec0 = LC_CENTRE
    ra = ra0 + rng.uniform(0, LC_AREA_DEG, count) / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(0, LC_AREA_DEG, count)
    oid = association.new_object_ids(ra, dec, 2, np.zeros(0, dtype=np.int64))
    batch = RecordBatch(REGISTRY_COLUMNS, count)
    for name, value in {"oid": oid, "ra": ra, "dec": dec, "field": 2, "ccdid": 1, "qid": 1,
                        "rcid": 0, "fid": 2, "filtercode": b"zr"}.items():
        batch.set(name, value)
    with connection.transaction():
        _copy(connection, REGISTRY, batch)
        connection.execute("CREATE TABLE public.bench_lc_objects (oid bigint, ra float8,"
                           " dec float8, mag real)")
        connection.execute(f"INSERT INTO public.bench_lc_objects SELECT oid, ra, dec,"
                           f" 14 + 6 * random() FROM {REGISTRY} WHERE field = 2")
    for night in range(nights):
        nid = FIRST_NID + night
        pid = nid * 10
        obsjd = LC_FIRST_JD + night
        with connection.transaction():
            connection.execute(
                "INSERT INTO survey.exposures (expid, obsjd, nid, field, fid, filtercode,"
                " telra, teldec, programid) VALUES (%s, %s, %s, 2, 2, 'zr',"
                " %s, %s, 1)", (pid, obsjd, nid, ra0, dec0))
            connection.execute(
                "INSERT INTO survey.science_images (pid, expid, obsjd, nid, field, ccdid, qid,"
                " rcid, fid, filtercode, exptime, maglimit, magzp, ra, dec, programid)"
                " VALUES (%s, %s, %s, %s, 2, 1, 1, 0, 2, 'zr', 30, 20.8, 26.2,"
                " %s, %s, 1)", (pid, pid, obsjd, nid, ra0, dec0))
            table = target_for_rows(connection, LIGHTCURVES.name, nid, live=False)
            # Points within 0.2" of their object, in object order as ingest writes them.
            connection.execute(
                f"INSERT INTO {table} (oid, sourceid, pid, expid, nid, field, rcid, fid,"
                " filtercode, ra, dec, mag, magerr, flags, snr, obsjd, programid)"
                " SELECT oid, row_number() OVER (), %s, %s, %s, 2, 0, 2, 'zr',"
                " ra + (random() - 0.5) * 0.4 / 3600 / cos(radians(dec)),"
                " dec + (random() - 0.5) * 0.4 / 3600, mag + (random() - 0.5) * 0.04, 0.02,"
                " 0, 50, %s, 1"
                " FROM public.bench_lc_objects ORDER BY oid", (pid, pid, nid, obsjd))
    seal_all(connection, connect=lambda: psycopg.connect(connection.info.dsn, autocommit=True))
    connection.execute(f"ANALYZE {REGISTRY}")
    return oid, ra, dec


def _adql_cone(ra: float, dec: float, radius: float) -> str:
    """The SQL the ADQL translator writes for a cone on the points' own positions (it adds the
    oid ranges of the cone widened by the layout's margin, which prune the sky cells)."""
    return translate(
        f"SELECT oid, obsjd, mag FROM {LIGHTCURVES.qualified_name} WHERE 1 = CONTAINS("
        f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {radius!r}))",
        catalog_from_tables(PUBLISHED_TABLES)).sql


def _time_lightcurves(database: Database, picks: np.ndarray, oid: np.ndarray, ra: np.ndarray,
                      dec: np.ndarray) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    # A first pass warms the caches, as a busy service's are; the second is measured.
    for measured in (False, True):
        for k in picks:
            with database.reading(ANONYMOUS) as reader:
                for name, run in (
                    ("floor: registry row by primary key", lambda r, k=k: r.execute(
                        f"SELECT oid FROM {REGISTRY} WHERE oid = %s",
                        (int(oid[k]),)).fetchall()),
                    ("light curve by oid",
                     lambda r, k=k: access.lightcurves(r, [int(oid[k])])),
                    ('light curves by position (objects in 2", their curves)',
                     lambda r, k=k: access.lightcurves(r, access.oids_in_cone(
                         r, float(ra[k]), float(dec[k]), 2 / 3600))),
                    ('points in a 2" cone (ADQL)', lambda r, k=k: r.execute(
                        _adql_cone(float(ra[k]), float(dec[k]), 2 / 3600)).fetchall()),
                    ("survey.objects by oid (statistics when asked)",
                     lambda r, k=k: access.objects_by_oid(r, [int(oid[k])])),
                ):
                    began = time.perf_counter()
                    answer = run(reader)
                    if measured:
                        timings.setdefault(name, []).append(time.perf_counter() - began)
                    assert answer, name
    return timings


def bench_lightcurves(connection: psycopg.Connection, database: Database, count: int,
                      nights: int, queries: int, rng: np.random.Generator) -> list[str]:
    started = time.perf_counter()
    oid, ra, dec = _lightcurve_archive(connection, count, nights, rng)
    loading = time.perf_counter() - started
    size = connection.execute(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'survey.lightcurves_nights'::regclass").fetchone()[0]
    lines = [f"light curves: {count:,} objects x {nights} nights = {count * nights:,}"
             f" points in {nights} night partitions ({size}), loaded and sealed in"
             f" {loading:.0f} s"]
    picks = rng.choice(len(oid), queries, replace=False)
    before = _time_lightcurves(database, picks, oid, ra, dec)
    started = time.perf_counter()
    compacted = compact_all(connection, catalogs=[LIGHTCURVES.name])
    cells = connection.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'survey.lightcurves_sky'::regclass"
    ).fetchone()[0]
    seconds = time.perf_counter() - started
    moved = sum(c.rows for c in compacted)
    lines.append(f"compacted: {moved:,} points into {cells} sky cells in {seconds:.0f} s"
                 f" ({moved / seconds:,.0f} points/s)")
    connection.execute(f"ANALYZE {LIGHTCURVES.qualified_name}")
    after = _time_lightcurves(database, picks, oid, ra, dec)
    lines.append(f"{'':58s} {nights} night partitions{'':17s} sky cells")
    for name in before:
        lines.append(f"{name:58s} {_percentiles(before[name])}   {_percentiles(after[name])}")
    return lines


# -- 3. released statistics over the sky ------------------------------------------------------


def bench_released(connection: psycopg.Connection, database: Database,
                   queries: int) -> list[str]:
    """Searches by metric over the whole sky, as the anonymous requester (through the rows'
    policy, which compares each row's programs and latest epochs with the release horizons)
    and as the owner (no policy: the same run's baseline). A tenth of the rows summarise
    epochs of two programs (the policy's second branch)."""
    started = time.perf_counter()
    values = ", ".join(
        "(random() * 1000)::integer" if metric_type(name) == "integer" else
        "random() * 3" for name in METRIC_NAMES)
    connection.execute("DROP INDEX survey.objects_released_variability_idx")
    connection.execute("DROP INDEX survey.objects_released_q3c_idx")
    connection.execute(
        f"INSERT INTO survey.objects_released (oid, ra, dec, field, ccdid, qid, rcid, fid,"
        f" filtercode, {', '.join(METRIC_NAMES)}, computed_at, programids, lastobsjds)"
        f" SELECT oid, ra, dec, field, ccdid, qid, rcid, fid, filtercode, {values}, now(),"
        f" CASE WHEN oid % 10 = 0 THEN '{{1,2}}'::smallint[] ELSE '{{1}}' END,"
        f" CASE WHEN oid % 10 = 0 THEN ARRAY[{LC_FIRST_JD}, {LC_FIRST_JD}]"
        f" ELSE ARRAY[{LC_FIRST_JD}] END"
        f" FROM {REGISTRY}")
    connection.execute("CREATE INDEX objects_released_q3c_idx ON survey.objects_released"
                       " (q3c_ang2ipix(ra, dec))")
    connection.execute("CREATE INDEX objects_released_variability_idx ON"
                       " survey.objects_released (fid, vonneumannratio)")
    connection.execute("ANALYZE survey.objects_released")
    rows = connection.execute("SELECT count(*) FROM survey.objects_released").fetchone()[0]
    loading = time.perf_counter() - started
    searches = {
        "most variable by von Neumann ratio (indexed)":
            "SELECT oid, ra, dec, vonneumannratio FROM survey.objects_released WHERE fid = 2"
            " AND vonneumannratio < %s ORDER BY vonneumannratio LIMIT 100",
        "count by Stetson J and epochs (whole table)":
            "SELECT count(*) FROM survey.objects_released WHERE stetsonj > 2.9"
            " AND ngoodobs >= %s",
    }
    lines = [f"objects_released: {rows:,} rows written and indexed in {loading:.0f} s"]
    for name, sql in searches.items():
        answers = {}
        for reader in ("anonymous", "owner (no policy)"):
            timings, answers[reader] = [], []
            with database.reading(ANONYMOUS) as anonymous:
                # Statements alone, in one transaction each way: the same round trips.
                session = anonymous if reader == "anonymous" else connection
                for k in range(queries):
                    parameter = 0.01 + 0.001 * k if "von" in name else 30 + k % 10
                    began = time.perf_counter()
                    answers[reader].append(session.execute(sql, (parameter,)).fetchall())
                    timings.append(time.perf_counter() - began)
            lines.append(f"{name + ', ' + reader:70s} {_percentiles(timings)}")
        assert answers["anonymous"] == answers["owner (no policy)"], \
            "the policy hid rows that are all public"
    return lines


# -- 4. the statistics ------------------------------------------------------------------------


def _numpy_statistics(t: np.ndarray, m: np.ndarray, e: np.ndarray) -> list[float]:
    n = len(m)
    weight = 1 / e ** 2
    wmean = np.sum(weight * m) / np.sum(weight)
    mean, sd = m.mean(), np.std(m, ddof=1)
    median = np.median(m)
    chi = (m - wmean) / e
    return [mean, wmean, median, sd, np.median(np.abs(m - median)),
            np.sum(chi ** 2) / (n - 1),
            n / ((n - 1) * (n - 2)) * np.sum((m - mean) ** 3) / sd ** 3,
            n * (n + 1) / ((n - 1) * (n - 2) * (n - 3)) * np.sum((m - mean) ** 4) / sd ** 4
            - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)),
            np.sum(np.abs(chi)) / np.sqrt(n * np.sum(chi ** 2)),
            np.sum(np.diff(m) ** 2) / (n - 1) / sd ** 2]


def bench_statistics(rng: np.random.Generator, curves: int = 2000,
                     epochs: int = 1000) -> list[str]:
    data = [(np.sort(rng.uniform(0, 2000, epochs)), rng.normal(18, 0.05, epochs),
             np.full(epochs, 0.02)) for _ in range(curves)]
    started = time.perf_counter()
    for t, m, e in data:
        collapse(Epochs(t, m, e, np.ones(epochs, dtype=bool), np.zeros(epochs),
                        np.zeros(epochs)))
    package = (time.perf_counter() - started) / curves
    started = time.perf_counter()
    for t, m, e in data:
        _numpy_statistics(t, m, e)
    numpy = (time.perf_counter() - started) / curves
    return [f"statistics of a {epochs}-epoch light curve: collapse() (light-curve + numpy,"
            f" all {len(METRIC_NAMES)} columns) {package * 1e6:,.0f} us;"
            f" the package's ten in hand-written numpy {numpy * 1e6:,.0f} us"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=10_000_000)
    parser.add_argument("--exposures", type=int, default=3)
    parser.add_argument("--lc-objects", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="keep the cluster in this folder")
    args = parser.parse_args()
    from skyvault.schema.migrate import upgrade

    cluster, base = throwaway_cluster(args.keep, prefix="bench-lightcurves-")
    dsn = cluster.url()
    upgrade(dsn)
    with psycopg.connect(dsn) as connection:
        declare_release(connection, "BENCH", RELEASED_THROUGH, RELEASED_THROUGH, [1])
    database = Database(DatabaseUrls(dsn, cluster.url(user=APP_ROLE)))
    rng = np.random.default_rng(16)
    try:
        for line in bench_statistics(rng):
            print(line, flush=True)
        with psycopg.connect(dsn, autocommit=True) as connection:
            lines, _ = bench_association(connection, args.objects, args.exposures, rng)
            for line in lines:
                print(line, flush=True)
            for line in bench_released(connection, database, args.queries):
                print(line, flush=True)
            for line in bench_lightcurves(connection, database, args.lc_objects, args.nights,
                                          args.queries, rng):
                print(line, flush=True)
    finally:
        database.close()
        if args.keep is None:
            cluster.destroy()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
