"""The UWS 1.1 job tree of an async service (DALI-async), made from the service's policy.

``job_blueprint(policy)`` answers under ``policy.path``: the job list (GET, and POST to create a
job: 303 to it), each job (GET, blocking with WAIT and PHASE; POST ACTION=DELETE; DELETE), and
its phase, executionduration, destruction, quote, owner, error, results (and each result),
parameters (GET, and POST while PENDING) and inline parameters by reference.

Thin handlers: jobs are kept by ``server.uws.store``, documents written by ``vo.uws``, and what
differs between services is asked of the policy (``server.uws.policy``). Errors of the job tree
are short text/plain answers with the status UWS gives (404 unknown job, 403 wrong phase, 400
bad value); a refused job creation, and a request the guard finds unusable, are answered in the
service's own error format.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Generic

from flask import Blueprint, Response, current_app, redirect, request, send_file

from skyvault.db import database
from skyvault.server.auth import client_address, current_requester
from skyvault.server.http.context import service_url
from skyvault.server.http.headers import DOCUMENT_POLICY
from skyvault.server.http.outage import RETRY_AFTER_SECONDS
from skyvault.server.http.request_guard import UnusableRequest
from skyvault.server.images.common import parameters as request_parameters
from skyvault.server.uws import parts
from skyvault.server.uws.policy import ConfigT, Document, JobLimits, JobPolicy
from skyvault.server.uws.store import (
    JobStore,
    PhaseWatcher,
    new_job_id,
    remove_job_files,
)
from skyvault.server.uws.worker import start_inprocess_workers
from skyvault.vo import uws
from skyvault.vo.dali import DaliError, InvalidParameter, Parameters, parse_non_negative_int

UWS_CONTROL = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
"""Parameters of a job-creating POST that steer the job instead of describing its work."""
WAIT_SLICE = 5.0
"""Longest single wait for a phase notification: a missed one costs at most this much."""


# -- per-application state --------------------------------------------------------------------


@dataclass
class JobTree(Generic[ConfigT]):
    """A service's job tree in one web application: its configuration, limits and store."""

    policy: JobPolicy[ConfigT]
    config: ConfigT
    limits: JobLimits
    store: JobStore
    watcher: PhaseWatcher


_state_lock = threading.Lock()


def extension_key(policy: JobPolicy[Any]) -> str:
    return f"skyvault.uws.jobs.{policy.kind}"


def job_tree(policy: JobPolicy[ConfigT]) -> JobTree[ConfigT]:
    """The service's job tree for this application, made on first use; in-process runners of
    its jobs start here once per process (after a fork too) when its limits ask for them."""
    app = current_app
    with _state_lock:
        tree: JobTree[ConfigT] | None = app.extensions.get(extension_key(policy))
        if tree is None:
            config = policy.configure(app.config)
            db = database()
            # JOB_QUOTA: a quota of the app's own (tests); else the environment's.
            tree = JobTree(policy, config, policy.limits(config),
                           JobStore(db, service=policy.kind, quota=app.config.get("JOB_QUOTA")),
                           PhaseWatcher(db.urls.app))
            app.extensions[extension_key(policy)] = tree
        if tree.limits.inprocess_workers:
            # Only the demo and tests run jobs in the web process; production does not.
            start_inprocess_workers(tree.limits.inprocess_workers,
                                    {policy.kind: policy.executor(tree.config)}, app.extensions)
        return tree


def configured(policy: JobPolicy[ConfigT]) -> ConfigT:
    """The service's configuration in this application (its synchronous side reads it too)."""
    return job_tree(policy).config


# -- responses ----------------------------------------------------------------------------------


def text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def xml(body: bytes) -> Response:
    return Response(body, mimetype="text/xml")


def see_other(url: str) -> Response:
    return redirect(url, code=303)


def document_response(document: Document, status: int = 200) -> Response:
    response = Response(document.body, status=status, content_type=document.content_type)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def uws_errors(handler: Callable[..., Response]) -> Callable[..., Response]:
    """UWS errors as plain text with their status; the same 404 for anyone else's job."""

    @wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except (uws.UwsError, DaliError) as error:
            return text(f"{error}\n", error.http_status)

    return wrapped


def _request_files() -> dict[str, Any]:
    return {name: storage.stream for name, storage in request.files.items()}


def _job_parameters(given: Parameters) -> Parameters:
    return Parameters((name, value) for name, value in given.items() if name not in UWS_CONTROL)


# -- the blueprint ------------------------------------------------------------------------------


