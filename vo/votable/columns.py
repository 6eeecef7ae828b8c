"""Column batches: the in-memory form of a slice of a query result, one numpy array per column.

Every writer in this package consumes an iterator of ``ColumnBatch``; the PostgreSQL binary COPY
decoder produces them, and ``ColumnBatch.from_columns`` / ``from_rows`` build them from Python
values for services that assemble small results themselves (DataLink, SIA, SCS).

A column is one of three kinds:

``scalar``
    ``values`` has one element per row: bool, int16/32/64, uint8, float32/64, complex, or
    ``datetime64[us]`` for timestamps (written as ISO 8601 strings, DALI section 3.3.3).
``text``
    UTF-8 bytes of all cells back to back in ``values`` (uint8); cell ``i`` is
    ``values[offsets[i]:offsets[i+1]]``.
``array``
    The elements of all cells back to back in ``values`` (a numeric dtype), split by
    ``offsets`` like text. Geometry (DALI point, circle, polygon) arrives as float64 arrays.

``nulls`` is a bool array, True where the cell is SQL NULL, or None when no cell is null. The
content of a null cell is unspecified. Offsets need not start at 0, so slicing a batch never
copies the flat values.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from skyvault.vo.fields import FieldSpec

ColumnKind = Literal["scalar", "text", "array"]

# VOTable datatype -> numpy dtype of values in memory (native byte order).
NUMPY_DTYPES: dict[str, np.dtype] = {
    "boolean": np.dtype(np.bool_),
    "unsignedByte": np.dtype(np.uint8),
    "short": np.dtype(np.int16),
    "int": np.dtype(np.int32),
    "long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "floatComplex": np.dtype(np.complex64),
    "doubleComplex": np.dtype(np.complex128),
}
TEXT_DATATYPES = frozenset({"char", "unicodeChar"})
TIMESTAMP_DTYPE = np.dtype("datetime64[us]")


class BatchError(ValueError):
    """Column data that does not fit the shape or the declared fields."""


@dataclass(frozen=True, slots=True)
class ColumnData:
    kind: ColumnKind
    values: np.ndarray
    nulls: np.ndarray | None = None
    offsets: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        if self.kind == "scalar":
            return len(self.values)
        assert self.offsets is not None
        return len(self.offsets) - 1

    @property
    def is_timestamp(self) -> bool:
        return self.kind == "scalar" and self.values.dtype.kind == "M"

    def null_mask(self) -> np.ndarray:
        """The nulls as a bool array, all False when there are none."""
        if self.nulls is None:
            return np.zeros(self.n_rows, dtype=bool)
        return self.nulls

    def has_nulls(self) -> bool:
        return self.nulls is not None and bool(self.nulls.any())

    def lengths(self) -> np.ndarray:
        """Elements (bytes for text) per cell of a text or array column."""
        assert self.offsets is not None
        return np.diff(self.offsets)

    def flat(self) -> np.ndarray:
        """The values of all cells of a text or array column, from the first cell's start."""
        assert self.offsets is not None
        if len(self.offsets) == 0:
            return self.values[:0]
        return self.values[self.offsets[0]:self.offsets[-1]]

    def slice(self, start: int, stop: int) -> ColumnData:
        nulls = None if self.nulls is None else self.nulls[start:stop]
        if self.kind == "scalar":
            return ColumnData(self.kind, self.values[start:stop], nulls)
        assert self.offsets is not None
        return ColumnData(self.kind, self.values, nulls, self.offsets[start:stop + 1])

    def cell(self, row: int) -> Any:
        """One cell as a Python value (None for null); for tests and small results."""
        if self.nulls is not None and self.nulls[row]:
            return None
        if self.kind == "scalar":
            value = self.values[row]
            if self.is_timestamp:
                return value.astype(dt.datetime).replace(tzinfo=dt.UTC)
            return value.item()
        assert self.offsets is not None
        part = self.values[self.offsets[row]:self.offsets[row + 1]]
        if self.kind == "text":
            return part.tobytes().decode("utf-8")
        return part.copy()


@dataclass(frozen=True, slots=True)
class ColumnBatch:
    columns: tuple[ColumnData, ...]
    n_rows: int

    def __post_init__(self) -> None:
        for index, column in enumerate(self.columns):
            if column.n_rows != self.n_rows:
                raise BatchError(
                    f"column {index} has {column.n_rows} rows, the batch {self.n_rows}"
                )

    @classmethod
    def of(cls, columns: Sequence[ColumnData]) -> ColumnBatch:
        n_rows = columns[0].n_rows if columns else 0
        return cls(tuple(columns), n_rows)

    def slice(self, start: int, stop: int) -> ColumnBatch:
        stop = min(stop, self.n_rows)
        start = min(start, stop)
        return ColumnBatch(tuple(c.slice(start, stop) for c in self.columns), stop - start)

    def rows(self) -> list[tuple[Any, ...]]:
        """All rows as tuples of Python values; for tests and small results only."""
        return [tuple(c.cell(i) for c in self.columns) for i in range(self.n_rows)]

    @classmethod
    def from_columns(cls, fields: Sequence[FieldSpec], columns: Sequence[Any]) -> ColumnBatch:
        """A batch from one Python sequence or numpy array per field (None for null)."""
        if len(fields) != len(columns):
            raise BatchError(f"{len(fields)} fields but {len(columns)} columns")
        built = [column_from_values(f, c) for f, c in zip(fields, columns, strict=True)]
        if not built:
            return cls((), 0)
        return cls.of(built)

    @classmethod
    def from_rows(cls, fields: Sequence[FieldSpec], rows: Iterable[Sequence[Any]]) -> ColumnBatch:
        rows = list(rows)
        for row in rows:
            if len(row) != len(fields):
                raise BatchError(f"a row has {len(row)} values for {len(fields)} fields")
        columns = [[row[i] for row in rows] for i in range(len(fields))]
        batch = cls.from_columns(fields, columns)
        if not fields:
            return cls((), len(rows))
        return batch


