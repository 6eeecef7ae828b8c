"""Simple Cone Search 1.03: the request (RA, DEC, SR, VERB, MAXREC), the catalogs, their SQL.

Pure: ``parse_cone`` turns request parameters into a ``Cone``; ``catalog_of`` finds what makes a
published table a cone-searchable catalog (a main position, ``pos.eq.ra;meta.main`` and
``pos.eq.dec;meta.main``, and a main identifier); ``cone_select`` gives the SQL text of a search
with its bound values, its rows' cells written by PostgreSQL (``vo.votable.sqlrows``), and
``cone_fields`` the FIELDs of the answer. The search is ``q3c_join``, which the q3c index of
each table serves (and whose q3c ranges prune the sky cells of the catalogs with a sky layout,
ingest/README.md; survey.lightcurves, filed under its objects' keys, adds those keys'
ranges). The answer is VOTable 1.1 (section 2 asks for 1.0 or 1.1), written by
``vo.votable.write_votable(version="1.1")``.

SCS 1.03 section 2: exactly one FIELD each with the UCD1 ``ID_MAIN`` (a string),
``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` (doubles); errors are ``INFO name="Error"``
documents. VERB 1, 2 and 3 give the minimal, the principal and all columns; SR=0 returns the
columns without rows; MAXREC caps the rows (with a DALI overflow INFO).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from skyvault.schema.model import Column, Schema, Table
from skyvault.vo.adql.geometry import sky_key_ranges
from skyvault.vo.dali import Parameters, parse_finite
from skyvault.vo.fields import FieldSpec
from skyvault.vo.shapes import ShapeError, check_radius
from skyvault.vo.votable.sqlrows import RowSql, row_sql

CONE_SEARCH_ID = "ivo://ivoa.net/std/ConeSearch"
DEFAULT_MAXREC = 50_000
MAX_MAXREC = 1_000_000
MAX_SR = 10.0


class ConeError(ValueError):
    """A cone search request that cannot run (SCS 1.03 section 2: an Error INFO)."""


@dataclass(frozen=True)
class Cone:
    ra: float
    dec: float
    radius: float
    verb: int
    maxrec: int

    @property
    def has_rows(self) -> bool:
        """SR = 0 asks for the columns alone (section 2), as does MAXREC = 0."""
        return self.radius != 0 and self.maxrec != 0


@dataclass(frozen=True)
class Catalog:
    table: Table
    id_column: Column
    ra_column: Column
    dec_column: Column

    @property
    def name(self) -> str:
        return self.table.name

    def columns(self, verb: int) -> list[Column]:
        main = [self.id_column, self.ra_column, self.dec_column]
        if verb == 1:
            return main
        others = [c for c in self.table.columns if c not in main and (verb == 3 or c.principal)]
        return main + others


def catalog_of(table: Table) -> Catalog | None:
    """The table as a cone search catalog, or None without a main position and identifier."""
    def first(ucd: str) -> Column | None:
        return next((c for c in table.columns if c.ucd == ucd), None)

    ra, dec = first("pos.eq.ra;meta.main"), first("pos.eq.dec;meta.main")
    identifier = first("meta.id;meta.main")
    if ra is None or dec is None or identifier is None:
        return None
    return Catalog(table, identifier, ra, dec)


def catalogs(schema: Schema) -> dict[str, Catalog]:
    """Every cone-searchable table of a schema, by name."""
    found = (catalog_of(table) for table in schema.tables)
    return {catalog.name: catalog for catalog in found if catalog is not None}


# -- the request ---------------------------------------------------------------------------------


def _number(params: Parameters, name: str) -> float:
    text = params.get(name)
    if text is None or not text.strip():
        raise ConeError(f"{name} is required")
    return parse_finite(text, name, ConeError)


def parse_cone(params: Parameters, default_maxrec: int = DEFAULT_MAXREC,
               max_maxrec: int = MAX_MAXREC) -> Cone:
    ra, dec, radius = (_number(params, name) for name in ("RA", "DEC", "SR"))
    if not 0 <= ra <= 360:
        raise ConeError(f"RA {ra} is outside [0, 360]")
    if not -90 <= dec <= 90:
        raise ConeError(f"DEC {dec} is outside [-90, 90]")
    if radius < 0:
        raise ConeError(f"SR {radius} is negative")
    if radius > MAX_SR:
        raise ConeError(f"SR {radius} is larger than this service's limit of {MAX_SR} degrees")
    if radius != 0:  # SR = 0 is the request for the table of no rows (see above)
        try:
            check_radius(radius, "SR", largest=MAX_SR)
        except ShapeError as error:
            raise ConeError(str(error)) from None
    verb_text = params.get("VERB") or "2"
    verb = int(verb_text) if verb_text.strip() in ("1", "2", "3") else 2
    maxrec_text = params.get("MAXREC")
    maxrec = default_maxrec
    if maxrec_text is not None:
        if not maxrec_text.strip().isdigit():
            raise ConeError(f"MAXREC must be a non-negative integer, not {maxrec_text!r}")
        maxrec = min(int(maxrec_text), max_maxrec)
    return Cone(ra % 360.0, dec, radius, verb, maxrec)


# -- the answer ----------------------------------------------------------------------------------


def field_of(catalog: Catalog, column: Column) -> FieldSpec:
    """A column's FIELD; the main identifier and position carry SCS's UCD1 words."""
    if column is catalog.id_column:
        return FieldSpec(column.name, "char", arraysize="*", ucd="ID_MAIN",
                         description=column.description)
    if column is catalog.ra_column:
        return FieldSpec(column.name, "double", unit="deg", ucd="POS_EQ_RA_MAIN",
                         description=column.description)
    if column is catalog.dec_column:
        return FieldSpec(column.name, "double", unit="deg", ucd="POS_EQ_DEC_MAIN",
                         description=column.description)
    return FieldSpec.from_column(column)


def cone_fields(catalog: Catalog, verb: int) -> list[FieldSpec]:
    return [field_of(catalog, column) for column in catalog.columns(verb)]


def select_expression(catalog: Catalog, column: Column) -> tuple[str, str]:
    """A column's SQL and its PostgreSQL type as selected: the identifier as text (a string,
    section 2)."""
    name = f'"{column.name}"'
    if column is catalog.id_column:
        return f"{name}::text", "text"
    return name, column.type.pg_type


def value_expression(catalog: Catalog, column: Column) -> str:
    """A column's SQL for rows read as Python values (the web pages' table and CSV): the
    identifier as text, pgsphere values as their text, 'infinity' as no time (NULL)."""
    expression, pg_type = select_expression(catalog, column)
    if pg_type == "spoly":
        return f"{expression}::text"
    if pg_type == "timestamptz":
        return f"CASE WHEN isfinite({expression}) THEN {expression} END"
    return expression


@lru_cache(maxsize=64)
def cone_row_sql(catalog: Catalog, verb: int) -> RowSql:
    """The answer's rows as PostgreSQL writes their VOTable 1.1 cells (``vo.votable.sqlrows``:
    cone searches answer with tens to thousands of rows, where that is the cheapest)."""
    selected = [select_expression(catalog, c) for c in catalog.columns(verb)]
    return row_sql(cone_fields(catalog, verb), [expression for expression, _ in selected],
                   [pg_type for _, pg_type in selected], version="1.1")


def cone_select(catalog: Catalog, cone: Cone,
                select_list: str | None = None) -> tuple[str, tuple[float, float, float]]:
    """The SQL of up to ``maxrec + 1`` rows in the cone (the extra one tells an overflow) and
    its bound values. The select list is by default the answer's rows as TABLEDATA
    (``cone_row_sql(catalog, cone.verb).rendered`` reads them); the web pages give
    ``value_expression``s."""
    if select_list is None:
        select_list = cone_row_sql(catalog, cone.verb).select_list
    ra, dec = f'"{catalog.ra_column.name}"', f'"{catalog.dec_column.name}"'
    where = f"q3c_join(%s, %s, {ra}, {dec}, %s)"
    layout = catalog.table.sky_layout
    if layout is not None and layout.key_margin_deg is not None:
        # Rows filed under another position's key (light-curve points, under their objects'):
        # the key's ranges around the cone widened by the layout's margin prune the sky cells,
        # as q3c_join's own ranges prune cells keyed by the rows' positions. The cone's
        # numbers are parsed floats, written as literals.
        where += " AND " + sky_key_ranges(layout.key, repr(cone.ra), repr(cone.dec),
                                          repr(cone.radius + layout.key_margin_deg))
    sql = (f"SELECT {select_list} FROM {catalog.table.qualified_name}"
           f" WHERE {where} LIMIT {cone.maxrec + 1:d}")
    return sql, (cone.ra, cone.dec, cone.radius)
