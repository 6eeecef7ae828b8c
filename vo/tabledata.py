"""TABLEDATA rows from Python values, for the image services' small and medium results.

The document around the rows (FIELDs, INFOs, escaping) is ``skyvault.vo.votable.document``'s.

SIA, SCS and DataLink answer with tens to thousands of rows built from database rows (tuples of
Python values), so a per-cell formatter is enough here; the column-batch writers of
``skyvault.vo.votable`` serve TAP's large results.

Cells follow VOTable 1.4 section 6: numbers in the shortest round-tripping form, NaN and NULL as
empty cells, infinities as +Inf/-Inf, booleans T/F, arrays space-separated, timestamps as DALI
ISO 8601 strings (UTC, no zone suffix).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.document import escape_text


def format_number(value: float) -> str:
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def format_timestamp(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if value == dt.datetime.max or value.year >= 9999:
            return ""
        return value.isoformat(timespec="milliseconds")
    return value.isoformat()


def format_value(value: Any) -> str:
    """The text of one cell (without escaping)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date):
        return format_timestamp(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Iterable):
        # Inside an array a NaN is a value, not a NULL cell.
        return " ".join("NaN" if isinstance(item, float) and item != item else
                        format_value(item) for item in value)
    return str(value)


def null_cells(fields: Sequence[FieldSpec]) -> list[str]:
    """The TD of a NULL per field: empty, except geometry arrays, which validators (votlint)
    insist carry their shape; a NaN point, circle or polygon is no position at all (as the
    column-batch writer of ``skyvault.vo.votable.writer`` does)."""
    counts = {"polygon": 6, "point": 2, "circle": 3, "interval": 2}
    cells = []
    for field in fields:
        count = counts.get(field.xtype or "") if field.datatype in ("float", "double") else None
        cells.append("<TD>" + " ".join(["NaN"] * count) + "</TD>" if count else "<TD/>")
    return cells


# Characters that make a text cell need escaping (markup, CR, what XML 1.0 cannot carry).
_NEEDS_ESCAPE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_INFINITIES = (math.inf, -math.inf)


def format_row(row: Sequence[Any], nulls: Sequence[str] | None = None) -> str:
    """One TR. The common cell types take a short path (this runs for every row of every SIA
    and cone search answer): strings are escaped only when they hold a special character."""
    cells = []
    append = cells.append
    for index, value in enumerate(row):
        kind = type(value)
        if kind is str:
            if value:
                append("<TD>" + (escape_text(value) if _NEEDS_ESCAPE.search(value) else value)
                       + "</TD>")
                continue
        elif kind is float:
            if value == value and value not in _INFINITIES:
                append("<TD>" + repr(value) + "</TD>")
                continue
            if value != value:
                append(nulls[index] if nulls is not None else "<TD/>")
                continue
        elif kind is int:
            append("<TD>" + str(value) + "</TD>")
            continue
        elif (kind is tuple or kind is list) and value and all(
                type(item) is float for item in value):
            append("<TD>" + " ".join([repr(item) if item == item else "NaN"
                                      for item in value]) + "</TD>")
            continue
        text = format_value(value)
        if text:
            append("<TD>" + escape_text(text) + "</TD>")
        else:
            append(nulls[index] if nulls is not None else "<TD/>")
    return "<TR>" + "".join(cells) + "</TR>\n"


def rows_xml(fields: Sequence[FieldSpec], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    nulls = null_cells(fields)
    yield "<DATA><TABLEDATA>\n"
    for row in rows:
        yield format_row(row, nulls)
    yield "</TABLEDATA></DATA>\n"
