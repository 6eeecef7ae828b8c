"""The async job runner: threads of `skyvault worker`, or inside the web process (tests, demo).

A worker takes queued jobs of the services it has executors for from archive.uws_jobs
(``JobQueue.claim_next``: FOR UPDATE SKIP LOCKED, so workers never take the same job), wakes on
the queue's NOTIFY, and hands each job to its service's executor (``JobPolicy.executor``: a TAP
query, SODA cutouts). While a job runs, a monitor (``server.uws.monitor``) sends heartbeats and
watches for ABORT, deletion and the execution duration, cancelling the job's database query
when any of them ends the job; whatever the executor leaves behind, the job ends here
(``Worker._execute``), so no job stays EXECUTING. One thread of each worker also sweeps: it
destroys jobs past their destruction time (with their files) and requeues jobs whose worker died.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from skyvault.db import Database, database
from skyvault.server.uws.monitor import OVERTIME, STOPPING, JobMonitor
from skyvault.server.uws.policy import Executor
from skyvault.server.uws.store import QUEUE_CHANNEL, JobQueue, PhaseWatcher, StoredJob
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
    """Runs queued jobs of the services in ``executors`` (kind -> executor) until ``stop``."""

    def __init__(self, db: Database, executors: Mapping[str, Executor], *,
                 settings: WorkerSettings | None = None, name: str | None = None) -> None:
        self.executors = dict(executors)
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
            with JobMonitor(self.queue, self.watcher, job, name,
                            self.settings.heartbeat_interval) as monitor:
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


INPROCESS_KEY = "skyvault.uws.worker."
"""Where a web application keeps its in-process workers (``app.extensions``), by service and
process id: ``skyvault.uws.worker.<kind>.<pid>`` -> (worker, stop event)."""


def start_inprocess_workers(concurrency: int, executors: Mapping[str, Executor],
                            registry: MutableMapping[str, Any]) -> Worker:
    """Runner threads for the jobs of ``executors``' services in this (web) process, for tests
    and the demo; once per service and process (a forked process starts its own)."""
    kinds = "+".join(sorted(executors))
    key = f"{INPROCESS_KEY}{kinds}.{os.getpid()}"
    existing = registry.get(key)
    if existing is not None:
        return existing[0]
    worker = Worker(database(), executors, settings=WorkerSettings(concurrency=concurrency),
                    name=f"{socket.gethostname()}:{os.getpid()}:web-{kinds}")
    stop = threading.Event()
    worker.serve(stop)
    registry[key] = (worker, stop)
    return worker
