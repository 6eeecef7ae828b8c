"""`skyvault worker`: runs the queued jobs of every async service (``server.job_services``:
TAP queries, SODA cutouts) with ``server.uws.worker``, until SIGTERM or Ctrl-C.

It imports the services' policies and executors only, never their Flask blueprints."""

from __future__ import annotations

import logging
import os
import signal
import threading

import click

from skyvault.db import Database, database
from skyvault.server.uws.services import executors
from skyvault.server.uws.worker import Worker, WorkerSettings


def archive_worker(db: Database, settings: WorkerSettings | None = None,
                   name: str | None = None) -> Worker:
    """A worker for the jobs of every async service."""
    return Worker(db, executors(), settings=settings, name=name)


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
    worker = archive_worker(database(), settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threads = worker.serve(stop)
    click.echo(f"worker {worker.name} running {settings.concurrency} job(s) at once")
    while not stop.wait(1.0):
        pass
    worker.stop(stop, threads)
    click.echo(f"worker {worker.name} stopped")
