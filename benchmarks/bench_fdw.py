"""A sky cell on another PostgreSQL node: cones through postgres_fdw against the same cell
held locally (what sharding the catalog by sky region costs a cone, measured with what
PostgreSQL ships; deploy/OPERATIONS.md, "Past one PostgreSQL node").

    .venv/bin/python -m benchmarks.bench_fdw [--rows 1000000] [--cones 300]

Two throwaway clusters: the *coordinator*, migrated (survey.psf_sources with its sky layout),
and a *shard* holding one cell's table. ``--rows`` sources inside one sky cell are loaded into
both; the coordinator's cell is first a local partition, then the shard's table attached as a
foreign partition of ``psf_sources_sky`` (``postgres_fdw``, ``extensions 'q3c'`` so that q3c's
functions are sent to the shard). Cones of 10" and 1' as the service reads them (app role,
row-level security, anonymous): p50/p90 of the best of three runs, rows, and whether the plan
pruned to the one cell and sent the cone to the shard.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import time

import numpy as np
import psycopg

from benchmarks.bench_scale import reader
from benchmarks.support import throwaway_cluster
from skyvault.ingest.compact import SkyCell, create_cell
from skyvault.ingest.partitions import CATALOGS
from skyvault.ingest.q3c import ang2ipix, cell_of, cell_range
from skyvault.releases.declare import declare_release
from skyvault.schema.ddl import placement_column_ddl, quote_ident

CELL_CENTRE = (120.0, 20.0)
DEPTH = 4


def _rows(count: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(5)
    ra = CELL_CENTRE[0] + rng.uniform(-2, 2, count)
    dec = CELL_CENTRE[1] + rng.uniform(-2, 2, count)
    cells = cell_of(ang2ipix(ra, dec), DEPTH)
    cell = int(np.bincount(cells).argmax())
    keep = cells == cell
    return ra[keep], dec[keep], cell


def _copy(connection: psycopg.Connection, table: str, ra: np.ndarray, dec: np.ndarray) -> None:
    order = np.argsort(ang2ipix(ra, dec))
    with connection.cursor().copy(
            f"COPY {table} (sourceid, pid, nid, ra, dec, mag, obsjd, programid, placement)"
            " FROM STDIN") as copy:
        for k, i in enumerate(order):
            copy.write_row((k, 1 + k // 10_000, 1, float(ra[i]), float(dec[i]), 18.0,
                            2457755.5, 1, 1))


def _cones(connection: psycopg.Connection, ra: np.ndarray, dec: np.ndarray, radius: float,
           count: int) -> tuple[float, float, float]:
    sql = ("SELECT sourceid, ra, dec, mag FROM survey.psf_sources"
           " WHERE q3c_join(%s, %s, ra, dec, %s)")
    rng = np.random.default_rng(9)
    picks = rng.choice(len(ra), count, replace=False)
    times, rows = [], []
    for i in picks:
        values = (float(ra[i]), float(dec[i]), radius)
        connection.execute(sql, values).fetchall()
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            found = connection.execute(sql, values).fetchall()
            best = min(best, time.perf_counter() - started)
        times.append(best)
        rows.append(len(found))
    times.sort()
    return (statistics.median(times) * 1e3, times[int(0.9 * len(times))] * 1e3,
            statistics.mean(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cones", type=int, default=300)
    arguments = parser.parse_args()
    coordinator, coordinator_base = throwaway_cluster(prefix="skyvault-bench-fdw-")
    shard, shard_base = throwaway_cluster(prefix="skyvault-bench-fdw-shard-")
    try:
        from skyvault.schema.migrate import upgrade

        upgrade(coordinator.url())
        with psycopg.connect(coordinator.url()) as owner:
            # Program 1 observed before 2020 is public: the cones read as the public.
            released = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            declare_release(owner, "FDW", released, released, [1])
        ra, dec, number = _rows(arguments.rows)
        table = CATALOGS["psf_sources"]
        cell = SkyCell(table, DEPTH, number)
        columns = ", ".join(f"{quote_ident(c.name)} {c.type.pg_type}" for c in table.columns)
        with psycopg.connect(shard.url(), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION q3c")
            connection.execute("CREATE SCHEMA survey")
            connection.execute(f"CREATE TABLE {cell.qualified_name} ({columns},"
                               f" {placement_column_ddl()})")
            _copy(connection, cell.qualified_name, ra, dec)
            connection.execute(f"CREATE INDEX ON {cell.qualified_name}"
                               " (q3c_ang2ipix(ra, dec))")
            connection.execute(f"VACUUM ANALYZE {cell.qualified_name}")
        print(f"{len(ra):,} sources in cell {number} (depth {DEPTH}), coordinator and shard;"
              " ms p50/p90 (rows)")
        with psycopg.connect(coordinator.url(), autocommit=True) as connection:
            with connection.transaction():
                create_cell(connection, cell)
                _copy(connection, cell.qualified_name, ra, dec)
            connection.execute(f"VACUUM ANALYZE {cell.qualified_name}")
        results = {}
        with reader(coordinator.url()) as connection:
            for label, radius in (('10"', 10 / 3600), ("1'", 1 / 60)):
                results[("local", label)] = _cones(connection, ra, dec, radius, arguments.cones)
        low, high = cell_range(number, DEPTH)
        with psycopg.connect(coordinator.url(), autocommit=True) as connection:
            connection.execute(f"DROP TABLE {cell.qualified_name}")
            connection.execute("CREATE EXTENSION postgres_fdw")
            connection.execute(
                "CREATE SERVER shard FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %s,"
                " port %s, dbname 'skyvault', extensions 'q3c', fetch_size '10000')"
                .replace("%s", "'{}'").format(shard.socket_dir, shard.port))
            connection.execute("CREATE USER MAPPING FOR PUBLIC SERVER shard OPTIONS"
                               " (user 'skyvault', password_required 'false')")
            connection.execute(
                f"CREATE FOREIGN TABLE {cell.qualified_name} PARTITION OF"
                f" survey.psf_sources_sky FOR VALUES FROM ({low}) TO ({high}) SERVER shard"
                f" OPTIONS (schema_name 'survey', table_name '{cell.name}')")
            connection.execute(f"ANALYZE {cell.qualified_name}")
        with reader(coordinator.url()) as connection:
            plan = "\n".join(row[0] for row in connection.execute(
                "EXPLAIN VERBOSE SELECT sourceid FROM survey.psf_sources WHERE"
                f" q3c_join({ra[0]}, {dec[0]}, ra, dec, 0.003)"))
            for label, radius in (('10"', 10 / 3600), ("1'", 1 / 60)):
                results[("through postgres_fdw", label)] = _cones(connection, ra, dec, radius,
                                                                  arguments.cones)
        for (where, label), (p50, p90, rows) in results.items():
            local = results[("local", label)][0]
            print(f"cone {label}, cell {where}: {p50:.2f}/{p90:.2f} ({rows:.1f}),"
                  f" x{p50 / local:.1f} the local cell")
        remote = [line.strip() for line in plan.splitlines() if "Remote SQL" in line]
        print("plan: foreign scan of the one cell;", remote[0] if remote else plan)
    finally:
        for cluster, base in ((coordinator, coordinator_base), (shard, shard_base)):
            cluster.stop()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
