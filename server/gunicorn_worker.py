"""The gunicorn worker `skyvault serve` runs: gunicorn's threaded worker, answering requests it
refuses before the application sees them in the services' error format.

gunicorn answers a request line over ``--limit-request-line`` (414) or headers over their
limits (431) itself, with an HTML page no VO client can read. This worker answers them with a
DALI error document (DALI 1.1 section 4.2: an error VOTable with QUERY_STATUS=ERROR) saying what
was too long and that POST carries long parameters without limit. Other errors keep gunicorn's
own handling.
"""

from __future__ import annotations

from typing import Any

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

from skyvault.server.http.headers import DOCUMENT_POLICY
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable


def refusal(error: Exception) -> tuple[int, str, str] | None:
    """(status, reason, message) for a request gunicorn refuses that this worker answers."""
    if isinstance(error, LimitRequestLine):
        return (414, "URI Too Long",
                f"The request line is longer than this service accepts ({error}); send long "
                "queries with POST, whose body has no such limit.")
    if isinstance(error, LimitRequestHeaders):
        return (431, "Request Header Fields Too Large",
                f"The request headers are larger than this service accepts ({error}).")
    return None


def error_response_bytes(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP response, with the security headers the application puts on every
    response it makes (server/http/headers.py); this one never reaches the application."""
    body = error_votable(message)
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {VOTABLE_MIME}\r\nContent-Length: {len(body)}\r\n"
            "X-Content-Type-Options: nosniff\r\nReferrer-Policy: same-origin\r\n"
            f"X-Frame-Options: DENY\r\nContent-Security-Policy: {DOCUMENT_POLICY}\r\n\r\n")
    return head.encode("latin-1") + body


class ServiceThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with DALI error documents for refused requests."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        answer = refusal(exc)
        if answer is None:
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, error_response_bytes(*answer))
        except Exception:  # the client may be gone; nothing more to tell it
            self.log.debug("Failed to send error message.")
