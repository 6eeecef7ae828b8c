"""Streaming decoder of PostgreSQL's binary COPY format into column batches.

``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` is the fastest way out of PostgreSQL: no text
formatting on the server and no per-value Python objects on the client. psycopg hands the stream
over as one buffer per row; this module accumulates a few megabytes, then decodes all complete
rows of the buffer at once with numpy:

- When every column has a fixed width (numbers, booleans, timestamps) and no cell of the buffer
  is NULL, every row has the same length and the buffer is reinterpreted as a structured array:
  no per-row work at all.
- Otherwise (NULLs, text, arrays) rows are found without a per-row loop: every position where the
  16-bit field count appears is a candidate row start; each candidate is walked through the
  columns' length words in lock-step (one vectorised step per column), and the true rows are the
  chain of candidates that starts at the first row, found by a fixed-point iteration.

The format is described in the PostgreSQL manual, "COPY", section "Binary Format".

pgsphere's types (spoint, scircle, spoly) have no binary send functions, so binary COPY cannot
carry them: the SQL must turn them into ``double precision[]`` (degrees) first. ``geometry_sql``
writes that expression.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from skyvault.vo.votable.columns import ColumnBatch, ColumnData, segment_gather_index

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER_MIN = len(SIGNATURE) + 8
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in microseconds since 1970
_PG_EPOCH_DAYS = 10_957
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_INT32_MAX = np.iinfo(np.int32).max
_INT32_MIN = np.iinfo(np.int32).min
DEFAULT_BATCH_BYTES = 4 << 20


class CopyFormatError(ValueError):
    """The byte stream is not PostgreSQL binary COPY data of the announced column types."""


class UnsupportedPgType(ValueError):
    """A column type this decoder cannot turn into VOTable values."""


Convert = Literal["none", "bool", "timestamp", "date"]


@dataclass(frozen=True)
class PgType:
    """How one PostgreSQL type travels in binary COPY and lands in a column."""

    name: str
    kind: Literal["fixed", "text", "array", "bytes"]
    wire: np.dtype | None = None
    """Big-endian dtype of a fixed value, or of one element of an array."""
    native: np.dtype | None = None
    convert: Convert = "none"
    strip_padding: bool = False
    """char(n) arrives blank-padded; PostgreSQL itself ignores trailing blanks."""

    @property
    def width(self) -> int | None:
        return self.wire.itemsize if self.kind == "fixed" and self.wire is not None else None


def _fixed(name: str, wire: str, native: str, convert: Convert = "none") -> PgType:
    return PgType(name, "fixed", np.dtype(wire), np.dtype(native), convert)


_SCALARS: dict[str, PgType] = {
    "boolean": _fixed("boolean", "u1", "bool", "bool"),
    "smallint": _fixed("smallint", ">i2", "int16"),
    "integer": _fixed("integer", ">i4", "int32"),
    "bigint": _fixed("bigint", ">i8", "int64"),
    "real": _fixed("real", ">f4", "float32"),
    "double precision": _fixed("double precision", ">f8", "float64"),
    "timestamptz": _fixed("timestamptz", ">i8", "datetime64[us]", "timestamp"),
    "timestamp": _fixed("timestamp", ">i8", "datetime64[us]", "timestamp"),
    "date": _fixed("date", ">i4", "datetime64[us]", "date"),
    "text": PgType("text", "text"),
    "bpchar": PgType("bpchar", "text", strip_padding=True),
    "bytea": PgType("bytea", "bytes", np.dtype("u1"), np.dtype("u1")),
}
_ALIASES = {
    "bool": "boolean", "int2": "smallint", "int": "integer", "int4": "integer",
    "int8": "bigint", "float4": "real", "float8": "double precision", "float": "double precision",
    "timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp",
    "varchar": "text", "character varying": "text", "name": "text", "citext": "text",
    "character": "bpchar", "char": "bpchar",
}
_ARRAY_ELEMENTS = {"boolean", "smallint", "integer", "bigint", "real", "double precision"}
_GEOMETRY = {"spoint", "scircle", "spoly", "sbox", "spath", "sellipse", "sline"}


def pg_type(name: str) -> PgType:
    """The decoding rule for a type name as ``format_type`` or a schema definition spells it."""
    text = re.sub(r"\s+", " ", name.strip().lower())
    is_array = text.endswith("[]") or (text.startswith("_") and len(text) > 1)
    if text.endswith("[]"):
        text = text[:-2].strip()
    elif is_array:
        text = text[1:]
    text = re.sub(r"\(\s*\d+(\s*,\s*\d+)?\s*\)", "", text).strip()  # char(8), timestamp(3) ..
    text = re.sub(r"\s+", " ", text)
    text = _ALIASES.get(text, text)
    if text in _GEOMETRY:
        raise UnsupportedPgType(
            f"{name}: pgsphere types have no binary form; select geometry_sql(...) instead"
        )
    if is_array:
        if text not in _ARRAY_ELEMENTS:
            raise UnsupportedPgType(f"arrays of {text} are not supported")
        element = _SCALARS[text]
        assert element.wire is not None and element.native is not None
        return PgType(f"{text}[]", "array", element.wire, element.native, element.convert)
    if text not in _SCALARS:
        raise UnsupportedPgType(f"PostgreSQL type {name!r} is not supported; cast it in SQL")
    return _SCALARS[text]


def geometry_sql(expression: str, pg_type_name: str) -> str:
    """SQL turning a pgsphere value into the DALI array (degrees) that binary COPY can carry.

    spoint -> [lon, lat] (DALI point), scircle -> [lon, lat, radius] (DALI circle),
    spoly -> [lon1, lat1, lon2, lat2, ...] (DALI polygon). pgsphere 1.2 has no accessor for a
    polygon's vertices, so they are read from its text form, which works in both of pgsphere's
    'RAD' (default) and 'DEG' output modes. NULL stays NULL.
    """
    kind = pg_type_name.strip().lower()
    e = f"({expression})"
    if kind == "spoint":
        return f"ARRAY[degrees(long({e})), degrees(lat({e}))]"
    if kind == "scircle":
        return (f"ARRAY[degrees(long(center({e}))), degrees(lat(center({e}))), "
                f"degrees(radius({e}))]")
    if kind == "spoly":
        return (
            "(SELECT array_agg(CASE WHEN right(v, 1) = 'd' THEN rtrim(v, 'd')::float8 "
            "ELSE degrees(v::float8) END ORDER BY o) "
            f"FROM unnest(string_to_array(translate({e}::text, '{{}}() ', ''), ',')) "
            "WITH ORDINALITY AS _vertex(v, o))"
        )
    raise UnsupportedPgType(f"no DALI form for {pg_type_name}")


_PGSPHERE_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def pgsphere_degrees(text: str | None, pg_type_name: str = "spoly") -> tuple[float, ...] | None:
    """The DALI array (degrees) of a pgsphere value's text, as ``geometry_sql`` gives it in SQL:
    spoint and spoly as lon, lat pairs (lon in [0, 360)), scircle as lon, lat, radius. Reads
    pgsphere's 'RAD' (default) and 'DEG' output modes; None for NULL or an empty text."""
    if not text:
        return None
    numbers = _PGSPHERE_NUMBER.findall(text)
    if "d" in text:  # 'DEG' mode writes each angle with a d
        values = [float(number) for number in numbers]
    else:
        values = [math.degrees(float(number)) for number in numbers]
    if pg_type_name.strip().lower() == "scircle":
        values[0] %= 360.0
    else:
        values[0::2] = [value % 360.0 for value in values[0::2]]
    return tuple(values)


