"""Cell values shaped to a FIELD: the step every writer takes before serialising.

``conform`` brings a column to exactly what its FieldSpec declares (numeric type, fixed array
length, text for char fields), so the serialisers never guess. ``text_cells`` renders a column
as one string per cell, the way VOTable TABLEDATA (VOTable 1.4 section 6) and, after TAP 1.1
section 5, CSV and TSV write values: shortest round-trip numbers, NaN/+Inf/-Inf, ISO 8601
timestamps without a zone letter (DALI 1.1 section 3.3.3), arrays as blank-separated numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.columns import (
    NUMPY_DTYPES,
    TEXT_DATATYPES,
    TIMESTAMP_DTYPE,
    BatchError,
    ColumnData,
    ragged_to_padded,
    segment_gather_index,
    text_column,
)
from skyvault.vo.votable.document import Version, null_value_11


@dataclass(frozen=True)
class FieldPlan:
    """What a FIELD's datatype and arraysize mean for serialisation."""

    field: FieldSpec
    is_text: bool
    dtype: np.dtype | None
    """Native dtype of numbers (None for text)."""
    fixed_count: int | None
    """Elements (or bytes/code units for text) per cell when the arraysize is fixed."""
    max_count: int | None
    """Upper bound of a variable arraysize like ``10*``."""

    @property
    def is_scalar(self) -> bool:
        return not self.is_text and self.field.arraysize is None

    @property
    def is_variable(self) -> bool:
        return self.field.arraysize is not None and self.fixed_count is None

    @property
    def wire(self) -> np.dtype:
        """Big-endian dtype of one element (one byte of text; UTF-16 unit for unicodeChar)."""
        if self.field.datatype == "char":
            return np.dtype("u1")
        if self.field.datatype == "unicodeChar":
            return np.dtype(">u2")
        if self.field.datatype == "boolean":
            return np.dtype("u1")
        assert self.dtype is not None
        return self.dtype.newbyteorder(">")


@lru_cache(maxsize=4096)
def plan_for(field: FieldSpec) -> FieldPlan:
    is_text = field.datatype in TEXT_DATATYPES
    dtype = None if is_text else NUMPY_DTYPES.get(field.datatype)
    if not is_text and dtype is None:
        raise BatchError(f"unsupported VOTable datatype {field.datatype!r} for {field.name}")
    fixed_count = max_count = None
    if field.arraysize:
        dims = field.arraysize.replace(" ", "").split("x")
        if dims[-1].endswith("*"):
            bound = dims[-1][:-1]
            lead = math.prod(int(d) for d in dims[:-1]) if len(dims) > 1 else 1
            max_count = lead * int(bound) if bound else None
        else:
            fixed_count = math.prod(int(d) for d in dims)
    elif is_text:
        fixed_count = 1  # a lone char is one character
    return FieldPlan(field, is_text, dtype, fixed_count, max_count)


# -- conforming columns to fields ----------------------------------------------------------------


def conform(plan: FieldPlan, column: ColumnData) -> ColumnData:
    """The column in the form its field declares; raises BatchError when it cannot be."""
    if plan.is_text:
        if column.kind != "text":
            column = _as_text_column(plan, column)
        limit = plan.fixed_count or plan.max_count
        if plan.field.datatype == "char" and limit is not None:
            column = truncate_utf8(column, limit)
        return column
    assert plan.dtype is not None
    if column.kind == "text" or column.is_timestamp:
        raise BatchError(f"{plan.field.name}: {plan.field.datatype} field given text values")
    if plan.is_scalar:
        if column.kind != "scalar":
            raise BatchError(f"{plan.field.name}: scalar field given arrays")
        return ColumnData("scalar", _cast(column.values, plan.dtype), column.nulls)
    if column.kind == "scalar":
        values = _cast(column.values, plan.dtype)
        offsets = np.arange(len(values) + 1, dtype=np.int64)
        column = ColumnData("array", values, column.nulls, offsets)
    else:
        column = ColumnData("array", _cast(column.values, plan.dtype), column.nulls, column.offsets)
    if plan.fixed_count is not None:
        return _fixed_length(column, plan.fixed_count, plan.dtype)
    if plan.max_count is not None:
        return _bounded(column, plan.max_count)
    return column


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "b":
        return values.astype(bool, copy=False) if values.dtype.kind == "b" else values != 0
    return values.astype(dtype, copy=False)


