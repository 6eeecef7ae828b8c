"""Binary COPY out of PostgreSQL in large chunks, for result streaming.

PostgreSQL sends COPY data one row per message, and psycopg's ``Copy`` iteration hands them
over one at a time through its generic wait machinery: a few microseconds of Python per row,
which caps a 10-column export near 350,000 rows/s on this host, far below what the decoder and
writers manage (measured in benchmarks/bench_tap.py). Here the rows already received are taken
straight from libpq (``PGconn.get_copy_data``, psycopg's documented low-level interface) into
one buffer per megabyte; only when no row is ready does psycopg's own ``Copy.read`` wait for
the next, and it also takes the COPY's final result or error, so the protocol stays psycopg's.
"""

from __future__ import annotations

import select
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

CHUNK_BYTES = 1 << 20


def copy_chunks(cursor: psycopg.Cursor, sql: str, params: Sequence[Any] | None = None, *,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of ``COPY (sql) TO STDOUT (FORMAT binary)``, in chunks of about
    ``chunk_bytes`` (smaller when the database is slower than the reader).

    Errors raise as psycopg's exception for the SQLSTATE (QueryCanceled for a statement
    timeout). Closing the generator early ends the COPY as leaving psycopg's ``copy()`` block
    does: a cancel, then the rest of the data discarded.
    """
    statement = f"COPY ({sql}) TO STDOUT (FORMAT binary)"
    connection = cursor.connection
    pgconn = connection.pgconn
    with cursor.copy(statement, params) as copy:
        buffer = bytearray()
        while True:
            size, data = pgconn.get_copy_data(1)  # 1: never block
            if size > 0:
                buffer += data
                if len(buffer) >= chunk_bytes:
                    yield bytes(buffer)
                    buffer.clear()
                continue
            if size < 0:  # the data are complete (the wrapper raises for -2, a failure)
                break
            # Nothing ready: hand over what we have, then let psycopg wait for the next row.
            if buffer:
                yield bytes(buffer)
                buffer.clear()
            row = copy.read()
            if not row:  # psycopg saw the end and took the final result itself
                return
            buffer += row
        if buffer:
            yield bytes(buffer)
        # We saw the end of the data: the COPY's final result (or its error) is ours to take;
        # psycopg's copy() block then ends without reading anything more.
        _final_result(pgconn, connection.info.encoding)


def _final_result(pgconn: pq.abc.PGconn, encoding: str) -> None:
    error = None
    while True:
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == pq.ExecStatus.FATAL_ERROR and error is None:
            error = error_from_result(result, encoding=encoding)
    if error is not None:
        raise error
