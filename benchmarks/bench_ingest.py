"""Catalog load rate of a night with the q3c index in place, against plain COPY.

    .venv/bin/python -m benchmarks.bench_ingest [--catalog psf_sources|candidates]
        [--exposures 200] [--sources 700] [--repeat 2] [--cluster] [--end-to-end] [--dsn URL]

A night of ``exposures`` x 64 readout quadrants x ``sources`` catalog rows (PSF-catalog rows, or
with ``--catalog candidates`` difference-image candidates with ZTF's alert-candidate columns;
realistic values: positions spread over each quadrant of a 7-degree field, magnitudes, fluxes,
flags) is laid out
in memory by ingest's own code (skyvault.ingest.catalogs: checked, sorted by q3c pixel, binary
COPY records), then loaded four ways, one transaction per exposure as ingest does:

1. baseline: binary COPY into a plain table with no index at all;
2. row by row: into an attached night partition, q3c and pid indexes kept up to date per row;
3. ingest: into the night's loading table, then ``seal`` (bulk index builds, CLUSTER ON mark,
   ATTACH, ANALYZE), the time of the whole;
4. with ``--cluster``: the same, the seal also rewriting the table in q3c order.

All four end with the same rows and the same indexes (except the baseline, which has none).
Rates are rows over wall time, with the ratio to the baseline of the same run. ``--end-to-end``
also ingests a folder of real FITS products (synthetic night) through ``ingest_paths``, file
placement and checks included. A throwaway PostgreSQL cluster (the project's tuned settings)
is started under /tmp unless --dsn names a migrated database.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.support import throwaway_cluster
from skyvault.ingest.catalogs import catalog_load, set_image_values, source_columns
from skyvault.ingest.copybinary import RecordBatch
from skyvault.ingest.load import copy_batches
from skyvault.ingest.partitions import partitions, seal, target_for_rows
from skyvault.ingest.synthetic import candidate_columns, catalog_columns

NID = 3610
QUADRANTS = 64
QUADRANT_DEG = 0.86  # a ZTF readout quadrant is about 0.86 deg on a side


PRODUCT = {"psf_sources": "psfcat", "candidates": "diffcat"}


def night_batches(exposures: int, sources: int,
                  catalog: str = "psf_sources") -> list[list[RecordBatch]]:
    """Per exposure, its 64 quadrant catalogs as COPY-ready batches with their image keys."""
    rng = np.random.default_rng(20261121)
    night = []
    pid = 0
    for expid in range(exposures):
        ra0, dec0 = rng.uniform(0, 360), rng.uniform(-25, 85)
        batches = []
        for rcid in range(QUADRANTS):
            row, column = divmod(rcid, 8)
            ra = ra0 + (column - 3.5) * QUADRANT_DEG / np.cos(np.radians(dec0))
            dec = float(np.clip(dec0 + (row - 3.5) * QUADRANT_DEG, -89, 89))
            columns = candidate_columns if catalog == "candidates" else catalog_columns
            written = columns(rng, sources, ra % 360, dec, QUADRANT_DEG / 2)
            # As the file's columns reach the table (the diffcat's x is the table's xpos).
            values = {name: written[source] for name, source in source_columns(
                PRODUCT[catalog], {name: name for name in written}).items()}
            if catalog == "candidates":
                values["rb_version"] = np.array(b"rb-hgb-000000000000")
            load = catalog_load(Path("bench"), PRODUCT[catalog], values)
            pid += 1
            set_image_values(load, {
                "pid": pid, "expid": expid, "nid": NID, "field": 500 + expid, "rcid": rcid,
                "fid": 2, "filtercode": b"zr", "obsjd": 2461000.5 + expid * 4e-4,
                "jd": 2461000.5 + expid * 4e-4, "diffid": pid,
                "programid": 1 + expid % 3})
            batches.append(load.batch)
        night.append(batches)
    return night


def _load(connection: psycopg.Connection, night: list[list[RecordBatch]],
          target: str | None, catalog: str) -> float:
    """One transaction per exposure; ``target`` None means ingest's own choice of table."""
    started = time.perf_counter()
    for batches in night:
        with connection.transaction():
            table = target or target_for_rows(connection, catalog, NID, live=False)
            copy_batches(connection, table, batches)
    return time.perf_counter() - started


def _reset(connection: psycopg.Connection, catalog: str) -> None:
    connection.execute("DROP TABLE IF EXISTS public.bench_plain")
    for partition in partitions(connection, catalog, NID):
        connection.execute(f"DROP TABLE {partition.qualified_name}")
    connection.execute("CHECKPOINT")


BASELINE = "baseline: COPY, no index"
ROW_BY_ROW = "row by row: COPY into indexed partition"
INGEST = "ingest: loading table + seal"


