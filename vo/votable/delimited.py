"""CSV (RFC 4180) and TSV (IANA text/tab-separated-values) writers.

TAP 1.1 section 5.2: the first row holds the column names, values are rendered as in VOTable
TABLEDATA (arrays as blank-separated numbers, timestamps ISO 8601). NULL is an empty field; in
CSV an empty string is written as ``""`` so the two stay distinguishable. CSV lines end in CRLF
(RFC 4180 section 2); TSV lines in LF. TSV cannot quote, so tabs and line breaks inside text
become blanks (the only lossy step, and only for such text). Neither format can say that a
result was truncated: the OVERFLOW is only in ``WriteStats``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.cells import FieldPlan, conform, plan_for, text_cells, text_needs
from skyvault.vo.votable.columns import ColumnBatch
from skyvault.vo.votable.streaming import WriteStats, limited
from skyvault.vo.votable.writer import _coalesce

_BOOLEANS = ("true", "false")  # DALI 1.1 section 3.3.2 (XML Schema booleans)


def _csv_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _csv_column(plan: FieldPlan, batch_column) -> list[str]:
    column = conform(plan, batch_column)
    strings, nulls = text_cells(column, booleans=_BOOLEANS)
    if column.kind == "text":
        lengths = column.lengths()
        if text_needs(column, b',"\r\n') or (lengths == 0).any():
            strings = [_csv_quote(s) if (not s or any(c in s for c in ',"\r\n')) else s
                       for s in strings]
    if nulls is not None:
        for index in np.flatnonzero(nulls).tolist():
            strings[index] = ""
    return strings


def _tsv_column(plan: FieldPlan, batch_column) -> list[str]:
    column = conform(plan, batch_column)
    strings, nulls = text_cells(column, booleans=_BOOLEANS)
    if column.kind == "text" and text_needs(column, b"\t\r\n"):
        strings = [s.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")
                   for s in strings]
    if nulls is not None:
        for index in np.flatnonzero(nulls).tolist():
            strings[index] = ""
    return strings


def _header_csv(fields: Sequence[FieldSpec]) -> str:
    names = [_csv_quote(f.name) if any(c in f.name for c in ',"\r\n') else f.name for f in fields]
    return ",".join(names) + "\r\n"


def write_csv(
    fields: Sequence[FieldSpec],
    batches: Iterable[ColumnBatch],
    *,
    limit: int | None = None,
    stats: WriteStats | None = None,
    header: bool = True,
) -> Iterator[bytes]:
    """RFC 4180 CSV with a header row (send as ``text/csv;header=present``)."""
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(f) for f in fields]
    template = ",".join(["{}"] * len(fields)) + "\r\n"
    return _coalesce(_lines(_header_csv(fields) if header else "", plans, batches, limit, stats,
                            _csv_column, template))


def write_tsv(
    fields: Sequence[FieldSpec],
    batches: Iterable[ColumnBatch],
    *,
    limit: int | None = None,
    stats: WriteStats | None = None,
) -> Iterator[bytes]:
    """Tab-separated values with the column names in the first line."""
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(f) for f in fields]
    head = "\t".join(f.name.replace("\t", " ") for f in fields) + "\n"
    template = "\t".join(["{}"] * len(fields)) + "\n"
    return _coalesce(_lines(head, plans, batches, limit, stats, _tsv_column, template))


def _lines(head, plans, batches, limit, stats, render, template) -> Iterator[bytes]:
    if head:
        yield head.encode("utf-8")
    for batch in limited(batches, limit, stats):
        columns = [render(plan, column) for plan, column in zip(plans, batch.columns, strict=True)]
        yield "".join(map(template.format, *columns)).encode("utf-8")
