"""The optional ADQL 2.1 features this translator supports, for TAPRegExt capabilities.

Each entry is a ``languageFeatures`` type URI (ADQL 2.1 section 4 and appendix B) with the
forms it covers; the user-defined functions come from ``functions.UDF_SIGNATURES``.
"""

from __future__ import annotations

from skyvault.vo.adql.functions import UDF_SIGNATURES

ADQL_LANGUAGE = ("ADQL", "2.1", "ivo://ivoa.net/std/ADQL#v2.1")
"""Name, version and version IVOID for TAPRegExt's <language>."""

_PREFIX = "ivo://ivoa.net/std/tapregext#features-"

LANGUAGE_FEATURES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (_PREFIX + "adqlgeo", tuple((form, "") for form in (
        "POINT", "CIRCLE", "BOX", "POLYGON", "CENTROID", "AREA", "COORD1", "COORD2",
        "COORDSYS", "DISTANCE", "CONTAINS", "INTERSECTS"))),
    (_PREFIX + "adql-string", (("LOWER", ""), ("UPPER", ""), ("ILIKE", ""))),
    (_PREFIX + "adql-sets", (("UNION", ""), ("EXCEPT", ""), ("INTERSECT", ""))),
    (_PREFIX + "adql-common-table", (("WITH", ""),)),
    (_PREFIX + "adql-type", (("CAST", ""),)),
    (_PREFIX + "adql-conditional", (("COALESCE", ""),)),
    (_PREFIX + "adql-unit", (("IN_UNIT", "Conversion between multiplicatively related VOUnits "
                                         "of columns (and sums, differences and constant "
                                         "multiples of them)"),)),
    (_PREFIX + "adql-offset", (("OFFSET", ""),)),
    (_PREFIX + "udf", UDF_SIGNATURES),
)
"""(type URI, ((form, description), ...)) per feature group. Coordinates are ICRS only;
REGION is not supported."""
