"""Result streaming: BINARY2 writer, binary COPY decoder, database -> VOTable end to end.

    .venv/bin/python -m benchmarks.bench_votable [--rows 1000000] [--big-rows 10000000]

Prints rates in rows/s beside the baselines measured in the same run: astropy's own VOTable
BINARY2 writer for the writer, and a bare binary COPY read loop (psycopg, no decoding) for the
database path. The 10-million-row stream runs in a child process whose peak RSS is reported, to
show memory stays bounded. A throwaway PostgreSQL cluster is started under /tmp unless --dsn
names one.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.support import throwaway_cluster
from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable import (
    ColumnBatch,
    ColumnData,
    copy_batches,
    decode_copy_stream,
    write_votable,
)

TABLE = "bench_votable"
FIELDS = ([FieldSpec("id", "long")] + [FieldSpec(f"c{i}", "double") for i in range(8)]
          + [FieldSpec("ccd", "int")])
PG_TYPES = ["bigint"] + ["double precision"] * 8 + ["integer"]


def query(rows: int, nulls: bool = False) -> str:
    def x(k: int) -> str:
        return f"i * {k}e-3::float8"

    b = f"CASE WHEN i % 10 = 0 THEN NULL ELSE {x(2)} END" if nulls else x(2)
    return (f"SELECT i::bigint AS id, {x(1)} AS c0, {b} AS c1, {x(3)} AS c2, {x(4)} AS c3, "
            f"{x(5)} AS c4, {x(6)} AS c5, {x(7)} AS c6, {x(8)} AS c7, (i % 64)::integer AS ccd "
            f"FROM generate_series(1, {rows}) AS i")


def memory_batches(rows: int, batch_rows: int = 65536) -> list[ColumnBatch]:
    generator = np.random.default_rng(1)
    batches = []
    for start in range(0, rows, batch_rows):
        n = min(batch_rows, rows - start)
        columns = [ColumnData("scalar", np.arange(start, start + n, dtype=np.int64))]
        columns += [ColumnData("scalar", generator.random(n)) for _ in range(8)]
        columns.append(ColumnData("scalar", generator.integers(0, 64, n, dtype=np.int32)))
        batches.append(ColumnBatch.of(columns))
    return batches


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def drain(chunks) -> int:
    return sum(len(chunk) for chunk in chunks)


def bench_writer(rows: int) -> dict:
    batches = memory_batches(rows)
    seconds, size = timed(lambda: drain(write_votable(FIELDS, batches)))
    ours = rows / seconds

    from astropy.io.votable import from_table
    from astropy.table import Table

    sample = min(rows, 50_000)
    table = Table([np.concatenate([b.columns[i].values for b in batches])[:sample]
                   for i in range(len(FIELDS))], names=[f.name for f in FIELDS])
    votable = from_table(table)
    votable.get_first_table().format = "binary2"
    astropy_seconds, _ = timed(lambda: votable.to_xml(io.BytesIO()))
    theirs = sample / astropy_seconds
    return {"binary2_writer_rows_per_s": ours, "astropy_binary2_rows_per_s": theirs,
            "ratio": ours / theirs, "bytes_per_row": size / rows}


def raw_copy(connection, sql: str) -> tuple[float, bytes]:
    def run() -> bytes:
        buffer = bytearray()
        with connection.cursor() as cursor, cursor.copy(
                f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
            for chunk in copy:
                buffer += chunk
        return bytes(buffer)

    return timed(run)


def bench_database(dsn: str, rows: int) -> dict:
    import psycopg

    results: dict = {}
    with psycopg.connect(dsn, autocommit=True) as connection:
        for label, nulls in (("", False), ("_with_nulls", True)):
            sql = f"SELECT * FROM {TABLE}{'_nulls' if nulls else ''} LIMIT {rows}"
            raw_copy(connection, sql)  # warm-up: the table in shared buffers / page cache
            copy_seconds, raw = raw_copy(connection, sql)
            chunks = [raw[i:i + 65536] for i in range(0, len(raw), 65536)]
            decode_seconds, decoded = timed(
                lambda chunks=chunks: sum(b.n_rows for b in decode_copy_stream(chunks, PG_TYPES)))
            assert decoded == rows
            del raw, chunks

            def end_to_end(sql=sql) -> int:
                with connection.cursor() as cursor:
                    return drain(write_votable(FIELDS, copy_batches(cursor, sql, PG_TYPES)))

            e2e_seconds, _ = timed(end_to_end)
            results[f"copy_only{label}_rows_per_s"] = rows / copy_seconds
            results[f"decode{label}_rows_per_s"] = rows / decode_seconds
            results[f"db_to_binary2{label}_rows_per_s"] = rows / e2e_seconds
            results[f"db_to_binary2{label}_vs_copy_only"] = copy_seconds / e2e_seconds
    return results


def _status_mb(key: str) -> float:
    # /proc rather than getrusage: ru_maxrss survives exec and would report the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_stream(dsn: str, rows: int) -> None:
    """Runs in a child: stream ``rows`` rows database -> BINARY2 and report RSS as it goes."""
    import psycopg

    before = _status_mb("VmHWM")
    samples: list[float] = []

    def sampled(batches):
        seen = 0
        for batch in batches:
            seen += batch.n_rows
            if seen // 1_000_000 > len(samples):
                samples.append(_status_mb("VmRSS"))
            yield batch

    with psycopg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        seconds, size = timed(lambda: drain(write_votable(
            FIELDS, sampled(copy_batches(cursor, f"SELECT * FROM {TABLE} LIMIT {rows}",
                                         PG_TYPES)))))
    print(json.dumps({"rows": rows, "seconds": seconds, "bytes": size,
                      "peak_rss_before_mb": before, "peak_rss_mb": _status_mb("VmHWM"),
                      "rss_at_1M_rows_mb": samples[0] if samples else float("nan"),
                      "rss_at_last_million_mb": samples[-1] if samples else float("nan")}))


def make_tables(dsn: str, rows: int, null_rows: int) -> None:
    """The source tables: a real table, since generating rows costs the server more than
    reading them (COPY from generate_series runs at about half the rate)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        for suffix, nulls in (("", False), ("_nulls", True)):
            exists = connection.execute("SELECT count(*) FROM pg_class WHERE relname = %s",
                                        (TABLE + suffix,)).fetchone()[0]
            if not exists:
                count = null_rows if nulls else rows
                connection.execute(f"CREATE TABLE {TABLE}{suffix} AS {query(count, nulls)}")
                connection.execute(f"VACUUM ANALYZE {TABLE}{suffix}")


