"""IPAC table output: IRSA's IPAC Table Format (version 1.2, 2013-05-23,
https://irsa.ipac.caltech.edu/applications/DDGEN/Doc/ipac_tbl.html), as IRSA's services write it.

Layout::

    \\fixlen = T                               keywords (``\\name = value``)
    \\RowsRetrieved = 2
    |   pid| filtercode|      obsjd|          names, between bars
    |  long|       char|     double|          data types
    |      |           |          d|          units
    |  null|       null|       null|          the value that stands for NULL
      1001 zr          2459000.5001            rows: fixed width, nothing under a bar

Types: short, int and unsignedByte are ``int``, long ``long``, float ``real``, double
``double``; everything else (text, timestamps, booleans, arrays, complex numbers) is ``char``,
rendered as VOTable TABLEDATA renders it (``cells.text_cells``: shortest round-trip numbers,
NaN/+Inf/-Inf, ISO 8601 timestamps, arrays as blank-separated numbers, booleans true/false).
Text is written as UTF-8 and aligned by characters (the standard recommends ASCII; readers
that split lines by character position, astropy's ``ascii.ipac`` among them, read it back).

The writer spools. A column is as wide as its widest value, the null line must name a value no
cell of the column holds, and ``\\RowsRetrieved`` comes before the rows: all three are known
only once the whole result has been read. So each batch is rendered to text once, measured and
spooled to a temporary file (one JSON line per batch), then the header is written and the rows
stream back from the spool. Memory holds one batch; a failure of the source raises before the
first byte, as with FITS (``vo.votable.fits``).

NULL: a column's null value is ``null`` unless a text cell of that column is the word
``null``; then it is the first of ``NULL``, ``(null)``, ... that no cell holds. The format
cannot keep: blanks leading or trailing a text value and empty text (readers strip cells, and
astropy reads an empty cell as missing), line breaks and tabs inside text (written as blanks).
A truncated result (MAXREC) says so in a ``\\QUERY_STATUS = 'OVERFLOW'`` keyword.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.cells import FieldPlan, conform, plan_for, text_cells
from skyvault.vo.votable.columns import ColumnBatch
from skyvault.vo.votable.document import Info
from skyvault.vo.votable.streaming import Overflow, WriteStats, limited, overflowed

MEDIA_TYPE = "text/plain"
"""What IPAC's TAP services advertise for the format (TAPRegExt outputFormat, alias ipac)."""

_NUMERIC_TYPES = {"short": "int", "int": "int", "unsignedByte": "int", "long": "long",
                  "float": "real", "double": "double"}
_NULL_CHOICES = ("null", "NULL", "(null)", "<null>", "[null]", "{null}", "null!", "~null~")
_BOOLEANS = ("true", "false")
_LINE_BREAKS = re.compile(r"\r\n|[\t\r\n\x0b\x0c\x85\u2028\u2029]")
_NOT_IN_NAMES = re.compile(r"[\s|\\]")
_ROWS_PER_LINE_CHUNK = 2048


@dataclass
class _Column:
    """One column's header and what the spooling pass learns about its cells."""

    name: str
    type: str
    unit: str
    numeric: bool
    width: int = 0
    taken: set[str] = field(default_factory=set)
    """Null candidates that are values of this column (text columns only)."""

    @property
    def null(self) -> str:
        if not self.numeric:
            for choice in _NULL_CHOICES:
                if choice not in self.taken:
                    return choice
        return _NULL_CHOICES[0]

    def header_width(self) -> int:
        return max(len(self.name), len(self.type), len(self.unit), len(self.null), 1)


def _header_text(text: str) -> str:
    """A name or unit as a header line can hold it: no bar, no blank, no line break."""
    return _NOT_IN_NAMES.sub("_", text.strip()) if text else ""


def _column(spec: FieldSpec, plan: FieldPlan) -> _Column:
    numeric = plan.is_scalar and spec.datatype in _NUMERIC_TYPES
    return _Column(_header_text(spec.name) or "_", _NUMERIC_TYPES[spec.datatype] if numeric
                   else "char", _header_text(spec.unit or ""), numeric)


