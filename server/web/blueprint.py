"""The web interface's blueprint: pages, their templates and static files (no CDN: every
stylesheet and script is served from here, so the pages work offline)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/static/web")
