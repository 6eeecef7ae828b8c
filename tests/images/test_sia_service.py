"""SIA 2.0 /sia/query over HTTP: every parameter, embargo, errors, clients and validators."""

from __future__ import annotations

import io

import pytest
import pyvo
import requests
from astropy.io.votable import parse, parse_single_table
from images_seed import OBSJD
from validators import assert_valid_votable, stilts_cone, totals, vosi_report

from skyvault.access import ANONYMOUS

MJD = OBSJD - 2400000.5
AREA = "CIRCLE 150.05 2.0 0.35"
"""Around the seeded images near (150, 2): away from every other suite's data."""


def sia(base: str, *pairs: tuple[str, str], headers=None, method="GET") -> requests.Response:
    if method == "POST":
        return requests.post(f"{base}/sia/query", data=list(pairs), headers=headers, timeout=60)
    return requests.get(f"{base}/sia/query", params=list(pairs), headers=headers, timeout=60)


def dids(response: requests.Response) -> set[str]:
    assert response.status_code == 200, response.text
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    return {str(value) for value in table["obs_publisher_did"]}


def member(world) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.member_token}"}


def test_a_cone_finds_every_product_of_the_position(live_server, world) -> None:
    found = dids(sia(live_server, ("POS", "CIRCLE 150.0 2.0 0.01")))
    assert found >= {world.did("sci", "sci_public"), world.did("raw", "raw_sci_public"),
                     world.did("ref", "ref"), world.did("diff", "diff_sci_public")}
    assert world.did("sci", "sci_far") not in found


def test_embargoed_images_are_found_only_by_members(live_server, world) -> None:
    embargoed = {world.did("sci", "sci_embargoed"), world.did("diff", "diff_sci_embargoed"),
                 world.did("raw", "raw_sci_embargoed")}
    public = dids(sia(live_server, ("POS", AREA)))
    assert not public & embargoed
    assert embargoed <= dids(sia(live_server, ("POS", AREA), headers=member(world)))
    outsider = {"Authorization": f"Bearer {world.outsider_token}"}
    assert not dids(sia(live_server, ("POS", AREA), headers=outsider)) & embargoed
    # Asking for it by ID changes nothing.
    assert dids(sia(live_server, ("ID", world.did("sci", "sci_embargoed")))) == set()


def test_a_corner_counts_and_a_near_centre_does_not(live_server, world) -> None:
    """SIA 2.0 2.1.1: the shape must intersect s_region, the footprint, not the centre."""
    frame = world.frames["sci_public"]
    corner_ra, corner_dec = frame.corners()[2]
    # A circle around a point just outside the corner, touching only the corner region.
    found = dids(sia(live_server, ("POS", f"CIRCLE {corner_ra} {corner_dec + 0.002} 0.003"),
                     ("COLLECTION", "SkyVault/sci")))
    assert world.did("sci", "sci_public") in found
    thin = world.frames["sci_thin"]  # 1600" x 20", centre (152, 2)
    near_centre = f"CIRCLE {thin.ra} {thin.dec + 0.02} 0.01"
    assert world.did("sci", "sci_thin") not in dids(sia(live_server, ("POS", near_centre)))
    along = f"CIRCLE {thin.ra + 0.2} {thin.dec} 0.001"
    assert world.did("sci", "sci_thin") in dids(sia(live_server, ("POS", along)))


def test_positions_across_ra_zero_and_ranges(live_server, world) -> None:
    wrap = world.did("sci", "sci_wrap")
    assert wrap in dids(sia(live_server, ("POS", "CIRCLE 0.01 5.0 0.05")))
    assert wrap in dids(sia(live_server, ("POS", "RANGE 359.9 0.1 4.9 5.1")))
    assert wrap not in dids(sia(live_server, ("POS", "RANGE 0.1 359.9 4.9 5.1")))
    assert wrap in dids(sia(live_server, ("POS", "RANGE -Inf +Inf 4.99 5.01")))
    assert wrap in dids(sia(live_server, ("POS", "POLYGON 359.9 4.9 0.1 4.9 0.1 5.1")))


