"""UWS 1.1: job phases, the rules for changing them, and the XML documents of the REST binding.

Pure: the job store (``skyvault.server.uws.store``) keeps jobs in PostgreSQL and hands ``Job``
values here to be written out; the Flask handlers only route.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lxml import etree

from skyvault.vo.dali import InvalidParameter, Parameters, parse_non_negative_int

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
UWS_VERSION = "1.1"
_NSMAP = {"uws": UWS_NS, "xlink": XLINK_NS, "xsi": XSI_NS}


class Phase(enum.StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.HELD,
                           Phase.SUSPENDED})
"""Phases a blocking GET (WAIT) may wait in (UWS 1.1 section 2.2.1.2)."""
FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})


class UwsError(Exception):
    http_status = 400


class PhaseConflict(UwsError):
    """A request that the job's current phase does not allow (UWS 2.2: 403)."""

    http_status = 403


# -- times ------------------------------------------------------------------------------------


def format_time(instant: dt.datetime | None) -> str:
    """ISO 8601 in UTC with a 'T' and a 'Z' (UWS 2.2.1), to the millisecond."""
    if instant is None:
        return ""
    utc = instant.astimezone(dt.UTC) if instant.tzinfo else instant.replace(tzinfo=dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)


def parse_time(name: str, text: str) -> dt.datetime:
    """An ISO 8601 instant (DALI 3.3.3); without a zone it is UTC."""
    match = _ISO.fullmatch(text.strip())
    if not match:
        raise InvalidParameter(f"{name} must be an ISO 8601 time, not {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = dt.UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            min(round(float(fraction) * 1_000_000), 999_999) if fraction else 0, tzinfo=tz,
        ).astimezone(dt.UTC)
    except ValueError as error:
        raise InvalidParameter(f"{name}: {text!r} is not a valid time ({error})") from error


# -- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobParameter:
    id: str
    value: str
    by_reference: bool = False


@dataclass(frozen=True)
class ResultRef:
    id: str
    href: str
    mime_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ErrorSummary:
    message: str
    type: str = "fatal"
    """``fatal`` or ``transient`` (UWS schema ErrorType)."""
    has_detail: bool = True


@dataclass(frozen=True)
class Job:
    job_id: str
    phase: Phase
    creation_time: dt.datetime
    execution_duration: int
    """Seconds; 0 means unlimited."""
    destruction_time: dt.datetime | None
    owner_id: str | None = None
    run_id: str | None = None
    quote: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    parameters: tuple[JobParameter, ...] = ()
    results: tuple[ResultRef, ...] = ()
    error: ErrorSummary | None = None
    extra: dict[str, str] = field(default_factory=dict)
    """Implementation details for the jobInfo element."""


# -- phase changes ------------------------------------------------------------------------------


def phase_after(current: Phase, action: str) -> Phase:
    """The phase a PHASE=RUN or PHASE=ABORT request leads to (UWS 2.2.3.5-6).

    RUN queues a pending or held job and leaves an already queued or running job alone; a job
    that has finished cannot run again. ABORT stops any job not yet finished; aborting a
    finished job changes nothing, so that a client tidying up never gets an error.
    """
    verb = action.strip().upper()
    if verb == "RUN":
        if current in (Phase.PENDING, Phase.HELD):
            return Phase.QUEUED
        if current in (Phase.QUEUED, Phase.EXECUTING, Phase.SUSPENDED):
            return current
        raise PhaseConflict(f"A job in phase {current} cannot be run again")
    if verb == "ABORT":
        return Phase.ABORTED if current in ACTIVE_PHASES else current
    raise InvalidParameter(f"PHASE must be RUN or ABORT, not {action!r}")


# -- job list filters (UWS 1.1 section 2.2.2.1) ---------------------------------------------------


@dataclass(frozen=True)
class JobListFilter:
    phases: frozenset[Phase] = frozenset()
    """Empty: every phase but ARCHIVED."""
    after: dt.datetime | None = None
    last: int | None = None


def parse_job_list_filter(params: Parameters) -> JobListFilter:
    phases: set[Phase] = set()
    for value in params.get_all("PHASE"):
        try:
            phases.add(Phase(value.strip().upper()))
        except ValueError as error:
            raise InvalidParameter(f"PHASE {value!r} is not a UWS phase") from error
    after_text = params.get("AFTER")
    last_text = params.get("LAST")
    last = None
    if last_text is not None:
        last = parse_non_negative_int("LAST", last_text)
        if last == 0:
            raise InvalidParameter("LAST must be greater than 0")
    return JobListFilter(
        phases=frozenset(phases),
        after=parse_time("AFTER", after_text) if after_text is not None else None,
        last=last,
    )


