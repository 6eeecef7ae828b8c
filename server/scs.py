"""Simple Cone Search 1.03 over the positional tables: ``/scs/<catalog>?RA=&DEC=&SR=``.

Every published survey table with a main position (``pos.eq.ra;meta.main``) and a main
identifier is a catalog: the source catalogs (psf_sources, aperture_sources), the candidates,
the image tables (by image centre) and exposures (by pointing). The search is ``q3c_join``,
which the q3c index of each table serves (and whose q3c ranges prune the sky cells of the
catalogs with a sky layout, ingest/README.md). Rows come through the requester's connection:
embargoed rows are absent.

SCS 1.03 section 2: exactly one FIELD each with the UCD1 ``ID_MAIN`` (a string),
``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` (doubles); errors are ``INFO name="Error"``
documents. VERB 1, 2 and 3 give the minimal, the principal and all columns; SR=0 returns the
columns without rows; MAXREC caps the rows (with a DALI overflow INFO).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from flask import Blueprint, Response

from skyvault.schema.model import Column, Table
from skyvault.schema.tables import SURVEY_SCHEMA
from skyvault.server.context import reading
from skyvault.server.imaging import (
    availability_response,
    capabilities_response,
    parameters,
    public_url,
)
from skyvault.server.products import spoly_degrees
from skyvault.server.request_guard import UnusableRequest
from skyvault.vo.adql.geometry import sky_key_ranges
from skyvault.vo.dali import DaliError, Parameters
from skyvault.vo.fields import FieldSpec
from skyvault.vo.shapes import ShapeError, check_radius
from skyvault.vo.tabledata import format_row
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable.document import (
    escape_text,
    field_element,
    info_element,
    scs_error_votable,
)

blueprint = Blueprint("scs", __name__)

CONE_SEARCH_ID = "ivo://ivoa.net/std/ConeSearch"
SCS_TYPE = "text/xml"
DEFAULT_MAXREC = 50_000
MAX_MAXREC = 1_000_000
MAX_SR = 10.0
# SCS 1.03 section 2 asks for VOTable 1.0 or 1.1; its UCD1 words (ID_MAIN, POS_EQ_RA_MAIN) are
# no valid UCD1+ words, which validators check in VOTable 1.2 and later.
VOTABLE_11_OPEN = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                   '<VOTABLE version="1.1" xmlns="http://www.ivoa.net/xml/VOTable/v1.1">\n')


class ConeError(ValueError):
    """A cone search request that cannot run (SCS 1.03 section 2: an Error INFO)."""


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


def _catalog(table: Table) -> Catalog | None:
    def first(ucd: str) -> Column | None:
        return next((c for c in table.columns if c.ucd == ucd), None)

    ra, dec = first("pos.eq.ra;meta.main"), first("pos.eq.dec;meta.main")
    identifier = first("meta.id;meta.main")
    if ra is None or dec is None or identifier is None:
        return None
    return Catalog(table, identifier, ra, dec)


CATALOGS: dict[str, Catalog] = {
    catalog.name: catalog
    for catalog in (_catalog(t) for t in SURVEY_SCHEMA.tables) if catalog is not None
}


def field_of(catalog: Catalog, column: Column) -> FieldSpec:
    # VOTable 1.1 has no xtype: timestamps are plain strings, footprints plain double arrays.
    spec = dataclasses.replace(FieldSpec.from_column(column), xtype=None)
    if column is catalog.id_column:
        return FieldSpec(column.name, "char", arraysize="*", ucd="ID_MAIN",
                         description=column.description)
    if column is catalog.ra_column:
        return FieldSpec(column.name, "double", unit="deg", ucd="POS_EQ_RA_MAIN",
                         description=column.description)
    if column is catalog.dec_column:
        return FieldSpec(column.name, "double", unit="deg", ucd="POS_EQ_DEC_MAIN",
                         description=column.description)
    return spec


def select_expression(catalog: Catalog, column: Column) -> str:
    name = f'"{column.name}"'
    if column is catalog.id_column:
        return f"{name}::text"
    if column.type.pg_type == "spoly":
        return f"{name}::text"
    if column.type.pg_type == "timestamptz":
        return f"CASE WHEN isfinite({name}) THEN {name} END"
    return name


@dataclass(frozen=True)
class Cone:
    ra: float
    dec: float
    radius: float
    verb: int
    maxrec: int


def _number(params: Parameters, name: str) -> float:
    text = params.get(name)
    if text is None or not text.strip():
        raise ConeError(f"{name} is required")
    try:
        value = float(text)
    except ValueError:
        raise ConeError(f"{name} must be a number in decimal degrees, not {text!r}") from None
    if not math.isfinite(value):
        raise ConeError(f"{name} must be finite")
    return value


def parse_cone(params: Parameters) -> Cone:
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
    maxrec = DEFAULT_MAXREC
    if maxrec_text is not None:
        if not maxrec_text.strip().isdigit():
            raise ConeError(f"MAXREC must be a non-negative integer, not {maxrec_text!r}")
        maxrec = min(int(maxrec_text), MAX_MAXREC)
    return Cone(ra % 360.0, dec, radius, verb, maxrec)


def error_response(message: str, status: int = 200) -> Response:
    # SCS 1.03 clients read the Error INFO of a 200 response; 404 only for unknown catalogs.
    return Response(scs_error_votable(message), status=status, mimetype=SCS_TYPE)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_response(error.description or "")


# VOTable 1.1 has no empty integer cells: a NULL is the value VALUES/@null declares.
INTEGER_NULLS = {"short": "-32768", "int": "-2147483648", "long": "-9223372036854775808"}


def field_element_11(spec: FieldSpec) -> str:
    element = field_element(spec)
    null = INTEGER_NULLS.get(spec.datatype) if spec.arraysize is None else None
    if null is None:
        return element
    values = f'<VALUES null="{null}"/>'
    if element.endswith("/>"):
        return element[:-2] + f">{values}</FIELD>"
    return element[:-len("</FIELD>")] + values + "</FIELD>"  # after DESCRIPTION


def null_cells_11(fields: list[FieldSpec]) -> list[str]:
    return [f"<TD>{INTEGER_NULLS[f.datatype]}</TD>"
            if f.datatype in INTEGER_NULLS and f.arraysize is None else "<TD/>" for f in fields]


def cone_document(catalog: Catalog, cone: Cone, rows: list[tuple], overflow: bool) -> str:
    columns = catalog.columns(cone.verb)
    fields = [field_of(catalog, c) for c in columns]
    regions = [i for i, c in enumerate(columns) if c.type.pg_type == "spoly"]
    nulls = null_cells_11(fields)
    parts = [VOTABLE_11_OPEN, f'<RESOURCE type="results" name="{catalog.name}">\n',
             info_element("QUERY_STATUS", "OK") + "\n",
             f'<TABLE name="{catalog.name}">\n',
             f"<DESCRIPTION>{escape_text(catalog.table.description)}</DESCRIPTION>\n"]
    parts += [field_element_11(f) + "\n" for f in fields]
    parts.append("<DATA><TABLEDATA>\n")
    for row in rows:
        cells = list(row)
        for index in regions:
            cells[index] = spoly_degrees(cells[index])
        parts.append(format_row(cells, nulls))
    parts.append("</TABLEDATA></DATA>\n</TABLE>\n")
    if overflow:
        parts.append(info_element("QUERY_STATUS", "OVERFLOW") + "\n")
    parts.append("</RESOURCE>\n</VOTABLE>\n")
    return "".join(parts)


def search(catalog: Catalog, cone: Cone) -> tuple[list[tuple], bool]:
    if cone.radius == 0 or cone.maxrec == 0:
        return [], False
    columns = catalog.columns(cone.verb)
    select = ", ".join(select_expression(catalog, c) for c in columns)
    ra, dec = f'"{catalog.ra_column.name}"', f'"{catalog.dec_column.name}"'
    where = f"q3c_join(%(ra)s, %(dec)s, {ra}, {dec}, %(radius)s)"
    layout = catalog.table.sky_layout
    if layout is not None and layout.key_margin_deg is not None:
        # Rows filed under their objects: the objects' key ranges prune the sky cells.
        where += " AND " + sky_key_ranges(layout.key, "%(ra)s", "%(dec)s",
                                          f"(%(radius)s + {layout.key_margin_deg!r})")
    sql = (f"SELECT {select} FROM {catalog.table.qualified_name}"
           f" WHERE {where} LIMIT {cone.maxrec + 1:d}")
    with reading(statement_timeout_ms=120_000) as connection:
        rows = connection.execute(sql, {"ra": cone.ra, "dec": cone.dec,
                                        "radius": cone.radius}).fetchall()
    return rows[:cone.maxrec], len(rows) > cone.maxrec


@blueprint.route("/scs/<catalog_name>", methods=["GET", "POST"])
def cone_search(catalog_name: str) -> Response:
    catalog = CATALOGS.get(catalog_name)
    if catalog is None:
        return error_response(f"no catalog {catalog_name!r}; catalogs: "
                              + ", ".join(sorted(CATALOGS)), status=404)
    try:
        cone = parse_cone(parameters())
    except (ConeError, DaliError) as error:
        return error_response(str(error))
    rows, overflow = search(catalog, cone)
    return Response(cone_document(catalog, cone, rows, overflow), mimetype=SCS_TYPE)


@blueprint.get("/scs/<catalog_name>/capabilities")
def capabilities(catalog_name: str) -> Response:
    if catalog_name not in CATALOGS:
        return Response(f"no catalog {catalog_name!r}\n", status=404, mimetype="text/plain")
    # SCS 1.03 writes the base URL with its trailing '?'; pyvo strips it before querying and
    # matches capability URLs as prefixes, so the same base without it is declared too, or its
    # AuthSession would never send credentials here.
    base = public_url(f"/scs/{catalog_name}")
    return capabilities_response(f"/scs/{catalog_name}", [
        Endpoint(CONE_SEARCH_ID, f"{base}?", use="base", other_urls=(base,)),
    ])


@blueprint.get("/scs/<catalog_name>/availability")
def availability(catalog_name: str) -> Response:
    if catalog_name not in CATALOGS:
        return Response(f"no catalog {catalog_name!r}\n", status=404, mimetype="text/plain")
    return availability_response()
