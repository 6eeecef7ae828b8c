"""The Flask application: one blueprint per service, errors in each protocol's own format."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, SecurityError

from skyvault.config import settings
from skyvault.server import accounts, alerts, auth, releases, web
from skyvault.server.forced import blueprint as forcedphot
from skyvault.server.http import headers, health, request_body, request_guard
from skyvault.server.http.context import trusted_hosts
from skyvault.server.http.outage import database_unreachable, unavailable_response
from skyvault.server.http.protocols import error_response
from skyvault.server.ibe import data as ibe_data
from skyvault.server.ibe import search as ibe_search
from skyvault.server.images import datalink, files, previews, scs, sia, soda
from skyvault.server.lightcurves import blueprint as lightcurves
from skyvault.server.most import blueprint as most
from skyvault.server.most import field as most_field
from skyvault.server.tap import blueprint as tap
from skyvault.server.uws.blueprint import job_blueprint
from skyvault.server.uws.services import JOB_SERVICES

BLUEPRINTS: tuple[Blueprint, ...] = (
    health.blueprint, accounts.blueprint, releases.blueprint, tap.blueprint, sia.blueprint,
    soda.blueprint, datalink.blueprint, scs.blueprint, files.blueprint, ibe_search.blueprint,
    ibe_data.blueprint, previews.blueprint, most.blueprint, most_field.blueprint,
    forcedphot.blueprint, alerts.blueprint, lightcurves.blueprint, web.blueprint,
)
"""Each service's blueprint, registered in this order."""

log = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    app = Flask("skyvault.server", static_folder=None)
    app.config["TRUSTED_HOSTS"] = trusted_hosts(settings())
    app.config.update(config or {})
    headers.install(app)
    auth.install(app)  # every request's identity, before any service sees it
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
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