# -- XML ----------------------------------------------------------------------------------------


def _uws(tag: str) -> str:
    return f"{{{UWS_NS}}}{tag}"


def _text_element(parent: etree._Element, tag: str, text: str | None,
                  nillable: bool = False) -> None:
    if text is None:
        if nillable:
            element = etree.SubElement(parent, _uws(tag))
            element.set(f"{{{XSI_NS}}}nil", "true")
        return
    etree.SubElement(parent, _uws(tag)).text = text


def _time_element(parent: etree._Element, tag: str, instant: dt.datetime | None,
                  nillable: bool = True) -> None:
    _text_element(parent, tag, format_time(instant) if instant else None, nillable)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _parameters_element(parameters: Iterable[JobParameter]) -> etree._Element:
    element = etree.Element(_uws("parameters"), nsmap=_NSMAP)
    for parameter in parameters:
        child = etree.SubElement(element, _uws("parameter"), id=parameter.id)
        if parameter.by_reference:
            child.set("byReference", "true")
        child.text = _xml_safe(parameter.value)
    return element


def _results_element(results: Iterable[ResultRef]) -> etree._Element:
    element = etree.Element(_uws("results"), nsmap=_NSMAP)
    for result in results:
        child = etree.SubElement(element, _uws("result"), id=result.id)
        child.set(f"{{{XLINK_NS}}}type", "simple")
        child.set(f"{{{XLINK_NS}}}href", result.href)
        if result.size is not None:
            child.set("size", str(result.size))
        if result.mime_type:
            child.set("mime-type", result.mime_type)
    return element


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xml_safe(text: str) -> str:
    """Text XML 1.0 can carry: control characters a client sent are dropped."""
    return _XML_ILLEGAL.sub("", text)


def job_document(job: Job) -> bytes:
    """The <uws:job> element (UWS 1.1 section 2.2.2.2), elements in schema order."""
    root = etree.Element(_uws("job"), nsmap=_NSMAP, version=UWS_VERSION)
    _text_element(root, "jobId", job.job_id)
    _text_element(root, "runId", _xml_safe(job.run_id) if job.run_id else None)
    _text_element(root, "ownerId", job.owner_id, nillable=True)
    _text_element(root, "phase", str(job.phase))
    _time_element(root, "quote", job.quote)
    _time_element(root, "creationTime", job.creation_time)
    _time_element(root, "startTime", job.start_time)
    _time_element(root, "endTime", job.end_time)
    _text_element(root, "executionDuration", str(job.execution_duration))
    _time_element(root, "destruction", job.destruction_time)
    root.append(_parameters_element(job.parameters))
    root.append(_results_element(job.results))
    if job.error is not None:
        summary = etree.SubElement(root, _uws("errorSummary"), type=job.error.type,
                                   hasDetail="true" if job.error.has_detail else "false")
        etree.SubElement(summary, _uws("message")).text = _xml_safe(job.error.message)
    if job.extra:
        info = etree.SubElement(root, _uws("jobInfo"))
        for key, value in job.extra.items():
            etree.SubElement(info, key).text = _xml_safe(value)
    return _serialise(root)


def job_list_document(jobs: Iterable[Job], job_url: Callable[[str], str]) -> bytes:
    """The <uws:jobs> list of job references; ``job_url(job_id)`` gives each job's URL."""
    root = etree.Element(_uws("jobs"), nsmap=_NSMAP, version=UWS_VERSION)
    for job in jobs:
        ref = etree.SubElement(root, _uws("jobref"), id=job.job_id)
        ref.set(f"{{{XLINK_NS}}}type", "simple")
        ref.set(f"{{{XLINK_NS}}}href", job_url(job.job_id))
        _text_element(ref, "phase", str(job.phase))
        _text_element(ref, "runId", _xml_safe(job.run_id) if job.run_id else None)
        _text_element(ref, "ownerId", job.owner_id, nillable=True)
        _time_element(ref, "creationTime", job.creation_time, nillable=False)
    return _serialise(root)


def results_document(results: Iterable[ResultRef]) -> bytes:
    return _serialise(_results_element(results))


def parameters_document(parameters: Iterable[JobParameter]) -> bytes:
    return _serialise(_parameters_element(parameters))