@pytest.mark.parametrize("pairs, expected, absent", [
    ([("BAND", "6e-7")], {"sci_public"}, set()),  # zr covers 560-732 nm
    ([("BAND", "4.5e-7 5e-7")], set(), {"sci_public"}),  # zg only
    ([("BAND", "-Inf 5.7e-7")], {"sci_public"}, set()),
    ([("TIME", f"{MJD - 1} {MJD + 1}")], {"sci_public"}, set()),
    ([("TIME", f"{MJD + 1} +Inf")], set(), {"sci_public"}),
    ([("TIME", f"{MJD + 0.0001}")], {"sci_public"}, set()),  # inside the 30 s exposure
    ([("EXPTIME", "20 40")], {"sci_public"}, set()),
    ([("EXPTIME", "-Inf 10")], set(), {"sci_public"}),
    ([("CALIB", "2")], {"sci_public"}, {"raw", "ref", "diff"}),
    ([("CALIB", "1"), ("CALIB", "3")], {"raw", "ref", "diff"}, {"sci_public"}),
    ([("COLLECTION", "SkyVault/ref")], {"ref"}, {"sci_public"}),
    ([("COLLECTION", "skyvault/ref")], set(), {"ref"}),  # exact, case-sensitive
    ([("FIELD", "700"), ("CCDID", "5"), ("QID", "1")], {"sci_public", "ref"}, {"raw"}),
    ([("FILTERCODE", "zr"), ("PROGRAMID", "1")], {"sci_public", "raw"}, {"ref"}),
    ([("SPATRES", "2.0 2.2")], {"sci_public"}, {"ref", "raw"}),  # seeing 2.1 vs 1.9
    ([("FOV", "0.1 0.2")], {"sci_public"}, set()),
    ([("FOV", "1 +Inf")], set(), {"sci_public"}),
    ([("DPTYPE", "image"), ("FACILITY", "P48"), ("INSTRUMENT", "SkyVault camera")],
     {"sci_public"}, set()),
    ([("TARGET", "field 700")], {"sci_public"}, set()),
    ([("FORMAT", "application/x-votable+xml;content=datalink")], {"sci_public"}, set()),
    ([("FORMAT", "application/fits")], set(), {"sci_public"}),
    ([("POL", "I")], set(), {"sci_public"}),  # no polarization states: never matches
    ([("TIMERES", "30")], {"sci_public"}, set()),
    ([("SPECRP", "1 10")], {"sci_public"}, set()),
])
def test_each_parameter_constrains_the_search(live_server, world, pairs, expected,
                                              absent) -> None:
    names = {"sci_public": ("sci", "sci_public"), "raw": ("raw", "raw_sci_public"),
             "ref": ("ref", "ref"), "diff": ("diff", "diff_sci_public")}
    found = dids(sia(live_server, ("POS", AREA), *pairs))
    for name in expected:
        assert world.did(*names[name]) in found, name
    for name in absent:
        assert world.did(*names[name]) not in found, name


def test_access_urls_are_the_views_datalink_urls(live_server, world, database) -> None:
    """The service writes access_url itself (cheaper than the view's SQL); it must be the
    view's value exactly, with the DataLink MIME type (SIA 2.0 section 3.1.3)."""
    response = sia(live_server, ("POS", AREA))
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    written = {str(r["obs_publisher_did"]): (str(r["access_url"]), str(r["access_format"]))
               for r in table}
    with database.reading(ANONYMOUS, base_url=live_server) as connection:
        rows = connection.execute(
            "SELECT obs_publisher_did, access_url, access_format FROM ivoa.obscore"
            " WHERE obs_publisher_did = ANY(%s)", (list(written),)).fetchall()
    assert len(rows) == len(written) >= 4
    for did, url, access_format in rows:
        assert written[did] == (url, access_format)
        assert access_format == "application/x-votable+xml;content=datalink"


def test_identifiers_match_without_regard_to_case(live_server, world) -> None:
    did = world.did("sci", "sci_public")
    assert dids(sia(live_server, ("ID", did.upper()))) == {did}
    assert dids(sia(live_server, ("ID", did), ("ID", world.did("ref", "ref")))) == {
        did, world.did("ref", "ref")}
    assert dids(sia(live_server, ("ID", "ivo://elsewhere/sci?1"))) == set()


def test_large_maxrec_streams_the_same_rows(live_server, world) -> None:
    """MAXREC of 20,000 and more reads through a server-side cursor instead of at once."""
    in_memory = dids(sia(live_server, ("POS", AREA)))
    assert dids(sia(live_server, ("POS", AREA), ("MAXREC", "50000"))) == in_memory


def test_post_and_lower_case_names_work_like_get(live_server, world) -> None:
    by_get = dids(sia(live_server, ("POS", AREA), ("CALIB", "2")))
    assert dids(sia(live_server, ("pos", AREA), ("calib", "2"), method="POST")) == by_get


def test_maxrec_cuts_with_an_overflow_and_zero_describes_the_service(live_server,
                                                                     world) -> None:
    response = sia(live_server, ("POS", AREA), ("MAXREC", "2"))
    table = parse(io.BytesIO(response.content))
    resource = table.resources[0]
    assert len(resource.tables[0].array) == 2
    assert [i.value for i in resource.infos if i.name == "QUERY_STATUS"] == ["OK", "OVERFLOW"]
    empty = sia(live_server, ("MAXREC", "0"))
    assert empty.status_code == 200
    document = parse(io.BytesIO(empty.content))
    results = document.resources[0]
    assert len(results.tables[0].array) == 0 and len(results.tables[0].fields) > 30
    services = {r.name: r for r in document.resources if r.type == "meta"}
    assert {"this", "links"} <= set(services)
    standard = {p.name: p.value for p in services["this"].params}["standardID"]
    assert standard == "ivo://ivoa.net/std/SIA#query-2.0"
    assert_valid_votable(empty.content)


