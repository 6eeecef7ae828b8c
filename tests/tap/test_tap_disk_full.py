"""The disk that holds async results fills up while a job writes its result: the job ends in
ERROR with a message that says so, no partial result is left or served, and once there is
room again the same query completes, with every row.

The job folder root (SKYVAULT_HOME/jobs, shared by the web server and the session's worker) is
covered by a small tmpfs for the test (mounted as root, as CI runs); unmounting it brings the
session's own job folders back.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_tap_async import UWS_NS, adql, create, job_xml, wait_final

from skyvault.config import settings

ROWS = 20_000
BIG = (f"SELECT TOP {ROWS} a.column_name AS x, b.column_name AS y, b.description AS d"
       " FROM tap_schema.columns AS a, tap_schema.columns AS b")
"""Several megabytes of CSV."""


@pytest.fixture
def full_results_disk() -> Iterator[Path]:
    root = settings().job_results_root
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


def test_a_full_disk_fails_the_job_clearly_and_keeps_nothing_partial(
        tap, full_results_disk: Path) -> None:
    url = create(tap, *adql(BIG, ("MAXREC", str(ROWS)), ("RESPONSEFORMAT", "csv")),
                 ("PHASE", "RUN"))
    assert wait_final(url) == "ERROR"
    message = job_xml(url).findtext("uws:errorSummary/uws:message", namespaces=UWS_NS)
    assert "disk is full" in message
    job_id = url.rsplit("/", 1)[1]
    assert not list((full_results_disk / job_id).glob("result*"))
    assert requests.get(f"{url}/results/result", timeout=30).status_code == 404
    # Room again (the size of the disk, not its contents, was the problem).
    subprocess.run(["mount", "-o", "remount,size=64m", str(full_results_disk)], check=True)
    again = create(tap, *adql(BIG, ("MAXREC", str(ROWS)), ("RESPONSEFORMAT", "csv")),
                   ("PHASE", "RUN"))
    assert wait_final(again) == "COMPLETED"
    result = requests.get(f"{again}/results/result", timeout=120)
    assert result.status_code == 200
    assert len(result.text.splitlines()) == ROWS + 1  # the header and every row
