"""Fixtures of the TAP suite: the seeded survey slice, two users, and a real `skyvault worker`.

The web service is the session's ``live_server`` (real HTTP, no in-process job runner), so every
async job in these tests is run by the separate worker process, as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tap_seed

from skyvault import accounts
from skyvault.config import settings
from skyvault.db import Database


@dataclass(frozen=True)
class User:
    username: str
    token: str
    programs: frozenset[int]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Tap:
    url: str
    """The TAP base URL."""
    alice: User
    """Member of program 2: sees the public rows and the program-2 exposure."""
    bob: User
    """Authenticated, in no program: sees what the public sees."""


def _user(connection, username: str, programs: set[int]) -> User:
    accounts.create_user(connection, username, accounts.generate_password())
    if programs:
        accounts.grant_programs(connection, username, programs)
    token = accounts.create_token(connection, username, "tap tests").token
    return User(username, token, frozenset(programs))


@pytest.fixture(scope="session")
def tap_people(database: Database) -> tuple[User, User]:
    tap_seed.seed(database)
    with database.admin() as connection:
        people = (_user(connection, "tap-alice", {2}), _user(connection, "tap-bob", set()))
    yield people
    tap_seed.unseed(database)


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


@pytest.fixture(scope="session")
def tap_worker(database: Database) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(settings().home / "logs" / "tap-worker.log", "--stale-after", "5",
                            "--sweep-interval", "1")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def tap(live_server: str, tap_people: tuple[User, User], tap_worker: WorkerProcess) -> Tap:
    alice, bob = tap_people
    return Tap(f"{live_server}/tap", alice, bob)