# -- the decoder ---------------------------------------------------------------------------------


def decode_copy_stream(
    chunks: Iterable[bytes | bytearray | memoryview],
    pg_types: Sequence[str | PgType],
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> Iterator[ColumnBatch]:
    """Column batches from the chunks of a binary COPY stream (any chunking).

    A batch holds the complete rows of about ``batch_bytes`` of input, so memory stays bounded
    whatever the row count. Unsupported types raise ``UnsupportedPgType`` at once.
    """
    return _decode(CopyDecoder(pg_types), chunks, batch_bytes)


def _decode(decoder: CopyDecoder, chunks: Iterable[bytes | bytearray | memoryview],
            batch_bytes: int) -> Iterator[ColumnBatch]:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= batch_bytes:
            batch, buffer = decoder.decode(buffer, final=False)
            if batch is not None and batch.n_rows:
                yield batch
    batch, buffer = decoder.decode(buffer, final=True)
    if batch is not None and batch.n_rows:
        yield batch
    if not decoder.finished:
        raise CopyFormatError("the COPY stream ended without its trailer")


def copy_batches(
    cursor: Any,
    sql: str,
    pg_types: Sequence[str | PgType],
    params: Sequence[Any] | None = None,
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> Iterator[ColumnBatch]:
    """Run ``sql`` as a binary COPY on a psycopg cursor and yield its rows as column batches.

    Closing the generator early (a writer that reached its row limit) leaves the COPY block,
    which lets psycopg end the transfer. Unsupported types raise before the query runs.
    """
    decoder = CopyDecoder(pg_types)
    return _copy(decoder, cursor, f"COPY ({sql}) TO STDOUT (FORMAT binary)", params, batch_bytes)


def _copy(decoder: CopyDecoder, cursor: Any, statement: str, params: Sequence[Any] | None,
          batch_bytes: int) -> Iterator[ColumnBatch]:
    with cursor.copy(statement, params) as copy:
        yield from _decode(decoder, copy, batch_bytes)


def describe_pg_types(cursor: Any, sql: str, params: Sequence[Any] | None = None) -> list[str]:
    """The PostgreSQL type names of a query's columns, asked of the server without running it."""
    cursor.execute(f"SELECT * FROM ({sql}) AS _described LIMIT 0", params)
    oids = [column.type_code for column in cursor.description]
    cursor.execute(
        "SELECT format_type(t, NULL) FROM unnest(%s::oid[]) WITH ORDINALITY AS u(t, o) ORDER BY o",
        (oids,),
    )
    return [row[0] for row in cursor.fetchall()]


class CopyDecoder:
    """Decodes complete rows out of successive buffers of one binary COPY stream."""

    def __init__(self, pg_types: Sequence[str | PgType]) -> None:
        self.types = [t if isinstance(t, PgType) else pg_type(t) for t in pg_types]
        self.ncols = len(self.types)
        self.header_done = False
        self.finished = False
        self._all_fixed = all(t.kind == "fixed" for t in self.types)
        if self._all_fixed:
            names, formats, offsets = ["n"], [">i2"], [0]
            position = 2
            for i, t in enumerate(self.types):
                assert t.wire is not None
                names += [f"l{i}", f"v{i}"]
                formats += [">i4", t.wire]
                offsets += [position, position + 4]
                position += 4 + t.wire.itemsize
            self._row_dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                        "itemsize": position})

    # The buffer is consumed up to the last complete row; the remainder is returned for the
    # caller to extend (a new bytearray, so numpy views of the old one stay valid).
    def decode(self, buffer: bytearray, final: bool) -> tuple[ColumnBatch | None, bytearray]:
        start = 0
        if not self.header_done:
            if len(buffer) < HEADER_MIN:
                if final:
                    raise CopyFormatError("the COPY stream is shorter than its header")
                return None, buffer
            if bytes(buffer[:len(SIGNATURE)]) != SIGNATURE:
                raise CopyFormatError("not a binary COPY stream (bad signature)")
            extension = int.from_bytes(buffer[len(SIGNATURE) + 4:HEADER_MIN], "big")
            if len(buffer) < HEADER_MIN + extension:
                return None, buffer
            start = HEADER_MIN + extension
            self.header_done = True
        if self.finished:
            return None, bytearray()
        data = np.frombuffer(buffer, dtype=np.uint8)
        parts: list[list[ColumnData]] = []
        while start + 2 <= len(data):
            if data[start] == 0xFF and data[start + 1] == 0xFF:
                self.finished = True
                start += 2
                break
            columns, consumed = (self._fixed_rows(data, start) if self._all_fixed else (None, 0))
            if columns is None:
                columns, consumed = self._general_rows(data, start)
            if consumed == 0:
                break
            parts.append(columns)
            start += consumed
        if final and not self.finished:
            raise CopyFormatError("incomplete row at the end of the COPY stream")
        batch = _concat(parts, self.ncols)
        rest = bytearray(buffer[start:]) if start < len(buffer) else bytearray()
        return batch, rest

    # -- fast path: equal-length rows -----------------------------------------------------

    def _fixed_rows(self, data: np.ndarray, start: int) -> tuple[list[ColumnData] | None, int]:
        itemsize = self._row_dtype.itemsize
        count = (len(data) - start) // itemsize
        if count == 0:
            return None, 0
        rows = data[start:start + count * itemsize].view(self._row_dtype)
        good = rows["n"] == self.ncols
        for i, t in enumerate(self.types):
            assert t.wire is not None
            good &= rows[f"l{i}"] == t.wire.itemsize
        usable = count if good.all() else int(np.argmin(good))
        if usable == 0:
            return None, 0
        rows = rows[:usable]
        columns = [_finish_fixed(t, rows[f"v{i}"], None) for i, t in enumerate(self.types)]
        return columns, usable * itemsize

    # -- general path: NULLs, text, arrays ---------------------------------------------------

    def _general_rows(self, data: np.ndarray, start: int) -> tuple[list[ColumnData], int]:
        region = data[start:]
        size = len(region)
        # Two byte compares beat one unaligned 16-bit view here.
        candidates = np.flatnonzero((region[:-1] == self.ncols >> 8)
                                    & (region[1:] == self.ncols & 0xFF))
        if len(candidates) > 1 and self.types:
            # Most false candidates fail on the first length word: drop them before the walk.
            first = _read_i32(region, candidates + 2)
            width = self.types[0].width
            plausible = (first == -1) | ((first == width) if width is not None else (first >= 0))
            plausible[0] = True
            candidates = candidates[plausible]
        if len(candidates) == 0 or candidates[0] != 0:
            raise CopyFormatError(
                f"expected a row of {self.ncols} fields at byte {start}"
            )
        positions = np.empty((self.ncols, len(candidates)), dtype=np.int64)
        lengths = np.empty((self.ncols, len(candidates)), dtype=np.int64)
        valid = np.ones(len(candidates), dtype=bool)
        cursor = candidates + 2
        for i, t in enumerate(self.types):
            inside = cursor + 4 <= size
            valid &= inside
            length = _read_i32(region, np.where(inside, cursor, 0))
            if t.kind == "fixed":
                assert t.wire is not None
                valid &= (length == -1) | (length == t.wire.itemsize)
            else:
                valid &= length >= -1
            length = np.where(valid, length, -1)
            positions[i] = cursor + 4
            lengths[i] = length
            cursor = cursor + 4 + np.maximum(length, 0)
        valid &= cursor <= size
        rows = _chain(candidates, cursor, valid)
        if len(rows) == 0:
            self._check_first_row(region)  # an incomplete row, or the wrong types
            return [], 0
        consumed = int(cursor[rows[-1]])
        columns = []
        for i, t in enumerate(self.types):
            pos, length = positions[i, rows], lengths[i, rows]
            columns.append(_extract(t, region, pos, length))
        return columns, consumed

    def _check_first_row(self, region: np.ndarray) -> None:
        """Raise at once when the first row contradicts the types, instead of buffering on."""
        _check_first_row_lengths(self.types, region)


