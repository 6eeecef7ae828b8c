"""PNG previews of images: ``/previews/<collection>/<id>.png?size=small|large``.

The image is found through the requester's connection, so a preview of an embargoed image is
as invisible as the image (the same 404 as for an unknown one). Previews are made once per file
content and size (zscale, block-averaged) and kept under ``<cache_root>/previews``; the cache
is keyed by the file's SHA-256, so a reprocessed file gets a new preview.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from flask import Blueprint, Response, request, send_file

from skyvault.config import settings
from skyvault.filestore import InvalidStorePath, local_file
from skyvault.server.http.context import reading
from skyvault.server.images import products
from skyvault.vo.cutout import CutoutError, open_image
from skyvault.vo.preview import PREVIEW_SIZES, render_png
from skyvault.vo.publisher_did import COLLECTIONS, ImageKey

blueprint = Blueprint("previews", __name__)
log = logging.getLogger(__name__)


def not_found() -> Response:
    return Response("Not found.\n", status=404, mimetype="text/plain")


def cache_path(sha256: str, size: str) -> Path:
    digest = sha256.strip().lower()
    return settings().cache_root / "previews" / size / digest[:2] / f"{digest}.png"


def make_preview(source: Path, target: Path, pixels: int) -> None:
    with open_image(source) as image:
        png = render_png(image.read_all(), pixels)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so concurrent requests never see half a file.
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(png)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@blueprint.get("/previews/<collection>/<int:image_id>.png")
def preview(collection: str, image_id: int) -> Response:
    size = request.args.get("size", "small")
    if size not in PREVIEW_SIZES:
        return Response(f"size must be one of {', '.join(PREVIEW_SIZES)}\n", status=400,
                        mimetype="text/plain")
    if collection not in COLLECTIONS:
        return not_found()
    key = ImageKey(COLLECTIONS[collection], image_id)
    with reading() as connection:
        row = products.main_file(connection, key)
    if row is None:
        return not_found()
    target = cache_path(row.sha256, size)
    if not target.is_file():
        try:
            make_preview(local_file(row.path), target, PREVIEW_SIZES[size])
        except (CutoutError, InvalidStorePath, OSError) as error:
            log.error("no preview for %s: %s", row.path, error)
            return not_found()
    response = send_file(target, mimetype="image/png", etag=f"{row.sha256.strip()}-{size}",
                         conditional=True, max_age=86400,
                         download_name=f"{collection}_{image_id}_{size}.png")
    # The HTTP server adds its own Date; a second one from the file response would repeat it.
    response.headers.pop("Date", None)
    return response