def test_responses_are_valid_votables(live_server, world) -> None:
    response = sia(live_server, ("POS", AREA), headers=member(world))
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    assert_valid_votable(response.content)
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    region = table[table["obs_publisher_did"] == world.did("sci", "sci_public")]["s_region"][0]
    corners = world.frames["sci_public"].corners()
    assert list(region) == pytest.approx([v for c in corners for v in c], abs=1e-9)


@pytest.mark.parametrize(("requested", "content_type"), [
    (None, "application/x-votable+xml;serialization=TABLEDATA"),
    ("votable", "application/x-votable+xml;serialization=TABLEDATA"),
    ("votable/td", "application/x-votable+xml;serialization=TABLEDATA"),
    ("application/x-votable+xml", "application/x-votable+xml;serialization=TABLEDATA"),
    ("application/x-votable+xml;serialization=TABLEDATA",
     "application/x-votable+xml;serialization=TABLEDATA"),
    ("text/xml", "text/xml"),
    ("text/xml; foo=bar", "text/xml"),
])
def test_the_content_type_is_what_is_sent(live_server, world, requested, content_type) -> None:
    """DALI 1.1 3.4.6: the canonical media type of the TABLEDATA VOTable sent (text/xml when
    asked for by name), never the request's text echoed."""
    pairs = [("POS", AREA)] + ([] if requested is None else [("RESPONSEFORMAT", requested)])
    response = sia(live_server, *pairs)
    assert response.status_code == 200 and response.headers["Content-Type"] == content_type
    assert b"<TABLEDATA>" in response.content
    assert world.did("sci", "sci_public") in dids(response)


@pytest.mark.parametrize("requested", [
    "votable/b2", "application/x-votable+xml;serialization=BINARY2", "csv", "image/fits"])
def test_formats_not_written_are_refused(live_server, requested) -> None:
    """Asked for a serialization it does not write, the service says so (a UsageFault) rather
    than send TABLEDATA labelled as something else."""
    response = sia(live_server, ("POS", AREA), ("RESPONSEFORMAT", requested))
    assert response.status_code == 400
    info = parse(io.BytesIO(response.content)).resources[0].infos[0]
    assert info.value == "ERROR" and "RESPONSEFORMAT" in str(info.content)


@pytest.mark.parametrize("pairs, message", [
    ([("POS", "CIRCLE 1 2")], "UsageFault: POS"),
    ([("POS", "POLYGON 10 0 11 0 10 1 11 1")], "UsageFault: POS polygon"),
    ([("BAND", "7 6")], "UsageFault: BAND"),
    ([("CALIB", "x")], "UsageFault: CALIB"),
    ([("MAXREC", "-5")], "UsageFault: MAXREC"),
    ([("RESPONSEFORMAT", "text/csv")], "UsageFault: RESPONSEFORMAT"),
])
def test_errors_are_votables_with_usage_faults(live_server, pairs, message) -> None:
    """SIA 2.0 section 3.2 (errors as DALI VOTables, messages starting with the fault)."""
    response = sia(live_server, *pairs)
    assert response.status_code == 400
    document = parse(io.BytesIO(response.content))
    info = document.resources[0].infos[0]
    assert info.name == "QUERY_STATUS" and info.value == "ERROR"
    assert str(info.content).startswith(message)
    assert_valid_votable(response.content)


def test_pyvo_searches_and_follows_datalink(live_server, world) -> None:
    service = pyvo.dal.SIA2Service(f"{live_server}/sia")
    results = service.search(pos=(150.0, 2.0, 0.01), calib_level=2)
    records = [r for r in results if r["obs_publisher_did"] == world.did("sci", "sci_public")]
    assert len(records) == 1
    links = records[0].getdatalink()
    this = list(links.bysemantics("#this", include_narrower=False))
    assert this[0].content_type == "application/fits"
    content = requests.get(this[0].access_url, timeout=60).content
    assert content == world.path("sci_public").read_bytes()


def test_stilts_cone_reads_it_as_sia2(live_server, world) -> None:
    report = stilts_cone(f"{live_server}/sia/query", "sia2", 150.0, 2.0, 0.01)
    assert world.did("sci", "sci_public") in report, report


@pytest.mark.parametrize("service", ["sia", "soda", "datalink", "scs/psf_sources"])
def test_capabilities_and_availability_pass_taplint(live_server, service) -> None:
    report = vosi_report(f"{live_server}/{service}")
    assert totals(report) == {"errors": 0, "warnings": 0}, report


def test_capabilities_name_the_query_resource(live_server) -> None:
    text = requests.get(f"{live_server}/sia/capabilities", timeout=30).text
    assert 'standardID="ivo://ivoa.net/std/SIA#query-2.0"' in text
    assert f"{live_server}/sia/query" in text
    assert "<vosi:available>true</vosi:available>" in requests.get(
        f"{live_server}/sia/availability", timeout=30).text

