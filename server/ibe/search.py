"""``/ibe/search/ztf/products/{sci,raw,cal,ref}``: IRSA's ZTF image search (IBE), as ztfquery
and astroquery call it (parameters: server/ibe/query.py; columns: server/ibe/columns.py).

The search becomes an ADQL query tree, translated and run like a TAP query (``tap_query``):
in the requester's read-only transaction as the reader role, so row-level security decides what
exists, streamed from binary COPY into the writer ``ct`` names. Errors are VOTable documents
with ``QUERY_STATUS=ERROR`` and a 400 (404 for a table that does not exist), as IBE's are,
which ztfquery recognises by their XML declaration.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from flask import Blueprint, Response, request

from skyvault.db_errors import database_unreachable
from skyvault.server.auth import current_requester
from skyvault.server.http.client_watch import watch_client
from skyvault.server.http.context import service_url
from skyvault.server.http.outage import unavailable_response
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.ibe.html_table import MEDIA_TYPE as HTML_TYPE
from skyvault.server.ibe.html_table import write_html
from skyvault.server.ibe.query import IbeError, Search, parse_search, translate_search
from skyvault.server.images.common import parameters
from skyvault.server.tap.config import config_from
from skyvault.server.tap.query import PreparedQuery, ServiceUnavailable, stream_result
from skyvault.vo.adql import AdqlError
from skyvault.vo.dali import DaliError, TapQuery
from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.columns import ColumnBatch
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable
from skyvault.vo.votable.formats import OutputFormat, lookup_format

blueprint = Blueprint("ibe_search", __name__)
log = logging.getLogger(__name__)


def _without_infos(short_name: str) -> OutputFormat:
    # IBE's tables carry no TAP INFOs (standardID, QUERY): the same writers, told nothing.
    return dataclasses.replace(lookup_format(short_name)[0], takes_infos=False)


FORMATS: dict[str, OutputFormat] = {
    "ipac_table": _without_infos("ipac"),
    "csv": _without_infos("csv"),
    "tsv": _without_infos("tsv"),
    "votable": _without_infos("votable/td"),
    "html": OutputFormat("html", HTML_TYPE, (), write_html, "html"),
}


def error_response(message: str, status: int = 400) -> Response:
    return Response(error_votable(message), status=status, content_type=VOTABLE_MIME)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_response(error.description or "Bad request")


_METADATA_FIELDS = (FieldSpec("name", "char", "*"), FieldSpec("description", "char", "*"),
                    FieldSpec("unit", "char", "*"), FieldSpec("ucd", "char", "*"),
                    FieldSpec("datatype", "char", "*"))


def _metadata(search: Search) -> Response:
    """FORMAT=METADATA: one row per column of the table."""
    columns = [c.column for c in search.view.columns if c.column.name in search.columns]
    batch = ColumnBatch.from_rows(_METADATA_FIELDS, [
        (c.name, c.description, c.unit, c.ucd, c.datatype) for c in columns])
    output = FORMATS[search.format]
    return Response(b"".join(output.write(_METADATA_FIELDS, [batch])),
                    content_type=output.response_type())


def _prepared(search: Search) -> PreparedQuery:
    config = config_from(os.environ)
    translated = translate_search(search, max_rows=config.hard_maxrec)
    output = FORMATS[search.format]
    query = TapQuery("ADQL-2.1", f"IBE search of {search.view.name}", config.hard_maxrec, None)
    return PreparedQuery(query, translated.sql, translated.params, tuple(translated.fields),
                         output, output.response_type())


@blueprint.route("/ibe/search/", defaults={"other": ""}, methods=["GET", "POST"])
@blueprint.route("/ibe/search/<path:other>", methods=["GET", "POST"])
def elsewhere(other: str) -> Response:
    """Any other search path (another mission or data set): no such table."""
    return error_response("No such table: the ZTF tables are /ibe/search/ztf/products/sci, raw,"
                          " cal and ref", 404)


@blueprint.route("/ibe/search/ztf/products/<table>", methods=["GET", "POST"])
def search(table: str) -> Response:
    try:
        wanted = parse_search(table, parameters())
        if wanted.metadata:
            return _metadata(wanted)
        prepared = _prepared(wanted)
        stream = stream_result(prepared, requester=current_requester(), base_url=service_url(),
                               timeout_s=config_from(os.environ).sync_execution_duration,
                               on_cancel=watch_client(request.environ))
        header = next(stream)
    except IbeError as error:
        return error_response(str(error), error.http_status)
    except AdqlError as error:
        return error_response(f"WHERE: {error}")
    except ServiceUnavailable:
        return unavailable_response()
    except DaliError as error:
        return error_response(str(error), error.http_status)
    except Exception as error:
        if database_unreachable(error):
            return unavailable_response()
        log.exception("IBE search failed")
        return error_response("The service failed while searching; it has been logged", 500)
    return Response(stream, content_type=header.content_type, direct_passthrough=True)
