"""Archive files: ``/files/<path>``, the path relative to the file store (``survey.files.path``).

A file is served only when its ``survey.files`` row is visible through the requester's
connection; otherwise the answer is the same 404 as for a path that does not exist. Served
files stream from disk with Range (206), ETag (the SHA-256), Last-Modified and Content-Length,
conditional GETs answered with 304. ``?center=...&size=...[&gzip=false]`` asks for a cutout of a
FITS image, as on IBE's file URLs (server/ibe/cutouts.py); other parameters are refused (400).

Behind nginx (``SKYVAULT_X_ACCEL_PREFIX``, e.g. ``/_protected_files/``; deploy/nginx), the
application only authorises: it answers with ``X-Accel-Redirect`` and nginx sends the bytes.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request, send_file

from skyvault.config import settings
from skyvault.filestore import InvalidStorePath, local_file
from skyvault.server.http.context import reading
from skyvault.server.ibe.cutouts import (
    CutoutRequest,
    CutoutRequestError,
    cutout_response,
    parse_cutout,
)
from skyvault.server.images import products

blueprint = Blueprint("files", __name__)
log = logging.getLogger(__name__)

ACCEL_PREFIX_CONFIG = "X_ACCEL_PREFIX"
"""An app's config key that overrides ``settings().x_accel_prefix`` (SKYVAULT_X_ACCEL_PREFIX)."""


def accel_prefix() -> str | None:
    """Where nginx serves the store internally, when the deployment delegates file delivery."""
    return current_app.config.get(ACCEL_PREFIX_CONFIG, settings().x_accel_prefix)


def not_found() -> Response:
    return Response("Not found.\n", status=404, mimetype="text/plain")


def serve_file(row: products.FileRow) -> Response:
    """The response for a file the requester may read."""
    etag = row.sha256.strip()
    prefix = accel_prefix()
    if prefix is not None:
        response = Response(status=200, content_type=row.content_type)
        response.headers["X-Accel-Redirect"] = prefix + quote(row.path)
        response.set_etag(etag)
        return response
    try:
        path = local_file(row.path)
    except InvalidStorePath:
        log.error("file row with a path outside the store: %r", row.path)
        return not_found()
    if not path.is_file():
        log.error("archived file missing from the store: %s", path)
        return not_found()
    response = send_file(path, mimetype=row.content_type, etag=etag, conditional=True,
                         download_name=path.name, max_age=3600)
    response.headers["Accept-Ranges"] = "bytes"
    # The HTTP server adds its own Date; the one send_file sets would make two.
    response.headers.pop("Date", None)
    return response


def answer(row: products.FileRow | None, cutout: CutoutRequest | None) -> Response:
    """A file found through the requester's connection (None: the same 404 as for nothing),
    whole or cut out."""
    if row is None:
        return not_found()
    if cutout is not None:
        return cutout_response(row, cutout)
    return serve_file(row)


@blueprint.app_errorhandler(CutoutRequestError)
def cutout_refused(error: CutoutRequestError) -> Response:
    """A file URL's parameters that ask for no cutout this service can make (here and under
    /ibe/data): 400, checked before any file is looked up."""
    return Response(f"{error}\n", status=400, mimetype="text/plain")


@blueprint.get("/files/<path:relative_path>")
def archived_file(relative_path: str) -> Response:
    # IBE's cutout parameters work here as on /ibe/data; any other parameter is refused rather
    # than ignored (a cutout request must never come back as the whole file).
    cutout = parse_cutout(request.args)
    with reading() as connection:
        row = products.file_by_path(connection, relative_path)
    return answer(row, cutout)
