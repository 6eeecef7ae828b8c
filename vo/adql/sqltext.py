"""Writing names and literals into PostgreSQL text so that no user input can escape them.

Every user-supplied value reaches SQL through these functions: identifiers are double-quoted
unless they are plain lower-case names that PostgreSQL does not reserve; strings are quoted
with doubled quotes, in the E'' form with doubled backslashes when they hold a backslash, which
reads the same whatever ``standard_conforming_strings`` says; numbers are re-printed from their
parsed value, never copied from the query.
"""

from __future__ import annotations

import math
import re

from skyvault.vo.adql.errors import AdqlSemanticError

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*\Z")

# PostgreSQL keywords that cannot be bare column or table names (reserved, and the
# "reserved (can be function or type)" and "non-reserved (cannot be function or type)" classes
# that bite in a column position).
_PG_RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate collation column concurrently constraint create cross current_catalog current_date
current_role current_schema current_time current_timestamp current_user default deferrable desc
distinct do else end except false fetch for foreign freeze from full grant group having ilike in
initially inner intersect into is isnull join lateral leading left like limit localtime
localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
references returning right select session_user similar some symmetric system_user table
tablesample then to trailing true union unique user using variadic verbose when where window with
between bigint bit boolean char character coalesce dec decimal exists extract float greatest
grouping inout int integer interval least national nchar none normalize nullif numeric out
overlay position precision real row setof smallint substring time timestamp treat trim values
varchar xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
xmlroot xmlserialize xmltable
""".split())  # noqa: SIM905 - PostgreSQL's appendix C, pasted


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier for ``name`` exactly as spelled."""
    if "\x00" in name:
        raise AdqlSemanticError("names cannot contain the NUL character")
    if _PLAIN.match(name) and name not in _PG_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """A PostgreSQL string literal holding ``value``."""
    if "\x00" in value:
        raise AdqlSemanticError("string literals cannot contain the NUL character")
    body = value.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def number(value: float | int) -> str:
    """A numeric literal: integers as integers, floats as exact double precision values."""
    if isinstance(value, bool):  # pragma: no cover - bool is an int subclass; never wanted
        value = int(value)
    if isinstance(value, int):
        return str(value) if value >= 0 else f"({value})"
    if not math.isfinite(value):
        raise AdqlSemanticError(f"the number {value} is out of range")
    value = float(value) + 0.0  # -0.0 becomes 0.0: no bare leading minus, ever
    text = repr(value)
    return f"{text}::float8" if value >= 0 else f"({text}::float8)"
