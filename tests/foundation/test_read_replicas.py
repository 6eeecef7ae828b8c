"""Read replicas: the services answer from a hot standby, writes go to the primary.

Two local clusters: a primary (``wal_level = replica``) and a hot standby made from it with
``pg_basebackup`` (streaming replication). ``skyvault serve --read-url <standby>`` runs with
the primary as its database. A hot standby refuses every write, so each request that writes
(sign-in throttling, sessions, tokens' last use, async job records) succeeding through this
server shows it went to the primary; replay paused on the standby shows the reads come from
it, and an ingest on the primary appears there once replay resumes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
import pytest
import release_calendar
import requests

from benchmarks.support import wait_for
from skyvault.cluster import EmbeddedCluster
from skyvault.ingest.testing import load_image_rows
from skyvault.schema.migrate import upgrade

CENTRE = (150.0, 2.0)
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sources(connection: psycopg.Connection, nid: int, pid: int, count: int) -> None:
    rng = np.random.default_rng(pid)
    ra = CENTRE[0] + rng.uniform(-0.01, 0.01, count)
    dec = CENTRE[1] + rng.uniform(-0.01, 0.01, count)
    load_image_rows(connection, "psf_sources", nid, pid, ra, dec)


def _caught_up(primary: EmbeddedCluster, standby: EmbeddedCluster) -> None:
    with psycopg.connect(primary.url(), autocommit=True) as connection:
        target = connection.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + 60
    with psycopg.connect(standby.url(), autocommit=True) as connection:
        while connection.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                 (target,)).fetchone()[0] is not True:
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.1)


@contextmanager
def _replay_paused(standby: EmbeddedCluster) -> Iterator[None]:
    with psycopg.connect(standby.url(), autocommit=True) as connection:
        connection.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        with psycopg.connect(standby.url(), autocommit=True) as connection:
            connection.execute("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="module")
def replicated() -> Iterator[dict]:
    base = Path(tempfile.mkdtemp(prefix="skyvault-replicas-", dir="/tmp"))
    base.chmod(0o755)
    primary = EmbeddedCluster(base / "primary" / "pgdata", base / "primary" / "run",
                              _free_port())
    primary.allow_replication()
    primary.start()
    standby = None
    server = None
    try:
        upgrade(primary.url())
        with psycopg.connect(primary.url(), autocommit=True) as connection:
            from skyvault.accounts.model import create_token, create_user

            release_calendar.prepare(connection)  # program 1's nights are public
            _sources(connection, 1, 1, 20)
            create_user(connection, "alice", PASSWORD)
            token = create_token(connection, "alice", "replica test").token
        standby = primary.make_standby(base / "standby" / "pgdata", base / "standby" / "run",
                                       _free_port())
        standby.start()
        _caught_up(primary, standby)
        port = _free_port()
        environment = {**os.environ, "SKYVAULT_DATABASE_URL": primary.url(),
                       "SKYVAULT_HOME": str(base / "home")}
        environment.pop("SKYVAULT_READ_DATABASE_URLS", None)
        log = (base / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "skyvault", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", "1", "--threads", "4", "--read-url", standby.url()],
            env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/tap/availability", seconds=90)
        yield {"primary": primary, "standby": standby, "url": url, "token": token,
               "base": base}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if standby is not None:
            standby.stop()
        primary.stop()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def _tap_count(url: str, **kwargs) -> int:
    response = requests.get(f"{url}/tap/sync", params={
        "LANG": "ADQL", "FORMAT": "csv", "QUERY": "SELECT count(*) AS n FROM survey.psf_sources"
        f" WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {CENTRE[0]},"
        f" {CENTRE[1]}, 0.1))"}, timeout=60, **kwargs)
    assert response.status_code == 200, response.text
    return int(response.text.splitlines()[1])


def test_queries_are_answered_by_the_standby(replicated) -> None:
    url, primary, standby = replicated["url"], replicated["primary"], replicated["standby"]
    assert _tap_count(url) == 20
    scs = requests.get(f"{url}/scs/psf_sources", params={
        "RA": CENTRE[0], "DEC": CENTRE[1], "SR": 0.1}, timeout=60)
    assert scs.status_code == 200 and scs.text.count("<TR>") == 20
    sia = requests.get(f"{url}/sia/query", params={"POS": "CIRCLE 150 2 1"}, timeout=60)
    assert sia.status_code == 200 and "QUERY_STATUS" in sia.text
    with psycopg.connect(standby.url(), autocommit=True) as connection:
        assert connection.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    with _replay_paused(standby):
        # An ingest on the primary while the standby does not replay: the service, reading
        # the standby, does not see it yet.
        with psycopg.connect(primary.url(), autocommit=True) as connection:
            _sources(connection, 2, 2, 7)
            on_primary = connection.execute(
                "SELECT count(*) FROM survey.psf_sources").fetchone()[0]
        assert on_primary == 27
        assert _tap_count(url) == 20
    _caught_up(primary, standby)
    assert _tap_count(url) == 27


def test_every_write_of_a_request_goes_to_the_primary(replicated) -> None:
    """Each of these writes would fail on the standby (read-only): they all succeed, and their
    rows are on the primary."""
    url, primary, token = replicated["url"], replicated["primary"], replicated["token"]
    wrong = requests.post(f"{url}/login", data={"username": "alice", "password": "nope"},
                          timeout=60)
    assert wrong.status_code == 401  # and the failure recorded for throttling
    with requests.Session() as browser:
        right = browser.post(f"{url}/login", data={"username": "alice", "password": PASSWORD},
                             timeout=60)
        assert right.status_code == 200, right.text
        assert browser.get(f"{url}/auth/whoami", timeout=60).json()["username"] == "alice"
    assert _tap_count(url, headers={"Authorization": f"Bearer {token}"}) >= 20
    assert _tap_count(url, auth=("alice", PASSWORD)) >= 20
    job = requests.post(f"{url}/tap/async", data={
        "LANG": "ADQL", "QUERY": "SELECT TOP 1 sourceid FROM survey.psf_sources"},
        headers={"Authorization": f"Bearer {token}"}, allow_redirects=False, timeout=60)
    assert job.status_code == 303, job.text
    document = requests.get(job.headers["Location"], timeout=60,
                            headers={"Authorization": f"Bearer {token}"})
    assert document.status_code == 200 and "PENDING" in document.text
    with psycopg.connect(primary.url()) as connection:
        failures = connection.execute("SELECT count(*) FROM archive.login_failures").fetchone()[0]
        sessions = connection.execute(
            "SELECT count(*) FROM archive.api_tokens WHERE kind = 'session'").fetchone()[0]
        used = connection.execute("SELECT last_used_at IS NOT NULL FROM archive.api_tokens"
                                  " WHERE label = 'replica test'").fetchone()[0]
        jobs = connection.execute("SELECT count(*) FROM archive.uws_jobs").fetchone()[0]
    assert failures >= 1 and sessions >= 1 and used and jobs == 1



def test_async_jobs_read_the_primary(replicated) -> None:
    """``skyvault worker`` given the standby as a read replica still runs TAP jobs on the
    primary (``stream_result(primary=True)``): with replay paused, a job sees the rows of an
    ingest that the standby, answering sync queries, does not show yet."""
    url, primary, standby = replicated["url"], replicated["primary"], replicated["standby"]
    base, token = replicated["base"], replicated["token"]
    log = base / "worker.log"
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": primary.url(),
                   "SKYVAULT_HOME": str(base / "home"),
                   "SKYVAULT_READ_DATABASE_URLS": standby.url()}
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "skyvault", "worker", "--concurrency", "1",
             "--poll-interval", "1"], env=environment, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    try:
        _caught_up(primary, standby)
        with _replay_paused(standby):
            on_standby = _tap_count(url)
            with psycopg.connect(primary.url(), autocommit=True) as connection:
                _sources(connection, 3, 3, 5)
                on_primary = connection.execute(
                    "SELECT count(*) FROM survey.psf_sources").fetchone()[0]
            assert on_primary == on_standby + 5 and _tap_count(url) == on_standby
            headers = {"Authorization": f"Bearer {token}"}
            job = requests.post(f"{url}/tap/async", data={
                "LANG": "ADQL", "FORMAT": "csv", "PHASE": "RUN",
                "QUERY": "SELECT count(*) AS n FROM survey.psf_sources"},
                headers=headers, allow_redirects=False, timeout=60)
            assert job.status_code == 303, job.text
            location = job.headers["Location"]
            deadline = time.monotonic() + 120
            while (phase := requests.get(f"{location}/phase", headers=headers,
                                         timeout=60).text.strip()) not in {"COMPLETED", "ERROR"}:
                assert time.monotonic() < deadline, (phase, log.read_text())
                time.sleep(0.5)
            assert phase == "COMPLETED", log.read_text()
            result = requests.get(f"{location}/results/result", headers=headers, timeout=60)
            assert result.status_code == 200, result.text
            assert int(result.text.splitlines()[1]) == on_primary
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    _caught_up(primary, standby)
