"""SIA 2.0 over ObsCore: ``/sia/query``, ``/sia/capabilities``, ``/sia/availability``.

The query runs on ``ivoa.obscore`` through the requester's connection, so embargoed images are
never found. Rows stream out as they are fetched; the document ends with DataLink, SODA and the
service's own descriptors (SIA 2.0 sections 3.1.1-3.1.2), which is also the whole answer to
MAXREC=0.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator

import psycopg
from flask import Blueprint, Response, stream_with_context

from skyvault.schema.model import Column
from skyvault.schema.tables import OBSCORE_COLUMNS
from skyvault.server.context import reading
from skyvault.server.imaging import (
    availability_response,
    capabilities_response,
    parameters,
    public_url,
)
from skyvault.server.products import spoly_degrees
from skyvault.server.request_guard import UnusableRequest
from skyvault.vo.dali import DaliError
from skyvault.vo.datalink import (
    DATALINK_CONTENT_TYPE,
    LINKS_STANDARD_ID,
    ServiceDescriptor,
    ServiceParam,
    descriptor_element,
)
from skyvault.vo.fields import FieldSpec
from skyvault.vo.sia import (
    PARAMETER_METADATA,
    SIA_STANDARD_ID,
    SiaQuery,
    SiaUsageError,
    parse_sia_query,
    sia_select,
)
from skyvault.vo.soda import soda_descriptor
from skyvault.vo.tabledata import null_cells
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable.document import error_votable, escape_text, info_element, table_head

blueprint = Blueprint("sia", __name__)
log = logging.getLogger(__name__)

QUERY_PATH = "/sia/query"
FETCH_ROWS = 2000
IN_MEMORY_ROWS = 20_000
STATEMENT_TIMEOUT_MS = 120_000

def _sia_field(column) -> FieldSpec:
    field = FieldSpec.from_column(column)
    if column.name == "s_region":
        # TAP publishes s_region as an ADQL REGION (STC-S); SIA answers with the DALI polygon
        # (double array, degrees) that pyvo and TOPCAT draw directly.
        return FieldSpec(field.name, "double", "*", "polygon", unit="deg", ucd=field.ucd,
                         utype=field.utype, description=field.description)
    return field


FIELDS: tuple[FieldSpec, ...] = tuple(_sia_field(c) for c in OBSCORE_COLUMNS)
_NAMES = [c.name for c in OBSCORE_COLUMNS]
_REGION = _NAMES.index("s_region")


def _escaped(sql: str) -> str:
    return f"replace(replace(replace({sql}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _cell_sql(column: Column) -> str:
    """SQL giving the column's whole TD: PostgreSQL writes the cells of a row (in C, ~40x
    cheaper than formatting each value in Python, which took most of a request's time)."""
    name = column.name
    if name == "access_url":
        # What the view's access_url holds, without its per-row archive.url_quote() (~50 us a
        # row): the {links} URL (bound, with the opening TD) and the DID percent-encoded;
        # DIDs hold only letters, digits, '.', ':', '/' and '?' (vo.publisher_did).
        return ("%s || replace(replace(replace(obs_publisher_did, ':', '%%3A'), '/', '%%2F'),"
                " '?', '%%3F') || '</TD>'")
    kind = column.type.pg_type
    if kind == "timestamptz":
        # DALI timestamps in UTC; 'infinity' (not yet released) is no time at all: NULL.
        value = (f"CASE WHEN isfinite({name}) THEN to_char({name} AT TIME ZONE 'UTC',"
                 " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') END")
    elif kind == "text" or kind.startswith("char"):
        value = _escaped(f"{name}::text")
    else:
        # Numbers: PostgreSQL's shortest exact text (ObsCore's numbers here are finite).
        value = f"{name}::text"
    return f"coalesce('<TD>' || {value} || '</TD>', '<TD/>')"


ROW_SQL = (
    f"concat({', '.join(_cell_sql(c) for c in OBSCORE_COLUMNS[:_REGION])}),"
    " s_region::text,"
    f" concat({', '.join(_cell_sql(c) for c in OBSCORE_COLUMNS[_REGION + 1:])})"
)
"""The cells before s_region, s_region itself (written here in degrees), the cells after."""


def sia_sql(query: SiaQuery, links_base: str) -> tuple[str, tuple[object, ...]]:
    sql, values = sia_select(query, ROW_SQL)
    return sql, ("<TD>" + escape_text(links_base), *values)


def usage_error(message: str) -> Response:
    return Response(error_votable(f"UsageFault: {message}"), status=400,
                    mimetype="application/x-votable+xml")


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return usage_error(error.description or "")


def descriptors() -> list[ServiceDescriptor]:
    """DataLink and SODA for the rows (by obs_publisher_did), and SIA itself."""
    sia_params = [ServiceParam("POS", description="CIRCLE ra dec r, RANGE ra1 ra2 dec1 dec2 "
                                                  "(+-Inf for open bounds) or POLYGON ra1 dec1 "
                                                  "... (ICRS degrees)")]
    for name, (datatype, arraysize, xtype, unit, text) in PARAMETER_METADATA.items():
        sia_params.append(ServiceParam(name, datatype=datatype, arraysize=arraysize, xtype=xtype,
                                       unit=unit, description=text))
    return [
        ServiceDescriptor(
            access_url=public_url("/datalink/links"), standard_id=LINKS_STANDARD_ID,
            id="datalink", name="links", content_type=DATALINK_CONTENT_TYPE,
            input_params=(ServiceParam("ID", ucd="meta.id;meta.main", ref="obs_publisher_did"),),
            description="Files, previews, cutouts and provenance of each image"),
        soda_descriptor(public_url("/soda/sync"), descriptor_id="soda",
                        id_ref="obs_publisher_did"),
        ServiceDescriptor(
            access_url=public_url(QUERY_PATH), standard_id=SIA_STANDARD_ID, name="this",
            input_params=tuple(sia_params),
            description="SIA 2.0 image search over ObsCore (the archive's raw, science, "
                        "reference and difference images)"),
    ]


