"""UWS jobs kept in PostgreSQL (archive.uws_jobs): the store the web handlers and workers share.

Every async service keeps its jobs in the one table, told apart by its ``service`` column (its
policy's ``kind``: ``tap``, ``soda``). The owners' side (``JobStore``) is one service's: each of
its queries names the service, so a job id of one service is unknown to every other. The
workers' side (``JobQueue``) spans the services a worker can run.

The table is the queue: PHASE=RUN sets a job QUEUED and notifies ``QUEUE_CHANNEL``; a worker
takes the oldest queued job with ``SELECT ... FOR UPDATE SKIP LOCKED``, so any number of workers
(threads or processes on any host) share the queue without a broker, and a job queued while no
worker runs waits in the table for the next one. Every phase change notifies ``PHASE_CHANNEL``
with the job's id, which wakes blocking WAIT requests and tells a worker its job was aborted.

Who sees a job:

- A job created by an authenticated user belongs to that user (``owner_id``) alone: for anyone
  else it does not exist (404, the same answer as for an unknown id, so nothing is revealed).
- A job created anonymously belongs to nobody: its 128-bit random id is the only key to it, like
  a capability URL, and it is never listed (an anonymous job list is empty, since nothing tells
  one anonymous client from another). It runs with the public's rights only.

A job runs with the programs its owner can see when it runs (``owner_requester``: read at that
moment, so a withdrawn membership counts at once); an anonymous job with the public's rights.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from skyvault.access import ANONYMOUS, Requester
from skyvault.accounts.model import requester_for_user
from skyvault.config import settings
from skyvault.db import Database
from skyvault.server.uws.quota import JobQuota, check_quota, job_quota
from skyvault.vo import uws
from skyvault.vo.dali import Parameters
from skyvault.vo.uws import Phase, PhaseConflict, UwsError

log = logging.getLogger(__name__)

QUEUE_CHANNEL = "skyvault_uws_queue"
PHASE_CHANNEL = "skyvault_uws_phase"
MAX_ATTEMPTS = 3
"""A job whose worker died is queued again until it has been taken this many times."""

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class JobNotFound(UwsError):
    """No such job for this requester: unknown, destroyed, or someone else's."""

    http_status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job {job_id}")


class NoSuchResult(UwsError):
    http_status = 404


class ResultsWithheld(UwsError):
    """The owner has lost a program the job ran with (``StoredJob.as_seen_by``)."""

    http_status = 403

    def __init__(self, job_id: str) -> None:
        super().__init__(f"The results of job {job_id} are withheld: it ran with access to data"
                         " you no longer have. Run it again.")


WITHHELD_ERROR = ("The error of this job is withheld: it ran with access to data you no longer"
                  " have. Run it again.")
"""The errorSummary shown instead of a withheld job's own: an error met while reading rows
tells of those rows as much as a result would."""


def new_job_id() -> str:
    """128 random bits, URL-safe: unguessable, since it is all that guards anonymous jobs."""
    return secrets.token_urlsafe(16)


def job_directory(job_id: str, root: Path | None = None) -> Path:
    """Where a job keeps its inline uploads and its result file."""
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)
    return (root or settings().job_results_root) / job_id


@dataclass(frozen=True)
class ResultFile:
    id: str
    file: str
    """File name in the job's directory."""
    mime_type: str
    size: int
    rows: int | None = None
    overflow: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.file, "mime": self.mime_type, "size": self.size,
                "rows": self.rows, "overflow": self.overflow}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultFile:
        return cls(data["id"], data["file"], data["mime"], int(data["size"]), data.get("rows"),
                   bool(data.get("overflow")))


