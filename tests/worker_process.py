"""`skyvault worker` and `skyvault serve` as child processes of the tests, as production runs
them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ChildProcess:
    """A `skyvault` command as a child process of the tests, logging to a file."""

    def __init__(self, log: Path, *extra: str) -> None:
        self.log = log
        self.extra = extra
        self.process: subprocess.Popen | None = None

    def spawn(self, *argv: str) -> subprocess.Popen:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "skyvault", *argv, *self.extra],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=os.environ.copy())
        return self.process

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class WorkerProcess(ChildProcess):
    """`skyvault worker` as a child process, logging to a file."""

    def start(self, timeout: float = 30.0) -> None:
        process = self.spawn("worker", "--concurrency", "2", "--poll-interval", "1")
        started = f"worker {os.uname().nodename}:{process.pid} running"
        deadline = time.monotonic() + timeout
        while started not in self.log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()}")
            time.sleep(0.1)


class ServeProcess(ChildProcess):
    """`skyvault serve` (gunicorn, as production runs the web app) as a child process."""

    def start(self, port: int, timeout: float = 90.0) -> str:
        """Serve on ``port``; the base URL once it answers."""
        import requests

        process = self.spawn("serve", "--host", "127.0.0.1", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while not self._answers(requests, f"{base}/tap/availability"):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"skyvault serve did not start:\n{self.log.read_text()}")
            time.sleep(0.3)
        return base

    @staticmethod
    def _answers(requests, url: str) -> bool:
        try:
            return requests.get(url, timeout=5).ok
        except requests.RequestException:
            return False


@contextmanager
def web_process_running_jobs(job_worker: WorkerProcess,
                             config: dict | None = None) -> Iterator[str]:
    """A second web app that runs jobs itself (``config``: by default TAP_INPROCESS_WORKERS and
    SODA_INPROCESS_WORKERS, one runner each) on a free port while the session's worker is
    stopped: its base URL. The in-process runners stop and the worker starts again after."""
    from served_app import served_app

    job_worker.stop()
    try:
        with served_app(config or {"TAP_INPROCESS_WORKERS": 1,
                                   "SODA_INPROCESS_WORKERS": 1}) as base:
            yield base
    finally:
        job_worker.start()
