"""Database access for request handlers: always as the current requester."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from flask import request

from skyvault.config import Settings, settings
from skyvault.db import database
from skyvault.server.auth import authentication_prefix, current_requester

LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def trusted_hosts(config: Settings) -> list[str] | None:
    """The Host values a request may carry (Flask's TRUSTED_HOSTS), None for any.

    Without SKYVAULT_BASE_URL the service's URLs (job locations, access URLs, the /tap page)
    are built from the request's Host, which the client chooses: only the loopback names (the
    demo, tests) and SKYVAULT_ALLOWED_HOSTS are then believed. With a base URL the Host is
    not used, and only an explicit allow-list restricts it."""
    if config.base_url and not config.allowed_hosts:
        return None
    return [*LOOPBACK_HOSTS, *config.allowed_hosts]


def service_url() -> str:
    """The service's public base URL, without a trailing slash.

    Under the mandatory-authentication prefix (``/authn``) the prefix is kept, so the URLs a
    response hands out lead back through authentication."""
    return (settings().base_url or request.host_url).rstrip("/") + authentication_prefix()


@contextmanager
def reading(*, user_query: bool = False,
            statement_timeout_ms: int | None = None) -> Iterator[psycopg.Connection]:
    """A read-only transaction that sees exactly what the current requester may see."""
    with database().reading(current_requester(), user_query=user_query,
                            statement_timeout_ms=statement_timeout_ms,
                            base_url=service_url()) as connection:
        yield connection
