"""Per-owner quotas on async jobs: how many may wait or run, and how many bytes they may keep.

An owner is a signed-in user, or, for anonymous jobs, the client address that created them
(``server.auth.client_address``: behind nginx the one it saw, with SKYVAULT_TRUSTED_PROXIES). A
job-creating request is refused (429, in the protocol's format) while its owner has
``max_active`` jobs that have not ended (PENDING, QUEUED, EXECUTING, HELD, SUSPENDED), or keeps
``max_stored_bytes`` or more in the uploads and results of its jobs not yet destroyed. The count
and the new job's row are taken under one advisory lock per owner, so concurrent creations
cannot overshoot. Results are counted once written: a job that is admitted may end above the
byte quota, and the next is refused until jobs are deleted or destroyed.

Settings (deploy/skyvault.env.example): SKYVAULT_JOBS_MAX_ACTIVE, SKYVAULT_JOBS_MAX_STORED_BYTES.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import psycopg

from skyvault.vo.uws import UwsError

ACTIVE_PHASES = ("PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED")


class JobQuotaExceeded(UwsError):
    """The owner has too many unfinished jobs, or keeps too many bytes (RFC 6585 429)."""

    http_status = 429


@dataclass(frozen=True)
class JobQuota:
    max_active: int = 20
    """Jobs of one owner that have not ended."""
    max_stored_bytes: int = 2 * 1024**3
    """Bytes of uploads and results one owner keeps in jobs not yet destroyed."""


@cache
def job_quota() -> JobQuota:
    defaults = JobQuota()
    return JobQuota(
        max_active=int(os.environ.get("SKYVAULT_JOBS_MAX_ACTIVE", defaults.max_active)),
        max_stored_bytes=int(os.environ.get("SKYVAULT_JOBS_MAX_STORED_BYTES",
                                            defaults.max_stored_bytes)),
    )


def check_quota(connection: psycopg.Connection, quota: JobQuota, *, user_id: int | None,
                client_address: str | None, new_bytes: int) -> None:
    """Inside the transaction that creates a job: JobQuotaExceeded if it may not be created."""
    if user_id is not None:
        key, owner = f"user:{user_id}", "j.owner_id = %(user_id)s"
    else:
        key, owner = f"address:{client_address}", \
            "j.owner_id IS NULL AND j.client_address = %(address)s"
    connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
    active, stored = connection.execute(
        f"""SELECT count(*) FILTER (WHERE j.phase = ANY(%(active)s)),
                   coalesce(sum(j.upload_bytes + (SELECT coalesce(sum((r->>'size')::bigint), 0)
                                                    FROM jsonb_array_elements(j.results) r)), 0)
              FROM archive.uws_jobs j
             WHERE j.destruction_time > now() AND {owner}""",
        {"active": list(ACTIVE_PHASES), "user_id": user_id, "address": client_address},
    ).fetchone()
    if active >= quota.max_active:
        raise JobQuotaExceeded(
            f"You have {active} jobs that have not ended; at most {quota.max_active} may wait "
            "or run at once. Delete some, or wait until they end.")
    if stored + new_bytes > quota.max_stored_bytes:
        raise JobQuotaExceeded(
            f"Your jobs keep {stored} bytes of uploads and results; at most "
            f"{quota.max_stored_bytes} may be kept. Delete jobs you no longer need.")
