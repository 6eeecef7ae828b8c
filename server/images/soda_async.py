"""SODA 1.0 {async} (``/soda/async``): the policy of SODA's UWS job tree.

Jobs are ``server.uws``'s like TAP's: kept in ``archive.uws_jobs`` with the same visibility (an
owner's jobs are the owner's alone, an anonymous job belongs to whoever holds its random id),
queued there and run by `skyvault worker`, so a job queued or running when the web service
restarts is not lost. What a job does, one result per combination of values, is
``server.soda_jobs``'s; its parameters are checked when it runs. Errors are text/plain
(SODA 1.0 section 5.2); SODA's limits are its own (``SodaConfig``, SKYVAULT_SODA_*).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skyvault.server.http.service_config import app_overrides, settings_from
from skyvault.server.images.soda_jobs import execute_soda_job
from skyvault.server.uws.policy import Document, Executor, JobPolicy

PREFIX = "SODA"
"""Environment variables are SKYVAULT_SODA_<FIELD>; a web application's config SODA_<FIELD>."""
TEXT = "text/plain; charset=utf-8"
SODA_LABELS = ("Error", "AuthenticationError", "AuthorizationError", "ServiceUnavailable",
               "UsageError", "MultiValuedParamNotSupported")
"""The strings a SODA error document begins with (SODA 1.0 section 5.2)."""


@dataclass(frozen=True)
class SodaConfig:
    """SODA's job settings; the fields named as ``JobLimits``' are its jobs' limits."""

    execution_duration: int = 600
    """Default EXECUTIONDURATION of a job, seconds."""
    max_execution_duration: int = 3600
    """EXECUTIONDURATION asked above this is lowered to it."""
    default_retention: int = 7 * 86400
    """Seconds from creation to destruction of a job, unless DESTRUCTION says less."""
    max_retention: int = 30 * 86400
    wait_limit: int = 60
    """Longest blocking WAIT on a job, seconds."""
    inprocess_workers: int = 0
    """Runner threads for SODA jobs inside the web process (tests, the demo)."""
    max_results: int = 1000
    """Combinations (IDs x cutouts) one job may ask for; more is refused before anything
    runs."""


def soda_error_text(summary: str | None) -> str:
    """A failed job's error document; messages of the job machinery get the general label."""
    message = summary or "the job failed"
    if message.split(":", 1)[0] not in SODA_LABELS:
        message = f"Error: {message}"
    return message + "\n"


class SodaJobs(JobPolicy[SodaConfig]):
    kind = "soda"
    name = "soda_async"
    path = "/soda/async"

    def configure(self, app_config: Mapping[str, Any]) -> SodaConfig:
        return settings_from(SodaConfig(), PREFIX, os.environ,
                             app_overrides(SodaConfig(), PREFIX, app_config))

    def error_document(self, message: str) -> Document:
        return Document(f"{message}\n", TEXT)

    def job_error_document(self, message: str | None) -> Document:
        return Document(soda_error_text(message), TEXT)

    def executor(self, config: SodaConfig) -> Executor:
        return functools.partial(execute_soda_job, max_results=config.max_results)


SODA_JOBS = SodaJobs()
