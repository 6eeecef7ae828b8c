"""Downloading the images selected on the results page: ``POST /download``.

Form fields: ``id`` (repeated, ``<collection>:<image id>``, e.g. ``sci:123``), ``format``
(``wget`` or ``curl`` for a resumable script, ``zip`` or ``tar`` for an archive streamed as it
is written) and ``auxiliary`` (``1`` to add each image's other files: masks, catalogs). Each
file is looked up through the requester's connection, so a hidden image adds nothing; the
script fetches from ``/files/`` with the same rules (a token for proprietary files).
"""

from __future__ import annotations

import datetime as dt

from flask import Response, request

from skyvault.filestore import InvalidStorePath, local_file
from skyvault.server.http.context import reading, service_url
from skyvault.server.images import products
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.bundles import (
    ARCHIVE_TYPES,
    SCRIPT_TOOLS,
    BundleFile,
    download_script,
    tar_stream,
    zip_stream,
)
from skyvault.server.web.pages import error_page
from skyvault.vo.publisher_did import COLLECTIONS, ImageKey

MAX_IMAGES = 1000


def parse_selection(values: list[str]) -> list[ImageKey]:
    keys: list[ImageKey] = []
    for value in values[:MAX_IMAGES]:
        collection, _, number = value.partition(":")
        if collection in COLLECTIONS and number.isdigit():
            key = ImageKey(COLLECTIONS[collection], int(number))
            if key not in keys:
                keys.append(key)
    return keys


def selected_files(keys: list[ImageKey], auxiliary: bool) -> list[BundleFile]:
    files: list[BundleFile] = []
    seen: set[str] = set()
    with reading() as connection:
        for key in keys:
            main = products.main_file(connection, key)
            if main is None:
                continue
            rows = [main]
            if auxiliary:
                rows += [f for f in products.image_files(connection, key.collection.table,
                                                         key.image_id) if f.path != main.path]
            for row in rows:
                if row.path in seen:
                    continue
                try:
                    source = local_file(row.path)
                except InvalidStorePath:
                    continue
                seen.add(row.path)
                files.append(BundleFile(row.path, row.size_bytes, row.sha256.strip(), source))
    return files


@blueprint.post("/download")
def download() -> Response:
    kind = request.form.get("format", "zip")
    if kind not in SCRIPT_TOOLS and kind not in ARCHIVE_TYPES:
        return error_page(400, "Unknown download format",
                          "Choose a wget or curl script, or a zip or tar archive.")
    keys = parse_selection(request.form.getlist("id"))
    files = selected_files(keys, request.form.get("auxiliary") == "1") if keys else []
    if not files:
        return error_page(400, "Nothing to download",
                          "Select one or more images in the results table first.")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"skyvault-{stamp}"
    if kind in SCRIPT_TOOLS:
        filename = f"{name}-{kind}.sh"
        body = download_script(kind, files, service_url(), filename)
        response = Response(body, mimetype="text/x-shellscript")
    else:
        filename = f"{name}.{kind}"
        stream = zip_stream(files, name) if kind == "zip" else tar_stream(files, name)
        response = Response(stream, mimetype=ARCHIVE_TYPES[kind])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
