"""The Flask application: one blueprint per service, errors in each protocol's own format."""

from __future__ import annotations

import logging
from importlib import import_module

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, SecurityError

from skyvault.config import settings
from skyvault.server import headers, request_body, request_guard
from skyvault.server.context import trusted_hosts
from skyvault.server.job_services import JOB_SERVICES
from skyvault.server.outage import database_unreachable, unavailable_response
from skyvault.server.protocols import error_response
from skyvault.server.uws.blueprint import job_blueprint

# (module, blueprint attribute) of each service, registered in this order.
BLUEPRINTS: list[tuple[str, str]] = [
    ("skyvault.server.health", "blueprint"),
    ("skyvault.server.accounts", "blueprint"),  # also installs authentication
    ("skyvault.server.releases", "blueprint"),
    ("skyvault.server.tap", "blueprint"),
    ("skyvault.server.sia", "blueprint"),
    ("skyvault.server.soda", "blueprint"),
    ("skyvault.server.datalink", "blueprint"),
    ("skyvault.server.scs", "blueprint"),
    ("skyvault.server.files", "blueprint"),
    ("skyvault.server.ibe.search", "blueprint"),
    ("skyvault.server.ibe.data", "blueprint"),
    ("skyvault.server.previews", "blueprint"),
    ("skyvault.server.most", "blueprint"),
    ("skyvault.server.web", "blueprint"),
]

log = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    app = Flask("skyvault.server", static_folder=None)
    app.config["TRUSTED_HOSTS"] = trusted_hosts(settings())
    app.config.update(config or {})
    headers.install(app)
    for module_name, attribute in BLUEPRINTS:
        app.register_blueprint(getattr(import_module(module_name), attribute))
    for policy in JOB_SERVICES:  # each async service's UWS job tree (/tap/async, /soda/async)
        app.register_blueprint(job_blueprint(policy))
    request_guard.install(app)
    request_body.install(app)  # after the guard: its hook is then the first of all

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response | HTTPException:
        # Services turn their own errors into their protocol's format; whatever escapes them
        # is logged here and answered without a stack trace or internal detail.
        if isinstance(error, RequestEntityTooLarge):
            return headers.too_large(app.config.get("MAX_CONTENT_LENGTH") or 0)
        if isinstance(error, SecurityError):  # a Host outside TRUSTED_HOSTS
            return error_response(400, "Unknown host",
                                  "This service does not answer to that host name (see "
                                  "SKYVAULT_BASE_URL and SKYVAULT_ALLOWED_HOSTS)")
        if isinstance(error, HTTPException):
            return error
        if database_unreachable(error):
            log.warning("database unreachable: %s", error)
            return unavailable_response()
        log.exception("unhandled error")
        return Response("Internal error; it has been logged.\n", status=500,
                        mimetype="text/plain")

    return app