def bench_memory(dsn: str, rows: int) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_votable", "--child", dsn, "--big-rows",
         str(rows)], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    report = json.loads(output.strip().splitlines()[-1])
    report["rows_per_s"] = report["rows"] / report["seconds"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--dsn")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child_stream(args.child, args.big_rows)
        return
    print(f"BINARY2 writer, 10 numeric columns, {args.rows:,} rows from memory")
    for key, value in bench_writer(args.rows).items():
        print(f"  {key:40s} {value:14,.1f}")
    cluster = base = None
    dsn = args.dsn
    if dsn is None:
        cluster, base = throwaway_cluster()
        dsn = cluster.url()
    try:
        make_tables(dsn, max(args.rows, args.big_rows), args.rows)
        print(f"Database path, {args.rows:,} rows of a 10-column table (8 double, 1 bigint, "
              "1 integer; '_with_nulls': one column 10% NULL)")
        for key, value in bench_database(dsn, args.rows).items():
            print(f"  {key:40s} {value:14,.2f}")
        print(f"Memory, {args.big_rows:,} rows database -> BINARY2 in a child process")
        for key, value in bench_memory(dsn, args.big_rows).items():
            print(f"  {key:40s} {value:14,.1f}")
    finally:
        if cluster is not None:
            cluster.destroy()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
