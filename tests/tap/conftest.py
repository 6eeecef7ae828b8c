"""Fixtures of the TAP suite: the seeded survey slice, two users, and a real `skyvault worker`
(the session's, ``job_worker`` in tests/conftest.py).

The web service is the session's ``live_server`` (real HTTP, no in-process job runner), so every
async job in these tests is run by the separate worker process, as in production.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import tap_seed
from worker_process import WorkerProcess

from skyvault.accounts import model as accounts
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


@pytest.fixture(scope="session")
def tap(live_server: str, tap_people: tuple[User, User], job_worker: WorkerProcess) -> Tap:
    alice, bob = tap_people
    return Tap(f"{live_server}/tap", alice, bob)
