"""The streaming VOTable writer: BINARY2 (the default) or TABLEDATA.

The document is produced as a sequence of byte chunks while the batches arrive, so a result of
any size goes out in bounded memory. Whatever is only known at the end (the row limit was hit,
the source failed) is reported after the TABLE as DALI 1.1 section 4.4 allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.binary import Base64Lines, binary2_rows
from skyvault.vo.votable.cells import (
    FieldPlan,
    ascii_text,
    conform,
    plan_for,
    text_cells,
    text_needs,
)
from skyvault.vo.votable.columns import ColumnBatch, ColumnData
from skyvault.vo.votable.document import Info, document_tail, escape_text, table_head
from skyvault.vo.votable.streaming import (
    Overflow,
    WriteStats,
    error_message,
    limited,
    overflowed,
)

Serialization = Literal["BINARY2", "TABLEDATA"]
CHUNK_BYTES = 1 << 16
# Bytes after which a text cell must be escaped for XML: markup, CR, control characters, and
# the lead byte of U+FFFE/U+FFFF.
_XML_SPECIAL = b"&<>\r\xef" + bytes(range(0, 9)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))


def write_votable(
    fields: Sequence[FieldSpec],
    batches: Iterable[ColumnBatch],
    *,
    serialization: Serialization = "BINARY2",
    infos: Sequence[Info] = (),
    overflow: Overflow = False,
    limit: int | None = None,
    stats: WriteStats | None = None,
    table_name: str | None = None,
    description: str | None = None,
    errors: Literal["report", "raise"] = "report",
    utf8_char: bool = False,
    trailer: str = "",
) -> Iterator[bytes]:
    """A VOTable 1.4 result document, chunk by chunk.

    ``infos`` follow ``QUERY_STATUS=OK`` before the TABLE (e.g. ``("QUERY", adql, None)``,
    ``("standardID", "ivo://ivoa.net/std/TAP", None)``). At most ``limit`` rows are written;
    when more arrive, or ``overflow`` is (or returns) True at the end, an OVERFLOW INFO follows
    the table. With ``errors="report"`` an exception from ``batches`` ends the data cleanly and
    becomes an ERROR INFO after the table (also recorded in ``stats.error``); with ``"raise"``
    it propagates. ``trailer`` (XML of further RESOURCEs) follows the results RESOURCE.

    ``char`` holds ASCII in VOTable 1.4 (section 2.1), and astropy and STILTS 3.4 read BINARY2
    char cells as ASCII/Latin-1: non-ASCII characters in char fields are written as ``?``.
    Fields that may hold other text should be declared ``unicodeChar``. ``utf8_char=True``
    writes UTF-8 instead, as VOTable 1.6 allows.
    """
    serialization = serialization.upper()  # type: ignore[assignment]
    if serialization not in ("BINARY2", "TABLEDATA"):
        raise ValueError(f"unsupported serialization {serialization}")
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(field) for field in fields]
    head = table_head(fields, infos=infos, table_name=table_name, description=description)
    binary = serialization == "BINARY2"
    head += ('<DATA><BINARY2><STREAM encoding="base64">\n' if binary else "<DATA><TABLEDATA>\n")
    return _coalesce(_document(plans, batches, head, binary, overflow, limit, stats, errors,
                               utf8_char, trailer))


def _document(
    plans: Sequence[FieldPlan],
    batches: Iterable[ColumnBatch],
    head: str,
    binary: bool,
    overflow: Overflow,
    limit: int | None,
    stats: WriteStats,
    errors: str,
    utf8_char: bool,
    trailer: str,
) -> Iterator[bytes]:
    yield head.encode("utf-8")
    encoder = Base64Lines()
    try:
        for batch in limited(batches, limit, stats):
            if not utf8_char:
                batch = ascii_chars(plans, batch)
            if binary:
                yield encoder.feed(binary2_rows(plans, batch))
            else:
                yield tabledata_rows(plans, batch).encode("utf-8")
    except Exception as error:
        if errors == "raise":
            raise
        stats.error = error_message(error)
    if binary:
        closing = encoder.finish() + b"</STREAM></BINARY2></DATA>\n"
    else:
        closing = b"</TABLEDATA></DATA>\n"
    tail = document_tail(overflow=overflowed(stats, overflow), error=stats.error,
                         trailer=trailer)
    yield closing + tail.encode("utf-8")


def ascii_chars(plans: Sequence[FieldPlan], batch: ColumnBatch) -> ColumnBatch:
    """The batch with the text of ``char`` fields reduced to ASCII (``?`` for the rest)."""
    columns = [ascii_text(column) if plan.field.datatype == "char" and column.kind == "text"
               else column for plan, column in zip(plans, batch.columns, strict=True)]
    return ColumnBatch(tuple(columns), batch.n_rows)


def _coalesce(chunks: Iterator[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Small chunks merged up to ``size`` bytes, so HTTP sees few, reasonably large writes."""
    pending: list[bytes] = []
    pending_bytes = 0
    for chunk in chunks:
        if not chunk:
            continue
        if len(chunk) >= size and not pending:
            yield chunk
            continue
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= size:
            yield b"".join(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield b"".join(pending)


def tabledata_cells(plan: FieldPlan, column: ColumnData) -> list[str]:
    """One TD content per row: escaped for XML, empty for NULL (VOTable 1.4 section 5.1)."""
    column = conform(plan, column)
    strings, nulls = text_cells(column, booleans=("T", "F"))
    if column.kind == "text" and text_needs(column, _XML_SPECIAL):
        strings = [escape_text(s) for s in strings]
    if plan.field.datatype == "unicodeChar" and column.kind == "text":
        flat = column.flat()
        if len(flat) and int(flat.max()) >= 0xF0:  # non-BMP characters are not allowed
            strings = ["".join(c if ord(c) < 0x10000 else "\ufffd" for c in s) for s in strings]
    if nulls is not None:
        empty = _null_td(plan)
        for index in np.flatnonzero(nulls).tolist():
            strings[index] = empty
    return strings


def _null_td(plan: FieldPlan) -> str:
    """The TD content of a null cell: empty (section 5.1), except for floating-point arrays of
    a fixed size or a DALI geometry xtype, whose validators (STILTS votlint) insist on a value
    of the declared shape. NaNs are the null such arrays can carry: a NaN point, circle or
    polygon (three NaN vertices, DALI's minimum) is no position at all."""
    if plan.is_text or plan.dtype is None or plan.dtype.kind not in "fc":
        return ""
    count = plan.fixed_count
    if count is None:
        count = {"polygon": 6, "point": 2, "circle": 3, "interval": 2}.get(
            plan.field.xtype or "", 0)
    return " ".join(["NaN"] * count) if count and not plan.is_scalar else ""


def tabledata_rows(plans: Sequence[FieldPlan], batch: ColumnBatch) -> str:
    columns = [tabledata_cells(plan, column)
               for plan, column in zip(plans, batch.columns, strict=True)]
    template = "<TR>" + "<TD>{}</TD>" * len(columns) + "</TR>\n"
    return "".join(map(template.format, *columns))