def _overlapping(data: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """A view whose element ``i`` is the value of ``dtype`` stored at byte ``i`` of ``data``.

    Gathering from it reads each value as one (unaligned) element instead of byte by byte.
    """
    dtype = np.dtype(dtype)
    count = max(len(data) - dtype.itemsize + 1, 0)
    return np.ndarray(shape=(count,), dtype=dtype, buffer=data, offset=0, strides=(1,))


def _check_first_row_lengths(types: Sequence[PgType], region: np.ndarray) -> None:
    position = 2
    for index, t in enumerate(types):
        if position + 4 > len(region):
            return
        length = int.from_bytes(region[position:position + 4].tobytes(), "big", signed=True)
        width = t.width
        if length < -1 or (width is not None and length not in (-1, width)):
            raise CopyFormatError(
                f"column {index + 1} holds a {length}-byte value, not {t.name}: "
                "the announced types do not match the query's"
            )
        position += 4 + max(length, 0)


def _read_i32(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    words = _overlapping(data, ">i4")
    if len(positions) == 0 or len(words) == 0:
        return np.zeros(len(positions), dtype=np.int64)
    return words[np.minimum(positions, len(words) - 1)].astype(np.int64)


def _chain(candidates: np.ndarray, following: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Indices of the candidates that are true row starts: the chain from candidate 0.

    Candidates whose bytes merely look like a row start (the value 10 in an integer column
    of a ten-column result, say) are not reached from the first row. Starting from all valid
    candidates, keep the first plus the successors of those kept: the set shrinks to the chain
    in as many steps as the longest run of false candidates.
    """
    n = len(candidates)
    successor = np.searchsorted(candidates, following)
    clipped = np.minimum(successor, n - 1)
    links = valid & (successor < n) & (candidates[clipped] == following)
    kept = valid.copy()
    for _ in range(64):
        step = np.zeros(n, dtype=bool)
        step[0] = valid[0]
        step[successor[kept & links]] = True
        step &= valid
        if np.array_equal(step, kept):
            return np.flatnonzero(kept)
        kept = step
    # Adversarial data: follow the links one by one.
    chain = []
    index = 0
    link_list, successor_list, valid_list = links.tolist(), successor.tolist(), valid.tolist()
    while valid_list[index]:
        chain.append(index)
        if not link_list[index]:
            break
        index = successor_list[index]
    return np.array(chain, dtype=np.int64)


def _finish_fixed(t: PgType, wire_values: np.ndarray, nulls: np.ndarray | None) -> ColumnData:
    assert t.native is not None
    if t.convert == "bool":
        values = wire_values != 0
    elif t.convert == "timestamp":
        raw = wire_values.astype(np.int64)
        infinite = (raw == _INT64_MAX) | (raw == _INT64_MIN)
        if infinite.any():  # 'infinity' has no ISO 8601 form: it becomes NULL
            nulls = infinite if nulls is None else nulls | infinite
            raw = np.where(infinite, 0, raw)
        values = (raw + _PG_EPOCH_US).view("datetime64[us]")
    elif t.convert == "date":
        raw = wire_values.astype(np.int64)
        infinite = (raw == _INT32_MAX) | (raw == _INT32_MIN)
        if infinite.any():
            nulls = infinite if nulls is None else nulls | infinite
            raw = np.where(infinite, 0, raw)
        values = ((raw + _PG_EPOCH_DAYS) * 86_400_000_000).view("datetime64[us]")
    else:
        values = wire_values.astype(t.native)
    if nulls is not None and not nulls.any():
        nulls = None
    return ColumnData("scalar", values, nulls)


def _extract(t: PgType, data: np.ndarray, pos: np.ndarray, length: np.ndarray) -> ColumnData:
    nulls = length < 0
    if t.kind == "fixed":
        assert t.wire is not None
        words = _overlapping(data, t.wire)
        # A NULL has no bytes: its position may lie past the last whole value.
        wire_values = words[np.minimum(pos, len(words) - 1)]
        wire_values[nulls] = 0
        return _finish_fixed(t, wire_values, nulls)
    byte_length = np.maximum(length, 0)
    if t.kind in ("text", "bytes"):
        flat = data[segment_gather_index(pos, byte_length)]
        offsets = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(byte_length, out=offsets[1:])
        kind = "text" if t.kind == "text" else "array"
        column = ColumnData(kind, flat, nulls if nulls.any() else None, offsets)
        return _strip_padding(column) if t.strip_padding else column
    return _extract_arrays(t, data, pos, nulls)


def _strip_padding(column: ColumnData) -> ColumnData:
    assert column.offsets is not None
    flat = column.values
    starts = column.offsets[:-1]
    lengths = np.diff(column.offsets)
    while True:
        ends = starts + lengths
        blank = (lengths > 0) & (flat[np.maximum(ends - 1, 0)] == 0x20)
        if not blank.any():
            break
        lengths = lengths - blank
    if np.array_equal(lengths, np.diff(column.offsets)):
        return column
    values = flat[segment_gather_index(starts, lengths)]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ColumnData("text", values, column.nulls, offsets)


def _extract_arrays(t: PgType, data: np.ndarray, pos: np.ndarray, nulls: np.ndarray) -> ColumnData:
    """One-dimensional (or flattened) arrays of fixed-width elements, vectorised."""
    assert t.wire is not None and t.native is not None
    present = ~nulls
    cell = np.where(present, pos, 0)
    ndim = np.where(present, _read_i32(data, cell), 0)
    has_null = np.where(present, _read_i32(data, cell + 4), 0) != 0
    count = np.where(ndim > 0, 1, 0).astype(np.int64)
    for axis in range(int(ndim.max(initial=0))):
        size = _read_i32(data, cell + 12 + 8 * axis)
        count = np.where(axis < ndim, count * np.where(axis < ndim, size, 1), count)
    first = cell + 12 + 8 * ndim
    stride = 4 + t.wire.itemsize
    count_simple = np.where(has_null, 0, count)
    total = int(count_simple.sum())
    starts = np.cumsum(count_simple) - count_simple
    element = (np.repeat(first + 4 - starts * stride, count_simple)
               + np.arange(total, dtype=np.int64) * stride)
    wire = _overlapping(data, t.wire)[element] if total else np.zeros(0, dtype=t.wire)
    if t.convert == "bool":
        values = wire != 0
    else:
        values = wire.astype(t.native)
    offsets = np.zeros(len(pos) + 1, dtype=np.int64)
    np.cumsum(count_simple, out=offsets[1:])
    if has_null.any():
        values, offsets = _arrays_with_null_elements(t, data, cell, count, first, has_null,
                                                     values, offsets)
    return ColumnData("array", values, nulls if nulls.any() else None, offsets)


def _arrays_with_null_elements(
    t: PgType, data: np.ndarray, cell: np.ndarray, count: np.ndarray, first: np.ndarray,
    has_null: np.ndarray, values: np.ndarray, offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cells holding NULL elements (rare): walked one element at a time.

    VOTable cannot flag a single array element as null; NaN stands in for floats, 0 otherwise.
    """
    assert t.wire is not None and t.native is not None
    parts: list[np.ndarray] = []
    lengths = np.diff(offsets)
    filler = np.nan if t.native.kind == "f" else 0
    for row in range(len(cell)):
        if not has_null[row]:
            parts.append(values[offsets[row]:offsets[row + 1]])
            continue
        position = int(first[row])
        elements = []
        for _ in range(int(count[row])):
            size = int.from_bytes(data[position:position + 4].tobytes(), "big", signed=True)
            position += 4
            if size < 0:
                elements.append(filler)
            else:
                raw = np.frombuffer(data[position:position + size].tobytes(), dtype=t.wire)[0]
                elements.append(raw != 0 if t.convert == "bool" else raw)
                position += size
        parts.append(np.array(elements, dtype=t.native))
        lengths[row] = len(elements)
    new_offsets = np.zeros(len(cell) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    return (np.concatenate(parts) if parts else values[:0]), new_offsets


def _concat(parts: list[list[ColumnData]], ncols: int) -> ColumnBatch | None:
    parts = [p for p in parts if p]
    if not parts:
        return None
    if len(parts) == 1:
        return ColumnBatch.of(parts[0])
    columns = []
    for i in range(ncols):
        pieces = [p[i] for p in parts]
        columns.append(concat_columns(pieces))
    return ColumnBatch.of(columns)


def concat_columns(pieces: Sequence[ColumnData]) -> ColumnData:
    """One column from consecutive pieces of the same kind."""
    kind = pieces[0].kind
    if any(p.nulls is not None for p in pieces):
        nulls: np.ndarray | None = np.concatenate([p.null_mask() for p in pieces])
    else:
        nulls = None
    if kind == "scalar":
        return ColumnData(kind, np.concatenate([p.values for p in pieces]), nulls)
    flats = [p.flat() for p in pieces]
    lengths = np.concatenate([p.lengths() for p in pieces])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ColumnData(kind, np.concatenate(flats), nulls, offsets)
