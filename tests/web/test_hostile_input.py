"""The hostile requests of issue 21 item 7, each answered with its protocol's own error.

Every one of them was a 500 (a NUL reaching PostgreSQL, a radius of 1e-320 degrees underflowing
in q3c, a 180-degree SIA circle beyond pgsphere's, numbers beyond Python's dates and
PostgreSQL's smallint). Now: plain-text 400 for files, the error page for web pages, a VOTable
error for the VO services and for ``/most``, and a result where the request means one.
"""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
import requests
from astropy.io.votable import parse
from web_support import WebData

VOTABLE = "application/x-votable+xml"


def _fetch(site: str, method: str, path: str) -> requests.Response:
    # The URL goes out as written: requests keeps %00 and + as they are in a prepared URL.
    return requests.request(method, site + path, timeout=120, allow_redirects=False)


def _votable_error(response: requests.Response) -> str:
    document = parse(io.BytesIO(response.content))
    infos = {info.name: info for info in document.infos}
    for resource in document.resources:
        infos.update({info.name: info for info in resource.infos})
    status = infos.get("QUERY_STATUS")
    if status is not None:
        assert status.value == "ERROR"
        return status.content or ""
    return infos["Error"].value  # SCS 1.03's form


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_nul_in_a_file_path_is_400_text(site: str, web_data: WebData, method: str) -> None:
    stored = quote(next(path for path in sorted(web_data.sha256) if path.startswith("sci/2024/")))
    for path in ("/files/%00", "/releases/DR1/files/%00", f"/files/{stored}%00.png",
                 "/previews/sci/%00.png", f"/authn/files/{stored}%00"):
        response = _fetch(site, method, path)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["Content-Type"].startswith("text/plain")
        if method == "GET":
            assert "NUL" in response.text
    # The file itself is still served.
    assert _fetch(site, method, f"/files/{stored}").status_code == 200


@pytest.mark.parametrize("path", ["/search?position=%00", "/catalogs?position=%00",
                                  "/search?position=10+20&time_from=%00"])
def test_nul_in_a_page_form_is_the_error_page(site: str, path: str) -> None:
    response = _fetch(site, "GET", path)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "NUL" in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(("path", "status"), [
    ("/most?object=%00", 400),
    ("/tap/sync?LANG=ADQL&QUERY=SELECT%00", 400),
    ("/sia/query?POS=%00", 400),
    ("/datalink/links?ID=%00", 400),
    ("/scs/psf_sources?RA=233&DEC=12&SR=%00", 200),  # SCS 1.03: errors come with 200
])
def test_nul_in_a_vo_parameter_is_a_votable_error(site: str, path: str, status: int) -> None:
    response = _fetch(site, "GET", path)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith((VOTABLE, "text/xml"))
    assert "NUL" in _votable_error(response)


def test_nul_in_soda_and_in_credentials(site: str) -> None:
    soda = _fetch(site, "GET", "/soda/sync?ID=%00")
    assert soda.status_code == 400 and soda.text.startswith("UsageError: ")
    basic = requests.get(site + "/auth/whoami", timeout=60,
                         headers={"Authorization": "Basic dXNlcgBuYW1lOnB3"})  # "user\0name:pw"
    assert basic.status_code == 401  # malformed credentials, as any others


def test_tiny_radii_are_refused_in_each_protocol(site: str) -> None:
    scs = _fetch(site, "GET", "/scs/psf_sources?RA=233&DEC=12&SR=1e-320")
    assert scs.status_code == 200 and "radius" in _votable_error(scs)
    page = _fetch(site, "GET", "/catalogs?position=233+12&radius=1e-320")
    assert page.status_code == 400 and "at least" in page.text
    csv = _fetch(site, "GET", "/catalogs/psf_sources.csv?ra=233&dec=12&radius=1e-320")
    assert csv.status_code == 400
    sia = _fetch(site, "GET", "/sia/query?POS=CIRCLE+233+12+1e-320")
    assert sia.status_code == 400 and "radius" in _votable_error(sia)
    # SR = 0 is still the empty answer, not an error.
    empty = _fetch(site, "GET", "/scs/psf_sources?RA=233&DEC=12&SR=0")
    assert empty.status_code == 200 and "QUERY_STATUS" in empty.text


def test_a_circle_of_the_whole_sky(site: str, web_data: WebData) -> None:
    response = _fetch(site, "GET", "/sia/query?POS=CIRCLE+0+0+180&MAXREC=100000")
    assert response.status_code == 200, response.text
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    pids = {int(did.rsplit("?", 1)[1]) for did in table["obs_publisher_did"]
            if "/sci?" in did}
    assert web_data.public["sci"] <= pids


@pytest.mark.parametrize("extra", ["obs_begin=99999999999999999999999",
                                   "obs_end=-99999999999999999999999",
                                   "programid=99999999999999999999999",
                                   "field=99999999999999999999999"])
def test_most_numbers_out_of_range(site: str, extra: str) -> None:
    response = _fetch(site, "GET", f"/most?object=Webtestia&{extra}")
    assert response.status_code == 400, response.text
    assert _votable_error(response)
