"""IBE's ``ct=html``: the result as one HTML table, streamed a batch at a time.

Values are rendered as in the other text formats (``cells.text_cells``: VOTable TABLEDATA's
numbers and ISO 8601 timestamps) and escaped; NULL is an empty cell. The page is served, like
every non-page response here, under a sandboxing Content-Security-Policy (server/http/headers.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from html import escape

import numpy as np

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.cells import conform, plan_for, text_cells
from skyvault.vo.votable.columns import ColumnBatch
from skyvault.vo.votable.streaming import WriteStats, limited

MEDIA_TYPE = "text/html;charset=utf-8"


def _cells(plan, data) -> list[str]:
    strings, nulls = text_cells(conform(plan, data), booleans=("true", "false"))
    cells = [escape(s, quote=False) for s in strings]
    if nulls is not None:
        for index in np.flatnonzero(nulls).tolist():
            cells[index] = ""
    return cells


def write_html(fields: Sequence[FieldSpec], batches: Iterable[ColumnBatch], *,
               title: str = "IBE search result", limit: int | None = None,
               stats: WriteStats | None = None) -> Iterator[bytes]:
    stats = stats if stats is not None else WriteStats()
    plans = [plan_for(f) for f in fields]
    head = "".join(f"<th>{escape(f.name)}</th>" for f in fields)
    yield (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           f"<title>{escape(title)}</title></head><body>\n<table>\n<thead><tr>{head}</tr>"
           "</thead>\n<tbody>\n").encode()
    for batch in limited(batches, limit, stats):
        columns = [_cells(plan, data) for plan, data in zip(plans, batch.columns, strict=True)]
        yield "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n"
                      for row in zip(*columns, strict=True)).encode("utf-8")
    yield b"</tbody>\n</table>\n</body></html>\n"