def _baseline(connection: psycopg.Connection, night: list[list[RecordBatch]],
              catalog: str) -> float:
    _reset(connection, catalog)
    connection.execute(f"CREATE TABLE public.bench_plain (LIKE survey.{catalog}"
                       " INCLUDING DEFAULTS)")
    return _load(connection, night, "public.bench_plain", catalog)


def _row_by_row(connection: psycopg.Connection, night: list[list[RecordBatch]],
                catalog: str) -> float:
    _reset(connection, catalog)
    connection.execute(f"CREATE TABLE survey.{catalog}_n{NID} PARTITION OF"
                       f" survey.{catalog}_nights FOR VALUES FROM ({NID}) TO ({NID + 1})")
    return _load(connection, night, f"survey.{catalog}_n{NID}", catalog)


def _ingest(connection: psycopg.Connection, night: list[list[RecordBatch]], rows: int,
            clustered: bool, notes: list[str], catalog: str) -> float:
    _reset(connection, catalog)
    copying = _load(connection, night, None, catalog)
    started = time.perf_counter()
    steps: dict[str, float] = {}
    seal(connection, catalog, NID, cluster=clustered, timings=steps,
         connect=lambda: psycopg.connect(connection.info.dsn, autocommit=True))
    sealing = time.perf_counter() - started
    count = connection.execute(f"SELECT count(*) FROM survey.{catalog}").fetchone()[0]
    assert count == rows, (count, rows)
    notes.append(f"  ({INGEST}{' --cluster' if clustered else ''}: COPY {rows / copying:,.0f}"
                 f" rows/s, seal {sealing:.1f} s: "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()) + ")")
    return copying + sealing


def bench_catalogs(dsn: str, exposures: int, sources: int, cluster: bool,
                   repeat: int, catalog: str = "psf_sources") -> list[str]:
    """Baseline and ingest alternate ``repeat`` times (best of each kept: on a shared machine
    the best time is the one least disturbed); row by row runs once."""
    night = night_batches(exposures, sources, catalog)
    rows = sum(batch.rows for batches in night for batch in batches)
    lines = [f"night: {exposures} exposures x {QUADRANTS} quadrants x {sources} sources = "
             f"{rows:,} {catalog} rows; best of {repeat}"]
    times: dict[str, list[float]] = {}
    with psycopg.connect(dsn, autocommit=True) as connection:
        for _ in range(repeat):
            times.setdefault(BASELINE, []).append(_baseline(connection, night, catalog))
            times.setdefault(INGEST, []).append(
                _ingest(connection, night, rows, False, lines, catalog))
        times[ROW_BY_ROW] = [_row_by_row(connection, night, catalog)]
        if cluster:
            times[INGEST + " --cluster"] = [
                _ingest(connection, night, rows, True, lines, catalog)]
        _reset(connection, catalog)
    baseline = min(times[BASELINE])
    for name, measured in times.items():
        seconds = min(measured)
        lines.append(f"{name:45s} {rows / seconds:>12,.0f} rows/s  {seconds:7.1f} s"
                     f"  x{baseline / seconds:.2f} of baseline"
                     + (f"  (all: {', '.join(f'{t:.1f}' for t in measured)} s)"
                        if len(measured) > 1 else ""))
    return lines


def bench_end_to_end(dsn: str, base: Path) -> list[str]:
    from skyvault.db import Database, DatabaseUrls
    from skyvault.ingest import LocalFileStore, ingest_paths
    from skyvault.ingest.synthetic import NightSpec, write_night

    spec = NightSpec(nightdate="2026-11-12", exposures=8, ccds=(1, 2, 3, 4),
                     quadrants=(1, 2, 3, 4), sources=2000, size=64)
    night = write_night(base / "products", spec)
    summary = ingest_paths([night.root], database=Database(DatabaseUrls(dsn, dsn)),
                           store=LocalFileStore(base / "store"),
                           quarantine_root=base / "quarantine")
    return [f"end to end (FITS products, {summary.files} files, checks, placement, COPY, seal):"
            f" {summary.rows:,} rows in {summary.seconds:.1f} s ="
            f" {summary.rows_per_second:,.0f} rows/s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", choices=sorted(PRODUCT), default="psf_sources")
    parser.add_argument("--exposures", type=int, default=200)
    parser.add_argument("--sources", type=int, default=700)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--dsn")
    args = parser.parse_args()
    cluster = base = None
    dsn = args.dsn
    if dsn is None:
        from skyvault.schema.migrate import upgrade

        cluster, base = throwaway_cluster(prefix="bench-ingest-")
        dsn = cluster.url()
        upgrade(dsn)
    try:
        for line in bench_catalogs(dsn, args.exposures, args.sources, args.cluster,
                                  args.repeat, args.catalog):
            print(line, flush=True)
        if args.end_to_end:
            work = Path(tempfile.mkdtemp(prefix="bench-ingest-files-", dir="/tmp"))
            try:
                for line in bench_end_to_end(dsn, work):
                    print(line, flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if cluster is not None:
            cluster.destroy()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
