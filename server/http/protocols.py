"""Which protocol a request speaks, and an error answered in that protocol's own format.

The services turn their own errors into their formats; a few failures are met before or around
them (the request body too large, the database unreachable) and are answered here, in the
format the client of that path reads: a DALI error VOTable for the query services (TAP, SIA,
SCS, DataLink, SODA, MOST, IBE's search), short text for the UWS job trees (as their handlers
answer), an HTML page for the web pages, text for files (IBE's too) and previews, a JSON
document for the alert API.
"""

from __future__ import annotations

import json
from enum import Enum
from html import escape

from flask import Response, request

from skyvault.vo.votable.document import VOTABLE_MIME, error_votable


class ErrorFormat(Enum):
    VOTABLE = "votable"
    UWS = "uws"
    HTML = "html"
    TEXT = "text"
    JSON = "json"


_UWS_PREFIXES = ("/tap/async", "/soda/async", "/forcedphot/async")
_VOTABLE_PREFIXES = ("/tap", "/sia", "/scs", "/datalink", "/soda", "/ibe/search", "/forcedphot",
                     "/most/field")
_JSON_PREFIXES = ("/alerts",)
_LIGHTCURVE_PATHS = ("/lightcurves/query", "/cgi-bin/ZTF/nph_light_curves")
_LIGHTCURVE_TEXT_FORMATS = ("CSV", "TSV", "IPAC_TABLE")
_TEXT_PREFIXES = ("/files", "/ibe/data", "/previews", "/healthz", "/static", "/releases.json",
                  "/most/thumbnail")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def error_format(path: str, values: dict[str, str] | None = None) -> ErrorFormat:
    """The error format of a request to ``path`` (without the /authn prefix); ``values``
    are its parameters, which choose MOST's format."""
    if _under(path, _UWS_PREFIXES):
        return ErrorFormat.UWS
    if _under(path, _JSON_PREFIXES):
        return ErrorFormat.JSON
    if _under(path, _VOTABLE_PREFIXES):
        return ErrorFormat.VOTABLE
    if path in _LIGHTCURVE_PATHS:
        # The light-curve API answers errors in its FORMAT (server/lightcurves/blueprint.py).
        wanted = {k.upper(): v for k, v in (values or {}).items()}
        chosen = (wanted.get("FORMAT") or "").strip().upper()
        if chosen == "HTML":
            return ErrorFormat.HTML
        return ErrorFormat.TEXT if chosen in _LIGHTCURVE_TEXT_FORMATS else ErrorFormat.VOTABLE
    if path == "/most":
        wanted = {k.lower(): v for k, v in (values or {}).items()}
        chosen = (wanted.get("format") or wanted.get("responseformat") or "").strip().lower()
        return ErrorFormat.HTML if chosen == "html" or not wanted else ErrorFormat.VOTABLE
    if _under(path, _TEXT_PREFIXES) or (path.startswith("/releases/") and "/files/" in path):
        return ErrorFormat.TEXT
    return ErrorFormat.HTML


def _page(status: int, title: str, message: str) -> str:
    # Self-contained: it must render when nothing else can (no template, no database).
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)} – SkyVault</title></head><body><h1>{escape(title)}</h1>"
            f'<p id="error-message">{escape(message)}</p><p><a href="/">SkyVault home</a></p>'
            f"</body></html>\n")


def error_response(status: int, title: str, message: str,
                   form: ErrorFormat | None = None) -> Response:
    """``message`` in the request's protocol's error format, with ``status``."""
    if form is None:
        try:
            values = dict(request.args.items())
        except Exception:  # a query string that cannot be read still gets its answer
            values = {}
        form = error_format(request.path, values)
    if form is ErrorFormat.VOTABLE:
        return Response(error_votable(message), status=status, content_type=VOTABLE_MIME)
    if form is ErrorFormat.HTML:
        return Response(_page(status, title, message), status=status, mimetype="text/html")
    if form is ErrorFormat.JSON:
        document = {"error": {"status": status, "title": title, "message": message}}
        return Response(json.dumps(document), status=status, mimetype="application/json")
    return Response(f"{message}\n", status=status, mimetype="text/plain")
