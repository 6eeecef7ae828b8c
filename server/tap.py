"""The TAP 1.1 service at /tap: sync and async (UWS 1.1) queries, VOSI, examples.

Thin handlers: parameters are parsed by ``vo.dali``, jobs kept by ``server.jobs``, queries run
by ``server.tap_query``, documents written by ``vo.uws``, ``vo.vosi`` and ``vo.tapregext``.
Errors of the query protocol are DALI error VOTables; errors of the UWS job tree are short
text/plain answers with the status UWS gives (404 unknown job, 403 wrong phase, 400 bad value).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from html import escape
from typing import Any

from flask import Blueprint, Response, current_app, redirect, request, send_file
from werkzeug.datastructures import FileStorage

from skyvault.db import database
from skyvault.schema.tables import PUBLISHED_SCHEMAS, table_by_name
from skyvault.server.auth import client_address, current_requester
from skyvault.server.client_watch import watch_client
from skyvault.server.context import service_url
from skyvault.server.headers import DOCUMENT_POLICY
from skyvault.server.job_quota import JobQuotaExceeded
from skyvault.server.jobs import (
    TAP,
    JobStore,
    PhaseWatcher,
    job_directory,
    new_job_id,
    remove_job_files,
)
from skyvault.server.outage import RETRY_AFTER_SECONDS, database_unreachable, unavailable_response
from skyvault.server.request_guard import UnusableRequest
from skyvault.server.tap_capabilities import capabilities
from skyvault.server.tap_config import TapConfig, config_from
from skyvault.server.tap_examples import examples_document
from skyvault.server.tap_query import prepare, stream_result
from skyvault.server.tap_upload import load_uploads
from skyvault.vo import uws, vosi
from skyvault.vo.dali import (
    DaliError,
    InvalidParameter,
    Parameters,
    QueryLimits,
    UploadError,
    UploadTooLarge,
    parse_non_negative_int,
    parse_tap_query,
    parse_upload,
)
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable

log = logging.getLogger(__name__)

blueprint = Blueprint("tap", __name__, url_prefix="/tap")

UWS_CONTROL = frozenset({"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "ACTION"})
"""Parameters of a job-creating POST that steer the job instead of describing the query."""
_PART_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_STARTED = dt.datetime.now(dt.UTC)


# -- per-application state --------------------------------------------------------------------


@dataclass
class TapState:
    config: TapConfig
    store: JobStore
    watcher: PhaseWatcher


_state_lock = threading.Lock()


def _state() -> TapState:
    """The TAP service's state for this app and process, made on first use (after a fork)."""
    app = current_app
    with _state_lock:
        state: TapState | None = app.extensions.get("skyvault.tap")
        if state is None:
            overrides = {"inprocess_workers": app.config["TAP_INPROCESS_WORKERS"]} \
                if "TAP_INPROCESS_WORKERS" in app.config else None
            db = database()
            # JOB_QUOTA: a quota of the app's own (tests); else the environment's.
            state = TapState(config_from(os.environ, overrides),
                             JobStore(db, service=TAP, quota=app.config.get("JOB_QUOTA")),
                             PhaseWatcher(db.urls.app))
            app.extensions["skyvault.tap"] = state
        if state.config.inprocess_workers:
            # Only the demo and tests run jobs in the web process; production does not load it.
            # Once per process (after a fork too): start_inprocess_workers keeps them by pid.
            from skyvault.server.worker import start_inprocess_workers

            start_inprocess_workers(state.config.inprocess_workers, app.extensions)
        return state


# -- helpers ----------------------------------------------------------------------------------


def request_parameters() -> Parameters:
    """The request's parameters, from the query string and a form body, names case-blind."""
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    return Parameters(pairs)


def tap_url() -> str:
    return f"{service_url()}/tap"


def job_url(job_id: str) -> str:
    return f"{tap_url()}/async/{job_id}"


def dali_error(error: DaliError | str, status: int | None = None) -> Response:
    message = str(error)
    code = status or (error.http_status if isinstance(error, DaliError) else 400)
    response = Response(error_votable(message), status=code, content_type=VOTABLE_MIME)
    if code == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@blueprint.errorhandler(UnusableRequest)
def unusable_request(error: UnusableRequest) -> Response:
    return dali_error(error.description or "", 400)


def text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def xml(body: bytes, status: int = 200, mimetype: str = "text/xml") -> Response:
    return Response(body, status=status, mimetype=mimetype)


def uws_errors(handler: Callable[..., Response]) -> Callable[..., Response]:
    """UWS errors as plain text with their status; the same 404 for anyone else's job."""

    @wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except (uws.UwsError, DaliError) as error:
            return text(f"{error}\n", error.http_status)

    return wrapped


def see_other(url: str) -> Response:
    return redirect(url, code=303)