@dataclass(frozen=True)
class StoredJob:
    job_id: str
    service: str
    owner_id: int | None
    owner_name: str | None
    run_id: str | None
    phase: Phase
    parameter_pairs: tuple[tuple[str, str], ...]
    creation_time: dt.datetime
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    destruction_time: dt.datetime
    execution_duration: int
    quote: dt.datetime | None
    error_summary: str | None
    error_type: str | None
    results: tuple[ResultFile, ...]
    worker: str | None
    base_url: str | None
    attempts: int
    run_programs: frozenset[int] | None = None
    """The programs the owner had when the job ran; None before it ran."""
    results_withheld: bool = False
    """The owner has lost a program the job ran with: its results are not served."""

    def as_seen_by(self, requester: Requester) -> StoredJob:
        """The job as ``requester`` (its owner, or the holder of an anonymous job's id) may
        see it now: a result file holds the rows its owner could see when it ran, so results
        are withheld, sizes included, while the owner lacks any program the job ran with
        (a membership withdrawn since). So is the error of a failed job, which may describe
        the rows it met (/error answers ResultsWithheld)."""
        if self.run_programs is None or self.run_programs <= requester.programs:
            return self
        return replace(self, results=(), results_withheld=True,
                       error_summary=WITHHELD_ERROR if self.error_summary else None)

    @property
    def parameters(self) -> Parameters:
        return Parameters(self.parameter_pairs)

    @property
    def directory(self) -> Path:
        return job_directory(self.job_id)

    def result_file(self, result_id: str) -> tuple[ResultFile, Path]:
        """A result and its file, for serving; ResultsWithheld, or NoSuchResult when the job
        has no such result or its file is gone."""
        if self.results_withheld:
            raise ResultsWithheld(self.job_id)
        result = next((r for r in self.results if r.id == result_id), None)
        if result is None:
            raise NoSuchResult(f"Job {self.job_id} has no result {result_id}")
        path = self.directory / result.file
        if not path.is_file():
            raise NoSuchResult(f"The result {result_id} of job {self.job_id} is gone")
        return result, path

    def error_text(self) -> str | None:
        """The failed job's own error message, for its /error resource; ResultsWithheld while
        its results are."""
        if self.results_withheld:
            raise ResultsWithheld(self.job_id)
        return self.error_summary

    def uws_job(self, job_url: str, inline_parts: Iterable[str] = ()) -> uws.Job:
        """The UWS view; inline uploads are parameters by reference (UWS 2.2.3.1.1)."""
        parameters = [uws.JobParameter(name.lower(), value)
                      for name, value in self.parameter_pairs]
        parameters += [uws.JobParameter(part, f"{job_url}/parameters/{part}", by_reference=True)
                       for part in inline_parts]
        error = None
        if self.phase == Phase.ERROR and self.error_summary:
            error = uws.ErrorSummary(self.error_summary, self.error_type or "fatal")
        return uws.Job(
            job_id=self.job_id,
            phase=self.phase,
            creation_time=self.creation_time,
            execution_duration=self.execution_duration,
            destruction_time=self.destruction_time,
            owner_id=self.owner_name,
            run_id=self.run_id,
            quote=self.quote,
            start_time=self.start_time,
            end_time=self.end_time,
            parameters=tuple(parameters),
            results=tuple(
                uws.ResultRef(r.id, f"{job_url}/results/{r.id}", r.mime_type, r.size)
                for r in self.results
            ),
            error=error,
        )


_COLUMNS = """
    j.job_id, j.service, j.owner_id, u.username AS owner_name, j.run_id, j.phase, j.parameters,
    j.creation_time, j.start_time, j.end_time, j.destruction_time, j.execution_duration,
    j.quote, j.error_summary, j.error_type, j.results, j.worker, j.base_url,
    j.attempts, j.run_programs
"""
_FROM = "archive.uws_jobs j LEFT JOIN archive.users u ON u.user_id = j.owner_id"
# A job is visible to its owner, an anonymous job to whoever holds its id; past its destruction
# time it is gone even before the sweeper deletes it.
_VISIBLE = ("j.service = %(service)s AND j.destruction_time > now()"
            " AND (j.owner_id IS NULL OR j.owner_id = %(user_id)s)")


def _stored(row: dict[str, Any]) -> StoredJob:
    pairs = row["parameters"]
    if isinstance(pairs, dict):  # the column's default, before any parameter was stored
        pairs = list(pairs.items())
    return StoredJob(
        job_id=row["job_id"], service=row["service"], owner_id=row["owner_id"],
        owner_name=row["owner_name"], run_id=row["run_id"], phase=Phase(row["phase"]),
        parameter_pairs=tuple((str(n), str(v)) for n, v in pairs),
        creation_time=row["creation_time"], start_time=row["start_time"],
        end_time=row["end_time"], destruction_time=row["destruction_time"],
        execution_duration=row["execution_duration"], quote=row["quote"],
        error_summary=row["error_summary"], error_type=row["error_type"],
        results=tuple(ResultFile.from_json(r) for r in row["results"] or ()),
        worker=row["worker"], base_url=row["base_url"], attempts=row["attempts"],
        run_programs=None if row["run_programs"] is None else frozenset(row["run_programs"]),
    )


