"""Who is asking, for the request being served.

Authentication (Bearer tokens, HTTP Basic, session cookies) is resolved here once per request;
every handler obtains its identity through ``current_requester()`` and its database access
through ``skyvault.server.context.reading()``.
"""

from __future__ import annotations

from flask import g

from skyvault.access import ANONYMOUS, Requester


def current_requester() -> Requester:
    """The requester of the current request (anonymous until a credential says otherwise)."""
    return getattr(g, "requester", ANONYMOUS)
