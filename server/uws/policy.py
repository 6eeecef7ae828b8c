"""What makes one async service different from another: its ``JobPolicy``.

The UWS job tree (``server.uws.blueprint``), the job store and the worker are the same for every
service; a service brings a policy object saying what its jobs are called and where they live
(``kind``, ``name``, ``path``), its configuration and the limits taken from it (execution
duration, destruction, WAIT, in-process runners), how its parameters are checked and what a
job-creating POST keeps besides them, the format of its error documents, and the executor that
runs one of its jobs in ``skyvault worker``. A policy imports no Flask: the worker loads it to
find the executor.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

from skyvault.server.uws.monitor import JobMonitor
from skyvault.server.uws.store import JobQueue, StoredJob
from skyvault.vo import uws
from skyvault.vo.dali import InvalidParameter, Parameters, parse_non_negative_int

ConfigT = TypeVar("ConfigT")

Executor = Callable[[StoredJob, str, JobQueue, JobMonitor], None]
"""Runs one claimed job (job, worker name, queue, monitor) to COMPLETED or ERROR with
``queue.finish``, unless its monitor ends it otherwise meanwhile (the worker then settles the
job); whatever it raises ends the job in ERROR with a neutral message."""

Files = Mapping[str, IO[bytes]]
"""The multipart parts of a request, by name."""


@dataclass(frozen=True)
class JobLimits:
    """A service's limits on its jobs, in seconds."""

    execution_duration: int
    """EXECUTIONDURATION of a job that does not give one."""
    max_execution_duration: int
    """EXECUTIONDURATION asked above this (or 0, unlimited) is lowered to it."""
    default_retention: int
    """From creation to destruction, unless DESTRUCTION says less."""
    max_retention: int
    """DESTRUCTION asked later than this after creation is moved to it."""
    wait_limit: int
    """Longest blocking WAIT (UWS 1.1 2.2.1.2 lets the server cap it)."""
    inprocess_workers: int = 0
    """Runner threads for this service's jobs inside the web process (tests, the demo);
    production runs ``skyvault worker`` instead."""

    def destruction_for(self, value: str | None, created: dt.datetime) -> dt.datetime:
        latest = created + dt.timedelta(seconds=self.max_retention)
        if value is None:
            return created + dt.timedelta(seconds=self.default_retention)
        return min(uws.parse_time("DESTRUCTION", value), latest)

    def execution_duration_for(self, value: str | None) -> int:
        if value is None:
            return self.execution_duration
        seconds = parse_non_negative_int("EXECUTIONDURATION", value)
        return self.max_execution_duration if seconds == 0 else min(
            seconds, self.max_execution_duration)

    def wait_for(self, value: str) -> float:
        """Seconds a WAIT=value request blocks at most; negative means as long as allowed."""
        try:
            seconds = int(value.strip())
        except ValueError as error:
            raise InvalidParameter(f"WAIT must be an integer, not {value!r}") from error
        return float(self.wait_limit if seconds < 0 else min(seconds, self.wait_limit))


@dataclass(frozen=True)
class Document:
    """An error document in the service's own format."""

    body: str | bytes
    content_type: str


class JobPolicy(ABC, Generic[ConfigT]):
    """One async service's half of its job tree (see the module's docstring).

    ``ConfigT`` is the service's configuration (``TapConfig``, ``SodaConfig``): read once per
    web application (``configure`` with the application's config, whose ``<PREFIX>_<NAME>``
    keys override the environment's) and once per worker (with none)."""

    kind: str
    """The jobs' ``service`` in archive.uws_jobs, and their executor's key in the worker."""
    name: str
    """The job tree's blueprint name, the prefix of its endpoints (``<name>.create_job``)."""
    path: str
    """The job list's path, e.g. ``/tap/async``; a job is ``<path>/<job_id>``."""
    part_media_type: str = "application/octet-stream"
    """How inline parameters (``keep_parts``) are served back, by reference."""
    part_suffix: str = ""
    """The file name suffix they are served back with."""

    @abstractmethod
    def configure(self, app_config: Mapping[str, Any]) -> ConfigT:
        """The service's configuration, with the web application's overrides."""

    def limits(self, config: ConfigT) -> JobLimits:
        """The limits on the service's jobs: by default the configuration's fields of the
        same names (``execution_duration``, ``max_execution_duration``, ...)."""
        return JobLimits(**{field.name: getattr(config, field.name)
                            for field in dataclasses.fields(JobLimits)
                            if hasattr(config, field.name)})

    def check(self, parameters: Parameters, config: ConfigT) -> None:
        """Refuse parameters a job could never run with (a DaliError): on creation, on a POST
        to /parameters and on the parameters merged by it. Parameters are otherwise checked
        when the job runs (TAP 1.1 2.3); by default nothing is checked here."""

    def keep_parts(self, job_id: str, parameters: Parameters, config: ConfigT,
                   files: Files) -> int:
        """Store the multipart parts that ``parameters`` refer to (``server.uws.parts``);
        the bytes stored, which count against the owner's quota. By default none are kept."""
        return 0

    @abstractmethod
    def error_document(self, message: str) -> Document:
        """A refused request to create or change a job, in the service's error format."""

    @abstractmethod
    def job_error_document(self, message: str | None) -> Document:
        """The /error resource of a failed job (served with status 200, DALI 1.1 4.2)."""

    @abstractmethod
    def executor(self, config: ConfigT) -> Executor:
        """What runs one of the service's jobs (in ``skyvault worker``, or in-process)."""
