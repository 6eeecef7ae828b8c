"""TAP_SCHEMA rows (TAP 1.1 section 4) generated from the declarative model."""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.schema.model import Column, Table
from skyvault.schema.tables import PUBLISHED_SCHEMAS, REFERENCE_CATALOGS

# ADQL reserved words that a published column happens to share; such names are delimited
# identifiers and TAP_SCHEMA must give them with their quotes (TAP 1.1 section 4.3).
ADQL_RESERVED_COLUMN_NAMES = frozenset({"size"})


def adql_column_name(column: Column) -> str:
    return f'"{column.name}"' if column.name in ADQL_RESERVED_COLUMN_NAMES else column.name


def _size(column: Column) -> int | None:
    """TAP 1.0's "size": arraysize as an integer, NULL when variable without bound."""
    arraysize = column.arraysize
    if not arraysize:
        return None
    digits = arraysize.rstrip("*")
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class TapSchemaRows:
    schemas: list[tuple]
    tables: list[tuple]
    columns: list[tuple]
    keys: list[tuple]
    key_columns: list[tuple]


IRSA_SOURCE_CATALOG = 21
"""IRSA's ``irsa_dbms`` of the catalogs ``Irsa.list_catalogs`` lists (astroquery reads
``irsa_dbms=21 AND irsa_pos='y'``); other tables carry NULL there."""


def irsa_columns(table: Table) -> tuple[str, int | None]:
    """IRSA's ``irsa_pos`` and ``irsa_dbms`` of a table: positional when it has ``ra`` and
    ``dec`` (what ``Irsa.query_region`` searches with CONTAINS), a source catalog when it is a
    sky-laid-out catalog of detections (schema.model.SkyLayout) or a reference co-add's catalog
    with those columns."""
    positional = {"ra", "dec"} <= set(table.column_names)
    catalog = positional and (table.sky_layout is not None or table in REFERENCE_CATALOGS)
    return ("y" if positional else "n"), (IRSA_SOURCE_CATALOG if catalog else None)


def _key_id(table: Table, index: int) -> str:
    return f"{table.qualified_name}_fk{index}"


def tap_schema_rows() -> TapSchemaRows:
    schemas, tables, columns, keys, key_columns = [], [], [], [], []
    published = {t.qualified_name for s in PUBLISHED_SCHEMAS for t in s.tables if t.published}
    table_index = 0
    for schema_index, schema in enumerate(PUBLISHED_SCHEMAS):
        schemas.append((schema.name, None, schema.description, schema_index))
        for table in schema.tables:
            if not table.published:
                continue
            table_index += 1
            tables.append((schema.name, table.qualified_name, table.table_type, table.utype,
                           table.description, table_index, *irsa_columns(table)))
            for column_index, column in enumerate(table.columns, start=1):
                columns.append((
                    table.qualified_name, adql_column_name(column), column.datatype,
                    column.arraysize, column.xtype, _size(column), column.description,
                    column.utype, column.unit, column.ucd, int(column.indexed),
                    int(column.principal), int(column.std), column_index,
                ))
            for key_index, key in enumerate(table.foreign_keys):
                if key.target_table not in published:
                    continue
                key_id = _key_id(table, key_index)
                keys.append((key_id, table.qualified_name, key.target_table,
                             key.description or None, None))
                for source, target in zip(key.columns, key.target_columns, strict=True):
                    key_columns.append((key_id, source, target))
    return TapSchemaRows(schemas, tables, columns, keys, key_columns)


def refresh_statements() -> list[tuple[str, list[tuple]]]:
    """(statement, rows) pairs that replace TAP_SCHEMA's content; run in one transaction."""
    rows = tap_schema_rows()

    def insert(table: str, width: int) -> str:
        return f"INSERT INTO tap_schema.{table} VALUES ({', '.join(['%s'] * width)})"

    return [
        ("DELETE FROM tap_schema.key_columns", []),
        ("DELETE FROM tap_schema.keys", []),
        ("DELETE FROM tap_schema.columns", []),
        ("DELETE FROM tap_schema.tables", []),
        ("DELETE FROM tap_schema.schemas", []),
        (insert("schemas", 4), rows.schemas),
        (insert("tables", 8), rows.tables),
        (insert("columns", 14), rows.columns),
        (insert("keys", 5), rows.keys),
        (insert("key_columns", 3), rows.key_columns),
    ]