def _fixed_length(column: ColumnData, count: int, dtype: np.dtype) -> ColumnData:
    assert column.offsets is not None
    lengths = column.lengths()
    if len(lengths) and bool((lengths == count).all()):
        return column
    fill = np.nan if dtype.kind in "fc" else 0
    padded = ragged_to_padded(column.flat(), column.offsets, count, fill)
    offsets = np.arange(len(lengths) + 1, dtype=np.int64) * count
    return ColumnData("array", padded.ravel(), column.nulls, offsets)


def _bounded(column: ColumnData, bound: int) -> ColumnData:
    assert column.offsets is not None
    lengths = column.lengths()
    if not len(lengths) or int(lengths.max()) <= bound:
        return column
    kept = np.minimum(lengths, bound)
    values = column.values[segment_gather_index(column.offsets[:-1], kept)]
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=offsets[1:])
    return ColumnData("array", values, column.nulls, offsets)


def ascii_text(column: ColumnData) -> ColumnData:
    """Text with every non-ASCII character replaced by ``?``: what a VOTable 1.4 ``char`` may
    hold (fields that can hold other text are declared ``unicodeChar``; this is the last guard
    for one that was not). Pure ASCII columns (the usual case) pass untouched."""
    flat = column.flat()
    if not len(flat) or int(flat.max()) < 0x80:
        return column
    nulls = column.null_mask().tolist()
    cells = decode_text(column)
    return text_column([None if null else cell.encode("ascii", "replace").decode("ascii")
                        for null, cell in zip(nulls, cells, strict=True)])


def truncate_utf8(column: ColumnData, limit: int) -> ColumnData:
    """Text cells cut to at most ``limit`` bytes, never inside a character (VOTable 1.4 2.1)."""
    assert column.offsets is not None
    lengths = column.lengths()
    if not len(lengths) or int(lengths.max()) <= limit:
        return column
    starts = column.offsets[:-1]
    kept = np.minimum(lengths, limit)
    for _ in range(3):
        cut = kept < lengths
        inside = np.zeros(len(kept), dtype=bool)
        inside[cut] = (column.values[starts[cut] + kept[cut]] & 0xC0) == 0x80
        if not inside.any():
            break
        kept = kept - inside
    values = column.values[segment_gather_index(starts, kept)]
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=offsets[1:])
    return ColumnData("text", values, column.nulls, offsets)


def _as_text_column(plan: FieldPlan, column: ColumnData) -> ColumnData:
    """Text for a char field given other values: timestamps become ISO 8601, numbers text."""
    strings, nulls = text_cells(column, booleans=("T", "F"))
    encoded = [s.encode("utf-8") for s in strings]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ColumnData("text", np.frombuffer(b"".join(encoded), dtype=np.uint8), nulls, offsets)


def null_tabledata(plan: FieldPlan, version: Version = "1.4") -> str:
    """The TD content of a null cell: empty (VOTable 1.4 section 5.1), except for
    floating-point arrays of a fixed size or a DALI geometry xtype, whose validators (STILTS
    votlint) insist on a value of the declared shape, and VOTable 1.1 integers, which hold
    their FIELD's declared NULL value. NaNs are the null such arrays can carry: a NaN point,
    circle or polygon (three NaN vertices, DALI's minimum) is no position at all."""
    declared = null_value_11(plan.field) if version == "1.1" else None
    if declared is not None:
        return declared
    if plan.is_text or plan.dtype is None or plan.dtype.kind not in "fc":
        return ""
    count = plan.fixed_count
    if count is None and version != "1.1":  # VOTable 1.1 has no xtype
        count = {"polygon": 6, "point": 2, "circle": 3, "interval": 2}.get(
            plan.field.xtype or "", 0)
    return " ".join(["NaN"] * count) if count and not plan.is_scalar else ""


