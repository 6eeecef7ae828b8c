"""TAP's async executor: one ADQL query of a job into its result file, run by `skyvault worker`.

The query is parsed and checked here (TAP 1.1 2.3: a job's parameters are checked when it runs),
read as the job's owner as of now, and streamed into ``result.partial`` in the job's folder,
renamed once complete. A failure that is not the query's (the database going away) queues the
job again; every other ends it in ERROR with a message that shows no row values.
"""

from __future__ import annotations

import errno
import logging
from contextlib import suppress

import psycopg

from skyvault.db_errors import database_unreachable
from skyvault.server.tap.config import TapConfig
from skyvault.server.tap.query import (
    QueryFailed,
    ResultHeader,
    database_error,
    prepare,
    stream_result,
)
from skyvault.server.tap.upload import load_uploads
from skyvault.server.uws.monitor import JobMonitor
from skyvault.server.uws.parts import part_opener
from skyvault.server.uws.store import JobQueue, ResultFile, StoredJob
from skyvault.vo.dali import DaliError, QueryLimits, parse_tap_query
from skyvault.vo.uws import Phase

log = logging.getLogger(__name__)

NO_ROOM = ("The service has no room left to store the result (its disk is full); nothing of it"
           " was kept. Run the job again later.")


class OwnerGone(DaliError):
    """The job belongs to an account that was removed or disabled since it was created."""


def execute_tap_job(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor, *,
                    config: TapConfig) -> None:
    """Run one TAP query into the job's result file."""
    folder = job.directory
    partial = folder / "result.partial"
    try:
        query = parse_tap_query(job.parameters,
                                QueryLimits(config.default_maxrec, config.hard_maxrec))
        uploads = load_uploads(query.uploads, part_opener(job.job_id),
                               limit=config.upload_limit_bytes, max_tables=config.max_uploads,
                               timeout=config.upload_fetch_timeout,
                               private_networks=config.upload_private_networks)
        monitor.check()
        prepared = prepare(query, uploads)
        requester = queue.owner_requester(job)
        if requester is None:
            raise OwnerGone("The job's owner no longer has an account here")
        stream = stream_result(prepared, requester=requester, base_url=job.base_url,
                               timeout_s=job.execution_duration or config.max_execution_duration,
                               on_cancel=monitor.set_cancel, primary=True)
        try:
            header = next(stream)
            assert isinstance(header, ResultHeader)
            folder.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
                    monitor.check()
        finally:
            stream.close()
        monitor.check()
        if header.stats.error:
            # A VOTable writer reported a failure after the first rows inside the document;
            # for UWS the job failed (DALI 1.1 4.4.2), so it ends in ERROR without a result.
            raise QueryFailed(f"The query failed while its result was written: "
                              f"{header.stats.error}")
        final = folder / f"result.{header.output.extension}"
        partial.replace(final)
        result = ResultFile("result", final.name, header.content_type,
                            final.stat().st_size, header.stats.rows, header.stats.overflow)
        if not queue.finish(job.job_id, worker, Phase.COMPLETED, results=[result]):
            final.unlink(missing_ok=True)
    except Exception as error:
        partial.unlink(missing_ok=True)
        if monitor.ended:
            # The failure is the cancelled query of a job that ended for another reason, which
            # the worker settles.
            return
        if database_unreachable(error):
            # Not the query's fault: the job runs again once the database is back. If it is
            # still away, the job stays EXECUTING until the sweep finds its heartbeats stale.
            log.warning("job %s: the database went away under it: %s", job.job_id, error)
            with suppress(psycopg.Error):
                queue.requeue(job.job_id, worker)
        elif isinstance(error, DaliError):
            queue.finish(job.job_id, worker, Phase.ERROR, error=str(error))
        elif isinstance(error, psycopg.Error):  # while the result was being written
            message = database_error(error, job.execution_duration)
            queue.finish(job.job_id, worker, Phase.ERROR, error=str(message))
        elif isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            log.error("job %s: no room for its result: %s", job.job_id, error)
            queue.finish(job.job_id, worker, Phase.ERROR, error=NO_ROOM)
        else:
            log.exception("job %s failed", job.job_id)
            queue.finish(job.job_id, worker, Phase.ERROR,
                         error="The service failed while running the query; it has been logged")
