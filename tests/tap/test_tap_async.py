"""/tap/async: UWS 1.1 jobs run by the separate `skyvault worker` process, over real HTTP.

Citations are to UWS 1.1 (../shared/ivoa/specs/UWS-1.1.html) and DALI 1.1.
"""

from __future__ import annotations

import datetime as dt
import io
import signal
import threading
import time

import pytest
import requests
from astropy.io.votable import parse_single_table
from lxml import etree
from tap_seed import BASE, N_STARS, visible_exposures
from worker_process import web_process_running_jobs
from xsd_support import UWS, assert_valid

from skyvault.config import settings
from skyvault.db import Database
from skyvault.vo.uws import format_time

UWS_NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}
SEEDED = f"sourceid BETWEEN {BASE} AND {BASE + 99_999}"
# Runs for minutes unless stopped: four-way product of TAP_SCHEMA.columns.
SLOW = ("SELECT COUNT(*) AS slow_marker FROM tap_schema.columns AS a, tap_schema.columns AS b,"
        " tap_schema.columns AS c, tap_schema.columns AS d")


def create(tap, *pairs: tuple[str, str], headers=None, files=None) -> str:
    response = requests.post(f"{tap.url}/async", data=list(pairs), headers=headers, files=files,
                             allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def job_xml(url: str, headers=None, **params) -> etree._Element:
    response = requests.get(url, params=params, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    assert_valid(response.content, *UWS)
    return etree.fromstring(response.content)


def phase_of(url: str, headers=None) -> str:
    return requests.get(f"{url}/phase", headers=headers, timeout=30).text


def run(url: str, headers=None) -> None:
    response = requests.post(f"{url}/phase", data={"PHASE": "RUN"}, headers=headers,
                             allow_redirects=False, timeout=30)
    assert response.status_code == 303 and response.headers["Location"] == url


def wait_final(url: str, headers=None, limit: float = 120) -> str:
    """Block with WAIT until the job leaves its active phases (UWS 1.1 2.2.1.2)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        phase = job_xml(url, headers, WAIT="10").findtext("uws:phase", namespaces=UWS_NS)
        if phase not in ("PENDING", "QUEUED", "EXECUTING"):
            return phase
    raise AssertionError(f"{url} still active after {limit} s")


def wait_phase(url: str, wanted: str, headers=None, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while phase_of(url, headers) != wanted:
        assert time.monotonic() < deadline, f"{url} never reached {wanted}"
        time.sleep(0.1)


def adql(query: str, *more: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("LANG", "ADQL"), ("QUERY", query), *more)


def result_table(url: str, headers=None):
    response = requests.get(f"{url}/results/result", headers=headers, timeout=60)
    assert response.status_code == 200
    return parse_single_table(io.BytesIO(response.content)).array


def test_a_job_runs_to_completion(tap) -> None:
    """UWS 2.2.3.1: 303 to the new job; it waits PENDING until PHASE=RUN; TAP 1.1 2.2.2: its
    result is /results/result."""
    url = create(tap, *adql(f"SELECT sourceid, mag FROM survey.psf_sources WHERE {SEEDED}",
                            ("MAXREC", "5")), ("RUNID", "my-run"))
    job = job_xml(url)
    assert job.get("version") == "1.1"
    assert job.findtext("uws:phase", namespaces=UWS_NS) == "PENDING"
    assert job.findtext("uws:runId", namespaces=UWS_NS) == "my-run"
    assert job.find("uws:ownerId", UWS_NS).get("{http://www.w3.org/2001/XMLSchema-instance}nil")
    parameters = {p.get("id"): p.text for p in job.findall("uws:parameters/uws:parameter",
                                                            UWS_NS)}
    assert parameters["query"].startswith("SELECT sourceid") and parameters["maxrec"] == "5"
    assert phase_of(url) == "PENDING"
    run(url)
    assert wait_final(url) == "COMPLETED"
    job = job_xml(url)
    for element in ("startTime", "endTime", "destruction"):
        assert job.findtext(f"uws:{element}", namespaces=UWS_NS).endswith("Z")
    results = etree.fromstring(requests.get(f"{url}/results", timeout=30).content)
    reference = results.find("uws:result", UWS_NS)
    assert reference.get("id") == "result"
    assert reference.get("{http://www.w3.org/1999/xlink}href") == f"{url}/results/result"
    response = requests.get(f"{url}/results/result", timeout=30)
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert int(reference.get("size")) == len(response.content)
    assert len(result_table(url)) == 5
    assert b'<INFO name="QUERY_STATUS" value="OVERFLOW"/>' in response.content
    assert requests.get(f"{url}/results/other", timeout=30).status_code == 404
    assert requests.get(f"{url}/error", timeout=30).status_code == 404
    assert requests.get(f"{url}/quote", timeout=30).text == ""
    assert requests.get(f"{url}/owner", timeout=30).text == ""
    assert int(requests.get(f"{url}/executionduration", timeout=30).text) > 0


def test_phase_run_on_creation_and_empty_results(tap) -> None:
    """TAP 1.1 2.2.2: a query without rows still has its result, with no data rows."""
    url = create(tap, *adql("SELECT expid FROM survey.exposures WHERE expid < 0"),
                 ("PHASE", "RUN"), ("RESPONSEFORMAT", "csv"))
    assert wait_final(url) == "COMPLETED"
    response = requests.get(f"{url}/results/result", timeout=30)
    assert response.status_code == 200 and response.text.splitlines() == ["expid"]
    assert response.headers["Content-Type"].startswith("text/csv")


def test_a_failing_query_ends_in_error_with_an_error_document(tap) -> None:
    """DALI 1.1 4.2: TAP parameters are checked when the job runs; the error document is at
    /error with status 200."""
    url = create(tap, *adql("SELECT nothing FROM nowhere"), ("PHASE", "RUN"))
    assert wait_final(url) == "ERROR"
    job = job_xml(url)
    assert "nowhere" in job.findtext("uws:errorSummary/uws:message", namespaces=UWS_NS)
    error = requests.get(f"{url}/error", timeout=30)
    assert error.status_code == 200
    assert error.headers["Content-Type"] == "application/x-votable+xml"
    assert b'value="ERROR"' in error.content and b"nowhere" in error.content
    assert requests.get(f"{url}/results/result", timeout=30).status_code == 404
    bad_lang = create(tap, ("LANG", "SQL"), ("QUERY", "SELECT 1"), ("PHASE", "RUN"))
    assert wait_final(bad_lang) == "ERROR"


# Fails on its last rows, megabytes into the result: after the first rows were written.
LATE_FAILURE = ("SELECT a.column_name AS x, b.description AS d, 1 / (CASE WHEN a.table_name = "
                "'tap_schema.key_columns' AND b.column_index = 3 THEN 0 ELSE 1 END) AS y "
                "FROM tap_schema.columns AS a, tap_schema.columns AS b")


@pytest.mark.parametrize("response_format", ["votable", "csv"])
def test_a_failure_after_the_first_rows_ends_the_job_in_error(tap, response_format) -> None:
    """DALI 1.1 4.4.2: the job fails, whether the writer reported the failure in the document
    (VOTable) or could not (CSV); no truncated result is kept."""
    url = create(tap, *adql(LATE_FAILURE, ("MAXREC", "10000000"),
                            ("RESPONSEFORMAT", response_format)), ("PHASE", "RUN"))
    assert wait_final(url) == "ERROR"
    message = job_xml(url).findtext("uws:errorSummary/uws:message", namespaces=UWS_NS)
    assert "division by zero" in message
    assert requests.get(f"{url}/results/result", timeout=30).status_code == 404


def _running_slow_queries(database: Database) -> int:
    with database.admin() as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            " AND query LIKE '%%slow_marker%%' AND pid <> pg_backend_pid()").fetchone()[0]


def test_abort_stops_the_running_query(tap, database) -> None:
    """UWS 2.2.3.6: PHASE=ABORT -> 303, ABORTED; the worker cancels the database query."""
    url = create(tap, *adql(SLOW), ("PHASE", "RUN"))
    wait_phase(url, "EXECUTING")
    response = requests.post(f"{url}/phase", data={"phase": "ABORT"}, allow_redirects=False,
                             timeout=30)
    assert response.status_code == 303 and response.headers["Location"] == url
    assert phase_of(url) == "ABORTED"
    deadline = time.monotonic() + 30
    while _running_slow_queries(database):
        assert time.monotonic() < deadline, "the aborted query still runs"
        time.sleep(0.2)
    assert phase_of(url) == "ABORTED"
    assert requests.get(f"{url}/results/result", timeout=30).status_code == 404


def test_execution_duration_limits_the_query(tap) -> None:
    """UWS 2.1.4 and the issue: EXECUTIONDURATION becomes the statement timeout."""
    url = create(tap, *adql(SLOW), ("EXECUTIONDURATION", "1"))
    assert requests.get(f"{url}/executionduration", timeout=30).text == "1"
    run(url)
    assert wait_final(url) == "ERROR"
    message = job_xml(url).findtext("uws:errorSummary/uws:message", namespaces=UWS_NS)
    assert "limit of 1 s" in message


def test_execution_duration_and_destruction_can_be_changed(tap) -> None:
    """UWS 2.2.3.3-4: 303 back to the job, which shows what the service actually set."""
    url = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"))
    response = requests.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "77"},
                             allow_redirects=False, timeout=30)
    assert response.status_code == 303 and response.headers["Location"] == url
    assert job_xml(url).findtext("uws:executionDuration", namespaces=UWS_NS) == "77"
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=5)
    response = requests.post(f"{url}/destruction", data={"DESTRUCTION": format_time(when)},
                             allow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert requests.get(f"{url}/destruction", timeout=30).text == format_time(when)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    requests.post(f"{url}/destruction", data={"DESTRUCTION": format_time(far)}, timeout=30)
    kept = dt.datetime.fromisoformat(requests.get(f"{url}/destruction", timeout=30).text)
    assert kept < far - dt.timedelta(days=3000)
    bad = requests.post(f"{url}/destruction", data={"DESTRUCTION": "tomorrow"}, timeout=30)
    assert bad.status_code == 400


def test_parameters_change_only_while_pending(tap) -> None:
    url = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"))
    response = requests.post(f"{url}/parameters",
                             data={"QUERY": "SELECT TOP 2 expid FROM survey.exposures"},
                             allow_redirects=False, timeout=30)
    assert response.status_code == 303
    parameters = etree.fromstring(requests.get(f"{url}/parameters", timeout=30).content)
    assert parameters.findtext("uws:parameter[@id='query']", namespaces=UWS_NS) == (
        "SELECT TOP 2 expid FROM survey.exposures")
    run(url)
    assert wait_final(url) == "COMPLETED"
    assert len(result_table(url)) == 2
    late = requests.post(f"{url}/parameters", data={"QUERY": "x"}, timeout=30)
    assert late.status_code == 403
    again = requests.post(f"{url}/phase", data={"PHASE": "RUN"}, timeout=30)
    assert again.status_code == 403


def test_deleting_a_job(tap) -> None:
    """UWS 2.2.3.2: DELETE, or POST ACTION=DELETE, -> 303 to the job list; then 404."""
    for how in ("DELETE", "ACTION"):
        url = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"), ("PHASE", "RUN"))
        wait_final(url)
        folder = settings().job_results_root / url.rsplit("/", 1)[1]
        assert folder.is_dir()
        if how == "DELETE":
            response = requests.delete(url, allow_redirects=False, timeout=30)
        else:
            response = requests.post(url, data={"ACTION": "DELETE"}, allow_redirects=False,
                                     timeout=30)
        assert response.status_code == 303
        assert response.headers["Location"] == f"{tap.url}/async"
        assert requests.get(url, timeout=30).status_code == 404
        assert requests.get(f"{url}/phase", timeout=30).status_code == 404
        assert not folder.exists()


def test_a_job_is_gone_after_its_destruction_time(tap) -> None:
    url = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"), ("PHASE", "RUN"))
    wait_final(url)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    requests.post(f"{url}/destruction", data={"DESTRUCTION": format_time(soon)}, timeout=30)
    time.sleep(1.5)
    assert requests.get(url, timeout=30).status_code == 404


def test_jobs_belong_to_their_owner(tap) -> None:
    """UWS 3: a user sees only their jobs; to anyone else a job does not exist (404 rather
    than 403, so that its existence is not revealed)."""
    alice = tap.alice.headers
    url = create(tap, *adql(f"SELECT COUNT(*) AS n FROM survey.psf_sources WHERE {SEEDED}",
                            ("RESPONSEFORMAT", "csv")), ("PHASE", "RUN"), headers=alice)
    assert wait_final(url, alice) == "COMPLETED"
    assert job_xml(url, alice).findtext("uws:ownerId", namespaces=UWS_NS) == "tap-alice"
    assert requests.get(f"{url}/owner", headers=alice, timeout=30).text == "tap-alice"
    count = requests.get(f"{url}/results/result", headers=alice, timeout=30).text.split()[1]
    assert int(count) == len(visible_exposures({2})) * N_STARS
    for outsider in ({}, tap.bob.headers):
        for path in ("", "/phase", "/results", "/results/result", "/parameters", "/error"):
            assert requests.get(f"{url}{path}", headers=outsider, timeout=30).status_code == 404
        assert requests.delete(url, headers=outsider, timeout=30).status_code == 404
        assert requests.post(f"{url}/phase", data={"PHASE": "ABORT"}, headers=outsider,
                             timeout=30).status_code == 404
    job_id = url.rsplit("/", 1)[1]
    listed = etree.fromstring(requests.get(f"{tap.url}/async", headers=alice, timeout=30)
                              .content)
    assert job_id in listed.xpath("//uws:jobref/@id", namespaces=UWS_NS)
    for outsider in ({}, tap.bob.headers):
        others = etree.fromstring(requests.get(f"{tap.url}/async", headers=outsider,
                                               timeout=30).content)
        assert job_id not in others.xpath("//uws:jobref/@id", namespaces=UWS_NS)


def test_results_are_withheld_once_the_owner_loses_a_program(tap, database) -> None:
    """A result file holds the rows its owner could see when the job ran: after the owner's
    program-2 membership is withdrawn, the job's results (and their sizes) are no longer
    served; granted again, they are."""
    from skyvault.accounts import model as accounts

    alice = tap.alice.headers
    url = create(tap, *adql(f"SELECT COUNT(*) AS n FROM survey.psf_sources WHERE {SEEDED}",
                            ("RESPONSEFORMAT", "csv")), ("PHASE", "RUN"), headers=alice)
    assert wait_final(url, alice) == "COMPLETED"
    assert requests.get(f"{url}/results/result", headers=alice, timeout=30).status_code == 200
    with database.admin() as connection:
        accounts.revoke_programs(connection, "tap-alice", [2])
    try:
        refused = requests.get(f"{url}/results/result", headers=alice, timeout=30)
        assert refused.status_code == 403 and "withheld" in refused.text
        results = etree.fromstring(requests.get(f"{url}/results", headers=alice,
                                                timeout=30).content)
        assert results.findall("uws:result", UWS_NS) == []
        assert job_xml(url, alice).findall("uws:results/uws:result", UWS_NS) == []
        assert phase_of(url, alice) == "COMPLETED"
    finally:
        with database.admin() as connection:
            accounts.grant_programs(connection, "tap-alice", [2])
    again = requests.get(f"{url}/results/result", headers=alice, timeout=30)
    assert again.status_code == 200
    assert int(again.text.split()[1]) == len(visible_exposures({2})) * N_STARS


def test_anonymous_jobs_are_reachable_only_by_their_url(tap) -> None:
    url = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"))
    job_id = url.rsplit("/", 1)[1]
    assert len(job_id) >= 22
    listed = requests.get(f"{tap.url}/async", timeout=30)
    assert_valid(listed.content, *UWS)
    assert job_id not in listed.text
    assert requests.get(url, timeout=30).status_code == 200
    assert requests.get(f"{tap.url}/async/{job_id[:-1]}x", timeout=30).status_code == 404
    assert requests.get(f"{tap.url}/async/..%2Fetc", timeout=30).status_code == 404


def test_job_list_filters(tap) -> None:
    """UWS 1.1 2.2.2.1: PHASE (repeatable), AFTER, LAST (most recent first)."""
    alice = tap.alice.headers
    before = dt.datetime.now(dt.UTC)
    pending = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"), headers=alice)
    done = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"), ("PHASE", "RUN"),
                  headers=alice)
    wait_final(done, alice)

    def listed(**params) -> list[str]:
        response = requests.get(f"{tap.url}/async", params=params, headers=alice, timeout=30)
        assert_valid(response.content, *UWS)
        return [f"{tap.url}/async/{i}" for i in etree.fromstring(response.content).xpath(
            "//uws:jobref/@id", namespaces=UWS_NS)]

    assert pending in listed(PHASE="PENDING") and done not in listed(PHASE="PENDING")
    assert {pending, done} <= set(listed(PHASE=["PENDING", "COMPLETED"]))
    assert listed(AFTER=format_time(before)) == [pending, done]
    assert listed(LAST="1") == [done]
    assert requests.get(f"{tap.url}/async", params={"PHASE": "SOMETIME"},
                        timeout=30).status_code == 400


def test_wait_returns_on_phase_change_or_timeout(tap) -> None:
    """UWS 1.1 2.2.1.2: WAIT blocks while active; PHASE makes it return at once when the job
    is no longer in that phase; finished jobs answer at once."""
    url = create(tap, *adql("SELECT TOP 1 expid FROM survey.exposures"))
    assert job_xml(url, WAIT="1").findtext("uws:phase", namespaces=UWS_NS) == "PENDING"
    assert job_xml(url, WAIT="30", PHASE="QUEUED").findtext(
        "uws:phase", namespaces=UWS_NS) == "PENDING"
    changed: list[str] = []
    waiter = threading.Thread(target=lambda: changed.append(
        job_xml(url, WAIT="60").findtext("uws:phase", namespaces=UWS_NS)))
    waiter.start()
    time.sleep(0.5)
    run(url)
    waiter.join(timeout=60)
    assert changed and changed[0] != "PENDING"
    assert wait_final(url) == "COMPLETED"
    assert job_xml(url, WAIT="-1").findtext("uws:phase", namespaces=UWS_NS) == "COMPLETED"
    assert requests.get(url, params={"WAIT": "soon"}, timeout=30).status_code == 400


def test_inline_upload_in_an_async_job(tap) -> None:
    """UWS 2.2.3.1.1: an inline parameter is kept with the job and shown by reference."""
    votable = UPLOAD_VOTABLE.encode()
    url = create(tap, *adql("SELECT * FROM TAP_UPLOAD.mine"), ("UPLOAD", "mine,param:table1"),
                 files={"table1": ("t.vot", votable, "application/x-votable+xml")})
    parameters = etree.fromstring(requests.get(f"{url}/parameters", timeout=30).content)
    reference = parameters.find("uws:parameter[@id='table1']", UWS_NS)
    assert reference.get("byReference") == "true"
    assert requests.get(reference.text, timeout=30).content == votable
    run(url)
    assert wait_final(url) == "COMPLETED"
    assert list(result_table(url)["name"]) == ["a", "b"]


UPLOAD_VOTABLE = """<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="name" datatype="char" arraysize="*"/><FIELD name="ra" datatype="double"/>
<DATA><TABLEDATA><TR><TD>a</TD><TD>1.5</TD></TR><TR><TD>b</TD><TD>2.5</TD></TR></TABLEDATA>
</DATA></TABLE></RESOURCE></VOTABLE>"""


@pytest.mark.slow
def test_queued_jobs_survive_a_worker_restart_and_a_killed_worker(tap, job_worker) -> None:
    """Jobs live in PostgreSQL: queued while no worker runs, they run when one starts; a job
    whose worker dies mid-way is requeued by the next worker (after the heartbeat goes stale)
    and completes."""
    job_worker.stop()
    try:
        queued = create(tap, *adql("SELECT TOP 3 expid FROM survey.exposures"), ("PHASE", "RUN"))
        time.sleep(1.0)
        assert phase_of(queued) == "QUEUED"
    finally:
        job_worker.start()
    assert wait_final(queued) == "COMPLETED"

    slow = create(tap, *adql(SLOW), ("EXECUTIONDURATION", "6"), ("PHASE", "RUN"))
    wait_phase(slow, "EXECUTING")
    job_worker.stop(signal.SIGKILL)
    job_worker.start()
    # The new worker finds the job's heartbeat stale (5 s here), queues it again and runs it;
    # the query then stops at its 6 s limit, which ends the job in ERROR, not EXECUTING.
    assert wait_final(slow, limit=120) == "ERROR"
    assert "limit of 6 s" in job_xml(slow).findtext("uws:errorSummary/uws:message",
                                                     namespaces=UWS_NS)


def test_the_web_process_can_run_jobs_itself(tap, job_worker, database) -> None:
    """For the demo and tests: TAP_INPROCESS_WORKERS runs jobs in the web process."""
    with web_process_running_jobs(job_worker) as server:
        base = f"{server}/tap"
        url = create(type(tap)(base, tap.alice, tap.bob),
                     *adql("SELECT TOP 2 expid FROM survey.exposures"), ("PHASE", "RUN"))
        assert wait_final(url) == "COMPLETED"
        assert len(result_table(url)) == 2
        # The same job, through the session's server: jobs are the database's, not a process's.
        assert phase_of(url.replace(base, tap.url)) == "COMPLETED"