def query_limits(config: TapConfig) -> QueryLimits:
    return QueryLimits(config.default_maxrec, config.hard_maxrec)


# -- the service root and VOSI ------------------------------------------------------------------


@blueprint.get("")
@blueprint.get("/")
def root() -> Response:
    base = escape(tap_url())  # built from the request's Host when no base URL is set
    links = "".join(f'<li><a href="{base}/{name}">{name}</a></li>'
                    for name in ("sync", "async", "capabilities", "availability", "tables",
                                 "examples"))
    page = (f'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>SkyVault TAP</title></head><body><h1>SkyVault TAP 1.1 service</h1>"
            f"<p>Base URL: {base}</p><ul>{links}</ul></body></html>\n")
    return Response(page, mimetype="text/html")


@blueprint.get("/capabilities")
def capabilities_resource() -> Response:
    return xml(vosi.capabilities_document(capabilities(tap_url(), _state().config)))


@blueprint.get("/availability")
def availability() -> Response:
    notes: list[str] = []
    try:
        with database().reading() as connection:
            connection.execute("SELECT 1")
        available = True
    except Exception as error:  # any failure to reach the database means unavailable
        log.warning("availability: %s", error)
        available = False
        notes.append("The database cannot be reached")
    return xml(vosi.availability_document(available, _STARTED, notes))


@blueprint.get("/tables")
def tables() -> Response:
    detail = (request.args.get("detail") or "max").lower()
    if detail not in ("min", "max"):
        return text("detail must be min or max\n", 400)
    return xml(vosi.tableset_document(PUBLISHED_SCHEMAS, detail=detail == "max"))


@blueprint.get("/tables/<name>")
def table(name: str) -> Response:
    try:
        found = table_by_name(name)
    except KeyError:
        return text(f"No table {name}\n", 404)
    return xml(vosi.table_document(found, PUBLISHED_SCHEMAS))


@blueprint.get("/examples")
def examples() -> Response:
    return Response(examples_document(), mimetype="application/xhtml+xml")


# -- sync ---------------------------------------------------------------------------------------


def _inline_from_request(part: str) -> io.IOBase | None:
    storage: FileStorage | None = request.files.get(part)
    return storage.stream if storage is not None else None


@blueprint.route("/sync", methods=["GET", "POST"])
def sync() -> Response:
    """DALI-sync (TAP 1.1 2.2.1): the query's result is the response."""
    config = _state().config
    try:
        query = parse_tap_query(request_parameters(), query_limits(config))
        uploads = load_uploads(query.uploads, _inline_from_request,
                               limit=config.upload_limit_bytes, max_tables=config.max_uploads,
                               timeout=config.upload_fetch_timeout,
                               private_networks=config.upload_private_networks)
        prepared = prepare(query, uploads)
        # A client that hangs up cancels its statement (server.client_watch).
        stream = stream_result(prepared, requester=current_requester(),
                               base_url=service_url(),
                               timeout_s=config.sync_execution_duration,
                               on_cancel=watch_client(request.environ))
        header = next(stream)
    except DaliError as error:
        return dali_error(error)
    except Exception as error:
        if database_unreachable(error):
            return unavailable_response()
        # Still a DALI error document, without internals; the details go to the log.
        log.exception("TAP sync query failed")
        return dali_error("The service failed while running the query; it has been logged",
                          500)
    return Response(stream, content_type=header.content_type,
                    direct_passthrough=True)


# -- async: the job list ------------------------------------------------------------------------


def _check_upload_count(parameters: Parameters, max_tables: int) -> None:
    """max_uploads is a limit on the job as created (or updated), not only when it runs: a job
    that can never run must not be stored."""
    if len(parse_upload(parameters.get_all("UPLOAD"))) > max_tables:
        raise UploadError(f"At most {max_tables} tables can be uploaded with one query")


def _save_inline_parts(job_id: str, parameters: Parameters, limit: int) -> int:
    """Store the multipart parts that UPLOAD refers to in the job's folder; their bytes."""
    specs = parse_upload(parameters.get_all("UPLOAD"))
    parts = {spec.inline_part for spec in specs if spec.inline_part}
    if not parts:
        return 0
    stored = 0
    folder = job_directory(job_id) / "parameters"
    folder.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if not _PART_NAME.fullmatch(part):
            raise UploadError(f"Upload part name {part!r} must be letters, digits, _ . or -")
        storage = request.files.get(part)
        if storage is None:
            raise UploadError(f"UPLOAD refers to param:{part}, but the request has no such part")
        data = storage.stream.read(limit + 1)
        if len(data) > limit:
            raise UploadTooLarge(f"Upload part {part} is larger than {limit} bytes")
        (folder / part).write_bytes(data)
        stored += len(data)
    return stored


