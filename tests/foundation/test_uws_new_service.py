"""A new async service is a job policy and an executor, nothing else (issue 14; the steps are in
DEVELOPERS.md, "Adding an async service"). A toy service defined only here, ``echo``, gets the
whole UWS job tree from ``server.uws`` over real HTTP: creation checked by its policy, errors in
its own format, its settings from ECHO_* keys, its jobs run by in-process runners that take no
other service's jobs, and pyvo's UWS client drives it like TAP's."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pyvo.dal.tap import AsyncTAPJob
from served_app import served_app

from skyvault.server.http.service_config import app_overrides, settings_from
from skyvault.server.uws.monitor import JobMonitor
from skyvault.server.uws.policy import Document, Executor, JobLimits, JobPolicy
from skyvault.server.uws.store import JobQueue, ResultFile, StoredJob
from skyvault.vo.dali import InvalidParameter, Parameters
from skyvault.vo.uws import Phase


@dataclass(frozen=True)
class EchoConfig:
    max_words: int = 3
    inprocess_workers: int = 0


def execute_echo(job: StoredJob, worker: str, queue: JobQueue, monitor: JobMonitor) -> None:
    words = job.parameters.get_all("WORD")
    if "fail" in words:
        queue.finish(job.job_id, worker, Phase.ERROR, error="told to fail")
        return
    job.directory.mkdir(parents=True, exist_ok=True)
    path = job.directory / "echo.txt"
    path.write_text(" ".join(words))
    queue.finish(job.job_id, worker, Phase.COMPLETED,
                 results=[ResultFile("echo", path.name, "text/plain", path.stat().st_size)])


class EchoJobs(JobPolicy[EchoConfig]):
    kind = "echo"
    name = "echo_async"
    path = "/echo/async"

    def configure(self, app_config: Mapping[str, Any]) -> EchoConfig:
        return settings_from(EchoConfig(), "ECHO", os.environ,
                             app_overrides(EchoConfig(), "ECHO", app_config))

    def limits(self, config: EchoConfig) -> JobLimits:
        return JobLimits(execution_duration=60, max_execution_duration=120,
                         default_retention=3600, max_retention=7200, wait_limit=10,
                         inprocess_workers=config.inprocess_workers)

    def check(self, parameters: Parameters, config: EchoConfig) -> None:
        if len(parameters.get_all("WORD")) > config.max_words:
            raise InvalidParameter(f"At most {config.max_words} words")

    def error_document(self, message: str) -> Document:
        return Document(f"EchoError: {message}\n", "text/plain; charset=utf-8")

    def job_error_document(self, message: str | None) -> Document:
        return self.error_document(message or "failed")

    def executor(self, config: EchoConfig) -> Executor:
        return execute_echo


@pytest.fixture(scope="module")
def echo_service(database) -> Iterator[str]:
    """The archive's application with the echo service's job tree added, and one in-process
    runner for echo jobs (ECHO_INPROCESS_WORKERS)."""
    from skyvault.server.uws.blueprint import job_blueprint

    with served_app({"ECHO_INPROCESS_WORKERS": 1}, [job_blueprint(EchoJobs())]) as base:
        yield base


def create(base: str, words: list[str], run: bool = True) -> requests.Response:
    data = [("WORD", word) for word in words] + ([("PHASE", "RUN")] if run else [])
    return requests.post(f"{base}/echo/async", data=data, allow_redirects=False, timeout=30)


def test_a_policy_and_an_executor_make_a_working_service(echo_service: str) -> None:
    created = create(echo_service, ["hello", "sky"])
    assert created.status_code == 303
    job = AsyncTAPJob(created.headers["Location"])
    assert job.wait(timeout=60).phase == "COMPLETED"
    (href,) = job.result_uris
    assert requests.get(href, timeout=30).text == "hello sky"
    assert job.execution_duration.sec == 60
    # Its policy's check and its error format, on creation and on /parameters.
    refused = create(echo_service, ["a", "b", "c", "d"])
    assert refused.status_code == 400
    assert refused.text == "EchoError: At most 3 words\n"
    pending = AsyncTAPJob(create(echo_service, ["one"], run=False).headers["Location"])
    more = requests.post(f"{pending.url}/parameters", data=[("WORD", w) for w in "abcd"],
                         timeout=30)
    assert more.status_code == 400
    # A failed job's error document is the policy's too.
    failed = AsyncTAPJob(create(echo_service, ["fail"]).headers["Location"])
    assert failed.wait(timeout=60).phase == "ERROR"
    error = requests.get(f"{failed.url}/error", timeout=30)
    assert (error.status_code, error.text) == (200, "EchoError: told to fail\n")
    # Its jobs are its own: unknown to TAP's and SODA's job trees.
    job_id = job.job_id
    for other in ("tap", "soda"):
        assert requests.get(f"{echo_service}/{other}/async/{job_id}",
                            timeout=30).status_code == 404
    url = job.url
    for created_job in (job, pending, failed):
        created_job.delete()
    assert requests.get(url, timeout=30).status_code == 404


def test_the_services_runners_take_no_other_services_jobs(echo_service: str,
                                                          job_worker) -> None:
    """The echo runners run echo jobs only: a SODA job queued before an echo job, while the
    session's worker is stopped, is still QUEUED once the echo job is done (a runner takes the
    oldest job it can run first)."""
    job_worker.stop()
    try:
        soda = requests.post(f"{echo_service}/soda/async", data={
            "ID": "ivo://skyvault.archive/sci?1", "PIXEL_1": "1 5", "PHASE": "RUN"},
            allow_redirects=False, timeout=30).headers["Location"]
        echo = AsyncTAPJob(create(echo_service, ["still", "here"]).headers["Location"])
        assert echo.wait(timeout=60).phase == "COMPLETED"
        assert requests.get(f"{soda}/phase", timeout=30).text == "QUEUED"
    finally:
        job_worker.start()
    requests.delete(soda, timeout=30)
    echo.delete()
