"""What an ADQL query may reach: the published tables, looked up by name.

The translator never sees anything but a ``TableCatalog``: a name that the catalog does not
return is an unknown table, which is what keeps ADQL from being a pass-through of SQL. The TAP
service builds one from ``schema.tables.PUBLISHED_TABLES`` plus the request's uploaded tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from skyvault.schema.model import Table
from skyvault.vo.adql.sqltext import quote_ident


@runtime_checkable
class TableCatalog(Protocol):
    def lookup(self, name: str, schema: str | None = None) -> Sequence[Table]:
        """Tables called ``name`` (in ``schema`` when given), compared case-insensitively.

        Several tables come back when an unqualified name exists in more than one schema.
        """
        ...

    def sql_name(self, table: Table) -> str:
        """How the SQL refers to ``table``, e.g. ``survey.psf_sources`` or the temporary table
        holding an upload."""
        ...


class MappingCatalog:
    """A catalog over a fixed set of tables; only ``published`` tables are reachable."""

    def __init__(self, tables: Iterable[Table], sql_names: Mapping[str, str] | None = None):
        self._by_name: dict[str, list[Table]] = {}
        self._by_qualified: dict[str, Table] = {}
        self._sql_names = {key.lower(): value for key, value in (sql_names or {}).items()}
        for table in tables:
            if not table.published:
                continue
            self._by_name.setdefault(table.name.lower(), []).append(table)
            self._by_qualified[table.qualified_name.lower()] = table

    def lookup(self, name: str, schema: str | None = None) -> Sequence[Table]:
        if schema is not None:
            found = self._by_qualified.get(f"{schema.lower()}.{name.lower()}")
            return (found,) if found is not None else ()
        return tuple(self._by_name.get(name.lower(), ()))

    def sql_name(self, table: Table) -> str:
        mapped = self._sql_names.get(table.qualified_name.lower())
        if mapped is not None:
            return mapped
        return f"{quote_ident(table.schema)}.{quote_ident(table.name)}"

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(self._by_qualified.values())


def catalog_from_tables(tables: Iterable[Table],
                        sql_names: Mapping[str, str] | None = None) -> MappingCatalog:
    """A catalog of ``tables``.

    ``sql_names`` maps a qualified ADQL name (``tap_upload.mine``) to the SQL that reaches it
    (``pg_temp.upload_1``), for tables that do not live under their published name.
    """
    return MappingCatalog(tables, sql_names)
