"""Every async service of the archive, by its job policy: ``create_app`` gives each its UWS job
tree (``server.uws.blueprint.job_blueprint``), and `skyvault worker` runs each one's jobs with
the policy's executor. A new async service is a policy (with its executor) added here.

Flask-free: the worker imports this to find its executors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyvault.server.forced.async_jobs import FORCEDPHOT_JOBS
from skyvault.server.images.soda_async import SODA_JOBS
from skyvault.server.tap.async_jobs import TAP_JOBS
from skyvault.server.uws.policy import Executor, JobPolicy

JOB_SERVICES: tuple[JobPolicy[Any], ...] = (TAP_JOBS, SODA_JOBS, FORCEDPHOT_JOBS)


def executors(app_config: Mapping[str, Any] | None = None) -> dict[str, Executor]:
    """The executor of every service's jobs (kind -> executor), each configured from the
    environment (and ``app_config``'s overrides)."""
    return {policy.kind: policy.executor(policy.configure(app_config or {}))
            for policy in JOB_SERVICES}
