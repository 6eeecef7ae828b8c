"""The types of ADQL values as the translator tracks them: VOTable serialisation (ADQL 2.1
section 3) plus the PostgreSQL type that carries them, so output metadata is exact."""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.schema.model import ColumnType


@dataclass(frozen=True, slots=True)
class ValueType:
    kind: str
    """number, string, timestamp, geometry, boolean, array, null or other."""
    datatype: str
    """VOTable datatype."""
    pg: str
    """The PostgreSQL type (what a CAST to this type names)."""
    arraysize: str | None = None
    xtype: str | None = None

    @property
    def is_integer(self) -> bool:
        return self.datatype in ("short", "int", "long") and self.arraysize is None

    @property
    def is_numeric(self) -> bool:
        return self.kind == "number"

    @property
    def shape(self) -> str | None:
        """point, circle or polygon for geometry values."""
        return self.xtype if self.kind == "geometry" else None


SHORT = ValueType("number", "short", "smallint")
INT = ValueType("number", "int", "integer")
LONG = ValueType("number", "long", "bigint")
FLOAT = ValueType("number", "float", "real")
DOUBLE = ValueType("number", "double", "double precision")
TEXT = ValueType("string", "char", "text", "*")
UNICODE_TEXT = ValueType("string", "unicodeChar", "text", "*")
"""A computed string that may hold non-ASCII characters: VOTable 1.4 ``char`` is ASCII only
(section 2.1), so such values are declared ``unicodeChar``."""
TIMESTAMP = ValueType("timestamp", "char", "timestamptz", "*", "timestamp")
BOOLEAN = ValueType("boolean", "boolean", "boolean")
NULL = ValueType("null", "char", "text", "*")
POINT = ValueType("geometry", "double", "spoint", "2", "point")
CIRCLE = ValueType("geometry", "double", "scircle", "3", "circle")
POLYGON = ValueType("geometry", "double", "spoly", "*", "polygon")

_NUMERIC_RANK = {"short": 0, "int": 1, "long": 2, "float": 3, "double": 4}
_BY_DATATYPE = {"short": SHORT, "int": INT, "long": LONG, "float": FLOAT, "double": DOUBLE}
_PGSPHERE = {"spoint": POINT, "scircle": CIRCLE, "spoly": POLYGON}


def from_column_type(column_type: ColumnType) -> ValueType:
    """The value type of a schema column."""
    pg = column_type.pg_type
    if pg in _PGSPHERE:
        return _PGSPHERE[pg]
    if column_type.xtype == "timestamp":
        return TIMESTAMP
    if column_type.arraysize is not None and column_type.datatype not in ("char", "unicodeChar"):
        return ValueType("array", column_type.datatype, pg, column_type.arraysize,
                         column_type.xtype)
    if column_type.datatype in _NUMERIC_RANK:
        return ValueType("number", column_type.datatype, pg, None, column_type.xtype)
    if column_type.datatype in ("char", "unicodeChar"):
        return ValueType("string", column_type.datatype, pg, column_type.arraysize,
                         column_type.xtype)
    if column_type.datatype == "boolean":
        return BOOLEAN
    return ValueType("other", column_type.datatype, pg, column_type.arraysize,
                     column_type.xtype)


def wider(first: ValueType, second: ValueType) -> ValueType:
    """The numeric type an arithmetic result of the two has (PostgreSQL's promotion)."""
    if not first.is_numeric:
        return second if second.is_numeric else DOUBLE
    if not second.is_numeric:
        return first
    rank = max(_NUMERIC_RANK[first.datatype], _NUMERIC_RANK[second.datatype])
    if rank == 3 and (first.datatype != second.datatype):
        return DOUBLE  # real mixed with anything else is computed in double precision
    return _BY_DATATYPE[next(k for k, v in _NUMERIC_RANK.items() if v == rank)]


def may_hold_unicode(value_type: ValueType) -> bool:
    return value_type.datatype == "unicodeChar"


def text_of(*types: ValueType) -> ValueType:
    """The type of a string computed from strings of these types (concatenation, UPPER, ...):
    ``unicodeChar`` when any of them may hold non-ASCII text."""
    return UNICODE_TEXT if any(may_hold_unicode(t) for t in types) else TEXT


def string_literal(text: str) -> ValueType:
    return TEXT if text.isascii() else UNICODE_TEXT


def common(types: list[ValueType]) -> ValueType:
    """The type of COALESCE/CASE results: the first non-null, numbers promoted, strings
    ``unicodeChar`` when any branch may hold non-ASCII text."""
    known = [t for t in types if t.kind != "null"]
    if not known:
        return NULL
    result = known[0]
    for other in known[1:]:
        if result.is_numeric and other.is_numeric:
            result = wider(result, other)
    if result.kind == "string" and not may_hold_unicode(result) and any(
            t.kind == "string" and may_hold_unicode(t) for t in known):
        return UNICODE_TEXT
    return result
