"""PostgreSQL's binary COPY format, built with numpy in one pass.

A binary COPY stream is a header, then per row a 16-bit field count and, per field, a 32-bit
length and the value in network byte order, then a -1 trailer. When every field has a fixed
width (numbers, char(n), timestamps) a row is a fixed-size record, so the whole stream of a
catalog is one numpy structured array filled column by column: no Python loop per row.

A column may be NULL on every row (declared so), and a NaN in a float column is a value
nobody knows, NULL in the catalog: PostgreSQL would store the NaN as a number that compares
greater than every other, so ``mag > 20`` would count it. On the wire a NULL field is the
length -1 and no value bytes, so the records of rows holding a NaN shrink: ``payload()`` marks
them and drops their value bytes with one boolean mask over the records' bytes.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
TIMESTAMP_INFINITY = 2**63 - 1

# PostgreSQL type -> numpy wire dtype (big-endian).
WIRE_TYPES: dict[str, str] = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "real": ">f4",
    "double precision": ">f8",
    "timestamptz": ">i8",
}


class CopyEncodeError(ValueError):
    """Columns and values that cannot be encoded as a binary COPY stream (the reader's error
    for a stream that is not one is vo.votable.pgcopy.CopyFormatError)."""


@dataclass(frozen=True)
class CopyColumn:
    name: str
    pg_type: str
    """As schema/model.py spells it: smallint, integer, bigint, real, double precision,
    timestamptz, char(n)."""

    @property
    def wire_dtype(self) -> np.dtype:
        if self.pg_type.startswith("char(") and self.pg_type.endswith(")"):
            return np.dtype(f"S{int(self.pg_type[5:-1])}")
        try:
            return np.dtype(WIRE_TYPES[self.pg_type])
        except KeyError:
            raise CopyEncodeError(f"{self.name}: no fixed-width binary form for "
                                  f"{self.pg_type}") from None


def timestamp_to_wire(when: dt.datetime | None) -> int:
    """Microseconds since 2000-01-01 UTC, PostgreSQL's timestamptz on the wire;
    ``None`` stands for 'infinity'."""
    if when is None or when == dt.datetime.max.replace(tzinfo=dt.UTC):
        return TIMESTAMP_INFINITY
    if when.tzinfo is None:
        raise CopyEncodeError("timestamps must be timezone-aware")
    delta = when - PG_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


SMALLINT_OID = 21


def smallint_array_wire(values: Sequence[int]) -> bytes:
    """A one-dimensional smallint[] in PostgreSQL's binary form (array_send: dimensions, no
    NULL flag, element type, then each element's length and value): a fixed-width value, so
    an array every row shares travels as a ``char(n)`` column of that many bytes."""
    head = struct.pack(">iiIii", 1, 0, SMALLINT_OID, len(values), 1) if values else \
        struct.pack(">iiI", 0, 0, SMALLINT_OID)
    return head + b"".join(struct.pack(">ih", 2, int(value)) for value in values)


def record_dtype(columns: Sequence[CopyColumn], null: frozenset[str] = frozenset()) -> np.dtype:
    fields: list[tuple[str, np.dtype | str]] = [("nfields", ">i2")]
    for index, column in enumerate(columns):
        fields.append((f"l{index}", ">i4"))
        if column.name not in null:
            fields.append((f"v{index}", column.wire_dtype))
    return np.dtype(fields)


class RecordBatch:
    """The rows of one COPY, as a structured array whose bytes are the wire format.

    Columns named in ``null`` are NULL on every row (length -1, no value bytes). Values can be
    set at any time before ``payload()``, so a batch is prepared while the database is busy and
    the keys only the transaction knows (pid) are filled in last.
    """

    def __init__(self, columns: Sequence[CopyColumn], rows: int,
                 null: frozenset[str] = frozenset()) -> None:
        self.columns = tuple(columns)
        self.rows = rows
        self.null = null
        self._index = {column.name: index for index, column in enumerate(self.columns)}
        self.records = np.zeros(rows, dtype=record_dtype(self.columns, null))
        self.records["nfields"] = len(self.columns)
        for index, column in enumerate(self.columns):
            self.records[f"l{index}"] = -1 if column.name in null else column.wire_dtype.itemsize
        self._set: set[str] = set(null)

    def set(self, name: str, value: np.ndarray | int | float | bytes) -> None:
        index = self._index[name]
        if name in self.null:
            raise CopyEncodeError(f"{name} is declared NULL in this batch")
        column = self.columns[index]
        if isinstance(value, np.ndarray):
            if value.shape != (self.rows,):
                raise CopyEncodeError(f"{name}: {value.shape} values for {self.rows} rows")
            if column.wire_dtype.kind in "iu" and value.dtype.kind == "f":
                raise CopyEncodeError(f"{name}: floats given for an integer column")
        self.records[f"v{index}"] = value
        self._set.add(name)

    def column(self, name: str) -> CopyColumn:
        return self.columns[self._index[name]]

    def values(self, name: str) -> np.ndarray:
        """A column's values, in native byte order (a copy)."""
        if name in self.null:
            raise CopyEncodeError(f"{name} is declared NULL in this batch")
        wire = self.records[f"v{self._index[name]}"]
        return wire.astype(wire.dtype.newbyteorder("="))

    def take(self, order: np.ndarray) -> None:
        """Reorder the rows."""
        self.records = self.records[order]

    def payload(self) -> memoryview:
        """The rows on the wire; NaN floats go as NULL."""
        missing = [column.name for column in self.columns if column.name not in self._set]
        if missing:
            raise CopyEncodeError(f"no values for {', '.join(missing)}")
        unknown = {}
        for index, column in enumerate(self.columns):
            if column.name not in self.null and column.wire_dtype.kind == "f":
                nan = np.isnan(self.records[f"v{index}"])
                if nan.any():
                    unknown[index] = nan
        if not unknown:
            return memoryview(self.records).cast("B")
        width = self.records.dtype.itemsize
        keep = np.ones((self.rows, width), dtype=bool)
        for index, nan in unknown.items():
            self.records[f"l{index}"][nan] = -1
            start = self.records.dtype.fields[f"v{index}"][1]
            keep[nan, start:start + self.columns[index].wire_dtype.itemsize] = False
        return memoryview(self.records.view(np.uint8).reshape(self.rows, width)[keep])


def encode_stream(
    columns: Sequence[CopyColumn], values: Mapping[str, np.ndarray | int | float | bytes],
    rows: int,
) -> bytes:
    """A complete binary COPY stream of ``rows`` rows; ``values`` maps each column to an array
    or to one scalar repeated on every row."""
    batch = RecordBatch(columns, rows)
    for name, value in values.items():
        batch.set(name, value)
    return HEADER + bytes(batch.payload()) + TRAILER


def copy_statement(table: str, columns: Sequence[CopyColumn]) -> str:
    names = ", ".join(f'"{column.name}"' for column in columns)
    return f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
