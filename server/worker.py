"""The async job runner: `skyvault worker`, or threads inside the web process for tests/demo.

A worker takes queued jobs of every async service from archive.uws_jobs (``JobQueue.claim_next``:
FOR UPDATE SKIP LOCKED, so workers never take the same job), wakes on the queue's NOTIFY, and
hands each job to its service's executor: a TAP query runs with ``tap_query`` into a file in
the job's folder (``execute_tap_job``), SODA cutouts are cut by ``soda_jobs``. While a job runs,
a monitor sends heartbeats and watches for ABORT, deletion and the execution duration, cancelling
the job's database query when any of them ends the job; whatever the executor leaves behind, the
job ends here (``Worker._execute``), so no job stays EXECUTING. One thread of each worker also
sweeps: it destroys jobs past their destruction time (with their files) and requeues jobs whose
worker died.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import click
import psycopg

from skyvault.db import Database, database
from skyvault.db_errors import database_unreachable
from skyvault.server.jobs import (
    QUEUE_CHANNEL,
    SODA,
    TAP,
    JobQueue,
    PhaseWatcher,
    ResultFile,
    StoredJob,
    job_directory,
)
from skyvault.server.soda_jobs import execute_soda_job
from skyvault.server.tap_config import TapConfig, tap_config
from skyvault.server.tap_query import (
    QueryFailed,
    ResultHeader,
    database_error,
    prepare,
    stream_result,
)
from skyvault.server.tap_upload import load_uploads
from skyvault.vo.dali import DaliError, QueryLimits, parse_tap_query
from skyvault.vo.uws import Phase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 1
    """Jobs run at once by this worker (one thread each)."""
    poll_interval: float = 5.0
    """Seconds between looks at the queue when no notification arrives."""
    heartbeat_interval: float = 2.0
    stale_after: float = 60.0
    """A job whose heartbeat is older than this has lost its worker and is queued again."""
    sweep_interval: float = 30.0


NO_ROOM = ("The service has no room left to store the result (its disk is full); nothing of it"
           " was kept. Run the job again later.")
STOPPING = "its worker is stopping"
OVERTIME = "over its execution duration"


class OwnerGone(DaliError):
    """The job belongs to an account that was removed or disabled since it was created."""


class JobEnded(Exception):
    """The job was aborted, destroyed or ran out of time while it ran."""


def _inline_files(job_id: str) -> Callable[[str], Any]:
    folder = job_directory(job_id) / "parameters"

    def open_part(part: str):
        path = folder / part
        return path.open("rb") if path.is_file() else None

    return open_part


class JobMonitor:
    """Heartbeats and the end conditions of one running job, on its own thread."""

    def __init__(self, queue: JobQueue, watcher: PhaseWatcher | None, job: StoredJob,
                 worker: str, settings: WorkerSettings) -> None:
        self.queue = queue
        self.watcher = watcher
        self.job = job
        self.worker = worker
        self.settings = settings
        self.ended: str | None = None
        self._cancel: Callable[[], None] | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"monitor-{job.job_id}",
                                        daemon=True)

    def __enter__(self) -> JobMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def set_cancel(self, cancel: Callable[[], None] | None) -> None:
        """The function that cancels the job's running statement; None once its connection
        goes back to the pool, where a late cancel would hit someone else's query."""
        with self._lock:
            self._cancel = cancel
        if cancel is not None and self.ended:
            self._send_cancel()

    def release(self) -> None:
        """The worker is stopping: end the job here so that another worker runs it."""
        self._end(STOPPING)

    def check(self) -> None:
        if self.ended:
            raise JobEnded(self.ended)

    def _end(self, reason: str) -> None:
        with self._lock:
            if self.ended:
                return
            self.ended = reason
        self._send_cancel()

    def _send_cancel(self) -> None:
        # Under the lock, so that the connection cannot be handed back meanwhile.
        with self._lock:
            if self._cancel is None:
                return
            try:
                self._cancel()
            except psycopg.Error as error:
                log.warning("cancelling job %s: %s", self.job.job_id, error)

    def _run(self) -> None:
        limit = self.job.execution_duration
        started = time.monotonic()
        while not self._done.is_set():
            if self.ended:
                # A cancel that arrived between two statements stopped nothing; send it
                # again until the job's thread has noticed and returned.
                self._send_cancel()
                self._done.wait(self.settings.heartbeat_interval)
            elif self.watcher is not None:
                with self.watcher.watching(self.job.job_id) as changed:
                    self._beat(limit, started)
                    if not self.ended:
                        changed(self.settings.heartbeat_interval)
            else:
                self._beat(limit, started)
                if not self.ended:
                    self._done.wait(self.settings.heartbeat_interval)

    def _beat(self, limit: int, started: float) -> None:
        try:
            phase = self.queue.heartbeat(self.job.job_id, self.worker)
        except psycopg.Error as error:
            log.warning("heartbeat of job %s failed: %s", self.job.job_id, error)
            return
        if phase is None:
            self._end("destroyed")
        elif phase != Phase.EXECUTING:
            self._end(f"now {phase}")
        elif limit and time.monotonic() - started > limit + 5:
            self._end(OVERTIME)


