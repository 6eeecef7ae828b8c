"""Forced photometry {async} (``/forcedphot/async``): the policy of its UWS job tree.

Jobs are ``server.uws``'s, as TAP's and SODA's: kept in ``archive.uws_jobs``, owned like them,
run by `skyvault worker` with ``server.forced_jobs``' executor. A request the service could
never answer (a position off the sky, JDSTART after JDEND, an unknown filter or format) is
refused when the job is created or its parameters changed, with a DALI error VOTable (DALI
1.1 section 4.4), as the sync endpoint answers it. Settings are ``ForcedConfig``'s
(SKYVAULT_FORCEDPHOT_*).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skyvault.server.forced.jobs import execute_forced_job
from skyvault.server.http.service_config import app_overrides, settings_from
from skyvault.server.uws.policy import Document, Executor, JobPolicy
from skyvault.vo.dali import Parameters
from skyvault.vo.forcedphot import parse_forced_request
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable

PREFIX = "FORCEDPHOT"
"""Environment variables are SKYVAULT_FORCEDPHOT_<FIELD>; an application's FORCEDPHOT_<FIELD>."""


@dataclass(frozen=True)
class ForcedConfig:
    """Forced photometry's settings; the fields named as ``JobLimits``' are its jobs' limits."""

    execution_duration: int = 600
    max_execution_duration: int = 3600
    default_retention: int = 7 * 86400
    max_retention: int = 30 * 86400
    wait_limit: int = 60
    inprocess_workers: int = 0
    """Runner threads for forced-photometry jobs inside the web process (tests, the demo)."""
    max_sync_epochs: int = 1000
    """Epochs /forcedphot/sync measures at most (a few seconds); more is refused and asked of
    /forcedphot/async."""
    max_epochs: int = 200_000
    """Epochs one async job measures at most (a position on the sky for decades)."""


class ForcedJobs(JobPolicy[ForcedConfig]):
    kind = "forcedphot"
    name = "forcedphot_async"
    path = "/forcedphot/async"

    def configure(self, app_config: Mapping[str, Any]) -> ForcedConfig:
        return settings_from(ForcedConfig(), PREFIX, os.environ,
                             app_overrides(ForcedConfig(), PREFIX, app_config))

    def check(self, parameters: Parameters, config: ForcedConfig) -> None:
        parse_forced_request(parameters)

    def error_document(self, message: str) -> Document:
        return Document(error_votable(message), VOTABLE_MIME)

    def job_error_document(self, message: str | None) -> Document:
        return self.error_document(message or "The job failed")

    def executor(self, config: ForcedConfig) -> Executor:
        return functools.partial(execute_forced_job, max_epochs=config.max_epochs)


FORCEDPHOT_JOBS = ForcedJobs()
