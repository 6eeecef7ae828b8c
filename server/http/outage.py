"""The database unreachable: 503 with Retry-After, in the protocol's own format, never a 500.

While PostgreSQL restarts or is down, requests fail in many places (taking a pooled connection,
a connection the server closed, the first statement of a transaction); each such failure is
recognised by its kind (``skyvault.db_errors.database_unreachable``), so a handler that lets
it escape, or turns it into its protocol's error, answers "try again shortly" instead of "the
service failed".
"""

from __future__ import annotations

from flask import Response

from skyvault.db_errors import database_unreachable
from skyvault.server.http.protocols import ErrorFormat, error_response

RETRY_AFTER_SECONDS = 5
"""What a client is told to wait: a restart of PostgreSQL takes a few seconds."""

__all__ = ["MESSAGE", "RETRY_AFTER_SECONDS", "database_unreachable", "unavailable_response"]

MESSAGE = "The archive database cannot be reached right now; try again in a few seconds."


def unavailable_response(form: ErrorFormat | None = None) -> Response:
    """503 (RFC 9110 15.6.4) with Retry-After in seconds, in the request's error format."""
    response = error_response(503, "Temporarily unavailable", MESSAGE, form)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Nothing about an outage may be cached as the answer to the request.
    response.headers["Cache-Control"] = "no-store"
    return response