def _notify(connection: psycopg.Connection, channel: str, payload: str) -> None:
    connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))


class JobStore:
    """The jobs of one service as their owners see them (the web handlers); every method is one
    short transaction."""

    def __init__(self, db: Database, *, service: str, quota: JobQuota | None = None) -> None:
        self.db = db
        self.service = service
        self.quota = quota or job_quota()

    def _keys(self, job_id: str, requester: Requester) -> dict[str, Any]:
        return {"job_id": job_id, "service": self.service, "user_id": requester.user_id}

    def create(self, requester: Requester, parameters: Parameters, *, job_id: str | None = None,
               run_id: str | None, execution_duration: int, destruction_time: dt.datetime,
               base_url: str | None, run: bool = False, client_address: str | None = None,
               upload_bytes: int = 0) -> str:
        """A new job, unless its owner (the user, or the client address of an anonymous
        request) is over quota (JobQuotaExceeded)."""
        job_id = job_id or new_job_id()
        phase = Phase.QUEUED if run else Phase.PENDING
        with self.db.app_writing() as connection:
            check_quota(connection, self.quota, user_id=requester.user_id,
                        client_address=client_address, new_bytes=upload_bytes)
            connection.execute(
                """INSERT INTO archive.uws_jobs (job_id, service, owner_id, run_id, phase,
                       parameters, destruction_time, execution_duration, base_url,
                       client_address, upload_bytes)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (job_id, self.service, requester.user_id, run_id, phase,
                 json.dumps(parameters.items()), destruction_time, execution_duration,
                 base_url, client_address, upload_bytes),
            )
            if run:
                _notify(connection, QUEUE_CHANNEL, job_id)
        return job_id

    def get(self, job_id: str, requester: Requester) -> StoredJob:
        if not _JOB_ID.fullmatch(job_id):
            raise JobNotFound(job_id)
        with self.db.app_writing() as connection, connection.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE j.job_id = %(job_id)s AND "
                        f"{_VISIBLE}", self._keys(job_id, requester))
            row = cur.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _stored(row).as_seen_by(requester)

    def list(self, requester: Requester, filters: uws.JobListFilter) -> list[StoredJob]:
        """The requester's own jobs (UWS 2.2.2.1); anonymous requesters own none."""
        if requester.user_id is None:
            return []
        conditions = ["j.service = %(service)s", "j.destruction_time > now()",
                      "j.owner_id = %(user_id)s"]
        values: dict[str, Any] = {"service": self.service, "user_id": requester.user_id}
        if filters.phases:
            conditions.append("j.phase = ANY(%(phases)s)")
            values["phases"] = [str(p) for p in filters.phases]
        else:
            conditions.append("j.phase <> 'ARCHIVED'")
        if filters.after is not None:
            conditions.append("j.creation_time > %(after)s")
            values["after"] = filters.after
        limit = ""
        if filters.last is not None:
            limit = " LIMIT %(last)s"
            values["last"] = filters.last
        # LAST lists the most recent jobs by descending creation time (UWS 1.1 2.2.2.1).
        order = "DESC" if filters.last is not None else "ASC"
        with self.db.app_writing() as connection, connection.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE {' AND '.join(conditions)} "
                        f"ORDER BY j.creation_time {order}{limit}", values)
            return [_stored(row).as_seen_by(requester) for row in cur.fetchall()]

    def _locked(self, connection: psycopg.Connection, job_id: str,
                requester: Requester) -> StoredJob:
        if not _JOB_ID.fullmatch(job_id):
            raise JobNotFound(job_id)
        with connection.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE j.job_id = %(job_id)s AND "
                        f"{_VISIBLE} FOR UPDATE OF j", self._keys(job_id, requester))
            row = cur.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _stored(row)

    def update_parameters(self, job_id: str, requester: Requester, parameters: Parameters,
                          *, check: Callable[[Parameters], None] | None = None,
                          upload_bytes: int = 0) -> None:
        """Parameters posted to /{job}/parameters while the job is PENDING (UWS 2.1.11);
        ``check`` may refuse the merged parameters; ``upload_bytes`` were stored with them."""
        with self.db.app_writing() as connection:
            job = self._locked(connection, job_id, requester)
            if job.phase != Phase.PENDING:
                raise PhaseConflict(f"Parameters can change only while PENDING, not {job.phase}")
            merged = job.parameters.merged(parameters)
            if check is not None:
                check(merged)
            connection.execute("UPDATE archive.uws_jobs SET parameters = %s,"
                               " upload_bytes = upload_bytes + %s WHERE job_id = %s",
                               (json.dumps(merged.items()), upload_bytes, job_id))

    def change_phase(self, job_id: str, requester: Requester, action: str) -> Phase:
        with self.db.app_writing() as connection:
            job = self._locked(connection, job_id, requester)
            phase = uws.phase_after(job.phase, action)
            if phase == job.phase:
                return phase
            if phase == Phase.QUEUED:
                connection.execute("UPDATE archive.uws_jobs SET phase = %s WHERE job_id = %s",
                                   (phase, job_id))
                _notify(connection, QUEUE_CHANNEL, job_id)
            else:
                connection.execute(
                    "UPDATE archive.uws_jobs SET phase = %s, end_time = now() WHERE job_id = %s",
                    (phase, job_id))
            _notify(connection, PHASE_CHANNEL, job_id)
            return phase

    def set_destruction(self, job_id: str, requester: Requester, when: dt.datetime,
                        max_retention: int) -> None:
        """Move the destruction time, no later than ``max_retention`` after creation."""
        with self.db.app_writing() as connection:
            job = self._locked(connection, job_id, requester)
            latest = job.creation_time + dt.timedelta(seconds=max_retention)
            connection.execute(
                "UPDATE archive.uws_jobs SET destruction_time = %s WHERE job_id = %s",
                (min(when, latest), job_id))

    def set_execution_duration(self, job_id: str, requester: Requester, seconds: int,
                               max_seconds: int) -> None:
        """Change the time limit before the job starts; 0 (unlimited) gets the maximum."""
        with self.db.app_writing() as connection:
            job = self._locked(connection, job_id, requester)
            if job.phase not in (Phase.PENDING, Phase.HELD, Phase.QUEUED):
                raise PhaseConflict(
                    f"The execution duration cannot change once the job is {job.phase}")
            value = max_seconds if seconds <= 0 else min(seconds, max_seconds)
            connection.execute(
                "UPDATE archive.uws_jobs SET execution_duration = %s WHERE job_id = %s",
                (value, job_id))

    def delete(self, job_id: str, requester: Requester) -> None:
        """Destroy a job now: its row, and its files; a worker running it stops."""
        with self.db.app_writing() as connection:
            self._locked(connection, job_id, requester)
            connection.execute("DELETE FROM archive.uws_jobs WHERE job_id = %s", (job_id,))
            _notify(connection, PHASE_CHANNEL, job_id)
        remove_job_files(job_id)


