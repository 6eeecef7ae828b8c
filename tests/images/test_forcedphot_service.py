"""Forced photometry over real HTTP (issue 17): ``/forcedphot/sync`` and ``/forcedphot/async``
on the image services' seeded difference images (two at one place: the public survey's, and
program 2's within its proprietary period). The measurement itself is checked against the
simulator's truth in tests/pipeline/test_forced_truth.py; here, the protocol: rows as the
requester may see them, every output format, DALI error documents for bad input on both
forms, and UWS jobs driven by pyvo's client, run by the session's `skyvault worker`."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from astropy.io import votable
from astropy.table import Table
from pyvo.dal.tap import AsyncTAPJob

from skyvault.pipeline.process.forced import ForcedStatus

POSITION = {"RA": "150.01", "DEC": "2.005"}
"""Inside both seeded difference images."""


@pytest.fixture(autouse=True)
def worker(job_worker):
    return job_worker


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sync(base: str, params: dict, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{base}/forcedphot/sync", params=params, headers=headers, timeout=60)


def table_of(content: bytes) -> Table:
    return votable.parse(io.BytesIO(content), verify="exception").get_first_table().to_table()


def test_sync_measures_the_epochs_the_requester_may_see(live_server, world) -> None:
    public, embargoed = (world.ids[f"diff_{name}"] for name in ("sci_public", "sci_embargoed"))
    anonymous = sync(live_server, POSITION)
    assert anonymous.status_code == 200, anonymous.text[:300]
    assert anonymous.headers["Content-Type"].startswith("application/x-votable+xml")
    rows = table_of(anonymous.content)
    assert list(rows["diffid"]) == [public]
    member = table_of(sync(live_server, POSITION, bearer(world.member_token)).content)
    assert sorted(member["diffid"]) == sorted([public, embargoed])
    outsider = table_of(sync(live_server, POSITION, bearer(world.outsider_token)).content)
    assert list(outsider["diffid"]) == [public]
    # The seeded differences carry no PSF model or zero point: each epoch is listed with the
    # status saying so, and no flux rather than a made-up one.
    assert set(member["procstatus"]) == {int(ForcedStatus.NO_CALIBRATION)}
    assert all(value is None or value != value for value in
               member["forcediffimflux"].filled(float("nan")).tolist())
    assert {row["filter"] for row in member} == {"zr"}
    nowhere = table_of(sync(live_server, {"RA": "20.0", "DEC": "-60.0"}).content)
    assert len(nowhere) == 0


def test_time_range_and_filters_select_epochs(live_server, world) -> None:
    member = bearer(world.member_token)
    jd = float(table_of(sync(live_server, POSITION, member).content)["jd"][0])
    inside = {**POSITION, "JDSTART": f"{jd - 0.01}", "JDEND": f"{jd + 0.01}"}
    assert len(table_of(sync(live_server, inside, member).content)) == 2
    before = {**POSITION, "JDEND": f"{jd - 0.01}"}
    assert len(table_of(sync(live_server, before, member).content)) == 0
    assert len(table_of(sync(live_server, {**POSITION, "FILTER": "g,i"}, member).content)) == 0
    assert len(table_of(sync(live_server, {**POSITION, "filter": "R"}, member).content)) == 2


def test_every_output_format(live_server, world) -> None:
    as_csv = sync(live_server, {**POSITION, "RESPONSEFORMAT": "csv"})
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(row["diffid"]) for row in rows] == [world.ids["diff_sci_public"]]
    assert {"forcediffimflux", "forcediffimfluxunc", "zpdiff", "procstatus", "jd"} <= \
        set(rows[0])
    as_fits = sync(live_server, {**POSITION, "RESPONSEFORMAT": "fits"})
    assert as_fits.content.startswith(b"SIMPLE")
    assert list(Table.read(io.BytesIO(as_fits.content), format="fits")["diffid"]) == \
        [world.ids["diff_sci_public"]]
    ipac = sync(live_server, {**POSITION, "RESPONSEFORMAT": "ipac"})
    assert ipac.status_code == 200 and ipac.headers["Content-Type"].startswith("text/plain")
    assert list(Table.read(ipac.text, format="ipac")["diffid"]) == \
        [world.ids["diff_sci_public"]]
    tabledata = sync(live_server, {**POSITION, "RESPONSEFORMAT": "votable/td"})
    assert b"<TABLEDATA>" in tabledata.content
    assert list(table_of(tabledata.content)["diffid"]) == [world.ids["diff_sci_public"]]


BAD_INPUT = [
    ({"DEC": "2.0"}, "RA is required"),
    ({"RA": "400", "DEC": "2.0"}, "RA 400 is outside"),
    ({"RA": "150", "DEC": "-91"}, "DEC -91 is outside"),
    ({"RA": "nan", "DEC": "2"}, "RA must be a finite number"),
    ({"RA": "abc", "DEC": "2"}, "RA must be a number"),
    ({**POSITION, "JDSTART": "2461000.5", "JDEND": "2460000.5"}, "is later than JDEND"),
    ({**POSITION, "JDSTART": "1e300"}, "JDSTART 1e+300 is outside"),
    ({**POSITION, "FILTER": "zu"}, "FILTER 'zu' is not one of"),
    ({**POSITION, "RESPONSEFORMAT": "image/png"}, "RESPONSEFORMAT 'image/png' is not"),
    ({**POSITION, "RA": ["150", "151"]}, "RA may be given only once"),
]


@pytest.mark.parametrize(("params", "message"), BAD_INPUT)
def test_bad_input_gets_a_dali_error_on_both_forms(live_server, world, params,
                                                   message) -> None:
    """DALI 1.1 section 4.4: an error VOTable with QUERY_STATUS=ERROR, here with 400, from
    sync and from the creation of an async job, which is refused before it exists."""
    for response in (sync(live_server, params),
                     requests.post(f"{live_server}/forcedphot/async", data=params,
                                   allow_redirects=False, timeout=60)):
        assert response.status_code == 400, response.text[:300]
        assert response.headers["Content-Type"].startswith("application/x-votable+xml")
        document = votable.parse(io.BytesIO(response.content), verify="exception")
        status = next(info for info in document.resources[0].infos
                      if info.name == "QUERY_STATUS")
        assert status.value == "ERROR"
        assert message in status.content, status.content


def test_async_jobs_give_the_sync_answer(live_server, world) -> None:
    """A UWS 1.1 job, driven by pyvo's client as TAP's are, run by `skyvault worker` as its
    owner: its one result is the table sync gives that owner."""
    headers = bearer(world.member_token)
    created = requests.post(f"{live_server}/forcedphot/async",
                            data={**POSITION, "RESPONSEFORMAT": "votable", "PHASE": "RUN"},
                            headers=headers, allow_redirects=False, timeout=60)
    assert created.status_code == 303, created.text
    session = requests.Session()
    session.headers.update(headers)
    job = AsyncTAPJob(created.headers["Location"], session=session)
    assert job.wait(timeout=120).phase == "COMPLETED"
    (href,) = job.result_uris
    result = session.get(href, timeout=60)
    expected = sync(live_server, POSITION, headers)
    assert table_of(result.content)["diffid"].tolist() == \
        table_of(expected.content)["diffid"].tolist()
    # Someone else's job is unknown to anonymous users.
    assert requests.get(job.url, timeout=60).status_code == 404
    job.delete()


def test_capabilities_name_both_forms(live_server) -> None:
    response = requests.get(f"{live_server}/forcedphot/capabilities", timeout=60)
    assert response.status_code == 200
    assert b"/forcedphot/sync" in response.content and b"/forcedphot/async" in response.content


def test_the_function_for_alert_histories_answers_as_sync(live_server, world) -> None:
    """``forced_photometry_rows`` (what ZTF alert packets' ``fp_hists`` are filled from) finds
    the epochs the requester may see, as /forcedphot/sync does for them."""
    from skyvault.access import ANONYMOUS, Requester
    from skyvault.forced_photometry import forced_photometry_rows

    ra, dec = float(POSITION["RA"]), float(POSITION["DEC"])
    member = Requester(user_id=-1, username="img-member", programs=frozenset({2}))
    for requester, headers in ((ANONYMOUS, None), (member, bearer(world.member_token))):
        rows = forced_photometry_rows(requester, ra, dec, filtercodes=("zr",))
        served = table_of(sync(live_server, {**POSITION, "FILTER": "zr"}, headers).content)
        assert [row.epoch.diffid for row in rows] == served["diffid"].tolist()
        assert [row.procstatus for row in rows] == served["procstatus"].tolist()
    assert forced_photometry_rows(member, ra, dec, filtercodes=("zg",)) == []
    with pytest.raises(ValueError, match="unknown filter codes"):
        forced_photometry_rows(member, ra, dec, filtercodes=("g",))


def test_an_unreadable_file_is_an_epoch_without_flux() -> None:
    """A difference the archive lists but whose file is gone or damaged is reported with its
    own status (the archive's fault, logged), not a crash nor a made-up flux."""
    from skyvault.forced_photometry import Epoch, measure_epoch

    epoch = Epoch(diffid=1, pid=1, expid=1, rfid=1, jd=2461000.5, field=1, ccdid=1, qid=1,
                  rcid=0, fid=2, filtercode="zr", programid=1, exptime=30.0, diffmaglim=20.5,
                  path="forcedtest/missing_scimrefdiffimg.fits.fz", seeing=2.0, magzpsci=26.0,
                  magzpscirms=0.01, infobitssci=0, refjdstart=None, refjdend=None)
    row = measure_epoch(epoch, 150.0, 2.0)
    assert row.measured.status is ForcedStatus.UNREADABLE
    assert row.measured.flux != row.measured.flux  # NaN
    escaping = Epoch(**{**epoch.__dict__, "path": "../../etc/passwd"})
    assert measure_epoch(escaping, 150.0, 2.0).measured.status is ForcedStatus.UNREADABLE
