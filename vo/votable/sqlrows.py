"""TABLEDATA rows that PostgreSQL writes: the fast path of small VOTable answers (SIA, SCS).

``row_sql`` gives the SQL of a row's cells (``<TD>...</TD>`` for each field), following the rules
by which ``cells`` and ``writer`` render a ``ColumnBatch``: numbers in their shortest exact form,
NaN, +Inf and -Inf; booleans T and F; DALI timestamps in UTC without a zone letter ('infinity'
is no time: NULL); arrays blank-separated; ``char`` text reduced to ASCII (``?`` for other
characters) and cut to its arraysize, ``unicodeChar`` text with non-BMP characters replaced;
characters XML cannot carry replaced (by ``?`` in ``char``, U+FFFD elsewhere) and markup
escaped; NULL as ``cells.null_tabledata`` says. pgsphere geometry is the one cell written here
rather than in SQL: its text comes along and becomes the DALI array in degrees
(``pgcopy.pgsphere_degrees``), since pgsphere 1.2 has no accessor for a polygon's vertices and
taking its text apart in SQL costs ~60 us a row. ``RowSql.rendered`` makes the fetched rows a
``RenderedRows`` batch, and ``write_votable`` writes the document around them (head, limit,
overflow, trailer).

Why it exists: an SIA answer of ~80 rows x 40 columns costs ~1.5 ms of CPU in the column-batch
writer plus ~2 ms decoding its binary COPY, where PostgreSQL writes the same cells in C for a
fraction of that (BENCHMARKS.md, "Image access"). Large results (TAP) go through binary COPY and
the column-batch writer, which streams any size in bounded memory.

The differences from the column-batch path are in form only: a timestamp carries the second
decimals its own value needs (the column path: the most any value of the batch needs), and a
number is written by PostgreSQL's shortest-exact output instead of Python's ``repr`` (the same
value). ``tests/vo/test_votable_sqlrows.py`` checks that both give the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.cells import null_tabledata, plan_for
from skyvault.vo.votable.document import Version
from skyvault.vo.votable.pgcopy import UnsupportedPgType, pg_type, pgsphere_degrees

_GEOMETRY = frozenset({"spoint", "scircle", "spoly"})
_TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US'
# Text made only of these needs nothing done (one regular-expression test, ~0.5 us a cell):
# printable ASCII but for the markup characters &, < and >, and tab and newline.
_PLAIN_TEXT = "'[^\\t\\n\\x20-\\x25\\x27-\\x3b\\x3d\\x3f-\\x7e]'"
# What XML 1.0 cannot carry (PostgreSQL text holds no NUL), as cells' clean_xml_text replaces.
_ILLEGAL_XML = "'[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\ufffe\\uffff]'"
_NON_ASCII = "'[^\\x01-\\x7f]'"
_NON_BMP = "'[\\U00010000-\\U0010ffff]'"


@dataclass(frozen=True)
class RenderedRows:
    """A batch of rows whose cells are written already (one string of TDs per row)."""

    cells: Sequence[str]

    @property
    def n_rows(self) -> int:
        return len(self.cells)

    def slice(self, start: int, stop: int) -> RenderedRows:
        return RenderedRows(self.cells[start:stop])

    def tabledata(self) -> str:
        return "".join(["<TR>" + cells + "</TR>\n" for cells in self.cells])


@dataclass(frozen=True)
class RowSql:
    """The select list of a row's TABLEDATA: text values that are runs of cells PostgreSQL
    wrote, and between them the text of each pgsphere cell, which ``rendered`` writes."""

    select_list: str
    geometry: tuple[tuple[int, str, str], ...]
    """(result column, pgsphere type, NULL cell) of each geometry cell."""

    def rendered(self, rows: Sequence[Sequence[str | None]]) -> RenderedRows:
        if not self.geometry:
            return RenderedRows([row[0] for row in rows])
        cells = []
        for row in rows:
            parts = list(row)
            for index, kind, null in self.geometry:
                values = pgsphere_degrees(parts[index], kind)
                # Degrees of pgsphere values are finite: repr is the cells' rule for them.
                parts[index] = ("<TD>" + " ".join(map(repr, values)) + "</TD>" if values
                                else null)
            cells.append("".join(parts))  # type: ignore[arg-type]
        return RenderedRows(cells)


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings, as PostgreSQL has it by default)."""
    return "'" + text.replace("'", "''") + "'"


