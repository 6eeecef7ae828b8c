"""Catalog layouts for cone searches, on scratch tables holding the same rows: what chose the
sky layout (ingest/README.md).

    .venv/bin/python -m benchmarks.bench_layouts [--rows 2000000] [--cones 300]

The same ``--rows`` positions (uniform over RA 100-160, Dec 0-35; each row a night among 1,500)
laid out as:

- ``one``: one table, q3c index, rows in q3c order (the ideal for cones);
- ``nights N``: partitioned by night into N partitions (today's layout; N = 1, 30, 300, 1500);
- ``sky dD``: range-partitioned on ``q3c_ang2ipix(ra, dec)`` into the populated q3c cells of
  depth D (2, 3, 4), rows in q3c order;
- ``placement k``: the sky layout as built: LIST (placement) over nights (the k newest, one
  partition each) and sky cells of depth 3 (everything older);
- ``two-level``: sky cells of depth 3, each partitioned by time into 4 epochs.

Cones of 10", 1' and 30' at random positions: each run on every layout in turn, once to warm
and then three times, the best kept; p50/p90 over the cones, rows returned. SQL as the cone
search writes it (``q3c_join``), as the owner (no row-level security: the layouts alone).
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import time

import numpy as np
import psycopg

from benchmarks.support import throwaway_cluster
from skyvault.ingest.q3c import ang2ipix, cell_of, cell_range

COLUMNS = ("id bigint, ra float8, dec float8, nid int, mag real, programid smallint,"
           " release_date timestamptz, placement smallint NOT NULL DEFAULT 0")
NIGHTS = 1500
RADII = {'10"': 10 / 3600, "1'": 1 / 60, "30'": 0.5}
RA_RANGE, DEC_RANGE = (100.0, 160.0), (0.0, 35.0)


class Rows:
    def __init__(self, count: int) -> None:
        rng = np.random.default_rng(1)
        self.ra = rng.uniform(*RA_RANGE, count)
        sin_dec = rng.uniform(*np.sin(np.radians(DEC_RANGE)), count)
        self.dec = np.degrees(np.arcsin(sin_dec))
        self.nid = rng.integers(0, NIGHTS, count)
        self.ipix = ang2ipix(self.ra, self.dec)
        self.order = np.argsort(self.ipix, kind="stable")

    def copy(self, connection: psycopg.Connection, table: str, selected: np.ndarray,
             placement: int = 0) -> None:
        text = io.StringIO()
        for i in selected:
            text.write(f"{i}\t{float(self.ra[i])!r}\t{float(self.dec[i])!r}\t{self.nid[i]}\t17.5\t1\t"
                       f"-infinity\t{placement}\n")
        with connection.cursor().copy(
                f"COPY {table} (id, ra, dec, nid, mag, programid, release_date, placement)"
                " FROM STDIN") as copy:
            copy.write(text.getvalue())

    def cells(self, depth: int) -> list[int]:
        return sorted(set(cell_of(self.ipix, depth).tolist()))


def _sky_cells(connection: psycopg.Connection, parent: str, rows: Rows, depth: int,
               sub: str = "") -> list[str]:
    names = []
    for cell in rows.cells(depth):
        low, high = cell_range(cell, depth)
        name = f"{parent}_c{cell}"
        connection.execute(f"CREATE TABLE {name} PARTITION OF {parent}"
                           f" FOR VALUES FROM ({low}) TO ({high}){sub}")
        names.append(name)
    return names


def build(connection: psycopg.Connection, name: str, kind: str, size: int,
          rows: Rows) -> None:
    connection.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    everything = rows.order
    if kind == "one":
        connection.execute(f"CREATE TABLE {name} ({COLUMNS})")
        rows.copy(connection, name, everything)
    elif kind == "nights":
        connection.execute(f"CREATE TABLE {name} ({COLUMNS}) PARTITION BY RANGE (nid)")
        step = NIGHTS // size
        for k in range(size):
            high = (k + 1) * step if k < size - 1 else NIGHTS
            connection.execute(f"CREATE TABLE {name}_{k} PARTITION OF {name}"
                               f" FOR VALUES FROM ({k * step}) TO ({high})")
        rows.copy(connection, name, everything)
    elif kind == "sky":
        connection.execute(f"CREATE TABLE {name} ({COLUMNS})"
                           " PARTITION BY RANGE (q3c_ang2ipix(ra, dec))")
        _sky_cells(connection, name, rows, size)
        rows.copy(connection, name, everything)
    elif kind == "placement":
        connection.execute(f"CREATE TABLE {name} ({COLUMNS}) PARTITION BY LIST (placement)")
        connection.execute(f"CREATE TABLE {name}_nights PARTITION OF {name} FOR VALUES IN (0)"
                           " PARTITION BY RANGE (nid)")
        connection.execute(f"CREATE TABLE {name}_sky PARTITION OF {name} FOR VALUES IN (1)"
                           " PARTITION BY RANGE (q3c_ang2ipix(ra, dec))")
        _sky_cells(connection, f"{name}_sky", rows, 3)
        cut = NIGHTS - size
        for nid in range(cut, NIGHTS):
            connection.execute(f"CREATE TABLE {name}_n{nid} PARTITION OF {name}_nights"
                               f" FOR VALUES FROM ({nid}) TO ({nid + 1})")
        rows.copy(connection, name, everything[rows.nid[everything] < cut], placement=1)
        rows.copy(connection, name, everything[rows.nid[everything] >= cut], placement=0)
    elif kind == "two-level":
        connection.execute(f"CREATE TABLE {name} ({COLUMNS})"
                           " PARTITION BY RANGE (q3c_ang2ipix(ra, dec))")
        step = NIGHTS // size
        for cell in _sky_cells(connection, name, rows, 3, " PARTITION BY RANGE (nid)"):
            for epoch in range(size):
                connection.execute(f"CREATE TABLE {cell}_e{epoch} PARTITION OF {cell}"
                                   f" FOR VALUES FROM ({epoch * step}) TO ({(epoch + 1) * step})")
        rows.copy(connection, name, everything)
    connection.execute(f"CREATE INDEX ON {name} (q3c_ang2ipix(ra, dec))")
    connection.execute(f"VACUUM ANALYZE {name}")


LAYOUTS = [("one", "one", 1), ("nights_1", "nights", 1), ("nights_30", "nights", 30),
           ("nights_300", "nights", 300), ("nights_1500", "nights", 1500),
           ("sky_d2", "sky", 2), ("sky_d3", "sky", 3), ("sky_d4", "sky", 4),
           ("placement_0", "placement", 0), ("placement_1", "placement", 1),
           ("placement_3", "placement", 3), ("two_level_4", "two-level", 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cones", type=int, default=300)
    arguments = parser.parse_args()
    cluster, base = throwaway_cluster(prefix="skyvault-bench-layouts-")
    try:
        rows = Rows(arguments.rows)
        with psycopg.connect(cluster.url(), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION q3c")
            for name, kind, size in LAYOUTS:
                build(connection, name, kind, size, rows)
            rng = np.random.default_rng(7)
            centres = list(zip(rng.uniform(RA_RANGE[0] + 1, RA_RANGE[1] - 1, arguments.cones),
                               rng.uniform(DEC_RANGE[0] + 1, DEC_RANGE[1] - 1, arguments.cones),
                               strict=True))
            print(f"{arguments.rows:,} rows; ms p50/p90 of the best of 3 runs (rows per cone)")
            print("layout | " + " | ".join(f"cone {label}" for label in RADII))
            figures: dict[str, list[str]] = {name: [] for name, _, _ in LAYOUTS}
            for radius in RADII.values():
                times: dict[str, list[float]] = {name: [] for name in figures}
                found: dict[str, int] = {name: 0 for name in figures}
                for ra, dec in centres:
                    for name in figures:
                        sql = (f"SELECT id, ra, dec, mag FROM {name}"
                               " WHERE q3c_join(%s, %s, ra, dec, %s)")
                        connection.execute(sql, (ra, dec, radius)).fetchall()
                        best = float("inf")
                        for _ in range(3):
                            started = time.perf_counter()
                            result = connection.execute(sql, (ra, dec, radius)).fetchall()
                            best = min(best, time.perf_counter() - started)
                        times[name].append(best)
                        found[name] += len(result)
                for name, values in times.items():
                    values.sort()
                    figures[name].append(
                        f"{statistics.median(values) * 1e3:.2f}/"
                        f"{values[int(0.9 * len(values))] * 1e3:.2f}"
                        f" ({found[name] / len(centres):.1f})")
            for name, cells in figures.items():
                print(f"{name} | " + " | ".join(cells))
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