# -- text rendering ------------------------------------------------------------------------------


def text_cells(
    column: ColumnData, *, booleans: tuple[str, str] = ("T", "F")
) -> tuple[list[str], np.ndarray | None]:
    """One string per cell and the null mask; the string of a null cell is unspecified."""
    if column.kind == "text":
        return decode_text(column), column.nulls
    if column.kind == "scalar":
        return scalar_strings(column.values, booleans), column.nulls
    assert column.offsets is not None
    flat = column.flat()
    elements = scalar_strings(flat, booleans)
    starts = (column.offsets[:-1] - column.offsets[0]).tolist()
    ends = (column.offsets[1:] - column.offsets[0]).tolist()
    join = " ".join
    return [join(elements[a:b]) for a, b in zip(starts, ends, strict=True)], column.nulls


def scalar_strings(values: np.ndarray, booleans: tuple[str, str] = ("T", "F")) -> list[str]:
    kind = values.dtype.kind
    if kind == "b":
        true, false = booleans
        return [true if v else false for v in values.tolist()]
    if kind in "iu":
        return list(map(str, values.tolist()))
    if kind == "M":
        return timestamp_strings(values)
    if kind == "f":
        if values.dtype.itemsize == 8:
            strings = list(map(repr, values.tolist()))
        else:
            # numpy prints the shortest repr of the float32 itself, not of its float64 widening.
            strings = values.astype(str).tolist()
        _fix_special(values, strings)
        return strings
    if kind == "c":
        real = scalar_strings(values.real.copy())
        imaginary = scalar_strings(values.imag.copy())
        return [f"{a} {b}" for a, b in zip(real, imaginary, strict=True)]
    raise BatchError(f"cannot render values of dtype {values.dtype}")


def _fix_special(values: np.ndarray, strings: list[str]) -> None:
    special = ~np.isfinite(values)
    if not special.any():
        return
    for index in np.flatnonzero(special).tolist():
        value = values[index]
        strings[index] = "NaN" if np.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def timestamp_strings(values: np.ndarray) -> list[str]:
    """ISO 8601 (DALI timestamp), with as many second decimals as the values need."""
    values = values.astype(TIMESTAMP_DTYPE, copy=False)
    micro = values.view(np.int64) % 1_000_000
    if not micro.any():
        unit = "s"
    elif not (micro % 1000).any():
        unit = "ms"
    else:
        unit = "us"
    return np.datetime_as_string(values, unit=unit).tolist()


def decode_text(column: ColumnData) -> list[str]:
    """The cells of a text column as str, decoding the whole buffer at once."""
    assert column.offsets is not None
    flat = column.flat()
    base = column.offsets[0]
    byte_offsets = column.offsets - base
    raw = flat.tobytes()
    if not len(flat) or int(flat.max()) < 0x80:
        text = raw.decode("ascii")
        offsets = byte_offsets.tolist()
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return [raw[a:b].decode("utf-8", "replace")
                    for a, b in zip(byte_offsets[:-1].tolist(), byte_offsets[1:].tolist(),
                                    strict=True)]
        continuation = (flat & 0xC0) == 0x80
        before = np.zeros(len(flat) + 1, dtype=np.int64)
        np.cumsum(continuation, out=before[1:])
        offsets = (byte_offsets - before[byte_offsets]).tolist()
    return [text[a:b] for a, b in pairwise(offsets)]


def text_needs(column: ColumnData, special: bytes) -> bool:
    """Whether any byte of a text column is one of ``special``."""
    flat = column.flat()
    if not len(flat):
        return False
    # A 256-entry table indexed by the bytes: ~20x cheaper than np.isin on the small columns
    # of a typical result (tens of rows), where the per-call cost is what counts.
    return bool(_byte_table(special)[flat].any())


@lru_cache(maxsize=16)
def _byte_table(special: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(special, dtype=np.uint8)] = True
    return table
