"""Shared fixtures: a throwaway PostgreSQL cluster for the whole session, a live server, and the
one `skyvault worker` process that runs every async job (TAP and SODA) of the session.

The environment is pointed at a private folder before anything reads the settings, so no test
ever touches the demo's data in var/.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


TEST_HOME = Path(tempfile.mkdtemp(prefix="skyvault-test-", dir="/tmp"))
TEST_HOME.chmod(0o755)
os.environ["SKYVAULT_HOME"] = str(TEST_HOME)
os.environ["SKYVAULT_PGPORT"] = str(_free_port())
os.environ.pop("SKYVAULT_DATABASE_URL", None)
os.environ.pop("SKYVAULT_PGDATA", None)
# The upload-by-URL tests serve their tables from 127.0.0.1; the refusal of private addresses,
# the production default, is tested on its own (tests/tap/test_tap_uploads.py).
os.environ["SKYVAULT_TAP_UPLOAD_PRIVATE_NETWORKS"] = "1"

import release_calendar  # noqa: E402
from worker_process import WorkerProcess  # noqa: E402

from skyvault import db as db_module  # noqa: E402
from skyvault.config import settings  # noqa: E402
from skyvault.db import Database, database_urls, embedded_cluster  # noqa: E402
from skyvault.schema.migrate import upgrade  # noqa: E402


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    """A fresh cluster, migrated to head, used by every database test of the session, with the
    session's release calendar (tests/release_calendar.py)."""
    cluster = embedded_cluster()
    cluster.start()
    urls = database_urls()
    upgrade(urls.admin)
    handle = Database(urls)
    with handle.admin() as connection:
        release_calendar.prepare(connection)
    db_module.set_database(handle)
    yield handle
    db_module.set_database(None)
    cluster.stop()


@pytest.fixture
def rolled_back(database: Database) -> Iterator[psycopg.Connection]:
    """An owner connection inside one transaction that is rolled back at the end: what a test
    writes there is never seen by another. The transaction is begun at once, so a
    ``connection.transaction()`` of the code under test is a savepoint within it."""
    with database.admin() as connection:
        connection.execute("SELECT 1")
        try:
            yield connection
        finally:
            connection.rollback()


def pytest_sessionfinish(session, exitstatus) -> None:
    cluster = embedded_cluster()
    if cluster.is_initialised():
        cluster.stop()
    shutil.rmtree(TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def live_server(database: Database) -> Iterator[str]:
    """The Flask application served over real HTTP on a free loopback port."""
    from werkzeug.serving import make_server

    from skyvault.server.app import create_app

    app = create_app()
    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def job_worker(database: Database) -> Iterator[WorkerProcess]:
    """The session's one worker: tests that stop it to see jobs wait in the queue rely on no
    other worker running meanwhile."""
    worker = WorkerProcess(settings().home / "logs" / "job-worker.log", "--stale-after", "5",
                           "--sweep-interval", "1")
    worker.start()
    yield worker
    worker.stop()
