"""TABLEDATA rows that PostgreSQL writes: the fast path of small VOTable answers.

``row_sql`` gives the SQL expression of a row's cells (``<TD>...</TD>`` for each field, one
text value per row), following the rules by which ``cells`` and ``writer`` render a
``ColumnBatch``: numbers in their shortest exact form, NaN, +Inf and -Inf; booleans T and F;
DALI timestamps in UTC without a zone letter ('infinity' is no time: NULL); arrays and pgsphere
geometry (as DALI arrays in degrees, ``pgcopy.geometry_sql``) blank-separated; ``char`` text
reduced to ASCII (``?`` for other characters) and cut to its arraysize, ``unicodeChar`` text
with non-BMP characters replaced; characters XML cannot carry replaced (by ``?`` in ``char``,
U+FFFD elsewhere) and markup escaped; NULL as ``cells.null_tabledata`` says. ``write_votable``
takes the fetched rows as ``RenderedRows`` batches and writes the document around them (head,
limit, overflow, trailer).

Why it exists: an SIA answer of ~80 rows x 40 columns costs ~1.8 ms of CPU in the column-batch
writer, a quarter of the whole request, where PostgreSQL writes the same cells in C in a
fraction of that (BENCHMARKS.md, "Image access"). Large results go through binary COPY and the
column-batch writer, whose per-row cost is lower.

The differences from the column-batch path are in form only: a timestamp carries the second
decimals its own value needs (the column path: the most any value of the batch needs), and a
number is written by PostgreSQL's shortest-exact output instead of Python's ``repr`` (the
same value). ``tests/vo/test_votable_sqlrows.py`` checks that both give the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.cells import null_tabledata, plan_for
from skyvault.vo.votable.document import Version
from skyvault.vo.votable.pgcopy import UnsupportedPgType, geometry_sql, pg_type

# What XML 1.0 cannot carry (PostgreSQL text holds no NUL), as cells' clean_xml_text replaces.
_ILLEGAL_XML = "".join(map(chr, [*range(1, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]))
_TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US'


@dataclass(frozen=True)
class RenderedRows:
    """A batch of rows whose cells are written already (``row_sql``'s values, one per row)."""

    cells: Sequence[str]

    @property
    def n_rows(self) -> int:
        return len(self.cells)

    def slice(self, start: int, stop: int) -> RenderedRows:
        return RenderedRows(self.cells[start:stop])

    def tabledata(self) -> str:
        return "".join(["<TR>" + cells + "</TR>\n" for cells in self.cells])


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings, as PostgreSQL has it by default)."""
    return "'" + text.replace("'", "''") + "'"


def row_sql(fields: Sequence[FieldSpec], expressions: Sequence[str], pg_types: Sequence[str],
            *, version: Version = "1.4") -> str:
    """SQL of one text value per row: the TD elements of the row's cells, in field order.

    ``expressions`` are the cells' SQL (a column name, any expression) and ``pg_types`` their
    PostgreSQL types; an expression is evaluated up to three times per row, so keep them
    cheap. Raises ``UnsupportedPgType`` for types without a rendering (bytea)."""
    cells = [cell_sql(f, e, t, version=version)
             for f, e, t in zip(fields, expressions, pg_types, strict=True)]
    return f"concat({', '.join(cells)})"


def cell_sql(field: FieldSpec, expression: str, pg_type_name: str, *,
             version: Version = "1.4") -> str:
    """SQL of one cell's whole TD element; never NULL."""
    null = null_tabledata(plan_for(field), version)
    value = value_sql(field, f"({expression})", pg_type_name)
    return f"coalesce('<TD>' || {value} || '</TD>', {literal(f'<TD>{null}</TD>')})"


def value_sql(field: FieldSpec, value: str, pg_type_name: str) -> str:
    """SQL of a cell's TD content (escaped), NULL for a NULL cell."""
    try:
        return _numbers(f"array_to_string({geometry_sql(value, pg_type_name)}, ' ')")
    except UnsupportedPgType:
        pass
    kind = pg_type(pg_type_name)
    if kind.kind == "array":
        text = f"array_to_string({value}, ' ', 'NaN')"
        return f"translate({text}, 'tf', 'TF')" if kind.convert == "bool" else _numbers(text)
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


def _numbers(text: str) -> str:
    """Blank-separated numbers with PostgreSQL's infinities written as VOTable's."""
    return f"replace(replace({text}, 'Infinity', '+Inf'), '-+Inf', '-Inf')"


def _text(field: FieldSpec, text: str) -> str:
    plan = plan_for(field)
    if field.datatype == "char":
        # ASCII as VOTable 1.4 char holds (writer.ascii_chars); the test is cheap, the
        # replacement rare.
        text = (f"CASE WHEN octet_length({text}) = length({text}) THEN {text}"
                f" ELSE regexp_replace({text}, '[^\\x01-\\x7f]', '?', 'g') END")
        limit = plan.fixed_count or plan.max_count  # as cells.conform cuts char cells
        if limit is not None:
            text = f"left({text}, {limit:d})"
    elif field.datatype == "unicodeChar":
        non_bmp = "'[\\U00010000-\\U0010FFFF]'"
        text = f"regexp_replace({text}, {non_bmp}, {literal(chr(0xFFFD))}, 'g')"
    replacement = literal(("?" if field.datatype == "char" else chr(0xFFFD)) * len(_ILLEGAL_XML))
    cleaned = f"translate({text}, {literal(_ILLEGAL_XML)}, {replacement})"
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        cleaned = f"replace({cleaned}, {literal(raw)}, {literal(escaped)})"
    return cleaned
