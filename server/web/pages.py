"""What every page shares: the navigation, who is signed in, error pages without stack traces,
and a short-lived per-audience cache for summaries that are costly to compute."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from skyvault.server.auth import csrf_token, current_requester
from skyvault.server.http.context import service_url
from skyvault.server.http.outage import MESSAGE, RETRY_AFTER_SECONDS, database_unreachable
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.web.blueprint import blueprint

log = logging.getLogger(__name__)

T = TypeVar("T")

NAVIGATION = (
    # (endpoint, label, blueprint that must be registered or None)
    ("web.home", "Home", None),
    ("web.search_page", "Images", None),
    ("web.catalogs_page", "Catalogs", None),
    ("web.objects_page", "Light curves", None),
    ("most", "Moving objects", "most"),
    ("web.query_page", "ADQL query", None),
    ("web.tables_page", "Tables", None),
    ("web.sky_page", "Sky", None),
    ("web.qa_page", "QA", None),
    ("releases.releases_page", "Releases", "releases"),
)
MOST_PATH = "/most"


def has_moving_object_search() -> bool:
    return "most" in current_app.blueprints


def navigation() -> list[tuple[str, str, bool]]:
    """(url, label, current) of each page in the menu."""
    from flask import url_for

    items = []
    for endpoint, label, needs in NAVIGATION:
        if needs is not None and needs not in current_app.blueprints:
            continue
        url = (request.script_root + MOST_PATH) if endpoint == "most" else url_for(endpoint)
        current = request.endpoint == endpoint or (
            endpoint == "web.search_page" and request.endpoint == "web.image_page") or (
            endpoint == "web.qa_page" and request.endpoint == "web.qa_night_page") or (
            endpoint == "web.objects_page" and request.endpoint == "web.object_page")
        items.append((url, label, current))
    return items


@blueprint.context_processor
def page_context() -> dict[str, Any]:
    requester = current_requester()
    return {
        "navigation": navigation(),
        "requester": requester,
        "signed_in": not requester.is_anonymous,
        "csrf_token": csrf_token(),
        "login_url": request.script_root + "/login?" + urlencode(
            {"next": request.full_path.rstrip("?") if request.method == "GET" else "/"}),
        "logout_url": request.script_root + "/logout",
        "base_url": service_url(),
        "most_url": request.script_root + MOST_PATH if has_moving_object_search() else None,
    }


def render(template: str, status: int = 200, **context: Any) -> Response:
    response = Response(render_template(template, **context), status=status,
                        mimetype="text/html")
    # A page shows what its requester may see; no shared cache may keep it.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def site_page(template: str, status: int = 200, **context: Any) -> Response:
    """A page of another service (MOST, the releases) in the site's frame: its template extends
    ``web/base.html`` and gets the menu and the sign-in state the web pages get."""
    return render(template, status, **page_context(), **context)


def error_page(status: int, title: str, message: str) -> Response:
    return render("web/error.html", status=status, title=title, message=message)


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return error_page(400, "Bad request", error.description or "")


@blueprint.errorhandler(Exception)
def page_error(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        status = error.code or 500
        if status == 404:
            return error_page(404, "Not found", "There is nothing at this address.")
        return error_page(status, error.name, error.description or error.name)
    if database_unreachable(error):
        log.warning("web page %s: database unreachable: %s", request.path, error)
        response = error_page(503, "Temporarily unavailable", MESSAGE)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    log.exception("web page failed: %s", request.path)
    return error_page(500, "Something went wrong",
                      "The page could not be made. The problem has been logged.")


# -- a cache per audience -------------------------------------------------------------------------

_cache: dict[tuple, tuple[float, Any]] = {}
_cache_lock = threading.Lock()
DEFAULT_TTL_SECONDS = 60.0


def per_audience(kind: str, compute: Callable[[], T], *extra: object) -> T:
    """``compute()`` once per ``ttl`` for each set of programs: every requester with the same
    programs sees the same rows, so they may share the result (and only they may)."""
    ttl = float(current_app.config.get("WEB_SUMMARY_TTL", DEFAULT_TTL_SECONDS))
    key = (kind, current_requester().programs_setting(), *extra)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    value = compute()
    with _cache_lock:
        _cache[key] = (now + ttl, value)
        if len(_cache) > 256:
            for stale in [k for k, (expiry, _) in _cache.items() if expiry <= now]:
                del _cache[stale]
    return value


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
