"""The watch kept over one running job: heartbeats, and the end conditions (ABORT, deletion,
its execution duration, its worker stopping) that cancel the job's database statement.

Executors receive the monitor (``JobPolicy.executor``): they check ``ended`` between steps and
hand it the cancel function of their running statement (``set_cancel``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from skyvault.server.uws.store import JobQueue, PhaseWatcher, ResultFile, StoredJob
from skyvault.vo.uws import Phase

log = logging.getLogger(__name__)

STOPPING = "its worker is stopping"
OVERTIME = "over its execution duration"
OVERTIME_GRACE = 5
"""Seconds past its execution duration before the monitor ends a job: an executor that checks
the time itself (between two cutouts) ends it first, with its own message."""


class JobEnded(Exception):
    """The job was aborted, destroyed or ran out of time while it ran."""


class JobMonitor:
    """Heartbeats and the end conditions of one running job, on its own thread."""

    def __init__(self, queue: JobQueue, watcher: PhaseWatcher | None, job: StoredJob,
                 worker: str, heartbeat_interval: float) -> None:
        self.queue = queue
        self.watcher = watcher
        self.job = job
        self.worker = worker
        self.heartbeat_interval = heartbeat_interval
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
                self._done.wait(self.heartbeat_interval)
            elif self.watcher is not None:
                with self.watcher.watching(self.job.job_id) as changed:
                    self._beat(limit, started)
                    if not self.ended:
                        changed(self.heartbeat_interval)
            else:
                self._beat(limit, started)
                if not self.ended:
                    self._done.wait(self.heartbeat_interval)

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
        elif limit and time.monotonic() - started > limit + OVERTIME_GRACE:
            self._end(OVERTIME)


Outcome = tuple[list[ResultFile], "str | None"]
"""An executor's results, and the error that ends its job in ERROR (None: COMPLETED)."""


def settle_job(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor,
               run: Callable[[], Outcome], *, unexpected: str) -> None:
    """Run an executor's work and record its outcome, unless the monitor ended the job
    meanwhile (aborted, deleted or handed back: the worker settles it). An exception ends the
    job in ERROR with ``unexpected`` as its message, never the exception's own text."""
    try:
        results, error = run()
    except Exception:
        if monitor.ended:
            return
        log.exception("%s job %s failed", job.service, job.job_id)
        results, error = [], unexpected
    if monitor.ended:
        return
    queue.finish(job.job_id, worker, Phase.ERROR if error else Phase.COMPLETED,
                 results=results, error=error)
