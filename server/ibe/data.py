"""``/ibe/data/ztf/products/...``: archive files at IRSA's paths (server/ibe/paths.py), whole or
as cutouts (server/ibe/cutouts.py).

The path names an image by its keys; the image and its file are looked up through the
requester's connection (``context.reading()``), so row-level security decides what exists: an
embargoed file, a malformed path and a path of nothing get the same 404. A file found is
served by ``files.serve_file``, exactly as ``/files/<path>`` serves it (Range, ETag,
X-Accel-Redirect behind nginx).
"""

from __future__ import annotations

import datetime as dt

import psycopg
from flask import Blueprint, Response, request

from skyvault.server.http.context import reading
from skyvault.server.ibe.cutouts import parse_cutout
from skyvault.server.ibe.paths import ProductPath, parse_product_path
from skyvault.server.images.files import answer, not_found
from skyvault.server.images.products import FileRow, product_file

blueprint = Blueprint("ibe_data", __name__)

# kind -> (image table, SQL finding the current image's identifier from the path's keys)
_IMAGES: dict[str, tuple[str, str]] = {
    "sci": ("science_images",
            "SELECT pid FROM survey.science_images WHERE filefracday = %(filefracday)s"
            " AND field = %(field)s AND filtercode = %(filtercode)s AND ccdid = %(ccdid)s"
            " AND qid = %(qid)s AND is_current = 1 ORDER BY pid LIMIT 1"),
    "diff": ("difference_images",
             "SELECT d.diffid FROM survey.difference_images d"
             " JOIN survey.science_images s ON s.pid = d.pid"
             " WHERE s.filefracday = %(filefracday)s AND s.field = %(field)s"
             " AND s.filtercode = %(filtercode)s AND s.ccdid = %(ccdid)s AND s.qid = %(qid)s"
             " AND s.is_current = 1 AND d.is_current = 1 ORDER BY d.diffid LIMIT 1"),
    "raw": ("raw_images",
            "SELECT r.rawid FROM survey.raw_images r JOIN survey.exposures e"
            " ON e.expid = r.expid WHERE r.filefracday = %(filefracday)s"
            " AND r.field = %(field)s AND r.filtercode = %(filtercode)s"
            " AND r.ccdid = %(ccdid)s AND e.imgtypecode = %(imgtypecode)s"
            " AND r.is_current = 1 ORDER BY r.rawid LIMIT 1"),
    "cal": ("calibration_images",
            "SELECT calid FROM survey.calibration_images WHERE caltype = %(caltype)s"
            " AND obsdate >= %(night)s AND obsdate < %(next_night)s"
            " AND filtercode = %(filtercode)s AND ccdid = %(ccdid)s AND qid = %(qid)s"
            " AND is_current = 1 ORDER BY calid LIMIT 1"),
    "ref": ("reference_images",
            "SELECT refid FROM survey.reference_images WHERE field = %(field)s"
            " AND filtercode = %(filtercode)s AND ccdid = %(ccdid)s AND qid = %(qid)s"
            " AND is_current = 1 ORDER BY refid LIMIT 1"),
}


def find_file(connection: psycopg.Connection, wanted: ProductPath) -> FileRow | None:
    """The file a path names, as far as the requester may see it."""
    table, sql = _IMAGES[wanted.kind]
    keys: dict[str, object] = {
        "filefracday": wanted.filefracday, "field": wanted.field,
        "filtercode": wanted.filtercode, "ccdid": wanted.ccdid, "qid": wanted.qid,
        "imgtypecode": wanted.imgtypecode, "caltype": wanted.caltype}
    if wanted.nightdate is not None:
        night = dt.datetime.fromisoformat(wanted.nightdate).replace(tzinfo=dt.UTC)
        keys.update(night=night, next_night=night + dt.timedelta(days=1))
    row = connection.execute(sql, keys).fetchone()
    if row is None:
        return None
    return product_file(connection, table, row[0], wanted.product)


@blueprint.get("/ibe/data/", defaults={"other": ""})
@blueprint.get("/ibe/data/<path:other>")
def elsewhere(other: str) -> Response:
    """Any other path under /ibe/data (another mission, a directory): nothing to serve."""
    return not_found()


@blueprint.get("/ibe/data/ztf/products/<path:product_path>")
def product(product_path: str) -> Response:
    cutout = parse_cutout(request.args)  # a bad one is a 400 before any lookup (files.py)
    wanted = parse_product_path(product_path)
    if wanted is None:
        return not_found()
    with reading() as connection:
        row = find_file(connection, wanted)
    return answer(row, cutout)
