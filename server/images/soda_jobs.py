"""SODA 1.0 {async} cutouts: the executor `skyvault worker` runs for SODA's jobs (the policy of
their job tree is ``server.soda_async``'s; the cutting ``server.soda_cutouts``', as for sync).

Each combination of parameter values gives one result (SODA 1.0 section 5): two IDs and two
CIRCLEs make four cutouts. A combination without a result (no overlap, an unknown or hidden ID)
is a text/plain result starting with the SODA error label, as section 5 asks; a request that
cannot run at all ends the job in ERROR. The job reads as its owner, whose programs are looked
up when it runs, never as anyone else.
"""

from __future__ import annotations

import logging
import time

from skyvault.db import database
from skyvault.server.images.soda_cutouts import resolve, write_cutout
from skyvault.server.uws.monitor import JobMonitor, settle_job
from skyvault.server.uws.store import JobQueue, ResultFile, StoredJob
from skyvault.vo.cutout import CutoutError, NoOverlap
from skyvault.vo.soda import FITS_TYPE, SodaError, parse_soda_request

log = logging.getLogger(__name__)


def execute_soda_job(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor, *,
                     max_results: int) -> None:
    """Every result of the job, one file each, as its owner may see the data; a job asking
    for more than ``max_results`` combinations is refused before anything runs."""
    settle_job(job, worker, queue, monitor,
               lambda: _cutouts(job, queue, monitor, max_results),
               unexpected="Error: the job failed unexpectedly")


def _cutouts(job: StoredJob, queue: JobQueue, monitor: JobMonitor,
             max_results: int) -> tuple[list[ResultFile], str | None]:
    """The job's results, or the error (with its SODA label) that ends it."""
    started = time.monotonic()
    try:
        soda_request = parse_soda_request(job.parameters, multi_valued=True)
    except SodaError as error:
        return [], error.text().strip()
    if len(soda_request.ids) * len(soda_request.cutouts) > max_results:
        return [], f"UsageError: more than {max_results} cutouts in one job"
    requester = queue.owner_requester(job)
    if requester is None:
        return [], "AuthorizationError: the job's owner can no longer use the service"
    folder = job.directory
    folder.mkdir(parents=True, exist_ok=True)
    results: list[ResultFile] = []
    number = 0
    for did in soda_request.ids:
        # Jobs read on the primary: read replicas answer requests, not jobs (skyvault/db.py).
        with database().reading(requester, base_url=job.base_url, primary=True) as connection:
            try:
                source = resolve(did, connection)
                failure = None
            except SodaError as error:
                source, failure = None, error.text()
        for cutout in soda_request.cutouts:
            number += 1
            if monitor.ended:
                return results, None
            # The monitor ends an overdue job only after a grace period, and without the SODA
            # label; this check, between two cutouts, is the usual end of a long job.
            if job.execution_duration and time.monotonic() - started > job.execution_duration:
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
