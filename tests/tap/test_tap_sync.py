"""/tap/sync over real HTTP: parameters, formats, MAXREC and overflow, errors, embargo.

Citations: TAP 1.1 section 2.3 (parameters), 5 (results), DALI 1.1 4.4 (VOTable status).
"""

from __future__ import annotations

import io
import subprocess
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse, parse_single_table
from astropy.io.votable.exceptions import VOWarning
from lxml import etree
from tap_seed import BASE, EXPOSURES, N_STARS, visible_exposures

VOTABLE_NS = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
# A UCD of the published schema (schema/tables.py, filtercode) that astropy's UCD list calls
# secondary-only; it comes from the column definitions, not from the TAP service.
KNOWN_SCHEMA_UCDS = ("'instr.filter'",)


def astropy_problems(content: bytes) -> list[str]:
    """astropy's VOTable warnings about a document, the known schema UCD aside."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse(io.BytesIO(content), verify="warn")
    problems = [str(w.message) for w in caught if issubclass(w.category, VOWarning)]
    return [p for p in problems if not any(u in p for u in KNOWN_SCHEMA_UCDS)]
SEEDED = f"sourceid BETWEEN {BASE} AND {BASE + 99_999}"


def sync(tap, *pairs: tuple[str, str], method: str = "GET", headers=None, **kwargs):
    url = f"{tap.url}/sync"
    if method == "GET":
        return requests.get(url, params=list(pairs), headers=headers, timeout=60, **kwargs)
    return requests.post(url, data=list(pairs), headers=headers, timeout=60, **kwargs)


def adql(query: str, *more: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("LANG", "ADQL"), ("QUERY", query), *more)


def statuses(body: bytes) -> list[tuple[str, str]]:
    """(position, value) of each QUERY_STATUS INFO: 'before' or 'after' the TABLE."""
    root = etree.fromstring(body)
    resource = root.find("v:RESOURCE", VOTABLE_NS)
    found, seen_table = [], False
    for child in resource:
        if child.tag.endswith("TABLE"):
            seen_table = True
        if child.tag.endswith("INFO") and child.get("name") == "QUERY_STATUS":
            found.append(("after" if seen_table else "before", child.get("value")))
    return found


def rows_of(body: bytes):
    return parse_single_table(io.BytesIO(body)).array


def stars_seen(exposures) -> int:
    return sum(1 for _ in exposures) * N_STARS


def test_get_and_post_give_the_same_votable(tap) -> None:
    query = adql(f"SELECT sourceid, ra, dec, mag FROM survey.psf_sources WHERE {SEEDED} "
                 "ORDER BY sourceid", ("REQUEST", "doQuery"))
    got = sync(tap, *query)
    posted = sync(tap, *query, method="POST")
    assert got.status_code == posted.status_code == 200
    assert got.headers["Content-Type"] == "application/x-votable+xml;serialization=BINARY2"
    assert got.content == posted.content
    table = rows_of(got.content)
    assert list(table.dtype.names) == ["sourceid", "ra", "dec", "mag"]
    assert len(table) == stars_seen(visible_exposures(set()))
    assert statuses(got.content) == [("before", "OK")]


def test_results_validate_with_astropy_and_votlint(tap, tmp_path) -> None:
    """Every column type the schema has, in both VOTable serialisations."""
    for serialization in ("votable", "votable/td"):
        response = sync(tap, *adql(
            "SELECT TOP 20 * FROM survey.science_images", ("RESPONSEFORMAT", serialization)))
        assert response.status_code == 200
        path = tmp_path / f"result-{serialization.replace('/', '-')}.vot"
        path.write_bytes(response.content)
        assert astropy_problems(response.content) == []
        linted = subprocess.run(["stilts", "votlint", f"location={path}"], capture_output=True,
                                text=True, stdin=subprocess.DEVNULL, timeout=120)
        problems = [line for line in linted.stdout.splitlines()
                    if line.startswith(("ERROR", "WARNING"))]
        assert not problems, linted.stdout


def test_parameter_names_are_case_insensitive_and_unknown_ones_ignored(tap) -> None:
    response = sync(tap, ("lang", "ADQL"), ("query", "SELECT TOP 3 expid FROM survey.exposures"),
                    ("rEsPoNsEfOrMaT", "csv"), ("EXTRA", "whatever"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.text.splitlines()[0] == "expid"


def test_csv_tsv_fits_and_parquet(tap) -> None:
    query = (f"SELECT sourceid, filtercode, mag, obsjd FROM survey.psf_sources "
             f"WHERE {SEEDED} ORDER BY sourceid")
    expected = rows_of(sync(tap, *adql(query)).content)

    csv = sync(tap, *adql(query, ("RESPONSEFORMAT", "csv")))
    assert csv.headers["Content-Type"] == "text/csv;header=present"
    lines = csv.text.splitlines()
    assert lines[0] == "sourceid,filtercode,mag,obsjd" and len(lines) == len(expected) + 1

    tsv = sync(tap, *adql(query, ("FORMAT", "text/tab-separated-values")))
    assert tsv.headers["Content-Type"] == "text/tab-separated-values"
    assert tsv.text.splitlines()[1].split("\t")[0] == str(expected["sourceid"][0])

    fits_response = sync(tap, *adql(query, ("RESPONSEFORMAT", "fits")))
    assert fits_response.headers["Content-Type"] == "application/fits"
    with fits.open(io.BytesIO(fits_response.content)) as hdus:
        assert list(hdus[1].data["sourceid"]) == list(expected["sourceid"])

    parquet = sync(tap, *adql(query, ("RESPONSEFORMAT", "application/vnd.apache.parquet")))
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("sourceid").to_pylist() == list(expected["sourceid"])
    assert np.allclose(table.column("mag").to_numpy(), expected["mag"])


def test_a_media_type_responseformat_is_echoed_in_content_type(tap) -> None:
    """DALI 1.1 3.2.1: a format asked for by media type comes back with that media type."""
    wanted = "application/x-votable+xml;serialization=TABLEDATA"
    response = sync(tap, *adql("SELECT TOP 1 expid FROM survey.exposures",
                               ("RESPONSEFORMAT", wanted)))
    assert response.headers["Content-Type"] == wanted
    assert b"<TABLEDATA>" in response.content


def test_maxrec_truncates_with_an_overflow_after_the_table(tap) -> None:
    """DALI 1.1 4.4.1 / TAP 1.1 5.3: OVERFLOW INFO after the TABLE, status 200."""
    response = sync(tap, *adql(f"SELECT sourceid FROM survey.psf_sources WHERE {SEEDED}",
                               ("MAXREC", "7")))
    assert response.status_code == 200
    assert len(rows_of(response.content)) == 7
    assert statuses(response.content) == [("before", "OK"), ("after", "OVERFLOW")]


def test_a_result_of_exactly_maxrec_rows_is_no_overflow(tap) -> None:
    response = sync(tap, *adql(f"SELECT TOP 7 sourceid FROM survey.psf_sources WHERE {SEEDED}",
                               ("MAXREC", "7")))
    assert len(rows_of(response.content)) == 7
    assert statuses(response.content) == [("before", "OK")]


def test_maxrec_zero_gives_metadata_only(tap) -> None:
    """DALI 1.1 3.2.6: MAXREC=0 is supported; the answer has the FIELDs and no rows."""
    response = sync(tap, *adql("SELECT expid, obsdate, filtercode FROM survey.exposures",
                               ("MAXREC", "0")))
    assert response.status_code == 200
    table = rows_of(response.content)
    assert list(table.dtype.names) == ["expid", "obsdate", "filtercode"] and len(table) == 0
    assert statuses(response.content)[-1] == ("after", "OVERFLOW")


def test_columns_carry_the_schema_metadata(tap) -> None:
    table = parse_single_table(io.BytesIO(sync(tap, *adql(
        "SELECT TOP 1 s.ra, p.mag, s.obsdate FROM survey.science_images AS s "
        "JOIN survey.psf_sources AS p ON p.pid = s.pid")).content))
    ra, mag, obsdate = table.fields
    assert (str(ra.unit), ra.ucd) == ("deg", "pos.eq.ra;meta.main")
    assert mag.ucd == "phot.mag" and str(mag.unit) == "mag"
    assert obsdate.xtype == "timestamp" and obsdate.datatype == "char"


@pytest.mark.parametrize("pairs, status, words", [
    (adql("SELECT FROM WHERE"), 400, "line 1"),
    (adql("SELECT * FROM survey.no_such_table"), 400, "no_such_table"),
    (adql("SELECT * FROM archive.users"), 400, "users"),
    (adql("SELECT 1/0 AS x FROM survey.programs"), 400, "division by zero"),
    ((("QUERY", "SELECT 1"),), 400, "LANG"),
    ((("LANG", "SQL"), ("QUERY", "SELECT 1")), 400, "LANG"),
    (adql("SELECT TOP 1 expid FROM survey.exposures", ("MAXREC", "1"), ("MAXREC", "2")), 400,
     "MAXREC"),
    (adql("SELECT TOP 1 expid FROM survey.exposures", ("RESPONSEFORMAT", "image/png")), 400,
     "RESPONSEFORMAT"),
    (adql("SELECT TOP 1 expid FROM survey.exposures", ("UPLOAD", "t,file:///etc/passwd")), 400,
     "http"),
])
def test_errors_are_votables_with_a_message_and_status(tap, pairs, status, words) -> None:
    """DALI 1.1 4.2 / 4.4.2: an error document, QUERY_STATUS=ERROR, a fitting HTTP status."""
    response = sync(tap, *pairs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/x-votable+xml"
    root = etree.fromstring(response.content)
    info = root.find("v:RESOURCE/v:INFO[@name='QUERY_STATUS']", VOTABLE_NS)
    assert info.get("value") == "ERROR"
    assert words.lower() in (info.text or "").lower()
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_embargoed_rows_follow_the_requester(tap) -> None:
    """Row-level security: the query runs with the requester's programs, nothing more."""
    query = adql(f"SELECT COUNT(*) AS n FROM survey.psf_sources WHERE {SEEDED}",
                 ("RESPONSEFORMAT", "csv"))
    anonymous = sync(tap, *query)
    alice = sync(tap, *query, headers=tap.alice.headers)
    bob = sync(tap, *query, headers=tap.bob.headers)
    assert int(anonymous.text.split()[1]) == stars_seen(visible_exposures(set()))
    assert int(bob.text.split()[1]) == stars_seen(visible_exposures(set()))
    assert int(alice.text.split()[1]) == stars_seen(visible_exposures({2}))
    assert len(visible_exposures({2})) < len(EXPOSURES)


