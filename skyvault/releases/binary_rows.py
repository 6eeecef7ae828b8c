"""Rows of a query as Arrow batches from PostgreSQL's binary COPY, parsed by numpy in bulk.

Why not the CSV path (``hats_writer._stream_batches``, kept for tables with variable-width
columns): on 1.6 million released catalog rows of 23 columns, parsing CSV cost the client
2.4 us of CPU per row, three quarters of the export's client time, and printing floats as
text cost the server 0.3 us more per row than sending them in binary (BENCHMARKS.md, "Release
export").  A binary COPY row is a field count and, per field, a length and the value's bytes;
its rows are all of one length when no field is NULL and every field has a fixed width.  So
the query sends ``coalesce(column, 0)`` for each nullable column and one more column, a bit
mask of which ones were NULL: every row then has the same layout, and a chunk of the stream
is a numpy structured array (a view, no per-row work) whose fields are byte-swapped into
Arrow arrays, the NULLs restored from the mask.  The layout is checked (field counts and
every length word) before anything is read from it: a row that does not fit is an error, never
a silently shifted column.

Only numeric and char(n) columns qualify (``fits``); char(n) values must be n bytes (ASCII),
which the length check enforces.
"""

from __future__ import annotations

import select
from collections.abc import Iterator

import numpy as np
import psycopg
import psycopg.errors
import pyarrow as pa
from psycopg import pq

from skyvault.schema.model import Column, Table

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER_BYTES = len(SIGNATURE) + 8  # flags and header-extension length (both int32)
CHUNK_BYTES = 16 << 20
NULL_MASK = "_nulls"
"""Name of the extra column: bit k set when the k-th nullable column is NULL in the row."""

_WIDTHS = {"smallint": (">i2", pa.int16()), "integer": (">i4", pa.int32()),
           "bigint": (">i8", pa.int64()), "real": (">f4", pa.float32()),
           "double precision": (">f8", pa.float64())}


class LayoutError(RuntimeError):
    """The COPY stream did not have the fixed layout the query promised."""


def _char_width(column: Column) -> int | None:
    pg = column.type.pg_type
    if pg.startswith("char(") and pg.endswith(")"):
        return int(pg[5:-1])
    return None


def fits(table: Table) -> bool:
    """Whether every column of ``table`` has a fixed width in binary COPY."""
    nullable = sum(1 for c in table.columns if c.nullable)
    return nullable <= 63 and all(
        c.type.pg_type in _WIDTHS or _char_width(c) is not None for c in table.columns)


def _nullable(table: Table) -> list[Column]:
    return [c for c in table.columns if c.nullable]


def select_list(table: Table, alias: str = "s") -> str:
    """The columns of ``table`` with NULLs replaced (0 or blanks), then the NULL mask."""
    a = f"{alias}." if alias else ""
    items = []
    for column in table.columns:
        width = _char_width(column)
        # Typed, or coalesce would widen a smallint to the literal's integer.
        zero = f"'{' ' * width}'::char({width})" if width else f"0::{column.type.pg_type}"
        items.append(f"coalesce({a}{column.name}, {zero})" if column.nullable
                     else f"{a}{column.name}")
    bits = [f"(CASE WHEN {a}{c.name} IS NULL THEN {1 << k}::bigint ELSE 0 END)"
            for k, c in enumerate(_nullable(table))]
    items.append(" + ".join(bits) if bits else "0::bigint")
    return ", ".join(items)


