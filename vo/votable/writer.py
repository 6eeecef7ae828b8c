"""The streaming VOTable writer: BINARY2 (the default) or TABLEDATA, VOTable 1.4 or 1.1.

Every VOTable result document of the services comes from ``write_votable``: TAP's, SIA's, Simple
Cone Search's (VOTable 1.1) and DataLink's. The document is produced as a sequence of byte
chunks while the batches arrive, so a result of any size goes out in bounded memory. Whatever is
only known at the end (the row limit was hit, the source failed) is reported after the TABLE as
DALI 1.1 section 4.4 allows.

Batches are ``ColumnBatch`` (cells rendered here, ``cells``' rules) or, for TABLEDATA only,
``RenderedRows`` whose cells PostgreSQL rendered by the same rules (``sqlrows``, the fast path
of small answers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.binary import Base64Lines, binary2_rows
from skyvault.vo.votable.cells import (
    FieldPlan,
    ascii_text,
    conform,
    null_tabledata,
    plan_for,
    text_cells,
    text_needs,
)
from skyvault.vo.votable.columns import ColumnBatch, ColumnData
from skyvault.vo.votable.document import (
    Info,
    Version,
    document_tail,
    escape_text,
    table_head,
)
from skyvault.vo.votable.sqlrows import RenderedRows
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
    version: Version = "1.4",
    resource_name: str | None = None,
) -> Iterator[bytes]:
    """A VOTable 1.4 (or ``version="1.1"``, TABLEDATA only) result document, chunk by chunk.

    ``infos`` follow ``QUERY_STATUS=OK`` before the TABLE (e.g. ``("QUERY", adql, None)``,
    ``("standardID", "ivo://ivoa.net/std/TAP", None)``). At most ``limit`` rows are written;
    when more arrive, or ``overflow`` is (or returns) True at the end, an OVERFLOW INFO follows
    the table. With ``errors="report"`` an exception from ``batches`` ends the data cleanly and
    becomes an ERROR INFO after the table (also recorded in ``stats.error``); with ``"raise"``
    it propagates. ``trailer`` (XML of further RESOURCEs) follows the results RESOURCE.

    VOTable 1.1 allows no INFO after a TABLE: a 1.1 document reads all its rows (at most
    ``limit`` + 1) before it starts, and puts the OVERFLOW or ERROR status after
    ``QUERY_STATUS=OK``, before the TABLE.

    ``char`` holds ASCII in VOTable 1.4 (section 2.1), and astropy and STILTS 3.4 read BINARY2
    char cells as ASCII/Latin-1: non-ASCII characters in char fields are written as ``?``.
    Fields that may hold other text should be declared ``unicodeChar``. ``utf8_char=True``
    writes UTF-8 instead, as VOTable 1.6 allows.
    """
    serialization = serialization.upper()  # type: ignore[assignment]
    if serialization not in ("BINARY2", "TABLEDATA"):
        raise ValueError(f"unsupported serialization {serialization}")
    if version == "1.1" and serialization != "TABLEDATA":
        raise ValueError("VOTable 1.1 has no BINARY2 serialization")
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(field) for field in fields]
    binary = serialization == "BINARY2"
    data = '<DATA><BINARY2><STREAM encoding="base64">\n' if binary else "<DATA><TABLEDATA>\n"

    def head(status: Sequence[Info]) -> str:
        return table_head(fields, infos=[*infos, *status], table_name=table_name,
                          description=description, version=version,
                          resource_name=resource_name) + data

    nulls = [null_tabledata(plan, version) for plan in plans]
    return _coalesce(_document(plans, nulls, batches, head, binary, overflow, limit, stats,
                               errors, utf8_char, trailer, status_first=version == "1.1"))


def _document(
    plans: Sequence[FieldPlan],
    nulls: Sequence[str],
    batches: Iterable[ColumnBatch | RenderedRows],
    head: Callable[[Sequence[Info]], str],
    binary: bool,
    overflow: Overflow,
    limit: int | None,
    stats: WriteStats,
    errors: str,
    utf8_char: bool,
    trailer: str,
    *,
    status_first: bool,
) -> Iterator[bytes]:
    source: Iterable[ColumnBatch | RenderedRows] = limited(batches, limit, stats)
    status: list[Info] = []
    if status_first:
        # VOTable 1.1 has no INFO after a TABLE: the rows are held until the status is known,
        # which then follows QUERY_STATUS=OK before the TABLE.
        source = _held(source, stats, errors)
        if stats.error is not None:
            status = [("QUERY_STATUS", "ERROR", stats.error)]
        elif overflowed(stats, overflow):
            status = [("QUERY_STATUS", "OVERFLOW", None)]
    yield head(status).encode("utf-8")
    encoder = Base64Lines()
    try:
        for batch in source:
            if isinstance(batch, RenderedRows):
                if binary:
                    raise ValueError("rows rendered as TABLEDATA cannot be written as BINARY2")
                yield batch.tabledata().encode("utf-8")
                continue
            if not utf8_char:
                batch = ascii_chars(plans, batch)
            if binary:
                yield encoder.feed(binary2_rows(plans, batch))
            else:
                yield tabledata_rows(plans, batch, nulls).encode("utf-8")
    except Exception as error:
        if errors == "raise":
            raise
        stats.error = error_message(error)
    if binary:
        closing = encoder.finish() + b"</STREAM></BINARY2></DATA>\n"
    else:
        closing = b"</TABLEDATA></DATA>\n"
    reported = bool(status)
    tail = document_tail(overflow=not reported and overflowed(stats, overflow),
                         error=None if reported else stats.error, trailer=trailer)
    yield closing + tail.encode("utf-8")


def _held(batches: Iterable[ColumnBatch | RenderedRows], stats: WriteStats,
          errors: str) -> list[ColumnBatch | RenderedRows]:
    """All the batches, read now; a failure ends them (recorded in ``stats``) or propagates."""
    held: list[ColumnBatch | RenderedRows] = []
    try:
        for batch in batches:
            held.append(batch)
    except Exception as error:
        if errors == "raise":
            raise
        stats.error = error_message(error)
    return held


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


def tabledata_cells(plan: FieldPlan, column: ColumnData, null: str = "") -> list[str]:
    """One TD content per row: escaped for XML, ``null`` (``null_tabledata``) for NULL."""
    column = conform(plan, column)
    strings, nulls = text_cells(column, booleans=("T", "F"))
    if column.kind == "text" and text_needs(column, _XML_SPECIAL):
        # What XML cannot carry becomes "?" in char cells, which hold ASCII (VOTable 1.4 2.1).
        replacement = "?" if plan.field.datatype == "char" else "\ufffd"
        strings = [escape_text(s, replacement) for s in strings]
    if plan.field.datatype == "unicodeChar" and column.kind == "text":
        flat = column.flat()
        if len(flat) and int(flat.max()) >= 0xF0:  # non-BMP characters are not allowed
            strings = ["".join(c if ord(c) < 0x10000 else "\ufffd" for c in s) for s in strings]
    if nulls is not None:
        for index in np.flatnonzero(nulls).tolist():
            strings[index] = null
    return strings


def tabledata_rows(plans: Sequence[FieldPlan], batch: ColumnBatch,
                   nulls: Sequence[str] | None = None) -> str:
    nulls = nulls if nulls is not None else [null_tabledata(plan) for plan in plans]
    columns = [tabledata_cells(plan, column, null)
               for plan, column, null in zip(plans, batch.columns, nulls, strict=True)]
    template = "<TR>" + "<TD>{}</TD>" * len(columns) + "</TR>\n"
    return "".join(map(template.format, *columns))
