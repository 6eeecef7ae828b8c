"""Row bytes of the VOTable BINARY2 serialisation, built a whole batch at a time.

BINARY2 (VOTable 1.4 section 5.5) writes each row as null flags (one bit per column, most
significant bit first) followed by each cell big-endian: fixed cells at their width, variable
cells as a 4-byte element count and the elements. Nothing here loops over rows:

- consecutive fixed-width cells (the flags and the count words included) are written into one
  structured numpy array per run, so a table of numbers is a single array assignment per column;
- variable cells (text, polygons) are stitched between the runs with one gather whose index is
  built by ``segment_gather_index``.

The inline stream is base64 (section 5.6) in 76-character lines; ``Base64Lines`` carries the
last partial group of 57 bytes over to the next batch so the stream is continuous.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skyvault.vo.votable.cells import FieldPlan, conform
from skyvault.vo.votable.columns import (
    ColumnBatch,
    ColumnData,
    ragged_to_padded,
    segment_gather_index,
)

_NON_BMP = re.compile("[\U00010000-\U0010ffff]")

try:  # SIMD base64, five times binascii's speed here; binascii gives the same bytes
    from pybase64 import b64encode as _b64encode
except ImportError:  # pragma: no cover - pybase64 is a dependency; stay usable without it

    def _b64encode(data) -> bytes:
        return binascii.b2a_base64(data, newline=False)


@dataclass(frozen=True)
class Fixed:
    """A cell of the same width in every row: ``values`` has one (sub)array per row."""

    dtype: np.dtype | tuple
    values: np.ndarray


@dataclass(frozen=True)
class Variable:
    """A variable-length cell: element count per row, and the bytes of all rows' elements."""

    counts: np.ndarray
    data: np.ndarray
    byte_lengths: np.ndarray


def utf16_cells(column: ColumnData) -> tuple[np.ndarray, np.ndarray]:
    """unicodeChar cells: big-endian UTF-16 units of all cells, and units per cell.

    Characters outside the Basic Multilingual Plane are not allowed in unicodeChar (VOTable
    1.4 section 2.1); they become U+FFFD, so one character is one unit.
    """
    assert column.offsets is not None
    flat = column.flat()
    base = column.offsets[0]
    starts, ends = column.offsets[:-1] - base, column.offsets[1:] - base
    if not len(flat) or int(flat.max()) < 0x80:
        units = np.zeros(len(flat), dtype=">u2")
        units[:] = flat
        return units, ends - starts
    text = flat.tobytes().decode("utf-8", "replace")
    if int(flat.max()) >= 0xF0:
        text = _NON_BMP.sub("\ufffd", text)
    units = np.frombuffer(text.encode("utf-16-be"), dtype=">u2")
    lead = (flat & 0xC0) != 0x80
    before = np.zeros(len(flat) + 1, dtype=np.int64)
    np.cumsum(lead, out=before[1:])
    return units, before[ends] - before[starts]


def _without_null_cells(column: ColumnData) -> ColumnData:
    """Null cells emptied, so they are written as zero-length values (section 5.5 advice)."""
    if column.nulls is None or column.kind == "scalar":
        return column
    assert column.offsets is not None
    lengths = column.lengths()
    if not lengths[column.nulls].any():
        return column
    kept = np.where(column.nulls, 0, lengths)
    values = column.values[segment_gather_index(column.offsets[:-1], kept)]
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=offsets[1:])
    return ColumnData(column.kind, values, column.nulls, offsets)


def _null_filled(values: np.ndarray, nulls: np.ndarray | None) -> np.ndarray:
    if nulls is None or not nulls.any():
        return values
    filled = values.copy()
    filled[nulls] = np.nan if values.dtype.kind in "fc" else 0
    return filled


def _booleans(values: np.ndarray) -> np.ndarray:
    return np.where(values, np.uint8(ord("T")), np.uint8(ord("F")))


def binary_cell(plan: FieldPlan, column: ColumnData) -> Fixed | Variable:
    """One column of a batch as BINARY/BINARY2 cells (NULL cells zero-filled or NaN)."""
    column = conform(plan, column)
    datatype = plan.field.datatype
    if plan.is_text:
        column = _without_null_cells(column)
        if datatype == "unicodeChar":
            data, counts = utf16_cells(column)
        else:
            data, counts = column.flat(), column.lengths()
        if plan.fixed_count is not None:
            offsets = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            padded = ragged_to_padded(data, offsets, plan.fixed_count, 0)
            return Fixed((plan.wire, (plan.fixed_count,)), padded)
        if plan.max_count is not None and datatype == "unicodeChar" and len(counts) and \
                int(counts.max()) > plan.max_count:
            offsets = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            kept = np.minimum(counts, plan.max_count)
            data = data[segment_gather_index(offsets[:-1], kept)]
            counts = kept
        raw = np.ascontiguousarray(data).view(np.uint8)
        return Variable(counts, raw, counts * plan.wire.itemsize)
    if plan.is_scalar:
        if datatype == "boolean":
            values = _booleans(column.values)
            if column.nulls is not None:
                values[column.nulls] = 0
            return Fixed(plan.wire, values)
        return Fixed(plan.wire, _null_filled(column.values, column.nulls))
    if plan.fixed_count is None:
        column = _without_null_cells(column)
    flat = column.flat()
    elements = _booleans(flat) if datatype == "boolean" else flat
    if plan.fixed_count is not None:
        count = plan.fixed_count
        matrix = elements.reshape(-1, count) if count else elements.reshape(column.n_rows, 0)
        if column.nulls is not None and column.nulls.any():
            matrix = matrix.copy()
            matrix[column.nulls] = 0 if datatype == "boolean" else (
                np.nan if matrix.dtype.kind in "fc" else 0)
        return Fixed((plan.wire, (count,)), matrix)
    counts = column.lengths()
    raw = np.ascontiguousarray(elements.astype(plan.wire, copy=False)).view(np.uint8)
    return Variable(counts, raw, counts * plan.wire.itemsize)


