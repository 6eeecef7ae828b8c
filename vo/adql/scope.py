"""Name resolution: which FROM item and column an ADQL name means.

Each SELECT has a scope: its FROM items (range entries) and the columns visible without a
qualifier, in the order ``SELECT *`` lists them. A join USING (or NATURAL) merges the joined
columns into one, listed first, as SQL-92 says. Subqueries see the enclosing scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skyvault.schema.model import Table
from skyvault.vo.adql import nodes as n
from skyvault.vo.adql import valuetypes as vt
from skyvault.vo.adql.values import GeoSphere, Value
from skyvault.vo.fields import FieldSpec


def position_role(ucd: str | None) -> str | None:
    """'ra' or 'dec' for the main equatorial position columns (q3c-indexed by convention)."""
    if not ucd:
        return None
    words = {word.strip().lower() for word in ucd.split(";")}
    if "meta.main" not in words:
        return None
    if "pos.eq.ra" in words:
        return "ra"
    if "pos.eq.dec" in words:
        return "dec"
    return None


@dataclass(slots=True)
class ColumnInfo:
    name: str
    sql: str
    type: vt.ValueType
    field: FieldSpec
    entry: int | None
    """The range entry that owns the column (None for merged USING columns)."""
    role: str | None = None
    """'ra' or 'dec' when the column is half of the q3c-indexed position."""

    def __post_init__(self) -> None:
        if self.entry is not None and self.role is None:
            self.role = position_role(self.field.ucd)

    def value(self) -> Value:
        geo = GeoSphere(self.sql, self.type.xtype or "") if self.type.kind == "geometry" \
            else None
        entry = self.entry
        return Value(
            self.sql, self.type, self.field.unit, self.field, geo, None,
            frozenset() if entry is None else frozenset((entry,)),
            (entry, self.role) if self.role is not None and entry is not None else None,
            True, self.name,
        )


@dataclass(slots=True)
class RangeEntry:
    id: int
    sql_alias: str
    columns: list[ColumnInfo]
    alias: n.Ident | None = None
    table: Table | None = None
    """The published table, for base-table entries."""
    cte_name: str | None = None
    q3c_indexed: bool = False

    def answers_to(self, qualifier: tuple[n.Ident, ...]) -> bool:
        if self.alias is not None:
            return len(qualifier) == 1 and qualifier[0].matches(self.alias.name)
        if self.cte_name is not None:
            return len(qualifier) == 1 and qualifier[0].matches(self.cte_name)
        if self.table is None:
            return False
        if len(qualifier) == 1:
            return qualifier[0].matches(self.table.name)
        if len(qualifier) == 2:
            return qualifier[0].matches(self.table.schema) and \
                qualifier[1].matches(self.table.name)
        return False

    def describe(self) -> str:
        if self.alias is not None:
            return str(self.alias)
        if self.cte_name is not None:
            return self.cte_name
        return self.table.qualified_name if self.table is not None else self.sql_alias


@dataclass(slots=True)
class Scope:
    parent: Scope | None
    entries: list[RangeEntry] = field(default_factory=list)
    namespace: list[ColumnInfo] = field(default_factory=list)
    """Columns reachable without a qualifier, in SELECT * order."""
    aliases: dict[str, Value] | None = None
    """Select-list aliases, usable in GROUP BY, HAVING and ORDER BY."""
    _index: dict[str, list[ColumnInfo]] | None = None
    _indexed: int = 0

    def unqualified(self, name: n.Ident) -> list[ColumnInfo]:
        """The columns of ``namespace`` that an unqualified ``name`` can mean."""
        if self._index is None or self._indexed != len(self.namespace):
            index: dict[str, list[ColumnInfo]] = {}
            for column in self.namespace:
                index.setdefault(column.name.lower(), []).append(column)
            self._index = index
            self._indexed = len(self.namespace)
        found = self._index.get(name.name.lower(), [])
        if name.delimited:
            return [column for column in found if column.name == name.name]
        return found
