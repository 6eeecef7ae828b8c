"""SODA 1.0 {async}: ``/soda/async``, a DALI-async (UWS 1.1) resource.

Each combination of parameter values gives one result (SODA 1.0 section 5): two IDs and two
CIRCLEs make four cutouts. A combination without a result (no overlap, an unknown or hidden ID)
is a text/plain result starting with the SODA error label, as section 5 asks; a request that
cannot run at all ends the job in ERROR.

Jobs live in ``archive.uws_jobs`` (service ``soda``) with the same visibility as TAP's: an
owner's jobs are the owner's alone, an anonymous job belongs to whoever holds its random id.
Cutouts take milliseconds, so a job runs in a thread of the web process as soon as it is
queued; it reads as its owner (whose programs are looked up when it runs), never as anyone
else. The UWS documents are ``skyvault.vo.uws``'s, the job ids and folders
``skyvault.server.jobs``'s.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from typing import Any

import psycopg
from flask import Blueprint, Response, redirect, request, send_file
from psycopg.rows import dict_row

from skyvault.access import ANONYMOUS, Requester
from skyvault.accounts import requester_for_user
from skyvault.db import Database, database
from skyvault.server.auth import current_requester
from skyvault.server.context import service_url
from skyvault.server.imaging import parameters
from skyvault.server.jobs import (
    JobNotFound,
    ResultFile,
    StoredJob,
    job_directory,
    new_job_id,
    remove_job_files,
)
from skyvault.server.soda import resolve, write_cutout
from skyvault.vo import uws
from skyvault.vo.cutout import CutoutError, NoOverlap
from skyvault.vo.dali import DaliError, InvalidParameter, Parameters, parse_non_negative_int
from skyvault.vo.soda import FITS_TYPE, SodaError, parse_soda_request
from skyvault.vo.uws import Phase, PhaseConflict

blueprint = Blueprint("soda_async", __name__)
log = logging.getLogger(__name__)

SERVICE = "soda"
UWS_CONTROL = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
DEFAULT_RETENTION = dt.timedelta(days=7)
MAX_RETENTION = dt.timedelta(days=30)
EXECUTION_DURATION = 600
MAX_EXECUTION_DURATION = 3600
WAIT_LIMIT = 60.0
MAX_RESULTS = 1000
"""Combinations one job may ask for; more is refused before anything runs."""

_runner = ThreadPoolExecutor(max_workers=2, thread_name_prefix="soda-job")

_COLUMNS = """
    j.job_id, j.owner_id, u.username AS owner_name, j.run_id, j.phase, j.parameters,
    j.creation_time, j.start_time, j.end_time, j.destruction_time, j.execution_duration,
    j.quote, j.error_summary, j.error_type, j.results, j.worker, j.base_url, j.attempts
