"""SIA 2.0 over ObsCore: ``/sia/query``, ``/sia/capabilities``, ``/sia/availability``.

The query runs on ``ivoa.obscore`` through the requester's connection, so embargoed images are
never found. Rows stream out as they are fetched; the document ends with DataLink, SODA and the
service's own descriptors (SIA 2.0 sections 3.1.1-3.1.2), which is also the whole answer to
MAXREC=0.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from flask import Blueprint, Response, stream_with_context

from skyvault.schema.tables import OBSCORE_COLUMNS
from skyvault.server.http.context import reading
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.http.service_config import app_settings
from skyvault.server.images.common import (
    availability_response,
    capabilities_response,
    parameters,
    public_url,
)
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
    DEFAULT_MAXREC,
    MAX_MAXREC,
    PARAMETER_METADATA,
    SIA_STANDARD_ID,
    SiaQuery,
    SiaUsageError,
    parse_sia_query,
    sia_select,
)
from skyvault.vo.soda import soda_descriptor
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable import write_votable
from skyvault.vo.votable.document import error_votable
from skyvault.vo.votable.sqlrows import RenderedRows, row_sql
from skyvault.vo.votable.streaming import resumed

blueprint = Blueprint("sia", __name__)

QUERY_PATH = "/sia/query"
FETCH_ROWS = 2000
IN_MEMORY_ROWS = 20_000


@dataclass(frozen=True)
class SiaConfig:
    """SIA limits: SKYVAULT_SIA_<FIELD> in the environment, SIA_<FIELD> in a web application's
    config (``service_config``)."""

    statement_timeout_ms: int = 120_000
    default_maxrec: int = DEFAULT_MAXREC
    """Rows of an answer without MAXREC."""
    max_maxrec: int = MAX_MAXREC
    """Most rows of any answer (a larger MAXREC is cut to it, with the overflow INFO)."""


def sia_config() -> SiaConfig:
    return app_settings(SiaConfig(), "SIA")


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

_ACCESS_URL_SQL = (
    "%s || replace(replace(replace(obs_publisher_did, ':', '%%3A'), '/', '%%2F'), '?', '%%3F')")
"""What the view's access_url holds, without its per-row archive.url_quote() (~50 us a row): the
{links} URL (bound) and the DID percent-encoded; DIDs hold only letters, digits, '.', ':', '/'
and '?' (vo.publisher_did)."""

_SELECTED = ", ".join(f"{_ACCESS_URL_SQL} AS access_url" if c.name == "access_url" else c.name
                      for c in OBSCORE_COLUMNS)
ROW_SQL = row_sql(FIELDS, _NAMES, [c.type.pg_type for c in OBSCORE_COLUMNS])
"""Each row's TABLEDATA cells, written by PostgreSQL (vo.votable.sqlrows: ~80-row answers are
the usual, where rendering in C keeps the writer's share of a request small)."""


def sia_sql(query: SiaQuery, links_base: str) -> tuple[str, tuple[object, ...]]:
    """The query's SQL (its rows' TD cells, ``ROW_SQL.rendered`` reads them) and bound
    values."""
    sql, values = sia_select(query, _SELECTED)
    return f"SELECT {ROW_SQL.select_list} FROM ({sql}) AS sia_rows", (links_base, *values)


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


# Both are the same for every response (the descriptors for each public base URL); writing
# them took ~1 ms a request.
@functools.lru_cache(maxsize=16)
def _descriptors_xml(base_url: str) -> str:
    return "".join(descriptor_element(d) for d in descriptors())


def _rows(sql: str, values: tuple[object, ...], maxrec: int) -> Iterator[RenderedRows]:
    """Up to IN_MEMORY_ROWS rows are fetched at once and the connection goes back to the pool
    before the document is written (fewest round trips); more stream from a server cursor."""
    if maxrec < IN_MEMORY_ROWS:
        with reading(statement_timeout_ms=sia_config().statement_timeout_ms) as connection:
            rows = connection.execute(sql, values).fetchall()
        yield ROW_SQL.rendered(rows)
        return
    with reading(statement_timeout_ms=sia_config().statement_timeout_ms) as connection, \
            connection.cursor(name="sia_query") as cursor:
        cursor.execute(sql, values)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield ROW_SQL.rendered(rows)


def document(query: SiaQuery, batches: Iterable[RenderedRows] = ()) -> Iterator[bytes]:
    """The answer: the rows, then the DataLink, SODA and SIA descriptors (SIA 2.0 3.1.1)."""
    return write_votable(FIELDS, batches, serialization="TABLEDATA", limit=query.maxrec,
                         infos=[("standardID", SIA_STANDARD_ID, None)],
                         trailer=_descriptors_xml(public_url("")))


def run_query(query: SiaQuery) -> Response:
    sql, values = sia_sql(query, public_url("/datalink/links?ID="))
    batches = _rows(sql, values, query.maxrec)
    try:
        first = next(batches, None)
    except psycopg.Error as error:
        # pgsphere refuses self-intersecting or oversized polygons with an error.
        if query.polygons and "spherepoly" in str(error):
            return usage_error("POS polygon is not a valid spherical polygon "
                               "(self-intersecting or larger than a hemisphere)")
        raise
    chunks = document(query, resumed(first, batches))
    if query.maxrec < IN_MEMORY_ROWS:
        # All rows are here: one body with a Content-Length, written in one go (a streamed
        # answer goes out as several small chunked writes, which cost round trips).
        return Response(b"".join(chunks), content_type=query.response_format)
    return Response(stream_with_context(chunks), content_type=query.response_format)


@blueprint.route(QUERY_PATH, methods=["GET", "POST"])
def query() -> Response:
    try:
        config = sia_config()
        sia_query = parse_sia_query(parameters(), default_maxrec=config.default_maxrec,
                                    max_maxrec=config.max_maxrec)
    except (SiaUsageError, DaliError) as error:
        return usage_error(str(error))
    if sia_query.is_metadata_only:
        return Response(b"".join(document(sia_query)), content_type=sia_query.response_format)
    return run_query(sia_query)


@blueprint.get("/sia/capabilities")
def capabilities() -> Response:
    return capabilities_response("/sia", [
        Endpoint(SIA_STANDARD_ID, public_url(QUERY_PATH), version="2.0"),
    ])


@blueprint.get("/sia/availability")
def availability() -> Response:
    return availability_response()
