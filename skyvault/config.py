"""Settings read from the environment, with defaults that suit the demo on one machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READ_URLS_VARIABLE = "SKYVAULT_READ_DATABASE_URLS"
"""Whitespace-separated URLs of read-only replicas (``skyvault serve --read-url``)."""


@dataclass(frozen=True)
class Settings:
    """Where SkyVault keeps its state and how it reaches its database."""

    home: Path
    """Private data folder: the embedded cluster, the file store, job results."""
    database_url: str | None
    """An external PostgreSQL 15+ with q3c and pgsphere; None means the embedded cluster."""
    pg_port: int
    http_port: int
    base_url: str | None
    """Public URL of the service, when it sits behind a proxy; None means the request's own."""
    trusted_proxies: int = 0
    """Proxies in front of the service whose X-Forwarded-For is believed (nginx: 1); the
    client address found there is what sign-in throttling counts by."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names (a leading dot: and their subdomains) the service answers to besides the
    loopback ones; with no base_url, the URLs it hands out are built from the request's Host,
    so a Host outside these is refused (400) rather than written into responses."""
    max_request_bytes: int = 64 * 1024 * 1024
    """Largest request body (TAP uploads are the big ones); larger ones get 413."""
    database_wait_seconds: float = 10.0
    """How long a request waits for a database connection (PostgreSQL restarting, or every
    connection busy) before it is answered 503 with Retry-After."""
    read_database_urls: tuple[str, ...] = ()
    """Read-only replicas (hot standbys of the primary) that answer the requesters' queries:
    TAP, SIA, SCS, DataLink, pages. Writes and async jobs stay on the primary. Login URLs like
    SKYVAULT_DATABASE_URL's; one may list several hosts (libpq's ``host=a,b`` with
    ``target_session_attrs=prefer-standby``)."""
    app_database_url: str | None = None
    """With an external database: how the services log in (the ``skyvault_app`` role, whose
    reads the row-level security policies filter); None derives it from database_url."""
    pgdata: Path = Path()
    """The embedded cluster's data folder (home/pgdata)."""
    store_root: Path = Path()
    """The local file store's folder (home/store; skyvault/filestore.py)."""
    quarantine_root: Path = Path()
    """Where ingest puts rejected product groups with their reasons (home/quarantine)."""
    releases_root: Path = Path()
    """Where release exports are written and served from (home/releases)."""
    hips_root: Path = Path()
    """The HiPS of the public co-adds, one folder per filter (home/hips;
    skyvault/coverage/hips.py), served at /hips/."""
    x_accel_prefix: str | None = None
    """Behind nginx: the internal location that serves the store, so that /files/ hands a
    permitted file over with X-Accel-Redirect instead of streaming it (deploy/nginx)."""

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def job_results_root(self) -> Path:
        return self.home / "jobs"

    @property
    def cache_root(self) -> Path:
        return self.home / "cache"


def _path(variable: str, default: Path) -> Path:
    return Path(os.environ.get(variable) or default)


def _accel_prefix() -> str | None:
    prefix = os.environ.get("SKYVAULT_X_ACCEL_PREFIX", "").strip()
    if not prefix:
        return None
    return prefix if prefix.endswith("/") else prefix + "/"


def load_settings() -> Settings:
    """Every SKYVAULT_* setting, read once (deploy/skyvault.env.example lists them), but
    SKYVAULT_PG_BINDIR: cluster.py finds PostgreSQL's binaries for clusters of no settings
    too (tests' and benchmarks' throwaway ones)."""
    home = Path(os.environ.get("SKYVAULT_HOME", PROJECT_ROOT / "var")).resolve()
    return Settings(
        home=home,
        database_url=os.environ.get("SKYVAULT_DATABASE_URL") or None,
        pg_port=int(os.environ.get("SKYVAULT_PGPORT", "54329")),
        http_port=int(os.environ.get("SKYVAULT_PORT", "8000")),
        base_url=os.environ.get("SKYVAULT_BASE_URL") or None,
        trusted_proxies=int(os.environ.get("SKYVAULT_TRUSTED_PROXIES", "0")),
        allowed_hosts=tuple(h.strip() for h in os.environ.get("SKYVAULT_ALLOWED_HOSTS", "")
                            .split(",") if h.strip()),
        max_request_bytes=int(os.environ.get("SKYVAULT_MAX_REQUEST_BYTES", 64 * 1024 * 1024)),
        database_wait_seconds=float(os.environ.get("SKYVAULT_DATABASE_WAIT_SECONDS", "10")),
        read_database_urls=tuple(os.environ.get(READ_URLS_VARIABLE, "").split()),
        app_database_url=os.environ.get("SKYVAULT_APP_DATABASE_URL") or None,
        pgdata=_path("SKYVAULT_PGDATA", home / "pgdata"),
        store_root=_path("SKYVAULT_STORE", home / "store"),
        quarantine_root=_path("SKYVAULT_QUARANTINE", home / "quarantine"),
        releases_root=_path("SKYVAULT_RELEASES", home / "releases"),
        hips_root=_path("SKYVAULT_HIPS", home / "hips"),
        x_accel_prefix=_accel_prefix(),
    )


@cache
def settings() -> Settings:
    """The process-wide settings; tests point SKYVAULT_* at their own folders before import."""
    return load_settings()
