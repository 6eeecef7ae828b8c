"""SODA 1.0 {async} over UWS 1.1: one result per combination of values, text results for
combinations without data, owners' jobs private, errors in the job's error resource. Jobs are
run by the session's `skyvault worker` process (``job_worker``), as in production."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import threading
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from pyvo.dal.tap import AsyncTAPJob
from pyvo.io.uws import parse_job
from served_app import served_app
from worker_process import web_process_running_jobs

from skyvault.server.images.soda_async import SODA_JOBS, soda_error_text

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


@pytest.fixture(autouse=True)
def worker(job_worker):
    """Every job of this module runs in the worker process, none in the web process."""
    return job_worker


def create(base: str, pairs: list[tuple[str, str]], headers=None) -> str:
    response = requests.post(f"{base}/soda/async", data=pairs, headers=headers,
                             allow_redirects=False, timeout=60)
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def wait(job_url: str, headers=None) -> str:
    for _ in range(20):
        document = requests.get(job_url, params={"WAIT": "10"}, headers=headers,
                                timeout=60).text
        phase = re.search(r"<uws:phase>(\w+)</uws:phase>", document).group(1)
        if phase not in ("QUEUED", "EXECUTING", "PENDING"):
            return phase
    raise AssertionError(document)


def results(job_url: str, headers=None) -> list[tuple[str, str, str]]:
    document = requests.get(f"{job_url}/results", headers=headers, timeout=60).text
    return re.findall(r'<uws:result id="([^"]+)" xlink:type="simple" xlink:href="([^"]+)"'
                      r'(?: size="\d+")? mime-type="([^"]+)"', document)


def test_every_combination_gives_a_result(live_server, world) -> None:
    public, far = world.did("sci", "sci_public"), world.did("sci", "sci_far")
    url = create(live_server, [("ID", public), ("ID", far), ("CIRCLE", "150.0 2.0 0.01"),
                               ("CIRCLE", "150.01 2.01 0.005"), ("PHASE", "RUN")])
    assert wait(url) == "COMPLETED"
    found = results(url)
    assert len(found) == 4
    kinds = [mime for _, _, mime in found]
    assert kinds == ["application/fits", "application/fits", "text/plain", "text/plain"]
    cutout = fits.open(io.BytesIO(requests.get(found[0][1], timeout=60).content))[0]
    synchronous = requests.get(f"{live_server}/soda/sync", params={
        "ID": public, "CIRCLE": "150.0 2.0 0.01"}, timeout=60).content
    assert np.array_equal(cutout.data, fits.open(io.BytesIO(synchronous))[0].data)
    message = requests.get(found[2][1], timeout=60).text
    assert message.startswith("Error: no overlap")


def test_jobs_wait_in_pending_until_run(live_server, world) -> None:
    url = create(live_server, [("ID", world.did("ref", "ref")), ("PIXEL_1", "1 10"),
                               ("RUNID", "mine")])
    assert requests.get(f"{url}/phase", timeout=30).text == "PENDING"
    run = requests.post(f"{url}/phase", data={"PHASE": "RUN"}, allow_redirects=False,
                        timeout=30)
    assert run.status_code == 303
    assert wait(url) == "COMPLETED"
    document = requests.get(url, timeout=30).text
    assert "<uws:runId>mine</uws:runId>" in document
    (result,) = results(url)
    assert fits.open(io.BytesIO(requests.get(result[1], timeout=60).content))[0].data.shape == (
        220, 10)
    deleted = requests.delete(url, allow_redirects=False, timeout=30)
    assert deleted.status_code == 303
    assert requests.get(url, timeout=30).status_code == 404


def test_a_request_that_cannot_run_ends_in_error(live_server, world) -> None:
    url = create(live_server, [("ID", world.did("sci", "sci_public")), ("CIRCLE", "1 2"),
                               ("PHASE", "RUN")])
    assert wait(url) == "ERROR"
    error = requests.get(f"{url}/error", timeout=30)
    assert error.status_code == 200 and error.text.startswith("UsageError: CIRCLE")


def test_hidden_images_are_results_saying_not_found_and_members_get_them(live_server,
                                                                         world) -> None:
    embargoed = world.did("sci", "sci_embargoed")
    anonymous = create(live_server, [("ID", embargoed), ("CIRCLE", "150.02 2.01 0.005"),
                                     ("PHASE", "RUN")])
    assert wait(anonymous) == "COMPLETED"
    (result,) = results(anonymous)
    assert result[2] == "text/plain"
    assert requests.get(result[1], timeout=30).text.startswith("UsageError: no dataset")
    member = {"Authorization": f"Bearer {world.member_token}"}
    owned = create(live_server, [("ID", embargoed), ("CIRCLE", "150.02 2.01 0.005"),
                                 ("PHASE", "RUN")], headers=member)
    assert wait(owned, member) == "COMPLETED"
    (mine,) = results(owned, member)
    assert mine[2] == "application/fits"
    # The member's job is invisible to anyone else, the listing included.
    assert requests.get(owned, timeout=30).status_code == 404
    assert requests.get(mine[1], timeout=30).status_code == 404
    listing = requests.get(f"{live_server}/soda/async", headers=member, timeout=30).text
    assert owned.rsplit("/", 1)[1] in listing
    outsider = {"Authorization": f"Bearer {world.outsider_token}"}
    assert owned.rsplit("/", 1)[1] not in requests.get(
        f"{live_server}/soda/async", headers=outsider, timeout=30).text


def test_uws_resources(live_server, world) -> None:
    url = create(live_server, [("ID", world.did("sci", "sci_public")), ("PIXEL_1", "1 5")])
    assert requests.get(f"{url}/executionduration", timeout=30).text == "600"
    assert requests.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "60"},
                         allow_redirects=False, timeout=30).status_code == 303
    assert requests.get(f"{url}/executionduration", timeout=30).text == "60"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", requests.get(f"{url}/destruction",
                                                             timeout=30).text)
    assert "pixel_1" in requests.get(f"{url}/parameters", timeout=30).text
    assert requests.get(f"{url}/error", timeout=30).status_code == 404
    assert requests.post(f"{url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False,
                         timeout=30).status_code == 303
    assert requests.get(f"{url}/phase", timeout=30).text == "ABORTED"
    assert requests.post(f"{url}/phase", data={"PHASE": "RUN"}, timeout=30).status_code == 403
    assert requests.get(f"{live_server}/soda/async/not-a-job-id-at-all",
                        timeout=30).status_code == 404


def phase_of(job_url: str, headers=None) -> str:
    return requests.get(f"{job_url}/phase", headers=headers, timeout=30).text


def test_a_job_queued_while_no_worker_runs_runs_when_one_starts(live_server, world,
                                                                job_worker) -> None:
    """Jobs live in PostgreSQL, not in the web process: queued with no worker, a job waits in
    QUEUED and completes once a worker starts."""
    job_worker.stop()
    try:
        url = create(live_server, [("ID", world.did("sci", "sci_public")),
                                   ("CIRCLE", "150.0 2.0 0.01"), ("PHASE", "RUN")])
        time.sleep(1.0)
        assert phase_of(url) == "QUEUED"
    finally:
        job_worker.start()
    assert wait(url) == "COMPLETED"
    ((_, href, mime),) = results(url)
    assert mime == "application/fits"
    assert fits.open(io.BytesIO(requests.get(href, timeout=60).content))[0].data.size > 0


def test_tap_and_soda_jobs_are_apart(live_server, world) -> None:
    """One table holds the jobs of both services; a job id of one is unknown to the other,
    for its owner too (404 as for any unknown job), and each service lists its own jobs."""
    member = {"Authorization": f"Bearer {world.member_token}"}
    soda = create(live_server, [("ID", world.did("sci", "sci_public")), ("PIXEL_1", "1 5")],
                  headers=member)
    created = requests.post(f"{live_server}/tap/async", data={
        "LANG": "ADQL", "QUERY": "SELECT TOP 1 expid FROM survey.exposures"},
        headers=member, allow_redirects=False, timeout=30)
    assert created.status_code == 303
    tap = created.headers["Location"]
    soda_id, tap_id = soda.rsplit("/", 1)[1], tap.rsplit("/", 1)[1]
    for wrong in (f"{live_server}/tap/async/{soda_id}", f"{live_server}/soda/async/{tap_id}"):
        for path in ("", "/phase", "/parameters", "/results"):
            assert requests.get(f"{wrong}{path}", headers=member,
                                timeout=30).status_code == 404
        assert requests.post(f"{wrong}/phase", data={"PHASE": "RUN"}, headers=member,
                             timeout=30).status_code == 404
        assert requests.delete(wrong, headers=member, timeout=30).status_code == 404
    soda_list = requests.get(f"{live_server}/soda/async", headers=member, timeout=30).text
    tap_list = requests.get(f"{live_server}/tap/async", headers=member, timeout=30).text
    assert soda_id in soda_list and tap_id not in soda_list
    assert tap_id in tap_list and soda_id not in tap_list
    assert phase_of(soda, member) == "PENDING" and phase_of(tap, member) == "PENDING"


def test_the_web_process_can_run_soda_jobs_itself(live_server, world, job_worker) -> None:
    """For the demo and tests: SODA_INPROCESS_WORKERS runs SODA's jobs in the web process."""
    with web_process_running_jobs(job_worker) as base:
        url = create(base, [("ID", world.did("ref", "ref")), ("PIXEL_1", "1 10"),
                            ("PHASE", "RUN")])
        assert wait(url) == "COMPLETED"
        assert [mime for _, _, mime in results(url)] == ["application/fits"]


