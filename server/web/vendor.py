"""The browser libraries the pages use, served from this origin: no page needs the network.

They come from the npm registry, pinned with their integrity hashes in
``server/web/assets/package-lock.json`` and installed by ``make setup`` (``npm ci``) into
``server/web/assets/node_modules``, which git ignores: Aladin Lite is GPL-3 and plotly.js is a
megabyte of built code; neither belongs in this repository's history, and a version change is a
one-line change of the lock file. Only the files listed here are served, each under its version
(``/vendor/<library>/<version>/<file>``), so browsers may keep them for a year.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flask import Response, abort, send_file, url_for

from skyvault.server.web.blueprint import blueprint

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
MODULES = ASSETS / "node_modules"


@dataclass(frozen=True)
class Library:
    package: str
    """Its npm package name."""
    files: dict[str, str]
    """Served name -> path inside the package."""
    licence: str


LIBRARIES: dict[str, Library] = {
    "aladin-lite": Library("aladin-lite", {"aladin.js": "dist/aladin.js", "LICENSE": "LICENSE",
                                           "COPYING": "COPYING"}, "GPL-3.0 (LGPL text in LICENSE)"),
    "plotly": Library("plotly.js-basic-dist-min", {"plotly-basic.min.js": "plotly-basic.min.js",
                                                   "LICENSE": "LICENSE"}, "MIT"),
}


class LibraryMissing(RuntimeError):
    """A library's files are not installed (``make setup`` installs them)."""


@cache
def locked_versions() -> dict[str, str]:
    """npm package name -> the version package-lock.json pins."""
    lock = json.loads((ASSETS / "package-lock.json").read_text())
    return {path.removeprefix("node_modules/"): entry["version"]
            for path, entry in lock.get("packages", {}).items() if path}


def version(library: str) -> str:
    return locked_versions()[LIBRARIES[library].package]


def library_file(library: str, name: str) -> Path:
    entry = LIBRARIES[library]
    path = MODULES / entry.package / entry.files[name]
    if not path.is_file():
        raise LibraryMissing(f"{entry.package} is not installed ({path} is missing); "
                             "run make setup")
    return path


def installed(library: str) -> bool:
    try:
        library_file(library, next(iter(LIBRARIES[library].files)))
    except LibraryMissing:
        return False
    return True


def library_url(library: str, name: str) -> str:
    return url_for("web.vendor_file", library=library, version_text=version(library),
                   name=name)


@blueprint.get("/vendor/<library>/<version_text>/<name>", endpoint="vendor_file")
def vendor_file(library: str, version_text: str, name: str) -> Response:
    entry = LIBRARIES.get(library)
    if entry is None or name not in entry.files or version_text != version(library):
        abort(404)
    try:
        path = library_file(library, name)
    except LibraryMissing as error:
        log.error("%s", error)
        abort(404)
    mimetype = "text/javascript" if name.endswith(".js") else "text/plain"
    response = send_file(path, mimetype=mimetype, max_age=365 * 86400)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