def _destruction(value: str | None, config: TapConfig, created: dt.datetime) -> dt.datetime:
    latest = created + dt.timedelta(seconds=config.max_retention)
    if value is None:
        return created + dt.timedelta(seconds=config.default_retention)
    return min(uws.parse_time("DESTRUCTION", value), latest)


def _execution_duration(value: str | None, config: TapConfig) -> int:
    if value is None:
        return config.async_execution_duration
    seconds = parse_non_negative_int("EXECUTIONDURATION", value)
    return config.max_execution_duration if seconds == 0 else min(
        seconds, config.max_execution_duration)


@blueprint.get("/async")
@uws_errors
def job_list() -> Response:
    state = _state()
    filters = uws.parse_job_list_filter(Parameters(request.args.items(multi=True)))
    jobs = state.store.list(current_requester(), filters)
    return xml(uws.job_list_document([j.uws_job(job_url(j.job_id)) for j in jobs], job_url))


@blueprint.post("/async")
def create_job() -> Response:
    """DALI-async job creation (UWS 2.2.3.1): 303 to the new job. TAP parameters are checked
    when the job runs (TAP 1.1 2.3), only UWS control values here."""
    state = _state()
    config = state.config
    parameters = request_parameters()
    try:
        now = dt.datetime.now(dt.UTC)
        destruction = _destruction(parameters.get("DESTRUCTION"), config, now)
        duration = _execution_duration(parameters.get("EXECUTIONDURATION"), config)
        phase = parameters.get("PHASE")
        if phase is not None and phase.strip().upper() != "RUN":
            raise InvalidParameter(f"PHASE on job creation can only be RUN, not {phase!r}")
        query_parameters = Parameters(
            (name, value) for name, value in parameters.items() if name not in UWS_CONTROL)
        _check_upload_count(query_parameters, config.max_uploads)
        job_id = new_job_id()
        try:
            stored = _save_inline_parts(job_id, query_parameters, config.upload_limit_bytes)
            state.store.create(current_requester(), query_parameters, job_id=job_id,
                               run_id=parameters.get("RUNID"), execution_duration=duration,
                               destruction_time=destruction, base_url=service_url(),
                               run=phase is not None, client_address=client_address(),
                               upload_bytes=stored)
        except BaseException:
            remove_job_files(job_id)  # no job, so no stored parts
            raise
    except (DaliError, JobQuotaExceeded) as error:
        return dali_error(str(error), error.http_status)
    return see_other(job_url(job_id))


# -- async: one job -----------------------------------------------------------------------------


def _inline_parts(job_id: str) -> list[str]:
    folder = job_directory(job_id) / "parameters"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _wait_seconds(value: str, config: TapConfig) -> float:
    try:
        seconds = int(value.strip())
    except ValueError as error:
        raise InvalidParameter(f"WAIT must be an integer, not {value!r}") from error
    return float(config.wait_limit if seconds < 0 else min(seconds, config.wait_limit))


@blueprint.get("/async/<job_id>")
@uws_errors
def job(job_id: str) -> Response:
    """The job (UWS 2.2.2.2), blocking with WAIT while it is active (UWS 1.1 2.2.1.2)."""
    state = _state()
    requester = current_requester()
    wait_text = request.args.get("WAIT")
    current = state.store.get(job_id, requester)
    if wait_text is not None:
        wait = _wait_seconds(wait_text, state.config)
        awaited = request.args.get("PHASE")
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
        with state.watcher.watching(job_id) as changed:
            current = state.store.get(job_id, requester)
            start_phase = current.phase
            while (current.phase in uws.ACTIVE_PHASES and current.phase == start_phase
                   and (awaited is None or current.phase == awaited.strip().upper())):
                remaining = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
                if remaining <= 0:
                    break
                # Short slices: a missed notification costs at most this much.
                changed(min(remaining, 5.0))
                current = state.store.get(job_id, requester)  # destroyed meanwhile: 404
    return xml(uws.job_document(current.uws_job(job_url(job_id), _inline_parts(job_id))))


@blueprint.post("/async/<job_id>")
@uws_errors
def job_post(job_id: str) -> Response:
    """ACTION=DELETE destroys the job (UWS 2.2.3.2); DALI forbids job parameters here."""
    action = request_parameters().get("ACTION")
    if action is None or action.strip().upper() != "DELETE":
        return text("POST to a job accepts only ACTION=DELETE\n", 400)
    _state().store.delete(job_id, current_requester())
    return see_other(f"{tap_url()}/async")


@blueprint.delete("/async/<job_id>")
@uws_errors
def job_delete(job_id: str) -> Response:
    _state().store.delete(job_id, current_requester())
    return see_other(f"{tap_url()}/async")


