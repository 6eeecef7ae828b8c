"""Simple Cone Search 1.03 over the positional tables: ``/scs/<catalog>?RA=&DEC=&SR=``.

Every published survey table with a main position and a main identifier is a catalog
(``vo.scs``): the source catalogs (psf_sources, aperture_sources), the candidates, the image
tables (by image centre) and exposures (by pointing). Rows come through the requester's
connection (embargoed rows are absent) with their cells written by PostgreSQL
(``vo.votable.sqlrows``), and go out as VOTable 1.1 (``vo.votable``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response

from skyvault.schema.tables import SURVEY_SCHEMA
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
from skyvault.vo.scs import (
    CONE_SEARCH_ID,
    DEFAULT_MAXREC,
    MAX_MAXREC,
    Catalog,
    Cone,
    ConeError,
    catalogs,
    cone_fields,
    cone_row_sql,
    cone_select,
    parse_cone,
    value_expression,
)
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable import write_votable
from skyvault.vo.votable.document import scs_error_votable
from skyvault.vo.votable.sqlrows import RenderedRows

blueprint = Blueprint("scs", __name__)

SCS_TYPE = "text/xml"


@dataclass(frozen=True)
class ScsConfig:
    """Cone search limits: SKYVAULT_SCS_<FIELD> in the environment, SCS_<FIELD> in a web
    application's config (``service_config``)."""

    statement_timeout_ms: int = 120_000
    default_maxrec: int = DEFAULT_MAXREC
    """Rows of an answer without MAXREC."""
    max_maxrec: int = MAX_MAXREC
    """Most rows of any answer (a larger MAXREC is cut to it, with the overflow INFO)."""


def scs_config() -> ScsConfig:
    return app_settings(ScsConfig(), "SCS")

CATALOGS: dict[str, Catalog] = catalogs(SURVEY_SCHEMA)


def error_response(message: str, status: int = 200) -> Response:
    # SCS 1.03 clients read the Error INFO of a 200 response; 404 only for unknown catalogs.
    return Response(scs_error_votable(message), status=status, mimetype=SCS_TYPE)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_response(error.description or "")


def search(catalog: Catalog, cone: Cone) -> tuple[list[tuple], bool]:
    """The rows in the cone as Python values (``vo.scs.value_expression``), for the web pages'
    table and CSV, and whether there were more than MAXREC."""
    if not cone.has_rows:
        return [], False
    columns = catalog.columns(cone.verb)
    sql, values = cone_select(catalog, cone,
                              ", ".join(value_expression(catalog, c) for c in columns))
    with reading(statement_timeout_ms=scs_config().statement_timeout_ms) as connection:
        rows = connection.execute(sql, values).fetchall()
    return rows[:cone.maxrec], len(rows) > cone.maxrec


def search_rendered(catalog: Catalog, cone: Cone) -> list[RenderedRows]:
    """The rows in the cone with their VOTable cells written, read all at once: a VOTable 1.1
    answer holds its rows before it starts anyway (its overflow goes before the TABLE), and the
    connection goes back to the pool before the answer is written."""
    if not cone.has_rows:
        return []
    sql, values = cone_select(catalog, cone)
    with reading(statement_timeout_ms=scs_config().statement_timeout_ms) as connection:
        fetched = connection.execute(sql, values).fetchall()
    return [cone_row_sql(catalog, cone.verb).rendered(fetched)]


def cone_document(catalog: Catalog, cone: Cone, batches: list[RenderedRows]) -> bytes:
    return b"".join(write_votable(
        cone_fields(catalog, cone.verb), batches, serialization="TABLEDATA", version="1.1",
        limit=cone.maxrec, resource_name=catalog.name, table_name=catalog.name,
        description=catalog.table.description, errors="raise"))


@blueprint.route("/scs/<catalog_name>", methods=["GET", "POST"])
def cone_search(catalog_name: str) -> Response:
    catalog = CATALOGS.get(catalog_name)
    if catalog is None:
        return error_response(f"no catalog {catalog_name!r}; catalogs: "
                              + ", ".join(sorted(CATALOGS)), status=404)
    try:
        config = scs_config()
        cone = parse_cone(parameters(), config.default_maxrec, config.max_maxrec)
    except (ConeError, DaliError) as error:
        return error_response(str(error))
    return Response(cone_document(catalog, cone, search_rendered(catalog, cone)),
                    mimetype=SCS_TYPE)


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