def pack_fixed(parts: Sequence[tuple[np.dtype | tuple, np.ndarray]], n_rows: int) -> np.ndarray:
    """Fixed-width cells side by side: an (n_rows, width) uint8 array, big-endian values."""
    names, formats, offsets = [], [], []
    position = 0
    for index, (dtype, _) in enumerate(parts):
        names.append(f"f{index}")
        formats.append(dtype)
        offsets.append(position)
        position += np.dtype(dtype).itemsize
    record = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                       "itemsize": position})
    rows = np.empty(n_rows, dtype=record)
    for name, (_, values) in zip(names, parts, strict=True):
        rows[name] = values
    return rows.view(np.uint8).reshape(n_rows, position)


def assemble_rows(
    cells: Sequence[Fixed | Variable],
    n_rows: int,
    prefix: tuple[np.dtype | tuple, np.ndarray] | None = None,
    *,
    count_words: bool = True,
) -> np.ndarray:
    """All rows' bytes (uint8), cells in order, each variable cell after its count word."""
    pieces: list[np.ndarray] = []  # alternate: fixed run (n, w) matrices and variable data
    lengths: list[np.ndarray | int] = []
    run: list[tuple[np.dtype | tuple, np.ndarray]] = [prefix] if prefix is not None else []
    for cell in cells:
        if isinstance(cell, Fixed):
            run.append((cell.dtype, cell.values))
            continue
        if count_words:
            run.append((np.dtype(">i4"), cell.counts))
        if run:
            block = pack_fixed(run, n_rows)
            pieces.append(block)
            lengths.append(block.shape[1])
        run = []
        pieces.append(cell.data)
        lengths.append(cell.byte_lengths)
    if run:
        block = pack_fixed(run, n_rows)
        pieces.append(block)
        lengths.append(block.shape[1])
    if len(pieces) == 1 and isinstance(lengths[0], int):
        return pieces[0].reshape(-1)
    # Row r is piece 0's row r, then piece 1's row r, ...: one gather stitches them together.
    sources, starts, sizes = [], [], []
    base = 0
    for piece, length in zip(pieces, lengths, strict=True):
        flat = piece.reshape(-1)
        sources.append(flat)
        if isinstance(length, int):
            starts.append(base + np.arange(n_rows, dtype=np.int64) * length)
            sizes.append(np.full(n_rows, length, dtype=np.int64))
        else:
            begin = np.zeros(n_rows, dtype=np.int64)
            np.cumsum(length[:-1], out=begin[1:])
            starts.append(base + begin)
            sizes.append(length.astype(np.int64, copy=False))
        base += len(flat)
    source = np.concatenate(sources) if len(sources) > 1 else sources[0]
    index = segment_gather_index(np.stack(starts, axis=1).reshape(-1),
                                 np.stack(sizes, axis=1).reshape(-1))
    return source[index]


def null_flags(columns: Sequence[ColumnData], n_rows: int) -> np.ndarray:
    """BINARY2 null flags: (n_rows, ceil(ncols/8)) bytes, first column in the top bit."""
    width = (len(columns) + 7) // 8
    nullable = [(i, c.nulls) for i, c in enumerate(columns) if c.nulls is not None]
    if not nullable:
        return np.zeros((n_rows, width), dtype=np.uint8)
    flags = np.zeros((n_rows, width), dtype=np.uint8)
    for index, nulls in nullable:
        flags[:, index // 8] |= nulls.view(np.uint8) << np.uint8(7 - index % 8)
    return flags


def binary2_rows(plans: Sequence[FieldPlan], batch: ColumnBatch) -> np.ndarray:
    cells = [binary_cell(plan, column)
             for plan, column in zip(plans, batch.columns, strict=True)]
    flags = null_flags(batch.columns, batch.n_rows)
    return assemble_rows(cells, batch.n_rows, (np.dtype(("u1", (flags.shape[1],))), flags))


class Base64Lines:
    """Base64 of a byte stream in 76-character lines, fed in pieces of any size."""

    GROUP = 57  # input bytes per output line

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes | np.ndarray) -> bytes:
        raw = memoryview(np.ascontiguousarray(data) if isinstance(data, np.ndarray) else data)
        raw = raw.cast("B")
        pieces = []
        if self._carry:
            # Complete the carried partial line with the head of the new data.
            head = min(self.GROUP - len(self._carry), len(raw))
            self._carry += raw[:head].tobytes()
            raw = raw[head:]
            if len(self._carry) < self.GROUP:
                return b""
            pieces.append(binascii.b2a_base64(self._carry, newline=True))
            self._carry = b""
        usable = len(raw) - len(raw) % self.GROUP
        self._carry = raw[usable:].tobytes()
        if usable:
            encoded = np.frombuffer(_b64encode(raw[:usable]), dtype=np.uint8)
            lines = np.empty((usable // self.GROUP, 77), dtype=np.uint8)
            lines[:, :76] = encoded.reshape(-1, 76)
            lines[:, 76] = 0x0A
            pieces.append(lines.tobytes())
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    def finish(self) -> bytes:
        if not self._carry:
            return b""
        carry, self._carry = self._carry, b""
        return binascii.b2a_base64(carry, newline=True)
