"""SODA 1.0 {async}: ``/soda/async``, a DALI-async (UWS 1.1) resource.

Jobs are ``skyvault.server.jobs``'s, of service ``soda``: kept in ``archive.uws_jobs`` with the
same visibility as TAP's (an owner's jobs are the owner's alone, an anonymous job belongs to
whoever holds its random id), queued there, and run by `skyvault worker` like TAP's, so a job
queued or running when the web service restarts is not lost. What a job does, one result per
combination of values, is ``skyvault.server.soda_jobs``'s; the UWS documents are
``skyvault.vo.uws``'s.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, redirect, request, send_file

from skyvault.db import database
from skyvault.server.auth import client_address, current_requester
from skyvault.server.context import service_url
from skyvault.server.imaging import parameters
from skyvault.server.jobs import SODA, JobStore, PhaseWatcher
from skyvault.server.request_guard import UnusableRequest
from skyvault.server.tap_config import tap_config
from skyvault.vo import uws
from skyvault.vo.dali import DaliError, InvalidParameter, Parameters, parse_non_negative_int
from skyvault.vo.uws import Phase

blueprint = Blueprint("soda_async", __name__)

UWS_CONTROL = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
DEFAULT_RETENTION = dt.timedelta(days=7)
MAX_RETENTION = dt.timedelta(days=30)
EXECUTION_DURATION = 600
MAX_EXECUTION_DURATION = 3600
WAIT_LIMIT = 60.0
SODA_LABELS = ("Error", "AuthenticationError", "AuthorizationError", "ServiceUnavailable",
               "UsageError", "MultiValuedParamNotSupported")
"""The strings a SODA error document begins with (SODA 1.0 section 5.2)."""


@dataclass
class SodaJobsState:
    store: JobStore
    watcher: PhaseWatcher


_state_lock = threading.Lock()


def _state() -> SodaJobsState:
    """The job store and phase watcher of this app and process, made on first use."""
    app = current_app
    with _state_lock:
        state: SodaJobsState | None = app.extensions.get("skyvault.soda_async")
        if state is None:
            db = database()
            state = SodaJobsState(JobStore(db, service=SODA, quota=app.config.get("JOB_QUOTA")),
                                  PhaseWatcher(db.urls.app))
            app.extensions["skyvault.soda_async"] = state
        # The same switch as TAP's: the demo and tests may run the jobs of every service in the
        # web process (once per process); production runs `skyvault worker` and does not load it.
        workers = app.config.get("TAP_INPROCESS_WORKERS", tap_config().inprocess_workers)
        if workers:
            from skyvault.server.worker import start_inprocess_workers

            start_inprocess_workers(workers, app.extensions)
        return state


def store() -> JobStore:
    return _state().store


def soda_error_text(summary: str | None) -> str:
    """A failed job's error document; messages of the job machinery get the general label."""
    message = summary or "the job failed"
    if message.split(":", 1)[0] not in SODA_LABELS:
        message = f"Error: {message}"
    return message + "\n"


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


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return text(f"{error.description}\n", 400)


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
    job_id = store().create(current_requester(), job_parameters, run_id=params.get("RUNID"),
                            execution_duration=duration, destruction_time=destruction,
                            base_url=service_url(), run=phase is not None,
                            client_address=client_address())
    return see_other(job_url(job_id))


@blueprint.get("/soda/async/<job_id>")
@uws_errors
def job(job_id: str) -> Response:
    """The job (UWS 2.2.2.2); WAIT blocks while it is active (UWS 1.1 2.2.1.2)."""
    state, requester = _state(), current_requester()
    current = state.store.get(job_id, requester)
    wait_text = request.args.get("WAIT")
    if wait_text is not None:
        try:
            wait = float(int(wait_text.strip()))
        except ValueError as error:
            raise InvalidParameter(f"WAIT must be an integer, not {wait_text!r}") from error
        wait = WAIT_LIMIT if wait < 0 else min(wait, WAIT_LIMIT)
        deadline = time.monotonic() + wait
        # The worker notifies every phase change; registered before the read, none is missed.
        with state.watcher.watching(job_id) as changed:
            current = state.store.get(job_id, requester)
            start = current.phase
            while current.phase in uws.ACTIVE_PHASES and current.phase == start:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Short slices: a missed notification costs at most this much.
                changed(min(remaining, 5.0))
                current = state.store.get(job_id, requester)  # deleted meanwhile: 404
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
                                   parse_non_negative_int("EXECUTIONDURATION", value),
                                   MAX_EXECUTION_DURATION)
    return see_other(job_url(job_id))


@blueprint.route("/soda/async/<job_id>/destruction", methods=["GET", "POST"])
@uws_errors
def job_destruction(job_id: str) -> Response:
    if request.method == "GET":
        return text(uws.format_time(store().get(job_id, current_requester()).destruction_time))
    value = parameters().get("DESTRUCTION")
    if value is None:
        raise InvalidParameter("DESTRUCTION is required")
    store().set_destruction(job_id, current_requester(), uws.parse_time("DESTRUCTION", value),
                            int(MAX_RETENTION.total_seconds()))
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
    return text(soda_error_text(found.error_text()))


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
    result, path = store().get(job_id, current_requester()).result_file(result_id)
    return send_file(path, mimetype=result.mime_type, conditional=True, etag=False,
                     download_name=result.file)
