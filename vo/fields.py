"""Metadata of one output column, as a VOTable FIELD carries it.

The ADQL translator produces these for a query's select list; the writers in ``vo.votable``
serialise rows against them. Columns of published tables get theirs from ``schema.tables``.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.schema.model import Column


@dataclass(frozen=True)
class FieldSpec:
    name: str
    datatype: str
    """VOTable datatype: boolean, short, int, long, float, double, char, unicodeChar."""
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None

    @classmethod
    def from_column(cls, column: Column, name: str | None = None) -> FieldSpec:
        return cls(
            name=name or column.name,
            datatype=column.datatype,
            arraysize=column.arraysize,
            xtype=column.xtype,
            unit=column.unit,
            ucd=column.ucd,
            utype=column.utype,
            description=column.description,
        )


def described_field(name: str, datatype: str, description: str, unit: str | None = None,
                    ucd: str | None = None, arraysize: str | None = None) -> FieldSpec:
    """A field of a service's own table (not of a published one), described in one line."""
    return FieldSpec(name, datatype, arraysize=arraysize, unit=unit, ucd=ucd,
                     description=description)
