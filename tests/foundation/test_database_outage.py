"""While the database cannot be reached, requests get 503 with Retry-After in their protocol's
own format, never a 500; once it is back, every request succeeds again at once.

The test runs its own throwaway cluster (the session's stays up for the other tests) and an
application pointed at it, stops the cluster (fast shutdown), asks every kind of service, then
starts it again; a second round restarts it with an immediate shutdown, after which the pool's
dead connections must not fail a single request.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from lxml import etree

from benchmarks.support import throwaway_cluster
from skyvault import db as db_module
from skyvault.accounts import model as accounts
from skyvault.db import APP_ROLE, Database, DatabaseUrls
from skyvault.schema.migrate import upgrade

ADQL = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 programid FROM survey.programs"}
VOTABLE = "application/x-votable+xml"
# (method, path, parameters, error format)
REQUESTS = [
    ("GET", "/tap/sync", ADQL, "votable"),
    ("POST", "/tap/sync", ADQL, "votable"),
    ("GET", "/sia/query", {"POS": "CIRCLE 10 10 0.1"}, "votable"),
    ("GET", "/scs/psf_sources", {"RA": "10", "DEC": "10", "SR": "0.01"}, "votable"),
    ("GET", "/datalink/links", {"ID": "ivo://skyvault/sci?1"}, "votable"),
    ("POST", "/tap/async", ADQL, "uws"),
    ("GET", "/search", {"position": "10 10"}, "html"),
    ("GET", "/catalogs", {"position": "10 10", "radius": "1"}, "html"),
    ("GET", "/files/sci/no/such.fits", {}, "text"),
]


@pytest.fixture(scope="module")
def outage() -> Iterator[tuple[object, str, str]]:
    """(cluster, base URL of an app on it, a user's token)."""
    from served_app import stop_job_threads
    from werkzeug.serving import make_server

    from skyvault.server.app import create_app

    cluster, base = throwaway_cluster(prefix="skyvault-outage-")
    session_database = db_module.database()
    handle = None
    try:
        upgrade(cluster.url())
        with Database(DatabaseUrls(cluster.url(), cluster.url(user=APP_ROLE))).admin() as conn:
            accounts.create_user(conn, "outage-dora", accounts.generate_password())
            token = accounts.create_token(conn, "outage-dora", "outage test").token
        handle = Database(DatabaseUrls(cluster.url(), cluster.url(user=APP_ROLE)),
                          wait_seconds=2)
        db_module.set_database(handle)
        app = create_app({"TAP_INPROCESS_WORKERS": 0})
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield cluster, f"http://127.0.0.1:{server.server_port}", token
        finally:
            server.shutdown()
            stop_job_threads(app)
    finally:
        db_module.set_database(session_database)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def _ask(base: str, method: str, path: str, params: dict, headers=None) -> requests.Response:
    if method == "GET":
        return requests.get(base + path, params=params, headers=headers, timeout=60,
                            allow_redirects=False)
    return requests.post(base + path, data=params, headers=headers, timeout=60,
                         allow_redirects=False)


def _assert_unavailable(response: requests.Response, form: str) -> None:
    assert response.status_code == 503, (response.request.url, response.text[:300])
    assert int(response.headers["Retry-After"]) > 0
    content_type = response.headers["Content-Type"]
    if form == "votable":
        assert content_type == VOTABLE
        info = etree.fromstring(response.content).find(
            "{*}RESOURCE/{*}INFO[@name='QUERY_STATUS']")
        assert info.get("value") == "ERROR" and "try again" in info.text
    elif form == "html":
        assert content_type.startswith("text/html") and "try again" in response.text
    else:
        assert content_type.startswith("text/plain") and "try again" in response.text


def _assert_answered(base: str, token: str) -> None:
    for method, path, params, _ in REQUESTS:
        for headers in (None, {"Authorization": f"Bearer {token}"}):
            response = _ask(base, method, path, params, headers)
            assert response.status_code < 500, (method, path, response.status_code,
                                                response.text[:300])


def test_requests_get_503_while_the_database_is_down_and_succeed_after(outage) -> None:
    cluster, base, token = outage
    _assert_answered(base, token)
    cluster.stop()  # pg_ctl stop -m fast
    try:
        for method, path, params, form in REQUESTS:
            _assert_unavailable(_ask(base, method, path, params), form)
        # Signed in: the credentials cannot be checked either.
        bearer = {"Authorization": f"Bearer {token}"}
        _assert_unavailable(_ask(base, "GET", "/tap/sync", ADQL, bearer), "votable")
        _assert_unavailable(_ask(base, "GET", "/query", {}, bearer), "html")
        available = requests.get(f"{base}/tap/availability", timeout=60)
        assert available.status_code == 200 and "<vosi:available>false" in available.text
    finally:
        cluster.start()
    _assert_answered(base, token)


def test_no_request_fails_after_an_immediate_restart(outage) -> None:
    """Every pooled connection died with the server; none may fail a request after."""
    cluster, base, token = outage
    _assert_answered(base, token)
    assert cluster.stop(mode="immediate")
    cluster.start()
    _assert_answered(base, token)


def test_a_job_the_restart_interrupted_runs_again_and_completes(outage) -> None:
    """A job whose query the restart cut is queued again (it was not the query's fault) and
    completes once, with one correct result."""
    from skyvault.server.uws.worker import WorkerSettings
    from skyvault.server.worker import archive_worker

    cluster, base, _ = outage
    handle = db_module.database()
    worker = archive_worker(handle, WorkerSettings(concurrency=1, poll_interval=0.5,
                                                   heartbeat_interval=0.5, stale_after=3,
                                                   sweep_interval=0.5))
    stop = threading.Event()
    threads = worker.serve(stop)
    try:
        columns = int(requests.get(f"{base}/tap/sync", params={
            "LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM tap_schema.columns",
            "RESPONSEFORMAT": "csv"}, timeout=60).text.split()[1])
        created = requests.post(f"{base}/tap/async", data={
            "LANG": "ADQL", "RESPONSEFORMAT": "csv", "PHASE": "RUN",
            "QUERY": "SELECT COUNT(*) AS n FROM tap_schema.columns AS a, tap_schema.columns"
                     " AS b, tap_schema.columns AS c"}, allow_redirects=False, timeout=60)
        job = created.headers["Location"]
        deadline = time.monotonic() + 60
        while requests.get(f"{job}/phase", timeout=30).text != "EXECUTING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cluster.stop()
        cluster.start()
        deadline = time.monotonic() + 180
        while (phase := requests.get(f"{job}/phase", timeout=30).text) in (
                "QUEUED", "EXECUTING"):
            assert time.monotonic() < deadline, phase
            time.sleep(0.5)
        assert phase == "COMPLETED", requests.get(job, timeout=30).text
        result = requests.get(f"{job}/results/result", timeout=60)
        assert int(result.text.split()[1]) == columns ** 3
        listed = etree.fromstring(requests.get(f"{job}/results", timeout=30).content)
        assert len(listed.findall("{*}result")) == 1
    finally:
        worker.stop(stop, threads)
