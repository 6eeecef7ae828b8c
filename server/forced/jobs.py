"""Forced photometry {async}: the executor `skyvault worker` runs for ``/forcedphot/async`` jobs
(the policy of their job tree is ``server.forced_async``'s; the measuring
``skyvault.forced_photometry``'s, as for sync).

A job finds its epochs as its owner may see them, looked up when it runs, on the primary
(read replicas answer requests, not jobs), measures them one by one, looking between two at
whether it was aborted or ran over its execution duration, and writes one result: the table,
in the format asked for.
"""

from __future__ import annotations

import time

from skyvault.db import database
from skyvault.forced_photometry import TooManyEpochs, find_epochs, measure_epochs
from skyvault.server.forced.output import write_table
from skyvault.server.uws.monitor import JobMonitor, Outcome, settle_job
from skyvault.server.uws.store import JobQueue, ResultFile, StoredJob
from skyvault.vo.dali import DaliError
from skyvault.vo.forcedphot import parse_forced_request


class JobFailed(Exception):
    """What ends the job in ERROR, with the message its error document carries."""


def execute_forced_job(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor, *,
                       max_epochs: int) -> None:
    """The job's one result (``result``), or the error that ends it."""
    def outcome() -> Outcome:
        try:
            return _run(job, queue, monitor, max_epochs), None
        except JobFailed as failure:
            return [], str(failure)

    settle_job(job, worker, queue, monitor, outcome, unexpected="the job failed unexpectedly")


def _run(job: StoredJob, queue: JobQueue, monitor: JobMonitor,
         max_epochs: int) -> list[ResultFile]:
    started = time.monotonic()
    try:
        request = parse_forced_request(job.parameters)
    except DaliError as error:
        raise JobFailed(str(error)) from None
    requester = queue.owner_requester(job)
    if requester is None:
        raise JobFailed("the job's owner can no longer use the service")
    with database().reading(requester, base_url=job.base_url, primary=True) as connection:
        try:
            epochs = find_epochs(connection, request, limit=max_epochs)
        except TooManyEpochs as error:
            raise JobFailed(f"{error}: narrow JDSTART/JDEND or FILTER") from None

    def overdue() -> bool:
        return bool(job.execution_duration) and \
            time.monotonic() - started > job.execution_duration

    rows = list(measure_epochs(epochs, request.ra, request.dec,
                               stop=lambda: monitor.ended or overdue()))
    if monitor.ended:
        return []
    if len(rows) < len(epochs):
        raise JobFailed("the job ran over its execution duration")
    output, content_type = request.output()
    folder = job.directory
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"result.{output.extension}"
    with target.open("wb") as stream:
        for chunk in write_table(request, rows):
            stream.write(chunk)
    return [ResultFile("result", target.name, content_type, target.stat().st_size,
                       rows=len(rows))]