def _render(plan: FieldPlan, state: _Column, data) -> list[str | None]:
    """The column's cells as the rows will show them (None for NULL); measures as it goes."""
    column = conform(plan, data)
    strings, nulls = text_cells(column, booleans=_BOOLEANS)
    if not state.numeric:
        strings = [_LINE_BREAKS.sub(" ", s) for s in strings]
        state.taken.update(s for s in strings if s in _NULL_CHOICES)
    cells: list[str | None] = list(strings)
    if nulls is not None:
        for index in np.flatnonzero(nulls).tolist():
            cells[index] = None
    widest = max((len(c) for c in cells if c is not None), default=0)
    state.width = max(state.width, widest)
    return cells


def _keyword_value(value: str) -> str:
    """A string keyword value, quoted as the standard asks, on one line."""
    text = _LINE_BREAKS.sub(" ", value)
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "'" + text.replace("'", '"') + "'"


def _keywords(rows: int, overflow: bool, infos: Sequence[Info]) -> list[str]:
    lines = ["\\fixlen = T", f"\\RowsRetrieved = {rows}"]
    if overflow:
        lines.append("\\QUERY_STATUS = 'OVERFLOW'")
    for name, value, _content in infos:
        key = re.sub(r"\W", "_", name) or "INFO"
        lines.append(f"\\{key} = {_keyword_value(value)}")
    return lines


def _header_lines(columns: Sequence[_Column], widths: Sequence[int]) -> list[str]:
    def line(values: Iterable[str]) -> str:
        return "|" + "|".join(v.rjust(w) for v, w in zip(values, widths, strict=True)) + "|"

    return [line(c.name for c in columns), line(c.type for c in columns),
            line(c.unit for c in columns), line(c.null for c in columns)]


def _row_lines(columns: Sequence[_Column], widths: Sequence[int],
               cells: Sequence[Sequence[str | None]]) -> str:
    """The rows of one spooled batch: each value inside its column, blanks under the bars."""
    laid_out = []
    for state, width, values in zip(columns, widths, cells, strict=True):
        null = state.null
        pad = str.rjust if state.numeric else str.ljust
        laid_out.append([pad(null if v is None else v, width) for v in values])
    return "".join(" " + " ".join(row) + " \n" for row in zip(*laid_out, strict=True))


def write_ipac(
    fields: Sequence[FieldSpec],
    batches: Iterable[ColumnBatch],
    *,
    infos: Sequence[Info] = (),
    overflow: Overflow = False,
    limit: int | None = None,
    stats: WriteStats | None = None,
    spool_directory: str | None = None,
) -> Iterator[bytes]:
    """An IPAC table of the batches (module doc); the first chunk comes once all are read."""
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(f) for f in fields]
    columns = [_column(f, p) for f, p in zip(fields, plans, strict=True)]
    with tempfile.TemporaryFile("w+", encoding="utf-8", prefix="skyvault-ipac-",
                                dir=spool_directory) as spool:
        spooled = 0
        for batch in limited(batches, limit, stats):
            cells = [_render(plan, state, data)
                     for plan, state, data in zip(plans, columns, batch.columns, strict=True)]
            spool.write(json.dumps(cells, ensure_ascii=False) + "\n")
            spooled += 1
        widths = [max(c.width, c.header_width()) for c in columns]
        head = _keywords(stats.rows, overflowed(stats, overflow), infos)
        head += _header_lines(columns, widths)
        yield ("\n".join(head) + "\n").encode("utf-8")
        spool.seek(0)
        for _ in range(spooled):
            cells = json.loads(spool.readline())
            rows = len(cells[0]) if cells else 0
            for start in range(0, rows, _ROWS_PER_LINE_CHUNK):
                part = [c[start:start + _ROWS_PER_LINE_CHUNK] for c in cells]
                yield _row_lines(columns, widths, part).encode("utf-8")