"""
_FROM = "archive.uws_jobs j LEFT JOIN archive.users u ON u.user_id = j.owner_id"
_VISIBLE = ("j.service = 'soda' AND j.destruction_time > now()"
            " AND (j.owner_id IS NULL OR j.owner_id = %(user_id)s)")


def _stored(row: dict[str, Any]) -> StoredJob:
    pairs = row["parameters"]
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    return StoredJob(
        job_id=row["job_id"], owner_id=row["owner_id"], owner_name=row["owner_name"],
        run_id=row["run_id"], phase=Phase(row["phase"]),
        parameter_pairs=tuple((str(n), str(v)) for n, v in pairs),
        creation_time=row["creation_time"], start_time=row["start_time"],
        end_time=row["end_time"], destruction_time=row["destruction_time"],
        execution_duration=row["execution_duration"], quote=row["quote"],
        error_summary=row["error_summary"], error_type=row["error_type"],
        results=tuple(ResultFile.from_json(r) for r in row["results"] or ()),
        worker=row["worker"], base_url=row["base_url"], attempts=row["attempts"])


class SodaJobs:
    """SODA's rows of archive.uws_jobs; every method is one short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, requester: Requester, params: Parameters, *, run_id: str | None,
               execution_duration: int, destruction: dt.datetime, base_url: str) -> str:
        job_id = new_job_id()
        with self.db.app_writing() as connection:
            connection.execute(
                """INSERT INTO archive.uws_jobs (job_id, service, owner_id, run_id, phase,
                       parameters, destruction_time, execution_duration, base_url)
                   VALUES (%s, %s, %s, %s, 'PENDING', %s, %s, %s, %s)""",
                (job_id, SERVICE, requester.user_id, run_id, json.dumps(params.items()),
                 destruction, execution_duration, base_url))
        return job_id

    def _fetch(self, connection: psycopg.Connection, job_id: str, requester: Requester,
               lock: bool = False) -> StoredJob:
        job_directory(job_id)  # refuses ids that cannot be ours
        with connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE j.job_id = %(job_id)s AND "
                           f"{_VISIBLE}{' FOR UPDATE OF j' if lock else ''}",
                           {"job_id": job_id, "user_id": requester.user_id})
            row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _stored(row)

    def get(self, job_id: str, requester: Requester) -> StoredJob:
        with self.db.app_writing() as connection:
            return self._fetch(connection, job_id, requester)

    def list(self, requester: Requester, filters: uws.JobListFilter) -> list[StoredJob]:
        if requester.user_id is None:
            return []
        conditions = ["j.service = 'soda'", "j.destruction_time > now()",
                      "j.owner_id = %(user_id)s"]
        values: dict[str, Any] = {"user_id": requester.user_id}
        if filters.phases:
            conditions.append("j.phase = ANY(%(phases)s)")
            values["phases"] = [str(p) for p in filters.phases]
        else:
            conditions.append("j.phase <> 'ARCHIVED'")
        if filters.after is not None:
            conditions.append("j.creation_time > %(after)s")
            values["after"] = filters.after
        order, limit = "ASC", ""
        if filters.last is not None:
            order, limit = "DESC", f" LIMIT {int(filters.last)}"
        with self.db.app_writing() as connection, \
                connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE {' AND '.join(conditions)}"
                           f" ORDER BY j.creation_time {order}{limit}", values)
            return [_stored(row) for row in cursor.fetchall()]

    def change_phase(self, job_id: str, requester: Requester, action: str) -> Phase:
        with self.db.app_writing() as connection:
            job = self._fetch(connection, job_id, requester, lock=True)
            phase = uws.phase_after(job.phase, action)
            if phase != job.phase:
                ended = ", end_time = now()" if phase == Phase.ABORTED else ""
                connection.execute(
                    f"UPDATE archive.uws_jobs SET phase = %s{ended} WHERE job_id = %s",
                    (phase, job_id))
        if phase == Phase.QUEUED and job.phase != Phase.QUEUED:
            _runner.submit(run_job, self, job_id)
        return phase

    def set_destruction(self, job_id: str, requester: Requester, when: dt.datetime) -> None:
        with self.db.app_writing() as connection:
            job = self._fetch(connection, job_id, requester, lock=True)
            latest = job.creation_time + MAX_RETENTION
            connection.execute("UPDATE archive.uws_jobs SET destruction_time = %s"
                               " WHERE job_id = %s", (min(when, latest), job_id))

    def set_execution_duration(self, job_id: str, requester: Requester, seconds: int) -> None:
        with self.db.app_writing() as connection:
            job = self._fetch(connection, job_id, requester, lock=True)
            if job.phase not in (Phase.PENDING, Phase.HELD, Phase.QUEUED):
                raise PhaseConflict(f"The execution duration cannot change once {job.phase}")
            value = MAX_EXECUTION_DURATION if seconds <= 0 else min(seconds,
                                                                     MAX_EXECUTION_DURATION)
            connection.execute("UPDATE archive.uws_jobs SET execution_duration = %s"
                               " WHERE job_id = %s", (value, job_id))

    def delete(self, job_id: str, requester: Requester) -> None:
        with self.db.app_writing() as connection:
            self._fetch(connection, job_id, requester, lock=True)
            connection.execute("DELETE FROM archive.uws_jobs WHERE job_id = %s", (job_id,))
        remove_job_files(job_id)

    # -- the runner's side -----------------------------------------------------------------------

    def start(self, job_id: str, worker: str) -> StoredJob | None:
        with self.db.app_writing() as connection, \
                connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(
                """UPDATE archive.uws_jobs SET phase = 'EXECUTING', start_time = now(),
                          worker = %s, heartbeat = now(), attempts = attempts + 1
                    WHERE job_id = %s AND service = 'soda' AND phase = 'QUEUED'
                RETURNING job_id""", (worker, job_id))
            if cursor.fetchone() is None:
                return None
            cursor.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE j.job_id = %s", (job_id,))
            return _stored(cursor.fetchone())

    def phase(self, job_id: str) -> Phase | None:
        with self.db.app_writing() as connection:
            row = connection.execute("SELECT phase FROM archive.uws_jobs WHERE job_id = %s",
                                     (job_id,)).fetchone()
        return Phase(row[0]) if row else None

    def owner(self, job: StoredJob) -> Requester | None:
        if job.owner_id is None:
            return ANONYMOUS
        with self.db.app_writing() as connection:
            return requester_for_user(connection, job.owner_id)

    def finish(self, job_id: str, phase: Phase, results: list[ResultFile],
               error: str | None = None) -> None:
        with self.db.app_writing() as connection:
            connection.execute(
                """UPDATE archive.uws_jobs SET phase = %s, end_time = now(), results = %s,
                          error_summary = %s, error_type = %s, heartbeat = NULL
                    WHERE job_id = %s AND phase = 'EXECUTING'""",
                (phase, json.dumps([r.as_json() for r in results]), error,
                 "fatal" if error else None, job_id))

    def destroy_expired(self) -> None:
        with self.db.app_writing() as connection:
            rows = connection.execute(
                "DELETE FROM archive.uws_jobs WHERE service = 'soda'"
                " AND destruction_time <= now() RETURNING job_id").fetchall()
        for (job_id,) in rows:
            remove_job_files(job_id)


