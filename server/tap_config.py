"""The TAP service's limits, from the environment (SKYVAULT_TAP_*) with defaults for one host.

They are what /tap/capabilities announces, so the service and its description cannot disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cache


@dataclass(frozen=True)
class TapConfig:
    default_maxrec: int = 100_000
    """Rows a query returns when it gives no MAXREC."""
    hard_maxrec: int = 50_000_000
    """Rows a query returns at most, whatever MAXREC says."""
    sync_execution_duration: int = 600
    """Seconds a synchronous query may run (its statement_timeout)."""
    async_execution_duration: int = 3600
    """Default EXECUTIONDURATION of an async job, seconds."""
    max_execution_duration: int = 4 * 3600
    """EXECUTIONDURATION asked above this is lowered to it."""
    default_retention: int = 7 * 86400
    """Seconds from creation to destruction of an async job, unless DESTRUCTION says less."""
    max_retention: int = 30 * 86400
    upload_limit_bytes: int = 20_000_000
    """Largest uploaded table (the VOTable document's size)."""
    max_uploads: int = 10
    upload_fetch_timeout: float = 30.0
    """Seconds to fetch a table given by URL."""
    upload_private_networks: bool = False
    """Allow upload URLs on loopback, private, link-local or reserved addresses. Off, a query
    cannot make the service fetch from the archive's own network; tests and a single-host
    set-up that serves its own tables turn it on."""
    inprocess_workers: int = 0
    """Async job runner threads inside the web process (tests, the demo); production runs
    ``skyvault worker`` instead."""
    wait_limit: int = 60
    """Longest blocking WAIT on a job, seconds (UWS 1.1 2.2.1.2 lets the server cap it)."""


_ENV = {
    "default_maxrec": "SKYVAULT_TAP_DEFAULT_MAXREC",
    "hard_maxrec": "SKYVAULT_TAP_HARD_MAXREC",
    "sync_execution_duration": "SKYVAULT_TAP_SYNC_EXECUTION_DURATION",
    "async_execution_duration": "SKYVAULT_TAP_ASYNC_EXECUTION_DURATION",
    "max_execution_duration": "SKYVAULT_TAP_MAX_EXECUTION_DURATION",
    "default_retention": "SKYVAULT_TAP_DEFAULT_RETENTION",
    "max_retention": "SKYVAULT_TAP_MAX_RETENTION",
    "upload_limit_bytes": "SKYVAULT_TAP_UPLOAD_LIMIT_BYTES",
    "max_uploads": "SKYVAULT_TAP_MAX_UPLOADS",
    "upload_fetch_timeout": "SKYVAULT_TAP_UPLOAD_FETCH_TIMEOUT",
    "upload_private_networks": "SKYVAULT_TAP_UPLOAD_PRIVATE_NETWORKS",
    "inprocess_workers": "SKYVAULT_TAP_INPROCESS_WORKERS",
    "wait_limit": "SKYVAULT_TAP_WAIT_LIMIT",
}


def config_from(environ: dict[str, str] | os._Environ, overrides: dict | None = None) -> TapConfig:
    values: dict = {}
    defaults = TapConfig()
    for attribute, variable in _ENV.items():
        text = environ.get(variable)
        if text:
            values[attribute] = _parse(text, type(getattr(defaults, attribute)))
    config = replace(defaults, **values)
    return replace(config, **(overrides or {}))


def _parse(text: str, kind: type) -> object:
    if kind is bool:
        if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"{text!r} is not a yes/no value")
        return text.lower() in ("1", "true", "yes", "on")
    return kind(text)


@cache
def tap_config() -> TapConfig:
    """The process's TAP configuration (the Flask app may override it per app)."""
    return config_from(os.environ)
