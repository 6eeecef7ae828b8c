"""Request bodies as real clients send them, and a clear refusal when one cannot be read.

Two things Werkzeug does on its own that lose a request silently:

- A multipart boundary with characters RFC 2045 reserves (``=``, ``/``, ``?``, ...) must be
  quoted in the Content-Type header; astroquery's TapPlus sends ``boundary====1733...===`` bare.
  Werkzeug's header parser then finds no boundary at all. ``quote_boundary`` (as WSGI
  middleware) quotes such a value, which is what the client meant: RFC 2046 section 5.1.1
  allows every one of these characters in a boundary.
- A form body that does not parse (no boundary, another boundary, cut short) is read as an
  empty form, so TAP answered "Parameter LANG is required" and /tap/async made an empty job.
  ``ServiceRequest`` records the parse failure, and ``refuse_unreadable_body`` (the first
  before_request hook) refuses the request with ``UnusableRequest``, which each service
  answers in its own error format (server/http/request_guard.py): a 400 that says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import IO, Any

from flask import Flask, Request, request
from werkzeug.formparser import FormDataParser

from skyvault.server.http.request_guard import FORM_TYPES, UnusableRequest

# An unquoted boundary parameter: up to the next ';', blank or end of the header.
_BARE_BOUNDARY = re.compile(r"(;\s*boundary\s*=\s*)([^\"\s;][^\s;]*)", re.IGNORECASE)
# RFC 2045 section 5.1: a token is any ASCII character but blanks, controls and tspecials.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def quote_boundary(content_type: str) -> str:
    """The Content-Type with a bare multipart boundary that is no RFC 2045 token quoted."""
    if not content_type.lower().startswith("multipart/"):
        return content_type

    def quoted(match: re.Match[str]) -> str:
        value = match.group(2)
        if _TOKEN.fullmatch(value):
            return match.group(0)
        return f'{match.group(1)}"{value}"'

    return _BARE_BOUNDARY.sub(quoted, content_type, count=1)


class LenientContentType:
    """WSGI middleware: ``quote_boundary`` applied to the request's Content-Type."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        content_type = environ.get("CONTENT_TYPE")
        if content_type:
            environ["CONTENT_TYPE"] = quote_boundary(content_type)
        return self.wsgi_app(environ, start_response)


class _RecordingFormDataParser(FormDataParser):
    """Werkzeug's form parser, telling the request when a body cannot be parsed instead of
    quietly handing back an empty form."""

    def __init__(self, *args: Any, on_error: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(*args, silent=False, **kwargs)
        self._on_error = on_error

    def parse(self, stream: IO[bytes], mimetype: str, content_length: int | None,
              options: dict[str, str] | None = None) -> Any:
        if content_length == 0:
            return stream, self.cls(), self.cls()  # an empty body is an empty form
        try:
            return super().parse(stream, mimetype, content_length, options)
        except ValueError as error:
            self._on_error(f"{mimetype} body cannot be read ({error})")
            return stream, self.cls(), self.cls()


class ServiceRequest(Request):
    form_error: str | None = None
    """Why the form body could not be parsed, once ``form`` has been read; None if it could."""

    def make_form_data_parser(self) -> FormDataParser:
        return _RecordingFormDataParser(
            stream_factory=self._get_file_stream,
            max_form_memory_size=self.max_form_memory_size,
            max_content_length=self.max_content_length,
            max_form_parts=self.max_form_parts,
            cls=self.parameter_storage_class,
            on_error=self._record_form_error,
        )

    def _record_form_error(self, message: str) -> None:
        self.form_error = message


def refuse_unreadable_body() -> None:
    """Before anything reads the form: a body that cannot be parsed is a 400 saying why, in the
    format of the service asked (``UnusableRequest``, which every service answers)."""
    if request.method not in _BODY_METHODS or request.mimetype not in FORM_TYPES:
        return
    request.form  # noqa: B018 - parses the body now, recording a failure
    problem = getattr(request, "form_error", None)
    if problem is not None:
        raise UnusableRequest(f"The request body cannot be read: {problem}. Nothing was done; "
                              "send the parameters as a valid form.")


def install(app: Flask) -> None:
    """Lenient Content-Type, recorded parse failures, and the refusal as the first hook (before
    authentication, whose CSRF check reads the form, and before the NUL guard)."""
    app.request_class = ServiceRequest
    app.wsgi_app = LenientContentType(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_unreadable_body)