def store() -> SodaJobs:
    return SodaJobs(database())


# -- running a job --------------------------------------------------------------------------------


def run_job(jobs: SodaJobs, job_id: str) -> None:
    """Every result of the job, one file each, as its owner may see the data."""
    job = jobs.start(job_id, "web")
    if job is None:
        return
    try:
        results, error = _cutouts(jobs, job)
    except Exception:  # never leave a job EXECUTING for ever
        log.exception("SODA job %s failed", job_id)
        results, error = [], "Error: the job failed unexpectedly"
    if jobs.phase(job_id) != Phase.EXECUTING:
        return  # aborted or deleted meanwhile
    jobs.finish(job_id, Phase.ERROR if error else Phase.COMPLETED, results, error)


def _cutouts(jobs: SodaJobs, job: StoredJob) -> tuple[list[ResultFile], str | None]:
    try:
        soda_request = parse_soda_request(job.parameters, multi_valued=True)
    except SodaError as error:
        return [], error.text().strip()
    if len(soda_request.ids) * len(soda_request.cutouts) > MAX_RESULTS:
        return [], f"UsageError: more than {MAX_RESULTS} cutouts in one job"
    requester = jobs.owner(job)
    if requester is None:
        return [], "AuthorizationError: the job's owner can no longer use the service"
    folder = job.directory
    folder.mkdir(parents=True, exist_ok=True)
    deadline = job.start_time + dt.timedelta(seconds=job.execution_duration or
                                             MAX_EXECUTION_DURATION) if job.start_time else None
    results: list[ResultFile] = []
    number = 0
    for did in soda_request.ids:
        with database().reading(requester, base_url=job.base_url) as connection:
            try:
                source = resolve(did, connection)
                failure = None
            except SodaError as error:
                source, failure = None, error.text()
        for cutout in soda_request.cutouts:
            number += 1
            if jobs.phase(job.job_id) != Phase.EXECUTING:
                return results, None
            if deadline is not None and dt.datetime.now(dt.UTC) > deadline:
                return results, "Error: the job ran over its execution duration"
            target = folder / f"cutout-{number}.fits"
            message = failure
            if source is not None:
                try:
                    write_cutout(source, cutout, target)
                except NoOverlap as error:
                    message = f"Error: no overlap: {error} ({cutout.describe()})\n"
                except SodaError as error:
                    message = error.text()
                except (CutoutError, OSError) as error:
                    log.error("cutout of %s failed: %s", source.path, error)
                    message = f"Error: {did} cannot be cut out\n"
            if message is not None:
                target.unlink(missing_ok=True)
                target = folder / f"cutout-{number}.txt"
                target.write_text(message)
                results.append(ResultFile(f"cutout-{number}", target.name, "text/plain",
                                          target.stat().st_size))
            else:
                results.append(ResultFile(f"cutout-{number}", target.name, FITS_TYPE,
                                          target.stat().st_size))
    return results, None


