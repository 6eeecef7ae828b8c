"""`skyvault worker` as a child process of the tests, as production runs it beside the web app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WorkerProcess:
    """`skyvault worker` as a child process, logging to a file."""

    def __init__(self, log: Path, *extra: str) -> None:
        self.log = log
        self.extra = extra
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "skyvault", "worker", "--concurrency", "2",
                 "--poll-interval", "1", *self.extra],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=os.environ.copy())
        started = f"worker {os.uname().nodename}:{self.process.pid} running"
        deadline = time.monotonic() + timeout
        while started not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

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


@contextmanager
def web_process_running_jobs(job_worker: WorkerProcess) -> Iterator[str]:
    """A second web app, with TAP_INPROCESS_WORKERS, on a free port while the session's worker
    is stopped: its base URL. The worker starts again and the in-process runners stop after."""
    from werkzeug.serving import make_server

    from skyvault.server.app import create_app

    app = create_app({"TAP_INPROCESS_WORKERS": 1})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    job_worker.stop()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        job_worker.start()
        server.shutdown()
        for key, value in list(app.extensions.items()):
            if key.startswith("skyvault.tap.worker."):
                runner, stop = value
                runner.stop(stop)