Executor = Callable[[StoredJob, str, JobQueue, JobMonitor], None]
"""Runs one claimed job (job, worker name, queue, monitor) to COMPLETED or ERROR, unless its
monitor ends it otherwise meanwhile; the worker then settles the job (``_after_end``)."""


def execute_tap_job(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor, *,
                    config: TapConfig) -> None:
    """Run one TAP query into the job's result file."""
    folder = job.directory
    partial = folder / "result.partial"
    try:
        query = parse_tap_query(job.parameters,
                                QueryLimits(config.default_maxrec, config.hard_maxrec))
        uploads = load_uploads(query.uploads, _inline_files(job.job_id),
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


def executors(config: TapConfig) -> dict[str, Executor]:
    """The executor of each service's jobs; a worker takes the jobs of these services only."""
    return {TAP: functools.partial(execute_tap_job, config=config), SODA: execute_soda_job}


def _after_end(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor) -> None:
    """A job stopped by its monitor: back to the queue, failed for time, or left as it is now
    (aborted or destroyed by its owner)."""
    log.info("job %s stopped: %s", job.job_id, monitor.ended)
    if monitor.ended == STOPPING:
        queue.release(job.job_id, worker)
    elif monitor.ended == OVERTIME:
        queue.finish(job.job_id, worker, Phase.ERROR,
                     error=f"The job ran longer than its execution duration of "
                           f"{job.execution_duration} s")


class Worker:
    """Runs queued jobs of every service until ``stop`` is set."""

    def __init__(self, db: Database, *, settings: WorkerSettings | None = None,
                 config: TapConfig | None = None, name: str | None = None) -> None:
        self.executors = executors(config or tap_config())
        self.queue = JobQueue(db, self.executors)
        self.settings = settings or WorkerSettings()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.watcher = PhaseWatcher(db.urls.app)
        self._wake = threading.Condition()
        self._running: dict[str, JobMonitor] = {}
        self._running_lock = threading.Lock()

    # -- the queue --------------------------------------------------------------------------

    def _listen(self, stop: threading.Event) -> None:
        """Wake runners on the queue's notifications; sweep now and then."""
        next_sweep = 0.0
        while not stop.is_set():
            try:
                with psycopg.connect(self.queue.db.urls.app, autocommit=True) as connection:
                    connection.execute(f"LISTEN {QUEUE_CHANNEL}")
                    self._wake_all()  # jobs queued while we were not listening
                    while not stop.is_set():
                        if time.monotonic() >= next_sweep:
                            self.sweep()
                            next_sweep = time.monotonic() + self.settings.sweep_interval
                        if any(True for _ in connection.notifies(timeout=1.0)):
                            self._wake_all()
            except psycopg.Error as error:
                log.warning("worker %s lost its queue connection: %s", self.name, error)
                stop.wait(2.0)

    def _wake_all(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def sweep(self) -> None:
        try:
            destroyed = self.queue.destroy_expired()
            orphans = self.queue.requeue_orphans(dt.timedelta(seconds=self.settings.stale_after))
            stray = self.queue.remove_stray_directories(dt.timedelta(hours=1))
        except psycopg.Error as error:
            log.warning("sweep failed: %s", error)
            return
        if destroyed or orphans or stray:
            log.info("sweep: destroyed %d jobs, requeued %s, removed %d stray folders",
                     len(destroyed), orphans, len(stray))
        if orphans:
            self._wake_all()

    def _runner(self, index: int, stop: threading.Event) -> None:
        name = f"{self.name}:{index}"
        while not stop.is_set():
            try:
                job = self.queue.claim_next(name)
            except psycopg.Error as error:
                log.warning("%s cannot reach the queue: %s", name, error)
                stop.wait(self.settings.poll_interval)
                continue
            if job is None:
                with self._wake:
                    self._wake.wait(self.settings.poll_interval)
                continue
            log.info("%s runs %s job %s", name, job.service, job.job_id)
            with JobMonitor(self.queue, self.watcher, job, name, self.settings) as monitor:
                with self._running_lock:
                    self._running[job.job_id] = monitor
                try:
                    self._execute(job, name, monitor)
                finally:
                    with self._running_lock:
                        self._running.pop(job.job_id, None)

    def _execute(self, job: StoredJob, name: str, monitor: JobMonitor) -> None:
        """Run the job with its service's executor; whatever happens, it leaves EXECUTING."""
        failed = False
        try:
            self.executors[job.service](job, name, self.queue, monitor)
        except Exception:
            failed = not monitor.ended
            if failed:
                log.exception("%s job %s failed", job.service, job.job_id)
        try:
            if failed:
                self.queue.finish(job.job_id, name, Phase.ERROR,
                                  error="The service failed while running the job; "
                                        "it has been logged")
            elif monitor.ended:
                _after_end(job, name, self.queue, monitor)
        except psycopg.Error as error:
            # The heartbeats stop with this job, so the sweep requeues it later.
            log.warning("job %s could not be settled: %s", job.job_id, error)

    def serve(self, stop: threading.Event) -> list[threading.Thread]:
        """Start the listener and the runners as daemon threads; they end when ``stop`` is."""
        threads = [threading.Thread(target=self._listen, args=(stop,), daemon=True,
                                    name="job-worker-queue")]
        threads += [threading.Thread(target=self._runner, args=(i, stop), daemon=True,
                                     name=f"job-worker-{i}")
                    for i in range(self.settings.concurrency)]
        for thread in threads:
            thread.start()
        return threads

    def stop(self, stop: threading.Event, threads: Sequence[threading.Thread] = (),
             timeout: float = 10.0) -> None:
        """Stop taking jobs, hand running ones back to the queue, wait for the threads."""
        stop.set()
        self._wake_all()
        with self._running_lock:
            monitors = list(self._running.values())
        for monitor in monitors:
            monitor.release()
        for thread in threads:
            thread.join(timeout=timeout)
        self.watcher.stop()


# -- inside the web process ---------------------------------------------------------------------


def start_inprocess_workers(concurrency: int, registry: MutableMapping[str, Any]) -> Worker:
    """Runner threads in this (web) process; for tests and the demo, once per process."""
    key = f"skyvault.tap.worker.{os.getpid()}"
    existing = registry.get(key)
    if existing is not None:
        return existing[0]
    worker = Worker(database(), settings=WorkerSettings(concurrency=concurrency),
                    name=f"{socket.gethostname()}:{os.getpid()}:web")
    stop = threading.Event()
    worker.serve(stop)
    registry[key] = (worker, stop)
    return worker


# -- `skyvault worker` ----------------------------------------------------------------------------


@click.command("worker")
@click.option("--concurrency", type=int, default=None,
              help="jobs run at once (default: the number of cores)")
@click.option("--poll-interval", type=float, default=5.0, show_default=True,
              help="seconds between looks at the queue without a notification")
@click.option("--stale-after", type=float, default=60.0, show_default=True,
              help="seconds without heartbeat after which another worker's job is requeued")
@click.option("--sweep-interval", type=float, default=30.0, show_default=True,
              help="seconds between sweeps (destroyed jobs, orphaned jobs)")
def worker_cli(concurrency: int | None, poll_interval: float, stale_after: float,
               sweep_interval: float) -> None:
    """Run queued async jobs (TAP queries, SODA cutouts) until stopped (SIGTERM or Ctrl-C)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = WorkerSettings(concurrency=concurrency or os.cpu_count() or 1,
                              poll_interval=poll_interval, stale_after=stale_after,
                              sweep_interval=sweep_interval)
    worker = Worker(database(), settings=settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threads = worker.serve(stop)
    click.echo(f"worker {worker.name} running {settings.concurrency} job(s) at once")
    while not stop.wait(1.0):
        pass
    worker.stop(stop, threads)
    click.echo(f"worker {worker.name} stopped")

