"""The alert API (issue 17): ``/alerts/candid/<candid>``, ``/alerts/object/<objectId>`` and
``/alerts/night/<YYYYMMDD>`` with filters, answering Avro (default) or JSON (``format=json``).
The logic is in skyvault/alerts/query.py; errors are JSON documents
(``{"error": {"status", "title", "message"}}``), 400 for bad input, 404 for an alert the
requester cannot see or that does not exist (the same answer). A night's archives are files
(``/files/alerts/<stream>/ztf_<stream>_<YYYYMMDD>.tar.gz``)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from skyvault.alerts import query
from skyvault.server.http.context import database, reading
from skyvault.server.http.protocols import ErrorFormat, error_response

blueprint = Blueprint("alerts", __name__)


def _answer(selection: query.Selection, *, limit: int, required: bool) -> Response:
    values = dict(request.args.items())
    with reading() as connection:
        found = query.answer(database(), connection, selection, values, limit=limit,
                             required=required)
    response = Response(found.content, content_type=found.content_type)
    response.headers["X-Alert-Count"] = str(found.count)
    if found.truncated:
        response.headers["X-Alert-Truncated"] = "true"
    return response


def _failed(status: int, title: str, error: Exception) -> Response:
    return error_response(status, title, str(error), ErrorFormat.JSON)


@blueprint.errorhandler(query.AlertQueryError)
def bad_request(error: query.AlertQueryError) -> Response:
    return _failed(400, "Bad request", error)


@blueprint.errorhandler(query.AlertNotFound)
def not_found(error: query.AlertNotFound) -> Response:
    return _failed(404, "Not found", error)


@blueprint.get("/alerts/candid/<candid>")
def alert_by_candid(candid: str) -> Response:
    selection = query.by_candid(query.parse_candid(candid))
    query.output_format(request.args)
    return _answer(selection, limit=1, required=True)


@blueprint.get("/alerts/object/<object_id>")
def alerts_of_object(object_id: str) -> Response:
    selection = query.by_object(query.parse_object_id(object_id))
    return _answer(selection, limit=query.maxrec(request.args), required=True)


@blueprint.get("/alerts/night/<night>")
def alerts_of_night(night: str) -> Response:
    selection = query.night_filters(query.parse_night(night), request.args)
    return _answer(selection, limit=query.maxrec(request.args), required=False)