def _tail(overflow: bool, error: str | None) -> str:
    parts = ["</TABLE>\n"]
    if error is not None:
        parts.append(info_element("QUERY_STATUS", "ERROR", error) + "\n")
    elif overflow:
        parts.append(info_element("QUERY_STATUS", "OVERFLOW") + "\n")
    parts.append("</RESOURCE>\n")
    parts.append(_descriptors_xml(public_url("")))
    parts.append("</VOTABLE>\n")
    return "".join(parts)


# Both are the same for every response (the descriptors for each public base URL); writing
# them took ~1 ms a request.
@functools.lru_cache(maxsize=16)
def _descriptors_xml(base_url: str) -> str:
    return "".join(descriptor_element(d) for d in descriptors())


@functools.cache
def _head() -> str:
    return table_head(FIELDS, infos=[("standardID", SIA_STANDARD_ID, None)])


def _region_cell(text: str | None, null: str) -> str:
    corners = spoly_degrees(text)
    if not corners:
        return null
    return "<TD>" + " ".join(map(repr, corners)) + "</TD>"


def _document(first: list[tuple], more: Callable[[], list[tuple]], maxrec: int,
              finish: contextlib.ExitStack) -> Iterator[str]:
    null_region = null_cells(FIELDS)[_REGION]
    written = 0
    overflow = False
    error = None
    try:
        yield _head() + "<DATA><TABLEDATA>\n"
        batch = first
        while batch:
            chunk = []
            for row in batch:
                if written == maxrec:
                    overflow = True
                    break
                before, region, after = row
                chunk.append("<TR>" + before + _region_cell(region, null_region) + after
                             + "</TR>\n")
                written += 1
            yield "".join(chunk)
            if overflow:
                break
            batch = more()
    except Exception as failure:  # a failure while streaming is reported in the document
        log.exception("SIA query failed while streaming")
        error = f"DefaultFault: {type(failure).__name__}"
    finally:
        finish.close()
    yield "</TABLEDATA></DATA>\n" + _tail(overflow, error)


def _no_more() -> list[tuple]:
    return []


def run_query(query: SiaQuery) -> Response:
    """Up to IN_MEMORY_ROWS rows are fetched at once and the connection goes back to the pool
    before the document is written (fewest round trips); more stream from a server cursor."""
    sql, values = sia_sql(query, public_url("/datalink/links?ID="))
    stack = contextlib.ExitStack()
    try:
        if query.maxrec < IN_MEMORY_ROWS:
            connection = stack.enter_context(reading())
            # The time limit and the query go in one round trip (pipeline mode); binary
            # results, since numbers and times parse faster than from text.
            with connection.pipeline():
                connection.execute("SELECT set_config('statement_timeout', %s, true)",
                                   (str(STATEMENT_TIMEOUT_MS),))
                result = connection.execute(sql, values, binary=True)
            first = result.fetchall()
            stack.close()
            more = _no_more
        else:
            connection = stack.enter_context(
                reading(statement_timeout_ms=STATEMENT_TIMEOUT_MS))
            cursor = stack.enter_context(connection.cursor(name="sia_query", binary=True))
            cursor.execute(sql, values)
            first = cursor.fetchmany(FETCH_ROWS)

            def more() -> list[tuple]:
                return cursor.fetchmany(FETCH_ROWS)
    except psycopg.Error as error:
        stack.__exit__(type(error), error, error.__traceback__)  # rolls the transaction back
        # pgsphere refuses self-intersecting or oversized polygons with an error.
        if query.polygons and "spherepoly" in str(error):
            return usage_error("POS polygon is not a valid spherical polygon "
                               "(self-intersecting or larger than a hemisphere)")
        raise
    except BaseException as error:
        stack.__exit__(type(error), error, error.__traceback__)
        raise
    if more is _no_more:
        # All rows are here: one body with a Content-Length, written in one go (a streamed
        # answer goes out as several small chunked writes, which cost round trips).
        body = "".join(_document(first, more, query.maxrec, stack))
        return Response(body, content_type=query.response_format)
    body = stream_with_context(_document(first, more, query.maxrec, stack))
    return Response(body, content_type=query.response_format)


@blueprint.route(QUERY_PATH, methods=["GET", "POST"])
def query() -> Response:
    try:
        sia_query = parse_sia_query(parameters())
    except (SiaUsageError, DaliError) as error:
        return usage_error(str(error))
    if sia_query.is_metadata_only:
        return Response(_head() + _tail(False, None), content_type=sia_query.response_format)
    return run_query(sia_query)


@blueprint.get("/sia/capabilities")
def capabilities() -> Response:
    return capabilities_response("/sia", [
        Endpoint(SIA_STANDARD_ID, public_url(QUERY_PATH), version="2.0"),
    ])


@blueprint.get("/sia/availability")
def availability() -> Response:
    return availability_response()