class JobQueue:
    """The workers' side: the queued jobs of ``services``, taken, watched and ended.

    Once a worker has taken a job, the job's id and the worker's name identify it; the queries
    on the whole queue (taking, orphans, destruction) are limited to ``services``, so a worker
    never takes a job it has no executor for."""

    def __init__(self, db: Database, services: Iterable[str]) -> None:
        self.db = db
        self.services = sorted(services)

    def claim_next(self, worker: str) -> StoredJob | None:
        """Take the oldest queued job, if any, and mark it EXECUTING for ``worker``."""
        with self.db.app_writing() as connection, connection.cursor(row_factory=dict_row) as cur:
            cur.execute(
                """UPDATE archive.uws_jobs SET phase = 'EXECUTING', start_time = now(),
                          end_time = NULL, worker = %(worker)s, heartbeat = now(),
                          attempts = attempts + 1
                    WHERE job_id = (SELECT job_id FROM archive.uws_jobs
                                     WHERE service = ANY(%(services)s) AND phase = 'QUEUED'
                                       AND destruction_time > now()
                                     ORDER BY creation_time
                                     FOR UPDATE SKIP LOCKED LIMIT 1)
                RETURNING job_id""",
                {"worker": worker, "services": self.services},
            )
            row = cur.fetchone()
            if row is None:
                return None
            _notify(connection, PHASE_CHANNEL, row["job_id"])
            cur.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE j.job_id = %s",
                        (row["job_id"],))
            return _stored(cur.fetchone())

    def owner_requester(self, job: StoredJob) -> Requester | None:
        """Whom the job runs for, as of now; None if its owner is gone or disabled. The
        programs it runs with are recorded: its results are served only while the owner still
        has them (``StoredJob.as_seen_by``)."""
        if job.owner_id is None:
            return ANONYMOUS
        with self.db.app_writing() as connection:
            requester = requester_for_user(connection, job.owner_id)
            if requester is not None:
                connection.execute("UPDATE archive.uws_jobs SET run_programs = %s"
                                   " WHERE job_id = %s", (sorted(requester.programs), job.job_id))
            return requester

    def heartbeat(self, job_id: str, worker: str) -> Phase | None:
        """Record that ``worker`` still runs the job; the job's phase, None once destroyed."""
        with self.db.app_writing() as connection:
            row = connection.execute(
                """UPDATE archive.uws_jobs SET heartbeat = now()
                    WHERE job_id = %s AND worker = %s RETURNING phase""",
                (job_id, worker)).fetchone()
        return Phase(row[0]) if row else None

    def finish(self, job_id: str, worker: str, phase: Phase, *,
               results: Iterable[ResultFile] = (), error: str | None = None,
               error_type: str = "fatal") -> bool:
        """End the job as COMPLETED or ERROR; False if it was aborted or destroyed meanwhile."""
        with self.db.app_writing() as connection:
            cursor = connection.execute(
                """UPDATE archive.uws_jobs SET phase = %s, end_time = now(), results = %s,
                          error_summary = %s, error_type = %s, heartbeat = NULL
                    WHERE job_id = %s AND worker = %s AND phase = 'EXECUTING'""",
                (phase, json.dumps([r.as_json() for r in results]), error,
                 error_type if error else None, job_id, worker))
            if cursor.rowcount:
                _notify(connection, PHASE_CHANNEL, job_id)
            return bool(cursor.rowcount)

    def release(self, job_id: str, worker: str) -> bool:
        """Hand a job back to the queue (its worker is stopping); the attempt does not count."""
        with self.db.app_writing() as connection:
            cursor = connection.execute(
                """UPDATE archive.uws_jobs SET phase = 'QUEUED', worker = NULL, heartbeat = NULL,
                          start_time = NULL, attempts = greatest(attempts - 1, 0)
                    WHERE job_id = %s AND worker = %s AND phase = 'EXECUTING'""",
                (job_id, worker))
            if cursor.rowcount:
                _notify(connection, PHASE_CHANNEL, job_id)
                _notify(connection, QUEUE_CHANNEL, job_id)
            return bool(cursor.rowcount)

    def requeue(self, job_id: str, worker: str) -> bool:
        """Queue a job again that failed for the service's sake (the database went away
        under it), counting the attempt: a job that keeps failing so ends in ERROR after
        MAX_ATTEMPTS, as one that kills its worker does."""
        with self.db.app_writing() as connection:
            row = connection.execute(
                """UPDATE archive.uws_jobs
                      SET phase = CASE WHEN attempts < %(max)s THEN 'QUEUED' ELSE 'ERROR' END,
                          error_summary = CASE WHEN attempts < %(max)s THEN NULL ELSE
                            'The database failed under the job ' || attempts || ' times;'
                            ' giving up' END,
                          error_type = CASE WHEN attempts < %(max)s THEN NULL ELSE 'fatal' END,
                          end_time = CASE WHEN attempts < %(max)s THEN NULL ELSE now() END,
                          start_time = CASE WHEN attempts < %(max)s THEN NULL
                                       ELSE start_time END,
                          worker = NULL, heartbeat = NULL
                    WHERE job_id = %(job_id)s AND worker = %(worker)s AND phase = 'EXECUTING'
                RETURNING phase""",
                {"max": MAX_ATTEMPTS, "job_id": job_id, "worker": worker}).fetchone()
            if row is not None:
                _notify(connection, PHASE_CHANNEL, job_id)
                if row[0] == Phase.QUEUED:
                    _notify(connection, QUEUE_CHANNEL, job_id)
        return row is not None

    def requeue_orphans(self, stale_after: dt.timedelta) -> list[str]:
        """Jobs whose worker stopped sending heartbeats: queued again, or failed for good."""
        with self.db.app_writing() as connection:
            rows = connection.execute(
                """UPDATE archive.uws_jobs
                      SET phase = CASE WHEN attempts < %(max)s THEN 'QUEUED' ELSE 'ERROR' END,
                          error_summary = CASE WHEN attempts < %(max)s THEN NULL ELSE
                            'The job stopped its worker ' || attempts || ' times; giving up'
                          END,
                          error_type = CASE WHEN attempts < %(max)s THEN NULL ELSE 'fatal' END,
                          end_time = CASE WHEN attempts < %(max)s THEN NULL ELSE now() END,
                          worker = NULL, heartbeat = NULL
                    WHERE service = ANY(%(services)s) AND phase = 'EXECUTING'
                      AND heartbeat < now() - %(stale)s
                RETURNING job_id, phase""",
                {"max": MAX_ATTEMPTS, "services": self.services,
                 "stale": stale_after}).fetchall()
            for job_id, phase in rows:
                _notify(connection, PHASE_CHANNEL, job_id)
                if phase == Phase.QUEUED:
                    _notify(connection, QUEUE_CHANNEL, job_id)
        return [job_id for job_id, _ in rows]

    def destroy_expired(self) -> list[str]:
        """Delete jobs past their destruction time, with their files (UWS 2.1.5)."""
        with self.db.app_writing() as connection:
            rows = connection.execute(
                """DELETE FROM archive.uws_jobs
                    WHERE service = ANY(%s) AND destruction_time <= now()
                RETURNING job_id""", (self.services,)).fetchall()
            for (job_id,) in rows:
                _notify(connection, PHASE_CHANNEL, job_id)
        for (job_id,) in rows:
            remove_job_files(job_id)
        return [job_id for (job_id,) in rows]

    def remove_stray_directories(self, older_than: dt.timedelta) -> list[str]:
        """Job folders with no job row (a crash between the two), once old enough to not be a
        job being created right now."""
        root = settings().job_results_root
        if not root.is_dir():
            return []
        cutoff = dt.datetime.now(dt.UTC).timestamp() - older_than.total_seconds()
        candidates = [p.name for p in root.iterdir()
                      if p.is_dir() and _JOB_ID.fullmatch(p.name) and p.stat().st_mtime < cutoff]
        if not candidates:
            return []
        with self.db.app_writing() as connection:
            known = {row[0] for row in connection.execute(
                "SELECT job_id FROM archive.uws_jobs WHERE job_id = ANY(%s)", (candidates,))}
        stray = [name for name in candidates if name not in known]
        for name in stray:
            remove_job_files(name)
        return stray


