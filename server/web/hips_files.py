"""``/hips/<filter>/...``: the HiPS of the public reference co-adds (skyvault/coverage/hips.py).

Only the files of a HiPS are served (``properties``, ``Moc.fits``, tiles), never the build's
own records. Before a file goes out, the co-adds the HiPS was made of must all still be
visible to the anonymous public (checked through row-level security, once a minute per
filter): a HiPS built before an embargo was extended is withheld, as if absent, until
``skyvault hips build`` makes it again. The files are public, so any site may load them
(``Access-Control-Allow-Origin: *``, as HiPS clients expect).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

from flask import Response, abort, send_file

from skyvault.access import ANONYMOUS
from skyvault.coverage import queries
from skyvault.coverage.hips import hips_root, read_inputs_record
from skyvault.db import database
from skyvault.server.web.blueprint import blueprint
from skyvault.server.web.forms import FILTERS

log = logging.getLogger(__name__)

SERVED = re.compile(r"^(properties|Moc\.fits|Norder\d{1,2}/Dir\d+/Npix\d+\.(fits|png))$")
TYPES = {"fits": "application/fits", "png": "image/png"}
CHECK_SECONDS = 60.0

_checked: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def folder(filtercode: str) -> Path:
    return hips_root() / filtercode


def _inputs_public(filtercode: str) -> bool:
    record = read_inputs_record(folder(filtercode))
    if not record or not record.get("inputs"):
        return False
    refids = [int(item["refid"]) for item in record["inputs"]]
    with database().reading(ANONYMOUS) as connection:
        visible = queries.visible_references(connection, refids)
    if visible != len(set(refids)):
        log.error("the %s HiPS holds co-adds the public may no longer see; it is withheld "
                  "until `skyvault hips build` makes it again", filtercode)
        return False
    return True


def published(filtercode: str) -> bool:
    """Whether the filter's HiPS exists and holds only what the public may see now."""
    now = time.monotonic()
    with _lock:
        hit = _checked.get(filtercode)
        if hit is not None and hit[0] > now:
            return hit[1]
    result = _inputs_public(filtercode)
    with _lock:
        _checked[filtercode] = (now + CHECK_SECONDS, result)
    return result


def forget_checks() -> None:
    with _lock:
        _checked.clear()


@blueprint.get("/hips/<path:path>")
def hips_file(path: str) -> Response:
    # One path, split here: the filter is the HiPS's first folder, as in any HiPS tree.
    filtercode, _, path = path.partition("/")
    if filtercode not in FILTERS or not SERVED.match(path) or not published(filtercode):
        abort(404)
    file = folder(filtercode) / path
    if not file.is_file():
        abort(404)
    extension = path.rsplit(".", 1)[-1]
    mimetype = TYPES.get(extension, "text/plain")
    response = send_file(file, mimetype=mimetype, max_age=300, conditional=True)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
