"""Liveness of the service and its database, for load balancers and operators."""

from __future__ import annotations

from flask import Blueprint, jsonify

from skyvault.db import database

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    with database().reading() as connection:
        connection.execute("SELECT 1")
    return jsonify(status="ok")
