"""The TAP 1.1 service at /tap: sync queries, VOSI, examples; ``/tap/async`` is TAP's UWS job
tree (``server.uws.blueprint`` made from the policy in ``server.tap_async``).

Thin handlers: parameters are parsed by ``vo.dali``, queries run by ``server.tap_query``,
documents written by ``vo.vosi`` and ``vo.tapregext``. Errors of the query protocol are DALI
error VOTables.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from html import escape

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage

from skyvault.db import database
from skyvault.schema.tables import PUBLISHED_SCHEMAS, table_by_name
from skyvault.server.auth import current_requester
from skyvault.server.http.client_watch import watch_client
from skyvault.server.http.context import service_url
from skyvault.server.http.outage import database_unreachable, unavailable_response
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.tap.async_jobs import TAP_JOBS
from skyvault.server.tap.capabilities import capabilities
from skyvault.server.tap.config import TapConfig
from skyvault.server.tap.examples import examples_document, visible_examples
from skyvault.server.tap.query import prepare, stream_result
from skyvault.server.tap.upload import load_uploads
from skyvault.server.uws.blueprint import configured, document_response, text, xml
from skyvault.vo import vosi
from skyvault.vo.dali import DaliError, Parameters, QueryLimits, parse_tap_query

log = logging.getLogger(__name__)

blueprint = Blueprint("tap", __name__, url_prefix="/tap")

_STARTED = dt.datetime.now(dt.UTC)


# -- helpers ----------------------------------------------------------------------------------


def request_parameters() -> Parameters:
    """The request's parameters, from the query string and a form body, names case-blind."""
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    return Parameters(pairs)


def tap_url() -> str:
    return f"{service_url()}/tap"


def dali_error(error: DaliError | str, status: int | None = None) -> Response:
    """A DALI error VOTable (DALI 1.1 4.4), as the job tree's are."""
    code = status or (error.http_status if isinstance(error, DaliError) else 400)
    return document_response(TAP_JOBS.error_document(str(error)), code)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return dali_error(error.description or "", 400)


def _config() -> TapConfig:
    """This application's TAP configuration (the async job tree's, ``server.tap_async``)."""
    return configured(TAP_JOBS)


def query_limits(config: TapConfig) -> QueryLimits:
    return QueryLimits(config.default_maxrec, config.hard_maxrec)


# -- the service root and VOSI ------------------------------------------------------------------


@blueprint.get("")
@blueprint.get("/")
def root() -> Response:
    base = escape(tap_url())  # built from the request's Host when no base URL is set
    links = "".join(f'<li><a href="{base}/{name}">{name}</a></li>'
                    for name in ("sync", "async", "capabilities", "availability", "tables",
                                 "examples"))
    page = (f'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>SkyVault TAP</title></head><body><h1>SkyVault TAP 1.1 service</h1>"
            f"<p>Base URL: {base}</p><ul>{links}</ul></body></html>\n")
    return Response(page, mimetype="text/html")


@blueprint.get("/capabilities")
def capabilities_resource() -> Response:
    return xml(vosi.capabilities_document(capabilities(tap_url(), _config())))


@blueprint.get("/availability")
def availability() -> Response:
    notes: list[str] = []
    try:
        with database().reading() as connection:
            connection.execute("SELECT 1")
        available = True
    except Exception as error:  # any failure to reach the database means unavailable
        log.warning("availability: %s", error)
        available = False
        notes.append("The database cannot be reached")
    return xml(vosi.availability_document(available, _STARTED, notes))


@blueprint.get("/tables")
def tables() -> Response:
    detail = (request.args.get("detail") or "max").lower()
    if detail not in ("min", "max"):
        return text("detail must be min or max\n", 400)
    return xml(vosi.tableset_document(PUBLISHED_SCHEMAS, detail=detail == "max"))


@blueprint.get("/tables/<name>")
def table(name: str) -> Response:
    try:
        found = table_by_name(name)
    except KeyError:
        return text(f"No table {name}\n", 404)
    return xml(vosi.table_document(found, PUBLISHED_SCHEMAS))


@blueprint.get("/examples")
def examples() -> Response:
    """Written around what the requester may see: never for a shared cache."""
    response = Response(examples_document(visible_examples()), mimetype="application/xhtml+xml")
    response.headers["Cache-Control"] = "private, max-age=60"
    response.vary.update(("Authorization", "Cookie"))
    return response


# -- sync ---------------------------------------------------------------------------------------


def _inline_from_request(part: str) -> io.IOBase | None:
    storage: FileStorage | None = request.files.get(part)
    return storage.stream if storage is not None else None


@blueprint.route("/sync", methods=["GET", "POST"])
def sync() -> Response:
    """DALI-sync (TAP 1.1 2.2.1): the query's result is the response."""
    config = _config()
    try:
        query = parse_tap_query(request_parameters(), query_limits(config))
        uploads = load_uploads(query.uploads, _inline_from_request,
                               limit=config.upload_limit_bytes, max_tables=config.max_uploads,
                               timeout=config.upload_fetch_timeout,
                               private_networks=config.upload_private_networks)
        prepared = prepare(query, uploads)
        # A client that hangs up cancels its statement (server.client_watch).
        stream = stream_result(prepared, requester=current_requester(),
                               base_url=service_url(),
                               timeout_s=config.sync_execution_duration,
                               on_cancel=watch_client(request.environ))
        header = next(stream)
    except DaliError as error:
        return dali_error(error)
    except Exception as error:
        if database_unreachable(error):
            return unavailable_response()
        # Still a DALI error document, without internals; the details go to the log.
        log.exception("TAP sync query failed")
        return dali_error("The service failed while running the query; it has been logged",
                          500)
    return Response(stream, content_type=header.content_type,
                    direct_passthrough=True)