# -- building columns from Python values --------------------------------------------------------


def text_column(cells: Sequence[str | bytes | None]) -> ColumnData:
    encoded = [b"" if c is None else (c if isinstance(c, bytes) else str(c).encode("utf-8"))
               for c in cells]
    lengths = np.fromiter((len(c) for c in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    nulls = _nulls_of(cells)
    return ColumnData("text", values, nulls, offsets)


def array_column(cells: Sequence[Any], dtype: np.dtype) -> ColumnData:
    parts = [np.zeros(0, dtype) if c is None else np.asarray(c, dtype=dtype).ravel()
             for c in cells]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(parts) if parts else np.zeros(0, dtype)
    return ColumnData("array", values.astype(dtype, copy=False), _nulls_of(cells), offsets)


def _nulls_of(cells: Sequence[Any]) -> np.ndarray | None:
    nulls = np.fromiter((c is None for c in cells), dtype=bool, count=len(cells))
    return nulls if nulls.any() else None


def _to_datetime64(value: Any) -> np.datetime64:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(value, "us")
    if isinstance(value, dt.date):
        return np.datetime64(value, "D").astype(TIMESTAMP_DTYPE)
    if isinstance(value, str):
        return np.datetime64(value.rstrip("Z"), "us")
    return np.datetime64(value, "us")


def is_array_field(field: FieldSpec) -> bool:
    """True when a cell of the field is an array of numbers (not a string)."""
    return field.datatype not in TEXT_DATATYPES and field.arraysize is not None


def column_from_values(field: FieldSpec, data: Any) -> ColumnData:
    """One column for ``field`` from a numpy (masked) array or a sequence with None for null."""
    if isinstance(data, ColumnData):
        return data
    if field.datatype in TEXT_DATATYPES:
        if field.xtype == "timestamp":
            return _timestamp_column(data)
        return text_column(list(data))
    dtype = NUMPY_DTYPES.get(field.datatype)
    if dtype is None:
        raise BatchError(f"unsupported VOTable datatype {field.datatype!r} for {field.name}")
    if is_array_field(field):
        if isinstance(data, np.ndarray) and data.ndim == 2 and not np.ma.isMaskedArray(data):
            n, k = data.shape
            values = np.ascontiguousarray(data, dtype=dtype).ravel()
            return ColumnData("array", values, None, np.arange(n + 1, dtype=np.int64) * k)
        return array_column(list(data), dtype)
    if np.ma.isMaskedArray(data):
        mask = np.ma.getmaskarray(data)
        values = np.ma.getdata(data).astype(dtype, copy=False)
        return ColumnData("scalar", values, mask.copy() if mask.any() else None)
    if isinstance(data, np.ndarray):
        return ColumnData("scalar", data.astype(dtype, copy=False), None)
    cells = list(data)
    nulls = _nulls_of(cells)
    filler: Any = False if dtype.kind == "b" else (math.nan if dtype.kind in "fc" else 0)
    values = np.array([filler if c is None else c for c in cells], dtype=dtype)
    return ColumnData("scalar", values, nulls)


def _timestamp_column(data: Any) -> ColumnData:
    if isinstance(data, np.ndarray) and data.dtype.kind == "M" and not np.ma.isMaskedArray(data):
        values = data.astype(TIMESTAMP_DTYPE)
        nat = np.isnat(values)
        return ColumnData("scalar", values, nat if nat.any() else None)
    cells = list(data)
    nulls = _nulls_of(cells)
    values = np.array(
        [np.datetime64(0, "us") if c is None else _to_datetime64(c) for c in cells],
        dtype=TIMESTAMP_DTYPE,
    )
    return ColumnData("scalar", values, nulls)


# -- ragged helpers shared by the writers --------------------------------------------------------


def segment_gather_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices ``starts[0] .. starts[0]+lengths[0]-1, starts[1] ..`` in one array, no loop."""
    lengths = lengths.astype(np.int64, copy=False)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_starts = np.cumsum(lengths) - lengths
    return np.repeat(starts.astype(np.int64, copy=False) - out_starts, lengths) + np.arange(
        total, dtype=np.int64
    )


def ragged_to_padded(
    flat: np.ndarray, offsets: np.ndarray, width: int, fill: Any = 0
) -> np.ndarray:
    """Cells of a text/array column as a (rows, width) array: truncated or padded with fill."""
    n = len(offsets) - 1
    out = np.full((n, width), fill, dtype=flat.dtype)
    if n == 0 or width == 0:
        return out
    base = offsets[0]
    lengths = np.minimum(np.diff(offsets), width)
    source = segment_gather_index(offsets[:-1] - base, lengths)
    target = segment_gather_index(np.arange(n, dtype=np.int64) * width, lengths)
    out.reshape(-1)[target] = flat[source]
    return out