def job_blueprint(policy: JobPolicy[Any]) -> Blueprint:
    """The job tree of ``policy``'s service, to register on the application."""
    blueprint = Blueprint(policy.name, __name__, url_prefix=policy.path)

    def list_url() -> str:
        return f"{service_url()}{policy.path}"

    def job_url(job_id: str) -> str:
        return f"{list_url()}/{job_id}"

    def tree() -> JobTree[Any]:
        return job_tree(policy)

    @blueprint.errorhandler(UnusableRequest)
    def unusable_request(error: UnusableRequest) -> Response:
        return document_response(policy.error_document(error.description or ""), 400)

    @blueprint.get("")
    @uws_errors
    def job_list() -> Response:
        filters = uws.parse_job_list_filter(Parameters(request.args.items(multi=True)))
        jobs = tree().store.list(current_requester(), filters)
        return xml(uws.job_list_document([j.uws_job(job_url(j.job_id)) for j in jobs],
                                         job_url))

    @blueprint.post("")
    def create_job() -> Response:
        """DALI-async job creation (UWS 2.2.3.1): 303 to the new job. The service's
        parameters are checked as its policy says (most when the job runs, TAP 1.1 2.3)."""
        state = tree()
        given = request_parameters()
        try:
            destruction = state.limits.destruction_for(given.get("DESTRUCTION"),
                                                       dt.datetime.now(dt.UTC))
            duration = state.limits.execution_duration_for(given.get("EXECUTIONDURATION"))
            phase = given.get("PHASE")
            if phase is not None and phase.strip().upper() != "RUN":
                raise InvalidParameter(f"PHASE on job creation can only be RUN, not {phase!r}")
            job_parameters = _job_parameters(given)
            policy.check(job_parameters, state.config)
            job_id = new_job_id()
            try:
                stored = policy.keep_parts(job_id, job_parameters, state.config,
                                           _request_files())
                state.store.create(current_requester(), job_parameters, job_id=job_id,
                                   run_id=given.get("RUNID"), execution_duration=duration,
                                   destruction_time=destruction, base_url=service_url(),
                                   run=phase is not None, client_address=client_address(),
                                   upload_bytes=stored)
            except BaseException:
                remove_job_files(job_id)  # no job, so nothing kept for it
                raise
        except (DaliError, uws.UwsError) as error:
            return document_response(policy.error_document(str(error)), error.http_status)
        return see_other(job_url(job_id))

    @blueprint.get("/<job_id>")
    @uws_errors
    def job(job_id: str) -> Response:
        """The job (UWS 2.2.2.2), blocking with WAIT while it is active, and with PHASE only
        while it is in that phase (UWS 1.1 2.2.1.2)."""
        state = tree()
        requester = current_requester()
        current = state.store.get(job_id, requester)
        wait_text = request.args.get("WAIT")
        if wait_text is not None:
            deadline = time.monotonic() + state.limits.wait_for(wait_text)
            awaited = request.args.get("PHASE")
            # The worker notifies every phase change; registered before the read, none is
            # missed.
            with state.watcher.watching(job_id) as changed:
                current = state.store.get(job_id, requester)
                start_phase = current.phase
                while (current.phase in uws.ACTIVE_PHASES and current.phase == start_phase
                       and (awaited is None or current.phase == awaited.strip().upper())):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    changed(min(remaining, WAIT_SLICE))
                    current = state.store.get(job_id, requester)  # destroyed meanwhile: 404
        return xml(uws.job_document(current.uws_job(job_url(job_id), parts.part_names(job_id))))

    @blueprint.post("/<job_id>")
    @uws_errors
    def job_post(job_id: str) -> Response:
        """ACTION=DELETE destroys the job (UWS 2.2.3.2); DALI forbids job parameters here."""
        action = request_parameters().get("ACTION")
        if action is None or action.strip().upper() != "DELETE":
            return text("POST to a job accepts only ACTION=DELETE\n", 400)
        tree().store.delete(job_id, current_requester())
        return see_other(list_url())

    @blueprint.delete("/<job_id>")
    @uws_errors
    def job_delete(job_id: str) -> Response:
        tree().store.delete(job_id, current_requester())
        return see_other(list_url())

    @blueprint.route("/<job_id>/phase", methods=["GET", "POST"])
    @uws_errors
    def job_phase(job_id: str) -> Response:
        store = tree().store
        if request.method == "GET":
            return text(str(store.get(job_id, current_requester()).phase))
        action = request_parameters().get("PHASE")
        if action is None:
            raise InvalidParameter("PHASE is required: RUN or ABORT")
        store.change_phase(job_id, current_requester(), action)
        return see_other(job_url(job_id))

    @blueprint.route("/<job_id>/executionduration", methods=["GET", "POST"])
    @uws_errors
    def job_execution_duration(job_id: str) -> Response:
        state = tree()
        if request.method == "GET":
            return text(str(state.store.get(job_id, current_requester()).execution_duration))
        value = request_parameters().get("EXECUTIONDURATION")
        if value is None:
            raise InvalidParameter("EXECUTIONDURATION is required")
        seconds = parse_non_negative_int("EXECUTIONDURATION", value)
        state.store.set_execution_duration(job_id, current_requester(), seconds,
                                           state.limits.max_execution_duration)
        return see_other(job_url(job_id))

    @blueprint.route("/<job_id>/destruction", methods=["GET", "POST"])
    @uws_errors
    def job_destruction(job_id: str) -> Response:
        state = tree()
        if request.method == "GET":
            found = state.store.get(job_id, current_requester())
            return text(uws.format_time(found.destruction_time))
        value = request_parameters().get("DESTRUCTION")
        if value is None:
            raise InvalidParameter("DESTRUCTION is required")
        state.store.set_destruction(job_id, current_requester(),
                                    uws.parse_time("DESTRUCTION", value),
                                    state.limits.max_retention)
        return see_other(job_url(job_id))

    @blueprint.get("/<job_id>/quote")
    @uws_errors
    def job_quote(job_id: str) -> Response:
        return text(uws.format_time(tree().store.get(job_id, current_requester()).quote))

    @blueprint.get("/<job_id>/owner")
    @uws_errors
    def job_owner(job_id: str) -> Response:
        return text(tree().store.get(job_id, current_requester()).owner_name or "")

    @blueprint.get("/<job_id>/error")
    @uws_errors
    def job_error(job_id: str) -> Response:
        """The error document of a failed job, with status 200 (DALI 1.1 4.2)."""
        found = tree().store.get(job_id, current_requester())
        if found.phase != uws.Phase.ERROR:
            return text(f"Job {job_id} has no error; it is {found.phase}\n", 404)
        return document_response(policy.job_error_document(found.error_text()))

    @blueprint.get("/<job_id>/results")
    @uws_errors
    def job_results(job_id: str) -> Response:
        found = tree().store.get(job_id, current_requester())
        return xml(uws.results_document(found.uws_job(job_url(job_id)).results))

    @blueprint.get("/<job_id>/results/<result_id>")
    @uws_errors
    def job_result(job_id: str, result_id: str) -> Response:
        result, path = tree().store.get(job_id, current_requester()).result_file(result_id)
        response = send_file(path, mimetype=result.mime_type, conditional=True, etag=False,
                             download_name=result.file)
        # The media type as the job recorded it (no charset added for text/*).
        response.content_type = result.mime_type
        return response

    @blueprint.route("/<job_id>/parameters", methods=["GET", "POST"])
    @uws_errors
    def job_parameters(job_id: str) -> Response:
        """The job's parameters; POST adds or replaces some while it is PENDING (UWS 2.1.11),
        checked and kept as on creation."""
        state = tree()
        requester = current_requester()
        if request.method == "POST":
            updates = _job_parameters(request_parameters())
            state.store.get(job_id, requester)  # unknown jobs get nothing written for them
            policy.check(updates, state.config)
            stored = policy.keep_parts(job_id, updates, state.config, _request_files())
            state.store.update_parameters(
                job_id, requester, updates, upload_bytes=stored,
                check=lambda merged: policy.check(merged, state.config))
            return see_other(job_url(job_id))
        found = state.store.get(job_id, requester)
        return xml(uws.parameters_document(
            found.uws_job(job_url(job_id), parts.part_names(job_id)).parameters))

    @blueprint.get("/<job_id>/parameters/<part>")
    @uws_errors
    def job_parameter_content(job_id: str, part: str) -> Response:
        """An inline parameter of the job, by reference (UWS 2.2.3.1.1).

        Its bytes are whatever an anonymous client posted: given back as a download that a
        browser neither renders nor sniffs, in a sandbox should it render it anyway, so that
        the archive's origin never hosts someone else's page or script."""
        tree().store.get(job_id, current_requester())
        path = parts.part_path(job_id, part)
        if path is None:
            return text(f"No parameter {part}\n", 404)
        response = send_file(path, mimetype=policy.part_media_type, as_attachment=True,
                             download_name=f"{part}{policy.part_suffix}")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = DOCUMENT_POLICY
        return response

    return blueprint
