"""Every RESPONSEFORMAT value TAP and DALI name, sync and async: the Content-Type is the canonical
media type of what is sent, and what is sent is what the Content-Type says.

DALI 1.1 section 3.4.6 (RESPONSEFORMAT; a client naming a media type receives it, with
equivalent parameters), TAP 1.1 section 5 and TAPRegExt's output formats (short names),
VOTable 1.4 section 8 (``serialization``).
"""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
import requests
from astropy.io import fits
from astropy.table import Table
from lxml import etree

from skyvault.vo.votable.formats import OUTPUT_FORMATS

VOTABLE_NS = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
UWS_NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
QUERY = "SELECT TOP 2 expid, obsdate FROM survey.exposures ORDER BY expid"

BINARY2 = "application/x-votable+xml;serialization=BINARY2"
TABLEDATA = "application/x-votable+xml;serialization=TABLEDATA"
CSV = "text/csv;header=present"
TSV = "text/tab-separated-values"
FITS = "application/fits"
PARQUET = "application/vnd.apache.parquet"
IPAC = "text/plain;charset=utf-8"

# RESPONSEFORMAT -> the Content-Type it must be answered with (written out here, not derived
# from the service's own table, so a change there cannot make this test agree with itself).
EXPECTED = {
    # DALI 1.1 table of media types and short forms
    "votable": BINARY2, "application/x-votable+xml": BINARY2, "text/xml": "text/xml",
    "csv": CSV, "text/csv": CSV, "tsv": TSV, "text/tab-separated-values": TSV,
    "fits": FITS, "application/fits": FITS,
    # TAP 1.1 / TAPRegExt aliases the service advertises
    "votable/b2": BINARY2, "votableb2": BINARY2, "binary2": BINARY2,
    "application/x-votable+xml;serialization=binary2": BINARY2,
    "application/x-votable+xml;serialization=BINARY2": BINARY2,
    "votable/td": TABLEDATA, "votabletd": TABLEDATA, "tabledata": TABLEDATA,
    "application/x-votable+xml;serialization=tabledata": TABLEDATA,
    "application/x-votable+xml;serialization=TABLEDATA": TABLEDATA,
    "text/csv;header=present": CSV, "application/x-fits-table": FITS, "image/fits": FITS,
    "parquet": PARQUET, "application/vnd.apache.parquet": PARQUET,
    "application/x-parquet": PARQUET,
    # parameters the service need not know are not echoed
    "text/xml; foo=bar": "text/xml",
    "application/x-votable+xml; serialization=binary2; content=datalink": BINARY2,
    "Application/X-VOTable+XML;Serialization=TableData": TABLEDATA,
    "text/csv; charset=utf-8": CSV,
    # IPAC table, by the names IPAC's TAP services give it (TAPRegExt mime text/plain, alias
    # ipac) and IBE's (ipac_table); UTF-8, as the Content-Type says
    "ipac": IPAC, "ipac_table": IPAC, "text/plain": IPAC, "text/plain; charset=utf-8": IPAC,
}


def test_every_advertised_value_is_covered() -> None:
    advertised = {value for f in OUTPUT_FORMATS for value in (f.mime, *f.aliases)}
    assert advertised <= set(EXPECTED)


def _kind(content_type: str) -> str:
    return {BINARY2: "BINARY2", TABLEDATA: "TABLEDATA", "text/xml": "TABLEDATA", CSV: "csv",
            TSV: "tsv", FITS: "fits", PARQUET: "parquet", IPAC: "ipac"}[content_type]


def assert_body_is(kind: str, body: bytes) -> None:
    """The bytes are the format the Content-Type names, holding the query's two rows."""
    if kind in ("BINARY2", "TABLEDATA"):
        root = etree.fromstring(body)
        data = root.find("v:RESOURCE/v:TABLE/v:DATA/*", VOTABLE_NS)
        assert etree.QName(data).localname == kind
    elif kind == "csv":
        assert body.decode().splitlines()[:1] == ["expid,obsdate"]
        assert len(body.decode().splitlines()) == 3
    elif kind == "tsv":
        assert body.decode().splitlines()[0] == "expid\tobsdate"
    elif kind == "fits":
        with fits.open(io.BytesIO(body)) as hdus:
            assert len(hdus[1].data) == 2
    elif kind == "ipac":
        table = Table.read(body.decode("utf-8"), format="ipac", guess=False)
        assert table.colnames == ["expid", "obsdate"] and len(table) == 2
    else:
        assert pq.read_table(io.BytesIO(body)).num_rows == 2


@pytest.mark.parametrize("requested", sorted(EXPECTED))
def test_sync_answers_with_the_canonical_type_of_what_it_sends(tap, requested) -> None:
    response = requests.get(f"{tap.url}/sync", timeout=60, params={
        "LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": requested})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == EXPECTED[requested]
    assert_body_is(_kind(EXPECTED[requested]), response.content)


def test_the_default_is_binary2_and_says_so(tap) -> None:
    response = requests.post(f"{tap.url}/sync", data={"LANG": "ADQL", "QUERY": QUERY},
                             timeout=60)
    assert response.headers["Content-Type"] == BINARY2
    assert_body_is("BINARY2", response.content)


@pytest.mark.parametrize("requested", ["text/csv;header=absent", "text/csv;charset=latin-1",
                                       "text/plain;charset=latin-1",
                                       "application/x-votable+xml;serialization=BINARY",
                                       "text/html"])
def test_parameters_that_would_change_the_bytes_are_refused(tap, requested) -> None:
    """DALI 1.1 3.4.6: parameters the client specifies must be honoured; what the service
    cannot honour is an error, not a different format under the requested name."""
    response = requests.get(f"{tap.url}/sync", timeout=60, params={
        "LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": requested})
    assert response.status_code == 400
    assert b'value="ERROR"' in response.content and b"RESPONSEFORMAT" in response.content


@pytest.mark.parametrize("requested", ["votable/td", "image/fits", "text/xml; foo=bar",
                                       "application/x-parquet", "csv", "votable", "ipac"])
def test_async_result_entries_carry_the_canonical_type(tap, requested) -> None:
    created = requests.post(f"{tap.url}/async", allow_redirects=False, timeout=30, data={
        "LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": requested, "PHASE": "RUN"})
    assert created.status_code == 303, created.text
    url = created.headers["Location"]
    job = etree.fromstring(requests.get(url, params={"WAIT": "60"}, timeout=90).content)
    for _ in range(10):
        if job.findtext("uws:phase", namespaces=UWS_NS) not in ("PENDING", "QUEUED",
                                                                 "EXECUTING"):
            break
        job = etree.fromstring(requests.get(url, params={"WAIT": "30"}, timeout=60).content)
    assert job.findtext("uws:phase", namespaces=UWS_NS) == "COMPLETED"
    entry = job.find("uws:results/uws:result", UWS_NS)
    assert entry.get("mime-type") == EXPECTED[requested]
    result = requests.get(f"{url}/results/result", timeout=60)
    assert result.headers["Content-Type"] == EXPECTED[requested]
    assert_body_is(_kind(EXPECTED[requested]), result.content)
    requests.delete(url, timeout=30)