def _layout(table: Table) -> tuple[np.dtype, list[tuple[Column, int, pa.DataType]]]:
    """The structured dtype of one row and, per column, its field's width and Arrow type."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    columns = []
    for k, column in enumerate(table.columns):
        width = _char_width(column)
        if width is not None:
            code, arrow = f"S{width}", pa.string()
        else:
            code, arrow = _WIDTHS[column.type.pg_type]
        fields += [(f"l{k}", ">i4"), (f"v{k}", code)]
        columns.append((column, np.dtype(code).itemsize, arrow))
    fields += [("lmask", ">i4"), ("mask", ">i8")]
    return np.dtype(fields), columns


class _Parser:
    def __init__(self, table: Table, schema: pa.Schema) -> None:
        self.dtype, self.columns = _layout(table)
        self.schema = schema
        self.nullable = {c.name: k for k, c in enumerate(_nullable(table))}
        self.expected_lengths = [w for _, w, _ in self.columns] + [8]

    def parse(self, chunk: memoryview | bytes) -> pa.RecordBatch:
        rows = np.frombuffer(chunk, dtype=self.dtype)
        if rows.size and not (rows["count"] == len(self.columns) + 1).all():
            raise LayoutError("binary COPY: unexpected field count")
        for k, width in enumerate(self.expected_lengths):
            name = f"l{k}" if k < len(self.columns) else "lmask"
            if rows.size and not (rows[name] == width).all():
                raise LayoutError(f"binary COPY: field {k} is not {width} bytes in every row")
        masks = rows["mask"].astype(np.int64)
        arrays = []
        for k, (column, _width, arrow) in enumerate(self.columns):
            values = rows[f"v{k}"]
            bit = self.nullable.get(column.name)
            null = (masks >> bit) & 1 == 1 if bit is not None else None
            if null is not None and not null.any():
                null = None
            if arrow == pa.string():
                array = pa.array(np.ascontiguousarray(values), type=pa.binary(values.itemsize),
                                 mask=null).cast(pa.string())
            else:
                array = pa.array(values.astype(values.dtype.newbyteorder("=")), type=arrow,
                                 mask=null)
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _copy_blocks(connection: psycopg.Connection, copy: psycopg.Copy) -> Iterator[memoryview]:
    """The COPY's data messages, read from libpq directly.

    psycopg's ``Copy`` iterator costs about 0.6 us of Python per message, and a COPY sends one
    message per row: half the client's time here.  libpq's non-blocking read is called in a
    tight loop instead, waiting on the socket only when nothing is buffered, and the final
    result is checked as psycopg does (an error raised by the server mid-stream, such as a
    statement timeout, is raised here)."""
    pgconn = connection.pgconn
    while True:
        size, data = pgconn.get_copy_data(1)
        if size > 0:
            yield data
        elif size == 0:
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        else:
            break
    failure = None
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK and failure is None:
            failure = psycopg.errors.error_from_result(result, encoding=connection.info.encoding)
    # Tell psycopg's Copy that the stream is over (it would otherwise read past its end).
    copy._finished = True
    if failure is not None:
        raise failure


def stream(connection: psycopg.Connection, table: Table, query: str, params: dict,
           schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Batches of the rows of ``query``, which selects ``select_list(table)``; ``schema`` has
    the table's columns in order (with Arrow types as ``hats_writer`` maps them)."""
    parser = _Parser(table, schema)
    row_bytes = parser.dtype.itemsize
    pending = bytearray()
    header_seen = False
    with connection.cursor() as cursor, \
            cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)", params) as copy:
        for block in _copy_blocks(connection, copy):
            pending += block
            if not header_seen and len(pending) >= HEADER_BYTES:
                if bytes(pending[:len(SIGNATURE)]) != SIGNATURE:
                    raise LayoutError("binary COPY: no signature")
                del pending[:HEADER_BYTES]
                header_seen = True
            if header_seen and len(pending) >= CHUNK_BYTES:
                whole = len(pending) // row_bytes * row_bytes
                yield parser.parse(bytes(pending[:whole]))
                del pending[:whole]
    # The stream ends with a field count of -1 (two bytes).
    if not header_seen or bytes(pending[-2:]) != b"\xff\xff":
        raise LayoutError("binary COPY: no trailer")
    del pending[-2:]
    if len(pending) % row_bytes:
        raise LayoutError("binary COPY: a partial row")
    if pending:
        yield parser.parse(bytes(pending))
