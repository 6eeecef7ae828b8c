"""Security headers on every response, and the limit on a request's size.

- ``X-Content-Type-Options: nosniff`` everywhere: a browser renders a response only as the type
  it was sent with, never as HTML guessed from its bytes.
- ``Content-Security-Policy``: the service's own web pages may load scripts, styles, images
  and connections from this origin only (no inline script; the moving-object page keeps its
  inline styles) and cannot be framed; the image viewer's pages may also compile WebAssembly
  (VIEWER_POLICY). Everything else (data documents, files, previews, job
  results, uploads given back) is a sandboxed document that loads nothing: even a user-supplied
  document a browser chose to render runs no script and has no access to the archive's origin
  (cookies, storage).
- ``X-Frame-Options: DENY`` for browsers that predate frame-ancestors, and
  ``Referrer-Policy: same-origin`` so addresses (which may carry job ids or query text) do not
  leak to other sites.
- Request bodies above ``Settings.max_request_bytes`` get 413 in the protocol's format.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

from skyvault.config import settings
from skyvault.server.http.protocols import error_response

PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")
VIEWER_POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
                 "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                 "connect-src 'self' data:; worker-src 'self' blob:; object-src 'none'; "
                 "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""The image viewer's pages (server/web/viewer.py): Aladin Lite compiles the WebAssembly it
carries as a data: URL ('wasm-unsafe-eval' allows WebAssembly only, not JavaScript's eval) and
draws through blob: images; scripts still come from this origin only."""
DOCUMENT_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
"""The policy of every response that is not one of the service's own web pages."""

PAGE_BLUEPRINTS = frozenset({"web", "most", "accounts", "releases"})
"""Blueprints whose HTML responses are pages the service made (templates that escape)."""


def security_headers(response: Response) -> Response:
    """The after_request hook; a handler may have set a stricter policy of its own."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if "Content-Security-Policy" not in headers:
        page = response.mimetype == "text/html" and request.blueprint in PAGE_BLUEPRINTS
        headers["Content-Security-Policy"] = PAGE_POLICY if page else DOCUMENT_POLICY
    return response


def too_large(limit: int) -> Response:
    return error_response(413, "Request too large",
                          f"The request is larger than this service accepts ({limit} bytes)")


def refuse_large_bodies() -> Response | None:
    """The before_request hook: a declared body over the limit is refused before any handler
    reads it (a body without a length is cut by Werkzeug at the limit, which the app's error
    handler answers alike)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and (request.content_length or 0) > limit:
        return too_large(limit)
    return None


def install(app: Flask) -> None:
    app.config.setdefault("MAX_CONTENT_LENGTH", settings().max_request_bytes)
    app.before_request(refuse_large_bodies)
    app.after_request(security_headers)
