"""FITS binary table output (FITS 4.0 section 7.3), spooled so it can stream.

A BINTABLE header states the row count (NAXIS2), the row width (which depends on the longest
string) and the heap size before any row, while a result only reveals them at its end. The
design: the writer first spools the (conformed) batches to a temporary file, counting rows and
measuring strings and arrays, then writes the header and streams the rows back from the spool,
followed by the heap of variable-length arrays. Memory stays bounded; disk holds one copy of the
result; the first byte leaves after the query has finished. A failure of the source therefore
raises before anything was sent, so the caller can still answer with an error document.

Mapping: short/int/long/float/double/unsignedByte/boolean -> I/J/K/E/D/B/L; text (and DALI
timestamps) -> ``nA`` of the longest value in bytes, written as UTF-8; fixed arrays -> ``nX``;
variable arrays (polygons) -> ``1PX(max)`` descriptors into the heap.

Text: FITS 4.0 section 7.3.3.1 defines ``A`` columns as ASCII, which every ASCII value still
is. Other characters are written as UTF-8 with ``n`` counting bytes, the convention the FITS
community is adopting for BINTABLE strings (fitsbits, "UTF-8 in BINTABLE String Columns",
March-April 2026, solution 1, as VOTable 1.6 ``char``: VizieR writes it, astropy reads it back
as text, TOPCAT/STILTS have it in prototype; STILTS 3.4.7 still shows each byte as a
character), rather than a ``?`` per character that no reader could undo. A COMMENT card says
so. NULL: NaN for floats, TNULLn (a value the column does not use) for integers, 0 for
logicals, empty for strings. Units, UCDs, utypes and descriptions go into TUNITn, TUCDn, TUTYPn
and TCOMMn. A truncated result carries ``OVERFLOW = T``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.binary import Fixed, assemble_rows
from skyvault.vo.votable.cells import FieldPlan, conform, plan_for
from skyvault.vo.votable.columns import (
    ColumnBatch,
    ColumnData,
    ragged_to_padded,
    segment_gather_index,
)
from skyvault.vo.votable.document import Info
from skyvault.vo.votable.streaming import Overflow, WriteStats, limited, overflowed

BLOCK = 2880
_CODES = {"boolean": "L", "unsignedByte": "B", "short": "I", "int": "J", "long": "K",
          "float": "E", "double": "D", "floatComplex": "C", "doubleComplex": "M"}


class FitsError(ValueError):
    """A result that cannot be written as a FITS binary table."""


@dataclass
class _Measure:
    """What the first pass learns about one column."""

    max_bytes: int = 0
    max_count: int = 0
    heap_elements: int = 0
    has_nulls: bool = False
    used: set[int] = field(default_factory=set)
    """Which of the candidate TNULL values the column holds."""


@dataclass
class _Spool:
    path: Path
    batches: int = 0
    rows: int = 0
    measures: list[_Measure] = field(default_factory=list)


def _save(handle, column: ColumnData) -> None:
    np.save(handle, column.values, allow_pickle=False)
    np.save(handle, column.null_mask(), allow_pickle=False)
    np.save(handle, column.offsets if column.offsets is not None else np.zeros(0, np.int64),
            allow_pickle=False)


def _load(handle, kind: str) -> ColumnData:
    values = np.load(handle, allow_pickle=False)
    nulls = np.load(handle, allow_pickle=False)
    offsets = np.load(handle, allow_pickle=False)
    return ColumnData(kind, values, nulls if nulls.any() else None,  # type: ignore[arg-type]
                      offsets if kind != "scalar" else None)


def _spool(plans: Sequence[FieldPlan], batches: Iterable[ColumnBatch], limit: int | None,
           stats: WriteStats, directory: str | None) -> tuple[_Spool, list[str]]:
    # Kept after closing (delete=False): the second pass reopens it; _emit removes it.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        prefix="skyvault-fits-", suffix=".npy", dir=directory, delete=False)
    spool = _Spool(Path(handle.name), measures=[_Measure() for _ in plans])
    kinds: list[str] = ["scalar"] * len(plans)
    try:
        _fill_spool(plans, batches, limit, stats, handle, spool, kinds)
    except BaseException:
        handle.close()
        spool.path.unlink(missing_ok=True)
        raise
    return spool, kinds


def _fill_spool(plans, batches, limit, stats, handle, spool: _Spool, kinds: list[str]) -> None:
    with handle:
        for batch in limited(batches, limit, stats):
            for index, (plan, column) in enumerate(zip(plans, batch.columns, strict=True)):
                column = conform(plan, column)
                kinds[index] = column.kind
                _measure(spool.measures[index], column)
                _save(handle, column)
            spool.batches += 1
            spool.rows += batch.n_rows


def _measure(measure: _Measure, column: ColumnData) -> None:
    nulls = column.null_mask()
    measure.has_nulls |= bool(nulls.any())
    if column.kind == "text":
        lengths = column.lengths()
        if len(lengths):
            measure.max_bytes = max(measure.max_bytes, int(lengths.max()))
    elif column.kind == "array":
        lengths = np.where(nulls, 0, column.lengths())
        if len(lengths):
            measure.max_count = max(measure.max_count, int(lengths.max()))
        measure.heap_elements += int(lengths.sum())
    elif column.values.dtype.kind in "iu" and len(column.values):
        candidates = _null_candidates(column.values.dtype)
        present = column.values[~nulls]
        hits = np.isin(np.array(candidates, dtype=column.values.dtype), present)
        measure.used.update(c for c, hit in zip(candidates, hits.tolist(), strict=True) if hit)


def _tnull(dtype: np.dtype, measure: _Measure) -> int | None:
    """An integer the column never holds, to stand for NULL (FITS 7.3.2)."""
    if not measure.has_nulls:
        return None
    for candidate in _null_candidates(dtype):
        if candidate not in measure.used:
            return candidate
    raise FitsError("an integer column with NULLs uses every candidate null value")


def _null_candidates(dtype: np.dtype) -> list[int]:
    info = np.iinfo(dtype)
    low, high = int(info.min), int(info.max)
    return [low, high, low + 1, high - 1, low + 2, high - 2, -1, 0]


@dataclass(frozen=True)
class _Layout:
    tform: str
    width: int
    tnull: int | None = None
    heap_itemsize: int = 0


def _layouts(plans: Sequence[FieldPlan], measures: Sequence[_Measure]) -> list[_Layout]:
    layouts = []
    for plan, measure in zip(plans, measures, strict=True):
        if plan.is_text:
            width = max(measure.max_bytes, 1)
            layouts.append(_Layout(f"{width}A", width))
            continue
        code = _CODES[plan.field.datatype]
        assert plan.dtype is not None
        itemsize = 1 if code == "L" else plan.dtype.itemsize
        tnull = _tnull(plan.dtype, measure) if plan.dtype.kind in "iu" else None
        if plan.is_scalar:
            layouts.append(_Layout(code, itemsize, tnull))
        elif plan.fixed_count is not None:
            layouts.append(_Layout(f"{plan.fixed_count}{code}", plan.fixed_count * itemsize,
                                   tnull))
        else:
            layouts.append(_Layout(f"1P{code}({measure.max_count})", 8, None, itemsize))
    return layouts


def _card(key: str, value: object = None, comment: str = "") -> str:
    if value is None:
        text = key.ljust(8)
    else:
        if isinstance(value, bool):
            rendered = ("T" if value else "F").rjust(20)
        elif isinstance(value, int):
            rendered = str(value).rjust(20)
        else:
            clean = str(value).encode("ascii", "replace").decode("ascii")
            clean = "".join(c if " " <= c <= "~" else " " for c in clean)
            clean = clean.replace("'", "''")[:66].rstrip("'")
            if clean.count("'") % 2:  # a doubled quote cut in half
                clean = clean[:-1]
            rendered = f"'{clean.ljust(8)}'"
        text = f"{key.ljust(8)}= {rendered}"
        if comment:
            text += " / " + comment
    return text[:80].ljust(80)


UTF8_NOTE = "Character columns (TFORMn = rA) hold UTF-8 text; r counts bytes."


def _comment(text: str) -> str:
    """A COMMENT card (FITS headers are ASCII: other characters become ``?``)."""
    text = text.encode("ascii", "replace").decode("ascii")
    text = "".join(c if " " <= c <= "~" else " " for c in text)
    return ("COMMENT " + text)[:80].ljust(80)


def _pad(text: str, fill: str = " ") -> bytes:
    data = text.encode("ascii")
    remainder = len(data) % BLOCK
    return data + (fill.encode("ascii") * (BLOCK - remainder) if remainder else b"")


def _headers(fields: Sequence[FieldSpec], layouts: Sequence[_Layout], rows: int, heap: int,
             overflow: bool, infos: Sequence[Info]) -> bytes:
    primary = [_card("SIMPLE", True, "conforms to FITS standard"), _card("BITPIX", 8),
               _card("NAXIS", 0), _card("EXTEND", True), _card("END")]
    width = sum(layout.width for layout in layouts)
    cards = [
        _card("XTENSION", "BINTABLE", "binary table extension"), _card("BITPIX", 8),
        _card("NAXIS", 2), _card("NAXIS1", width, "bytes per row"),
        _card("NAXIS2", rows, "rows"), _card("PCOUNT", heap, "heap bytes"),
        _card("GCOUNT", 1), _card("TFIELDS", len(fields)), _card("EXTNAME", "RESULTS"),
    ]
    for index, (spec, layout) in enumerate(zip(fields, layouts, strict=True), start=1):
        cards.append(_card(f"TTYPE{index}", spec.name))
        cards.append(_card(f"TFORM{index}", layout.tform))
        if layout.tnull is not None:
            cards.append(_card(f"TNULL{index}", layout.tnull))
        for key, value in (("TUNIT", spec.unit), ("TUCD", spec.ucd), ("TUTYP", spec.utype),
                           ("TCOMM", spec.description)):
            if value:
                cards.append(_card(f"{key}{index}", value))
    if overflow:
        cards.append(_card("OVERFLOW", True, "truncated at the row limit (DALI MAXREC)"))
    if any(layout.tform.endswith("A") for layout in layouts):
        cards.append(_comment(UTF8_NOTE))
    for name, value, _ in infos:
        cards.append(_comment(f"{name} = {value}"))
    cards.append(_card("END"))
    return _pad("".join(primary)) + _pad("".join(cards))


def _row_cells(plans: Sequence[FieldPlan], layouts: Sequence[_Layout],
               columns: Sequence[ColumnData], heap_at: list[int]) -> list[Fixed]:
    cells: list[Fixed] = []
    for plan, layout, column in zip(plans, layouts, columns, strict=True):
        nulls = column.nulls
        if column.kind == "text":
            assert column.offsets is not None
            padded = ragged_to_padded(column.flat(), column.offsets, layout.width, 0x20)
            if nulls is not None:
                padded[nulls] = 0x20
            cells.append(Fixed(("u1", (layout.width,)), padded))
            continue
        if column.kind == "array" and plan.fixed_count is None:
            lengths = np.where(column.null_mask(), 0, column.lengths()).astype(np.int64)
            start = np.zeros(len(lengths), dtype=np.int64)
            np.cumsum(lengths[:-1], out=start[1:])
            # The heap holds, batch after batch, each variable column's elements in field order.
            descriptors = np.stack([lengths, heap_at[0] + start * layout.heap_itemsize], 1)
            heap_at[0] += int(lengths.sum()) * layout.heap_itemsize
            cells.append(Fixed((">i4", (2,)), descriptors))
            continue
        values = column.values if column.kind == "scalar" else column.flat()
        if plan.field.datatype == "boolean":
            encoded = np.where(values, np.uint8(ord("T")), np.uint8(ord("F")))
            fill: object = 0
        else:
            encoded = values.astype(plan.wire, copy=nulls is not None)
            fill = np.nan if encoded.dtype.kind in "fc" else layout.tnull
        if column.kind == "array":
            encoded = encoded.reshape(-1, plan.fixed_count or 0)
        if nulls is not None and nulls.any():
            encoded = encoded.copy() if plan.field.datatype == "boolean" else encoded
            encoded[nulls] = fill
        dtype = encoded.dtype if column.kind == "scalar" else (encoded.dtype,
                                                               (plan.fixed_count,))
        cells.append(Fixed(dtype, encoded))
    return cells


def write_fits(
    fields: Sequence[FieldSpec],
    batches: Iterable[ColumnBatch],
    *,
    infos: Sequence[Info] = (),
    overflow: Overflow = False,
    limit: int | None = None,
    stats: WriteStats | None = None,
    spool_directory: str | None = None,
) -> Iterator[bytes]:
    """A FITS file (empty primary HDU + one BINTABLE), spooled to disk first (module doc).

    The first chunk comes only once the whole result is spooled, so an error of the source
    raises from the first ``next()``, before any byte was produced.
    """
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(f) for f in fields]
    spool, kinds = _spool(plans, batches, limit, stats, spool_directory)
    yield from _emit(fields, plans, spool, kinds, infos, overflowed(stats, overflow))


def _emit(fields, plans, spool: _Spool, kinds, infos, overflow: bool) -> Iterator[bytes]:
    try:
        layouts = _layouts(plans, spool.measures)
        heap = sum(m.heap_elements * layout.heap_itemsize
                   for m, layout in zip(spool.measures, layouts, strict=True))
        yield _headers(fields, layouts, spool.rows, heap, overflow, infos)
        written = 0
        heap_at = [0]
        with open(spool.path, "rb") as handle:
            for _ in range(spool.batches):
                columns = [_load(handle, kind) for kind in kinds]
                cells = _row_cells(plans, layouts, columns, heap_at)
                data = assemble_rows(cells, columns[0].n_rows if columns else 0)
                written += len(data)
                yield data.tobytes()
        with open(spool.path, "rb") as handle:
            for _ in range(spool.batches):
                columns = [_load(handle, kind) for kind in kinds]
                for plan, column in zip(plans, columns, strict=True):
                    if column.kind == "array" and plan.fixed_count is None:
                        present = _heap_values(column)
                        encoded = present.astype(plan.wire) if plan.field.datatype != "boolean" \
                            else np.where(present, np.uint8(ord("T")), np.uint8(ord("F")))
                        written += encoded.nbytes
                        yield encoded.tobytes()
        remainder = written % BLOCK
        if remainder:
            yield bytes(BLOCK - remainder)
    finally:
        with contextlib.suppress(OSError):
            spool.path.unlink()


def _heap_values(column: ColumnData) -> np.ndarray:
    assert column.offsets is not None
    lengths = np.where(column.null_mask(), 0, column.lengths())
    return column.values[segment_gather_index(column.offsets[:-1], lengths)]