def test_errors_of_the_job_machinery_get_the_soda_label() -> None:
    """SODA 1.0 5.2: an error document begins with one of SODA's error strings."""
    assert soda_error_text("UsageError: CIRCLE needs 3 values") == (
        "UsageError: CIRCLE needs 3 values\n")
    assert soda_error_text("The job stopped its worker 3 times; giving up") == (
        "Error: The job stopped its worker 3 times; giving up\n")
    assert soda_error_text(None) == "Error: the job failed\n"


# -- what SODA's job tree has since it is TAP's too (issue 14) ------------------------------------
# Jobs are driven with pyvo's UWS client (AsyncTAPJob: any UWS 1.1 job URL) where it has the
# operation, with requests where it has not (WAIT with PHASE, POST to /parameters).


def job_phase(job_url: str, **params: str) -> str:
    response = requests.get(job_url, params=params, timeout=120)
    assert response.status_code == 200, response.text
    return parse_job(io.BytesIO(response.content)).phase


def test_wait_with_phase_blocks_only_while_the_job_is_in_that_phase(live_server, world) -> None:
    """UWS 1.1 2.2.1.2: WAIT with PHASE returns at once when the job is not in that phase. A
    PENDING job asked WAIT=60&PHASE=QUEUED answers PENDING, before the job is run: had the
    request waited, the RUN below would have ended its wait with the job QUEUED or later."""
    url = create(live_server, [("ID", world.did("sci", "sci_public")), ("PIXEL_1", "1 5")])
    seen: list[str] = []
    waiter = threading.Thread(target=lambda: seen.append(
        job_phase(url, WAIT="60", PHASE="QUEUED")))
    waiter.start()
    waiter.join(timeout=30)
    job = AsyncTAPJob(url).run()
    waiter.join()
    assert seen == ["PENDING"]
    assert job.wait(timeout=120).phase == "COMPLETED"
    # A finished job answers at once; a WAIT that is no integer is refused.
    assert job_phase(url, WAIT="-1", PHASE="EXECUTING") == "COMPLETED"
    assert requests.get(url, params={"WAIT": "soon"}, timeout=30).status_code == 400