def remove_job_files(job_id: str) -> None:
    with suppress(JobNotFound):
        shutil.rmtree(job_directory(job_id), ignore_errors=True)


# -- waiting for phase changes ------------------------------------------------------------------


class PhaseWatcher:
    """One LISTEN connection per process that wakes threads waiting on a job's phase.

    A waiter registers (``watching``) before it reads the job, so a change between its read and
    its wait is never missed. If the listening connection drops, waiters still wake at their
    (short) timeouts and read the job again.
    """

    def __init__(self, url: str, channel: str = PHASE_CHANNEL) -> None:
        self._url = url
        self._channel = channel
        self._condition = threading.Condition()
        self._changes: dict[str, int] = {}
        self._watchers: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _ensure_started(self) -> None:
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._listen, name="uws-phase-watcher",
                                                daemon=True)
                self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {self._channel}")
                    while not self._stop.is_set():
                        for notification in connection.notifies(timeout=1.0):
                            self._signal(notification.payload)
            except psycopg.Error as error:
                # Waiters fall back on their short timeouts meanwhile; not worth a warning.
                log.info("phase watcher lost its connection: %s", error)
                self._stop.wait(2.0)

    def _signal(self, job_id: str) -> None:
        with self._condition:
            if job_id in self._watchers:
                self._changes[job_id] = self._changes.get(job_id, 0) + 1
                self._condition.notify_all()

    @contextmanager
    def watching(self, job_id: str) -> Iterator[Callable[[float], bool]]:
        """A function ``wait(timeout) -> changed`` that returns once the job has changed since
        the previous call (or since entering), or after ``timeout`` seconds."""
        self._ensure_started()
        with self._condition:
            self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
            seen = self._changes.get(job_id, 0)

        def wait(timeout: float) -> bool:
            nonlocal seen
            with self._condition:
                changed = self._condition.wait_for(
                    lambda: self._changes.get(job_id, 0) != seen, timeout=timeout)
                seen = self._changes.get(job_id, 0)
                return changed

        try:
            yield wait
        finally:
            with self._condition:
                self._watchers[job_id] -= 1
                if not self._watchers[job_id]:
                    del self._watchers[job_id]
                    self._changes.pop(job_id, None)

    def stop(self) -> None:
        self._stop.set()