# -- HTTP -----------------------------------------------------------------------------------------


def async_url() -> str:
    return f"{service_url()}/soda/async"


def job_url(job_id: str) -> str:
    return f"{async_url()}/{job_id}"


def text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def xml(body: bytes) -> Response:
    return Response(body, mimetype="text/xml")


def uws_errors(handler: Callable[..., Response]) -> Callable[..., Response]:
    @wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except (uws.UwsError, DaliError) as error:
            return text(f"{error}\n", error.http_status)
    return wrapped


def see_other(url: str) -> Response:
    return redirect(url, code=303)


@blueprint.get("/soda/async")
@uws_errors
def job_list() -> Response:
    filters = uws.parse_job_list_filter(Parameters(request.args.items(multi=True)))
    jobs = store().list(current_requester(), filters)
    return xml(uws.job_list_document([j.uws_job(job_url(j.job_id)) for j in jobs], job_url))


@blueprint.post("/soda/async")
@uws_errors
def create_job() -> Response:
    """DALI-async job creation: 303 to the job; SODA parameters are checked when it runs."""
    jobs = store()
    jobs.destroy_expired()
    params = parameters()
    now = dt.datetime.now(dt.UTC)
    destruction_text = params.get("DESTRUCTION")
    destruction = now + DEFAULT_RETENTION
    if destruction_text is not None:
        destruction = min(uws.parse_time("DESTRUCTION", destruction_text), now + MAX_RETENTION)
    duration_text = params.get("EXECUTIONDURATION")
    duration = EXECUTION_DURATION
    if duration_text is not None:
        seconds = parse_non_negative_int("EXECUTIONDURATION", duration_text)
        duration = MAX_EXECUTION_DURATION if seconds == 0 else min(seconds,
                                                                   MAX_EXECUTION_DURATION)
    phase = params.get("PHASE")
    if phase is not None and phase.strip().upper() != "RUN":
        raise InvalidParameter(f"PHASE on job creation can only be RUN, not {phase!r}")
    job_parameters = Parameters((n, v) for n, v in params.items() if n not in UWS_CONTROL)
    requester = current_requester()
    job_id = jobs.create(requester, job_parameters, run_id=params.get("RUNID"),
                         execution_duration=duration, destruction=destruction,
                         base_url=service_url())
    if phase is not None:
        jobs.change_phase(job_id, requester, "RUN")
    return see_other(job_url(job_id))


@blueprint.get("/soda/async/<job_id>")
@uws_errors
def job(job_id: str) -> Response:
    """The job (UWS 2.2.2.2); WAIT blocks while it is active (UWS 1.1 2.2.1.2)."""
    jobs, requester = store(), current_requester()
    current = jobs.get(job_id, requester)
    wait_text = request.args.get("WAIT")
    if wait_text is not None:
        try:
            wait = float(int(wait_text.strip()))
        except ValueError as error:
            raise InvalidParameter(f"WAIT must be an integer, not {wait_text!r}") from error
        wait = WAIT_LIMIT if wait < 0 else min(wait, WAIT_LIMIT)
        deadline = time.monotonic() + wait
        start = current.phase
        while current.phase in uws.ACTIVE_PHASES and current.phase == start and \
                time.monotonic() < deadline:
            time.sleep(0.05)
            current = jobs.get(job_id, requester)
    return xml(uws.job_document(current.uws_job(job_url(job_id))))


