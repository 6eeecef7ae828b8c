"""SODA 1.0 {async} over UWS 1.1: one result per combination of values, text results for
combinations without data, owners' jobs private, errors in the job's error resource. Jobs are
run by the session's `skyvault worker` process (``job_worker``), as in production."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from worker_process import web_process_running_jobs

from skyvault.server.soda_async import soda_error_text

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
    """For the demo and tests: TAP_INPROCESS_WORKERS runs the jobs of every service, SODA's
    too, in the web process."""
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
