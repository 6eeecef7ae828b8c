"""Translated expressions: the SQL text with what the translator knows about it.

Geometry values keep their structure (a point's right ascension and declination, a circle's
centre and radius, a polygon's vertices) so that predicates can choose the q3c form that uses
the positional index instead of building pgsphere objects row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyvault.vo.adql import valuetypes as vt
from skyvault.vo.fields import FieldSpec


@dataclass(slots=True)
class Value:
    sql: str
    type: vt.ValueType
    unit: str | None = None
    field: FieldSpec | None = None
    """Metadata to copy to the output when the value is a plain column reference."""
    geo: Geo | None = None
    const: float | int | None = None
    """The number, when the expression is a numeric constant."""
    refs: frozenset[int] = frozenset()
    """Range entries (FROM items) whose columns the value reads."""
    position: tuple[int, str] | None = None
    """(entry, 'ra' or 'dec') for the q3c-indexed position columns (UCD ...;meta.main)."""
    exact: bool = False
    """The SQL's PostgreSQL type is exactly ``type.pg``; otherwise outputs are cast to it."""
    name: str | None = None
    """The output column name it gets when the select list does not give one."""


@dataclass(slots=True)
class GeoPoint:
    """A POINT built from two numbers in degrees."""

    ra: Value
    dec: Value

    @property
    def indexed_entry(self) -> int | None:
        """The FROM item whose q3c-indexed position this point is, if it is one."""
        ra, dec = self.ra.position, self.dec.position
        if ra is not None and dec is not None and ra[1] == "ra" and dec[1] == "dec" \
                and ra[0] == dec[0]:
            return ra[0]
        return None


@dataclass(slots=True)
class GeoSphere:
    """A pgsphere value (a stored column, a subquery output, a UDF result)."""

    sql: str
    shape: str
    """point, circle or polygon."""


@dataclass(slots=True)
class GeoCircle:
    center: GeoPoint | GeoSphere
    radius: Value


@dataclass(slots=True)
class GeoPolygon:
    vertices: tuple[GeoPoint | GeoSphere, ...]


Geo = GeoPoint | GeoSphere | GeoCircle | GeoPolygon


def shape_of(geo: Geo) -> str:
    if isinstance(geo, GeoPoint):
        return "point"
    if isinstance(geo, GeoCircle):
        return "circle"
    if isinstance(geo, GeoPolygon):
        return "polygon"
    return geo.shape
