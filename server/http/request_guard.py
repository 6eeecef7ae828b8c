"""What no request may carry, refused before authentication and before any handler: NUL.

PostgreSQL text cannot hold a NUL (U+0000), so a NUL in a path (``/files/%00``) or in a
parameter (``/search?position=%00``, ``/most?object=%00``) became a database error, a 500,
wherever a handler passed it on. No path, parameter or credential of any service means anything
with one, so this one guard refuses them all, for every endpoint present and future, with
``UnusableRequest`` (400). Each service answers it in its own format: the VO services register
a handler that writes their VOTable error, the web pages show their error page, ``/most``
answers in the format asked for; elsewhere (files, previews, accounts) it is plain text.
Uploaded files are not looked at: a FITS or VOTable upload may hold any byte.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest

NUL = "\x00"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class UnusableRequest(BadRequest):
    """A request no service can use; the description says why. Each service answers it in
    its own error format (the handlers this module's docstring lists)."""

    def __init__(self, description: str) -> None:
        super().__init__(description=description)


class NulInRequest(UnusableRequest):
    """A request holding a character no service accepts; the description says where."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} holds a NUL character (%00), which no path, parameter or "
                         "credential of this service may contain")


def _holds_nul(pairs) -> str | None:
    for name, value in pairs:
        if NUL in name or NUL in value:
            return name.replace(NUL, "%00")
    return None


def refuse_unusable() -> None:
    """The before_request hook: raise NulInRequest for a NUL anywhere it could reach code."""
    if NUL in request.path:
        raise NulInRequest("The path")
    name = _holds_nul(request.args.items(multi=True))
    if name is None and request.method not in ("GET", "HEAD") \
            and request.mimetype in FORM_TYPES:
        name = _holds_nul(request.form.items(multi=True))
    if name is not None:
        raise NulInRequest(f"Parameter {name!r}")
    for header in ("Authorization", "Cookie"):
        if NUL in request.headers.get(header, ""):
            raise NulInRequest(f"The {header} header")


def plain_text(error: UnusableRequest) -> Response:
    return Response(f"{error.description}\n", status=400, mimetype="text/plain")


def install(app: Flask) -> None:
    """Run the guard first of all before_request hooks (before authentication reads
    credentials); answer in plain text where no service says otherwise."""
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_unusable)
    app.register_error_handler(UnusableRequest, plain_text)