def row_sql(fields: Sequence[FieldSpec], expressions: Sequence[str], pg_types: Sequence[str],
            *, version: Version = "1.4") -> RowSql:
    """The SQL of a row's cells, in field order, from the cells' SQL (a column name, any
    expression; evaluated up to three times per row, so keep them cheap) and their PostgreSQL
    types. Raises ``UnsupportedPgType`` for types without a rendering (bytea)."""
    select: list[str] = []
    run: list[str] = []
    geometry: list[tuple[int, str, str]] = []
    for field, expression, type_name in zip(fields, expressions, pg_types, strict=True):
        kind = type_name.strip().lower()
        if kind in _GEOMETRY:
            if run:
                select.append(f"concat({', '.join(run)})")
                run = []
            null = f"<TD>{null_tabledata(plan_for(field), version)}</TD>"
            geometry.append((len(select), kind, null))
            select.append(f"({expression})::text")
        else:
            run.append(cell_sql(field, expression, type_name, version=version))
    if run or not select:
        select.append(f"concat({', '.join(run)})")
    return RowSql(", ".join(select), tuple(geometry))


def cell_sql(field: FieldSpec, expression: str, pg_type_name: str, *,
             version: Version = "1.4") -> str:
    """SQL of one cell's whole TD element; never NULL."""
    null = null_tabledata(plan_for(field), version)
    value = value_sql(field, f"({expression})", pg_type_name)
    return f"coalesce('<TD>' || {value} || '</TD>', {literal(f'<TD>{null}</TD>')})"


def value_sql(field: FieldSpec, value: str, pg_type_name: str) -> str:
    """SQL of a cell's TD content (escaped), NULL for a NULL cell."""
    kind = pg_type(pg_type_name)
    if kind.kind == "array":
        text = f"array_to_string({value}, ' ', 'NaN')"
        if kind.convert == "bool":
            return f"translate({text}, 'tf', 'TF')"
        return f"replace(replace({text}, 'Infinity', '+Inf'), '-+Inf', '-Inf')"
    if kind.kind == "text":
        return _text(field, f"{value}::text")
    if kind.kind != "fixed":
        raise UnsupportedPgType(f"no TABLEDATA rendering for {pg_type_name}")
    if kind.convert == "bool":
        return f"CASE {value} WHEN true THEN 'T' WHEN false THEN 'F' END"
    if kind.convert in ("timestamp", "date"):
        utc = (f"{value} AT TIME ZONE 'UTC'" if kind.name == "timestamptz"
               else f"{value}::timestamp")
        # Exact to the microsecond, with as many second decimals as the value needs.
        text = f"rtrim(rtrim(to_char({utc}, {literal(_TIMESTAMP_FORMAT)}), '0'), '.')"
        return f"CASE WHEN isfinite({value}) THEN {text} END"
    if kind.native is not None and kind.native.kind == "f":
        return (f"CASE {value} WHEN 'Infinity' THEN '+Inf' WHEN '-Infinity' THEN '-Inf'"
                f" ELSE {value}::text END")
    return f"{value}::text"


def _text(field: FieldSpec, text: str) -> str:
    """Text as the column writer leaves it: ASCII in char (``?`` for other characters, cut to
    the arraysize), non-BMP characters replaced in unicodeChar, what XML cannot carry replaced,
    markup escaped. The usual text (plain printable ASCII) is passed as it is."""
    plan = plan_for(field)
    limit = plan.fixed_count or plan.max_count if field.datatype == "char" else None
    if field.datatype == "char":
        replacement = "'?'"
        cleaned = f"regexp_replace({text}, {_NON_ASCII}, '?', 'g')"
    else:
        replacement = literal("\ufffd")
        cleaned = (f"regexp_replace({text}, {_NON_BMP}, {replacement}, 'g')"
                   if field.datatype == "unicodeChar" else text)
    if limit is not None:  # as cells.conform cuts char cells
        cleaned = f"left({cleaned}, {limit:d})"
    cleaned = f"regexp_replace({cleaned}, {_ILLEGAL_XML}, {replacement}, 'g')"
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        cleaned = f"replace({cleaned}, {literal(raw)}, {literal(escaped)})"
    plain = f"left({text}, {limit:d})" if limit is not None else text
    return f"CASE WHEN {text} ~ {_PLAIN_TEXT} THEN {cleaned} ELSE {plain} END"