def test_parameters_change_while_pending_and_not_after(live_server, world) -> None:
    """UWS 1.1 2.1.11: POST to /parameters replaces values while the job is PENDING (303 to
    the job); the job then cuts what the parameters say now. Once it ran, 403."""
    public = world.did("sci", "sci_public")
    url = create(live_server, [("ID", public), ("CIRCLE", "150.0 2.0 0.01")])
    changed = requests.post(f"{url}/parameters", data={"CIRCLE": "150.01 2.01 0.005"},
                            allow_redirects=False, timeout=30)
    assert changed.status_code == 303 and changed.headers["Location"] == url
    job = AsyncTAPJob(url)
    assert {(p.id_, p.content) for p in job.job.parameters} == {
        ("id", public), ("circle", "150.01 2.01 0.005")}
    assert job.run().wait(timeout=120).phase == "COMPLETED"
    (href,) = job.result_uris
    cutout = fits.open(io.BytesIO(requests.get(href, timeout=60).content))[0].data
    synchronous = fits.open(io.BytesIO(requests.get(f"{live_server}/soda/sync", params={
        "ID": public, "CIRCLE": "150.01 2.01 0.005"}, timeout=60).content))[0].data
    assert np.array_equal(cutout, synchronous)
    assert cutout.shape != fits.open(io.BytesIO(requests.get(f"{live_server}/soda/sync", params={
        "ID": public, "CIRCLE": "150.0 2.0 0.01"}, timeout=60).content))[0].data.shape
    late = requests.post(f"{url}/parameters", data={"CIRCLE": "150.0 2.0 0.01"}, timeout=30)
    assert late.status_code == 403
    unknown = requests.post(f"{live_server}/soda/async/not-a-job-id-at-all/parameters",
                            data={"CIRCLE": "150.0 2.0 0.01"}, timeout=30)
    assert unknown.status_code == 404


