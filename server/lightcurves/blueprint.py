"""The light-curve API: ``/lightcurves/query``, and IRSA's path for it,
``/cgi-bin/ZTF/nph_light_curves``, so that clients of IRSA's service (ztfquery's ``LCQuery``)
run unchanged with their base URL pointed here.

Parameters and their meaning: skyvault/lightcurves/irsa_request.py; what is answered:
skyvault/lightcurves/service.py. IRSA's path answers as IRSA does, detections only, unless
``UPPERLIMITS=true``; SkyVault's own path adds the upper limits unless ``UPPERLIMITS=false``.
Errors are answered with status 400 in the FORMAT asked for: a DALI error VOTable, an HTML
page, or text (CSV, TSV, IPAC table).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from skyvault.db import database
from skyvault.lightcurves.irsa_request import (
    DEFAULT_FORMAT,
    LightCurveRequestError,
    parse_lightcurve_request,
    requested_format,
)
from skyvault.lightcurves.service import UnknownCollection, answer
from skyvault.server.auth import current_requester
from skyvault.server.http.protocols import ErrorFormat, error_response
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images.common import parameters
from skyvault.server.lightcurves.output import content_type, write_answer

blueprint = Blueprint("lightcurves", __name__)
OWN_PATH = "/lightcurves/query"
IRSA_PATH = "/cgi-bin/ZTF/nph_light_curves"
_ERROR_FORMATS = {"VOTABLE": ErrorFormat.VOTABLE, "HTML": ErrorFormat.HTML}


def _error(message: str) -> Response:
    try:
        chosen = requested_format(parameters())
    except LightCurveRequestError:
        chosen = DEFAULT_FORMAT
    form = _ERROR_FORMATS.get(chosen, ErrorFormat.TEXT)
    return error_response(400, "Bad light-curve request", message, form)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_response(400, "Bad light-curve request", error.description or "Bad request")


@blueprint.route(OWN_PATH, methods=["GET", "POST"])
@blueprint.route(IRSA_PATH, methods=["GET", "POST"], endpoint="irsa_query")
def query() -> Response:
    try:
        own_path = request.endpoint == "lightcurves.query"
        asked = parse_lightcurve_request(parameters(), upper_limits_default=own_path)
        found = answer(database(), current_requester(), asked)
    except (LightCurveRequestError, UnknownCollection) as error:
        return _error(str(error))
    return Response(b"".join(write_answer(asked, found)), content_type=content_type(asked.format))