@blueprint.post("/soda/async/<job_id>")
@uws_errors
def job_post(job_id: str) -> Response:
    action = parameters().get("ACTION")
    if action is None or action.strip().upper() != "DELETE":
        return text("POST to a job accepts only ACTION=DELETE\n", 400)
    store().delete(job_id, current_requester())
    return see_other(async_url())


@blueprint.delete("/soda/async/<job_id>")
@uws_errors
def job_delete(job_id: str) -> Response:
    store().delete(job_id, current_requester())
    return see_other(async_url())


@blueprint.route("/soda/async/<job_id>/phase", methods=["GET", "POST"])
@uws_errors
def job_phase(job_id: str) -> Response:
    if request.method == "GET":
        return text(str(store().get(job_id, current_requester()).phase))
    action = parameters().get("PHASE")
    if action is None:
        raise InvalidParameter("PHASE is required: RUN or ABORT")
    store().change_phase(job_id, current_requester(), action)
    return see_other(job_url(job_id))


@blueprint.route("/soda/async/<job_id>/executionduration", methods=["GET", "POST"])
@uws_errors
def job_execution_duration(job_id: str) -> Response:
    if request.method == "GET":
        return text(str(store().get(job_id, current_requester()).execution_duration))
    value = parameters().get("EXECUTIONDURATION")
    if value is None:
        raise InvalidParameter("EXECUTIONDURATION is required")
    store().set_execution_duration(job_id, current_requester(),
                                   parse_non_negative_int("EXECUTIONDURATION", value))
    return see_other(job_url(job_id))


@blueprint.route("/soda/async/<job_id>/destruction", methods=["GET", "POST"])
@uws_errors
def job_destruction(job_id: str) -> Response:
    if request.method == "GET":
        return text(uws.format_time(store().get(job_id, current_requester()).destruction_time))
    value = parameters().get("DESTRUCTION")
    if value is None:
        raise InvalidParameter("DESTRUCTION is required")
    store().set_destruction(job_id, current_requester(), uws.parse_time("DESTRUCTION", value))
    return see_other(job_url(job_id))


@blueprint.get("/soda/async/<job_id>/quote")
@uws_errors
def job_quote(job_id: str) -> Response:
    return text(uws.format_time(store().get(job_id, current_requester()).quote))


@blueprint.get("/soda/async/<job_id>/owner")
@uws_errors
def job_owner(job_id: str) -> Response:
    return text(store().get(job_id, current_requester()).owner_name or "")


@blueprint.get("/soda/async/<job_id>/error")
@uws_errors
def job_error(job_id: str) -> Response:
    """The error of a failed job, as text/plain with status 200 (SODA 5.2, DALI 4.2)."""
    found = store().get(job_id, current_requester())
    if found.phase != Phase.ERROR:
        return text(f"Job {job_id} has no error; it is {found.phase}\n", 404)
    return text((found.error_summary or "Error: the job failed") + "\n")


@blueprint.get("/soda/async/<job_id>/parameters")
@uws_errors
def job_parameters(job_id: str) -> Response:
    found = store().get(job_id, current_requester())
    return xml(uws.parameters_document(found.uws_job(job_url(job_id)).parameters))


@blueprint.get("/soda/async/<job_id>/results")
@uws_errors
def job_results(job_id: str) -> Response:
    found = store().get(job_id, current_requester())
    return xml(uws.results_document(found.uws_job(job_url(job_id)).results))


@blueprint.get("/soda/async/<job_id>/results/<result_id>")
@uws_errors
def job_result(job_id: str, result_id: str) -> Response:
    found = store().get(job_id, current_requester())
    result = found.result(result_id)
    if result is None:
        return text(f"Job {job_id} has no result {result_id}\n", 404)
    path = found.directory / result.file
    if not path.is_file():
        return text(f"The result {result_id} of job {job_id} is gone\n", 404)
    return send_file(path, mimetype=result.mime_type, conditional=True, etag=False,
                     download_name=result.file)
