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
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable import (
    ColumnBatch,
    ColumnData,
    copy_batches,
    decode_copy_stream,
    write_votable,
)

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
            sql = query(rows, nulls)
            raw_copy(connection, query(10_000, nulls))  # warm-up
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


def child_stream(dsn: str, rows: int) -> None:
    """Runs in a child: stream ``rows`` rows database -> BINARY2 and report peak RSS."""
    import psycopg

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with psycopg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        seconds, size = timed(lambda: drain(write_votable(
            FIELDS, copy_batches(cursor, query(rows), PG_TYPES))))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "seconds": seconds, "bytes": size,
                      "rss_before_mb": before / 1024, "peak_rss_mb": peak / 1024}))


def bench_memory(dsn: str, rows: int) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_votable", "--child", dsn, "--big-rows",
         str(rows)], capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    report = json.loads(output.strip().splitlines()[-1])
    report["rows_per_s"] = report["rows"] / report["seconds"]
    return report


def throwaway_cluster():
    from skyvault.cluster import EmbeddedCluster

    base = Path(tempfile.mkdtemp(prefix="skyvault-bench-", dir="/tmp"))
    base.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = EmbeddedCluster(base / "pgdata", base / "run", port)
    cluster.start()
    return cluster, base


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
        print(f"Database path, {args.rows:,} rows (generate_series, 10 columns)")
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