def test_soda_jobs_have_limits_of_their_own(live_server, world) -> None:
    """SODA's execution duration, retention and WAIT limits are SODA's settings
    (SKYVAULT_SODA_*, or SODA_* in the application's config), not constants and not TAP's."""
    config = {"SODA_EXECUTION_DURATION": 30, "SODA_MAX_EXECUTION_DURATION": 120,
              "SODA_DEFAULT_RETENTION": 600, "SODA_MAX_RETENTION": 3600, "SODA_WAIT_LIMIT": 1}
    public = world.did("sci", "sci_public")
    with served_app(config) as base:
        job = AsyncTAPJob(create(base, [("ID", public), ("PIXEL_1", "1 5"),
                                        ("DESTRUCTION", "2100-01-01T00:00:00Z")]))
        created = job.job.creationtime.datetime.replace(tzinfo=dt.UTC)
        assert job.execution_duration.sec == 30
        assert job.destruction.datetime.replace(tzinfo=dt.UTC) - created <= dt.timedelta(
            seconds=3600)
        job.execution_duration = 0  # unlimited asks for the maximum
        assert job.execution_duration.sec == 120
        job.destruction = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        assert job.destruction.datetime.replace(tzinfo=dt.UTC) - created <= dt.timedelta(
            seconds=3600)
        default = AsyncTAPJob(create(base, [("ID", public), ("PIXEL_1", "1 5")]))
        lifetime = (default.destruction.datetime - default.job.creationtime.datetime)
        assert dt.timedelta(seconds=599) <= lifetime <= dt.timedelta(seconds=601)
        # WAIT=60 on a PENDING job ends at SODA's limit of 1 s, well inside the client's 30 s.
        assert requests.get(default.url, params={"WAIT": "60"}, timeout=30).status_code == 200
        # TAP's jobs in the same application keep TAP's limits.
        tap = requests.post(f"{base}/tap/async", data={
            "LANG": "ADQL", "QUERY": "SELECT TOP 1 expid FROM survey.exposures"},
            allow_redirects=False, timeout=30)
        assert AsyncTAPJob(tap.headers["Location"]).execution_duration.sec == 3600
        for created_job in (job, default, AsyncTAPJob(tap.headers["Location"])):
            created_job.delete()


def test_soda_settings_come_from_its_own_variables(monkeypatch) -> None:
    monkeypatch.setenv("SKYVAULT_SODA_MAX_RETENTION", "3600")
    monkeypatch.setenv("SKYVAULT_TAP_INPROCESS_WORKERS", "2")
    monkeypatch.setenv("SKYVAULT_TAP_MAX_EXECUTION_DURATION", "7")
    config = SODA_JOBS.configure({})
    limits = SODA_JOBS.limits(config)
    assert (limits.max_retention, limits.inprocess_workers) == (3600, 0)
    assert limits.max_execution_duration == 3600
    # The application's config comes last.
    overridden = SODA_JOBS.configure({"SODA_MAX_RETENTION": 60, "SODA_INPROCESS_WORKERS": 1,
                                      "TAP_INPROCESS_WORKERS": 3})
    assert overridden == dataclasses.replace(config, max_retention=60, inprocess_workers=1)


def test_soda_runs_in_the_web_process_by_its_own_setting(live_server, world,
                                                          job_worker) -> None:
    """TAP_INPROCESS_WORKERS no longer runs SODA's jobs; SODA_INPROCESS_WORKERS does, with the
    application's SODA settings (SODA_MAX_RESULTS)."""
    public, far = world.did("sci", "sci_public"), world.did("sci", "sci_far")
    with web_process_running_jobs(job_worker, {"TAP_INPROCESS_WORKERS": 1}) as base:
        url = create(base, [("ID", public), ("PIXEL_1", "1 5"), ("PHASE", "RUN")])
        # WAIT returns as soon as the phase changes: no runner took the job.
        assert job_phase(url, WAIT="3") == "QUEUED"
        requests.delete(url, timeout=30)
    with web_process_running_jobs(job_worker, {"SODA_INPROCESS_WORKERS": 1,
                                               "SODA_MAX_RESULTS": 1}) as base:
        url = create(base, [("ID", public), ("ID", far), ("PIXEL_1", "1 5"), ("PHASE", "RUN")])
        assert wait(url) == "ERROR"
        assert requests.get(f"{url}/error", timeout=30).text == (
            "UsageError: more than 1 cutouts in one job\n")
