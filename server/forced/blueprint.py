"""Forced photometry {sync} (``/forcedphot/sync``) and its VOSI resources.

Given RA and DEC (and optionally JDSTART, JDEND, FILTER; ``vo.forcedphot``), the PSF-fit flux
at that position on every difference image the requester may see (``skyvault.forced_photometry``),
as one table in RESPONSEFORMAT (VOTable by default). Sync answers small ranges, up to
``max_sync_epochs`` epochs, in seconds; more is refused with a pointer to ``/forcedphot/async``
(``server.forced_async``), whose jobs measure the same way. Errors are DALI error VOTables with
status 400; a position no image covers is an empty table.
"""

from __future__ import annotations

from flask import Blueprint, Response

from skyvault.forced_photometry import TooManyEpochs, find_epochs, measure_epochs
from skyvault.server.forced.async_jobs import FORCEDPHOT_JOBS
from skyvault.server.forced.output import write_table
from skyvault.server.http.context import reading
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images.common import (
    availability_response,
    capabilities_response,
    parameters,
    public_url,
)
from skyvault.server.uws.blueprint import configured
from skyvault.vo.dali import DaliError
from skyvault.vo.forcedphot import parse_forced_request
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable

blueprint = Blueprint("forcedphot", __name__)
SYNC_ID = "ivo://skyvault.archive/std/forcedphot#sync-1.0"
ASYNC_ID = "ivo://skyvault.archive/std/forcedphot#async-1.0"


def error_response(message: str, status: int = 400) -> Response:
    return Response(error_votable(message), status=status, content_type=VOTABLE_MIME)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_response(error.description or "")


@blueprint.route("/forcedphot/sync", methods=["GET", "POST"])
def sync() -> Response:
    try:
        request = parse_forced_request(parameters())
    except DaliError as error:
        return error_response(str(error), error.http_status)
    limit = configured(FORCEDPHOT_JOBS).max_sync_epochs
    try:
        with reading() as connection:
            epochs = find_epochs(connection, request, limit=limit)
    except TooManyEpochs as error:
        return error_response(f"{error}: narrow JDSTART/JDEND or FILTER, or ask"
                              f" {public_url('/forcedphot/async')}")
    rows = list(measure_epochs(epochs, request.ra, request.dec))
    _output, content_type = request.output()
    return Response(b"".join(write_table(request, rows)), content_type=content_type)


@blueprint.get("/forcedphot/capabilities")
def capabilities() -> Response:
    return capabilities_response("/forcedphot", [
        Endpoint(SYNC_ID, public_url("/forcedphot/sync")),
        Endpoint(ASYNC_ID, public_url("/forcedphot/async")),
    ])


@blueprint.get("/forcedphot/availability")
def availability() -> Response:
    return availability_response()
