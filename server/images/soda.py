"""SODA 1.0 cutouts: ``/soda/sync`` (and its VOSI resources); the cutting itself is
``server.soda_cutouts``'s, shared with the async jobs (``/soda/async``, ``server.soda_async``).

ID names an image by its publisher DID; the image and its file are found through the
requester's connection, so an embargoed image answers like an unknown one (404 UsageError).
The cutout reads only the pixels it needs (fitsio section reads; only the tiles touched of a
tile-compressed image) and keeps the source header with a shifted WCS. No overlap answers 204
with no body (SODA 1.0 section 5.1); errors are text/plain starting with the SODA error code.
Called without any parameter, {sync} answers with its service descriptor.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, stream_with_context

from skyvault.server.http.context import reading
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images.common import (
    availability_response,
    capabilities_response,
    parameters,
    public_url,
)
from skyvault.server.images.soda_cutouts import check_coverage, cutout_note, locate, resolve
from skyvault.vo.cutout import CutoutError, NoOverlap, cutout_chunks, open_image
from skyvault.vo.datalink import descriptors_document
from skyvault.vo.soda import (
    FITS_TYPE,
    SODA_ASYNC_ID,
    SODA_SYNC_ID,
    SodaError,
    UsageError,
    parse_soda_request,
    soda_descriptor,
)
from skyvault.vo.vosi import Endpoint
from skyvault.vo.votable.document import VOTABLE_MIME

blueprint = Blueprint("soda", __name__)
log = logging.getLogger(__name__)

EAGER_PIXELS = 4 * 1024 * 1024
"""Cutouts up to this many pixels are assembled whole, so the response has a Content-Length;
larger ones stream a band of rows at a time."""


def error_response(error: SodaError) -> Response:
    return Response(error.text(), status=error.http_status, mimetype="text/plain")


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_response(UsageError(error.description or ""))


def no_content() -> Response:
    return Response(status=204)


def self_description() -> Response:
    """The service descriptor of {sync} (SODA 1.0 section 4: a DataLink service descriptor
    with the standard parameters this service supports), for a request without parameters,
    as other SODA services answer one, instead of an error about the missing ID."""
    descriptor = soda_descriptor(public_url("/soda/sync"), descriptor_id="soda-sync")
    return Response(descriptors_document([descriptor]), content_type=VOTABLE_MIME)


@blueprint.route("/soda/sync", methods=["GET", "POST"])
def sync() -> Response:
    given = parameters()
    if not given:
        return self_description()
    try:
        request = parse_soda_request(given, multi_valued=False)
        with reading() as connection:
            source = resolve(request.ids[0], connection)
        cutout = request.cutouts[0]
        check_coverage(source, cutout)
    except NoOverlap:
        return no_content()
    except SodaError as error:
        return error_response(error)
    stack = contextlib.ExitStack()
    try:
        image = stack.enter_context(open_image(source.path))
        box = locate(image, cutout)
    except NoOverlap:
        stack.close()
        return no_content()
    except SodaError as error:
        stack.close()
        return error_response(error)
    except (CutoutError, OSError) as error:
        stack.close()
        log.error("cutout of %s failed: %s", source.path, error)
        return error_response(UsageError(f"{source.did} cannot be cut out"))
    headers = {"Content-Disposition":
               f'inline; filename="{source.path.name.split(".")[0]}_cutout.fits"'}
    note = cutout_note(source, box)
    if box.width * box.height <= EAGER_PIXELS:
        with stack:
            body = b"".join(cutout_chunks(image, box, note))
        return Response(body, mimetype=FITS_TYPE, headers=headers)

    def stream() -> Iterator[bytes]:
        with stack:
            yield from cutout_chunks(image, box, note)

    return Response(stream_with_context(stream()), mimetype=FITS_TYPE, headers=headers)


@blueprint.get("/soda/capabilities")
def capabilities() -> Response:
    return capabilities_response("/soda", [
        Endpoint(SODA_SYNC_ID, public_url("/soda/sync")),
        Endpoint(SODA_ASYNC_ID, public_url("/soda/async")),
    ])


@blueprint.get("/soda/availability")
def availability() -> Response:
    return availability_response()
