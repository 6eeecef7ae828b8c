"""What the image services (SIA, SODA, DataLink, SCS, files, previews) share at the HTTP edge:
request parameters, VOSI capabilities and availability, public URLs (the file store is
``skyvault.filestore``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import quote

from flask import Response, request

from skyvault.db import DatabaseUnavailable, database
from skyvault.server.auth import SECURITY_METHODS
from skyvault.server.http.context import service_url
from skyvault.vo.dali import Parameters
from skyvault.vo.vosi import (
    AVAILABILITY_ID,
    CAPABILITIES_ID,
    Endpoint,
    availability_document,
    capabilities_document,
)

VOSI_TYPE = "text/xml"


def parameters() -> Parameters:
    """GET query and POST form parameters together (DALI 1.1 section 3: names ignore case)."""
    return Parameters(request.values.items(multi=True))


def public_url(path: str) -> str:
    return service_url() + path


def file_url(relative_path: str) -> str:
    return public_url("/files/" + quote(relative_path))


def capabilities_response(base_path: str, endpoints: Sequence[Endpoint]) -> Response:
    """VOSI capabilities (VOSI 1.1 section 3.2) of the service rooted at ``base_path``.

    Each of the service's ``endpoints`` declares the security methods it accepts, as TAP's do,
    so that clients which read capabilities (pyvo's AuthSession) send their credentials to it;
    the VOSI resources themselves are public (no security method: anonymous)."""
    base = public_url(base_path)
    document = capabilities_document([
        Endpoint(CAPABILITIES_ID, f"{base}/capabilities"),
        Endpoint(AVAILABILITY_ID, f"{base}/availability"),
        *(replace(endpoint, security_methods=SECURITY_METHODS) for endpoint in endpoints),
    ])
    return Response(document, mimetype=VOSI_TYPE)


def availability_response() -> Response:
    """VOSI availability: up when the database answers."""
    notes: list[str] = []
    try:
        with database().reading() as connection:
            connection.execute("SELECT 1")
        available = True
    except DatabaseUnavailable:
        available, notes = False, ["the archive database cannot be reached"]
    return Response(availability_document(available, notes=notes), mimetype=VOSI_TYPE)