def test_tap_schema_and_vosi_tables_agree(tap) -> None:
    names = set(sync(tap, *adql("SELECT table_name FROM tap_schema.tables",
                                ("RESPONSEFORMAT", "csv"))).text.split()[1:])
    tableset = etree.fromstring(requests.get(f"{tap.url}/tables", timeout=30).content)
    assert names == set(tableset.xpath("//table/name/text()"))
    minimal = etree.fromstring(requests.get(f"{tap.url}/tables", params={"detail": "min"},
                                            timeout=30).content)
    assert not minimal.xpath("//column")
    one = requests.get(f"{tap.url}/tables/survey.psf_sources", timeout=30)
    assert one.status_code == 200 and b"<name>mag</name>" in one.content
    assert requests.get(f"{tap.url}/tables/survey.nothing", timeout=30).status_code == 404


def test_vosi_endpoints_answer_anonymously(tap) -> None:
    for name, root in (("capabilities", "capabilities"), ("availability", "availability")):
        response = requests.get(f"{tap.url}/{name}", timeout=30)
        assert response.status_code == 200
        assert etree.fromstring(response.content).tag.endswith(root)
    available = etree.fromstring(requests.get(f"{tap.url}/availability", timeout=30).content)
    assert available.findtext("{*}available") == "true"