@blueprint.route("/async/<job_id>/phase", methods=["GET", "POST"])
@uws_errors
def job_phase(job_id: str) -> Response:
    state = _state()
    if request.method == "GET":
        return text(str(state.store.get(job_id, current_requester()).phase))
    action = request_parameters().get("PHASE")
    if action is None:
        raise InvalidParameter("PHASE is required: RUN or ABORT")
    state.store.change_phase(job_id, current_requester(), action)
    return see_other(job_url(job_id))


@blueprint.route("/async/<job_id>/executionduration", methods=["GET", "POST"])
@uws_errors
def job_execution_duration(job_id: str) -> Response:
    state = _state()
    if request.method == "GET":
        return text(str(state.store.get(job_id, current_requester()).execution_duration))
    value = request_parameters().get("EXECUTIONDURATION")
    if value is None:
        raise InvalidParameter("EXECUTIONDURATION is required")
    seconds = parse_non_negative_int("EXECUTIONDURATION", value)
    state.store.set_execution_duration(job_id, current_requester(), seconds,
                                       state.config.max_execution_duration)
    return see_other(job_url(job_id))


@blueprint.route("/async/<job_id>/destruction", methods=["GET", "POST"])
@uws_errors
def job_destruction(job_id: str) -> Response:
    state = _state()
    if request.method == "GET":
        found = state.store.get(job_id, current_requester())
        return text(uws.format_time(found.destruction_time))
    value = request_parameters().get("DESTRUCTION")
    if value is None:
        raise InvalidParameter("DESTRUCTION is required")
    state.store.set_destruction(job_id, current_requester(),
                                uws.parse_time("DESTRUCTION", value), state.config.max_retention)
    return see_other(job_url(job_id))


@blueprint.get("/async/<job_id>/quote")
@uws_errors
def job_quote(job_id: str) -> Response:
    return text(uws.format_time(_state().store.get(job_id, current_requester()).quote))


@blueprint.get("/async/<job_id>/owner")
@uws_errors
def job_owner(job_id: str) -> Response:
    return text(_state().store.get(job_id, current_requester()).owner_name or "")


@blueprint.get("/async/<job_id>/error")
@uws_errors
def job_error(job_id: str) -> Response:
    """The error document of a failed job, with status 200 (DALI 1.1 4.2)."""
    found = _state().store.get(job_id, current_requester())
    if found.phase != uws.Phase.ERROR:
        return text(f"Job {job_id} has no error; it is {found.phase}\n", 404)
    return Response(error_votable(found.error_text() or "The job failed"),
                    content_type=VOTABLE_MIME)


@blueprint.get("/async/<job_id>/results")
@uws_errors
def job_results(job_id: str) -> Response:
    found = _state().store.get(job_id, current_requester())
    return xml(uws.results_document(found.uws_job(job_url(job_id)).results))


@blueprint.get("/async/<job_id>/results/<result_id>")
@uws_errors
def job_result(job_id: str, result_id: str) -> Response:
    result, path = _state().store.get(job_id, current_requester()).result_file(result_id)
    response = send_file(path, mimetype=result.mime_type, conditional=True, etag=False)
    # The media type as the job recorded it, as /sync sends it (no charset added for text/*).
    response.content_type = result.mime_type
    return response


@blueprint.route("/async/<job_id>/parameters", methods=["GET", "POST"])
@uws_errors
def job_parameters(job_id: str) -> Response:
    state = _state()
    requester = current_requester()
    if request.method == "POST":
        updates = Parameters((name, value) for name, value in request_parameters().items()
                             if name not in UWS_CONTROL)
        state.store.get(job_id, requester)  # unknown jobs get nothing written for them
        _check_upload_count(updates, state.config.max_uploads)
        stored = _save_inline_parts(job_id, updates, state.config.upload_limit_bytes)
        state.store.update_parameters(
            job_id, requester, updates, upload_bytes=stored,
            check=lambda merged: _check_upload_count(merged, state.config.max_uploads))
        return see_other(job_url(job_id))
    found = state.store.get(job_id, requester)
    return xml(uws.parameters_document(
        found.uws_job(job_url(job_id), _inline_parts(job_id)).parameters))


@blueprint.get("/async/<job_id>/parameters/<part>")
@uws_errors
def job_parameter_content(job_id: str, part: str) -> Response:
    """An inline upload of the job, by reference (UWS 2.2.3.1.1).

    Its bytes are whatever an anonymous client posted: given back as a download that a
    browser neither renders nor sniffs, in a sandbox should it render it anyway, so that the
    archive's origin never hosts someone else's page or script."""
    _state().store.get(job_id, current_requester())
    if not _PART_NAME.fullmatch(part):
        return text(f"No parameter {part}\n", 404)
    path = job_directory(job_id) / "parameters" / part
    if not path.is_file():
        return text(f"No parameter {part}\n", 404)
    response = send_file(path, mimetype=VOTABLE_MIME, as_attachment=True,
                         download_name=f"{part}.vot")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOCUMENT_POLICY
    return response
