"""astroquery's TapPlus (astroquery.utils.tap.core) as a client: queries, and uploads sync and
async, the way it sends them.

TapPlus writes its multipart bodies by hand with a boundary such as ``===1733000000000===``,
unquoted in the Content-Type header; RFC 2045 wants such a value quoted (``=`` is a tspecial),
but a service must accept what real clients send (issue 13 item 9). A body that cannot be read
is answered with a 400 that says so, never run as a query without parameters or kept as an
empty job.
"""

from __future__ import annotations

import pytest
import requests
from astropy.table import Table
from astroquery.utils.tap.core import TapPlus
from tap_seed import CENTRE_DEC, CENTRE_RA, visible_exposures

JOIN = ("SELECT u.name, s.sourceid FROM TAP_UPLOAD.targets AS u "
        "JOIN survey.psf_sources AS s "
        "ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 0.001))")
UWS_PHASE = "{http://www.ivoa.net/xml/UWS/v1.0}phase"


@pytest.fixture
def targets() -> Table:
    return Table({"name": ["centre", "nothing"], "ra": [CENTRE_RA + 0.0001, 10.0],
                  "dec": [CENTRE_DEC, -40.0]})


def _names(table: Table) -> set[str]:
    return {value.decode() if isinstance(value, bytes) else str(value)
            for value in table["name"]}


def test_tapplus_sync_query(tap) -> None:
    job = TapPlus(url=tap.url).launch_job("SELECT TOP 2 expid FROM survey.exposures "
                                          "ORDER BY expid")
    assert len(job.get_results()) == 2


def test_tapplus_uploads_sync(tap, targets) -> None:
    job = TapPlus(url=tap.url).launch_job(JOIN, upload_resource=targets,
                                          upload_table_name="targets")
    results = job.get_results()
    assert _names(results) == {"centre"} and len(results) == len(visible_exposures(set()))


def test_tapplus_uploads_async(tap, targets) -> None:
    job = TapPlus(url=tap.url).launch_job_async(JOIN, upload_resource=targets,
                                                upload_table_name="targets")
    assert job.get_phase() == "COMPLETED"
    results = job.get_results()
    assert _names(results) == {"centre"} and len(results) == len(visible_exposures(set()))


def _tapplus_body(boundary: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"LANG\"\r\n\r\nADQL\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"QUERY\"\r\n\r\n"
            "SELECT TOP 1 expid FROM survey.exposures\r\n"
            f"--{boundary}--\r\n\r\n").encode()


@pytest.mark.parametrize("path", ["/sync", "/async"])
def test_an_unquoted_boundary_with_equals_signs_is_read(tap, path) -> None:
    boundary = "===1733000000000==="
    response = requests.post(f"{tap.url}{path}", data=_tapplus_body(boundary), timeout=60,
                             allow_redirects=False, headers={
                                 "Content-Type": f"multipart/form-data; boundary={boundary}"})
    if path == "/sync":
        assert response.status_code == 200, response.text
        assert b"<TABLE>" in response.content
    else:
        assert response.status_code == 303, response.text
        parameters = requests.get(f"{response.headers['Location']}/parameters", timeout=30).text
        assert "SELECT TOP 1 expid" in parameters
        requests.delete(response.headers["Location"], timeout=30)


@pytest.mark.parametrize("path", ["/sync", "/async"])
@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", _tapplus_body("abc")),  # no boundary at all
    ("multipart/form-data; boundary=xyz", _tapplus_body("abc")),  # the body has another one
    ("multipart/form-data; boundary=abc", b"--abc\r\nContent-Disposition: form-data; "
                                          b"name=\"LANG\"\r\n\r\nADQL"),  # cut short
])
def test_a_body_that_cannot_be_read_is_a_400_that_says_so(tap, path, content_type,
                                                          body) -> None:
    before = requests.get(f"{tap.url}/async", timeout=30).text
    response = requests.post(f"{tap.url}{path}", data=body, timeout=60, allow_redirects=False,
                             headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert b'value="ERROR"' in response.content
    assert b"multipart" in response.content.lower() or b"body" in response.content.lower()
    assert requests.get(f"{tap.url}/async", timeout=30).text == before  # no job was made
