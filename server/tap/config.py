"""The TAP service's limits, from the environment (SKYVAULT_TAP_*) with defaults for one host.

They are what /tap/capabilities announces, so the service and its description cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skyvault.server.http.service_config import settings_from


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


PREFIX = "TAP"
"""Environment variables are SKYVAULT_TAP_<FIELD> (SKYVAULT_TAP_HARD_MAXREC, ...); a web
application's config may set TAP_<FIELD> (TAP_INPROCESS_WORKERS)."""


def config_from(environ: Mapping[str, str] | os._Environ,
                overrides: Mapping[str, Any] | None = None) -> TapConfig:
    return settings_from(TapConfig(), PREFIX, environ, overrides)
