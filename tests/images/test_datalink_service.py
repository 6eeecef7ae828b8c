"""DataLink 1.1 {links} over HTTP: the links of each kind of image, embargo, several IDs,
datalinklint and pyvo."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
import requests
from astropy.io.votable import parse
from lxml import etree
from pyvo.dal.adhoc import DatalinkResults
from validators import assert_valid_votable, datalinklint, totals

DATALINK_TYPE = "application/x-votable+xml;content=datalink"
VOTABLE_NS = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}


def links_url(base: str, *ids: str, **extra: str) -> str:
    return f"{base}/datalink/links?" + urlencode([("ID", i) for i in ids] + list(extra.items()))


def fetch(base: str, *ids: str, headers=None) -> requests.Response:
    response = requests.get(links_url(base, *ids), headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response


def rows(response: requests.Response) -> list[dict]:
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return [{name: row[name] for name in table.colnames} for row in table]


def by_semantics(response: requests.Response) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows(response):
        grouped.setdefault(str(row["semantics"]), []).append(row)
    return grouped


def test_a_science_image_links_file_previews_cutout_auxiliaries_and_provenance(
        live_server, world) -> None:
    did = world.did("sci", "sci_public")
    response = fetch(live_server, did)
    assert response.headers["Content-Type"] == DATALINK_TYPE
    links = by_semantics(response)
    assert set(links) == {"#this", "#preview", "#cutout", "#auxiliary", "#progenitor",
                          "#derivation"}
    this = links["#this"][0]
    assert this["content_type"] == "application/fits"
    content = requests.get(str(this["access_url"]), timeout=60).content
    assert content == world.path("sci_public").read_bytes()
    assert int(this["content_length"]) == len(content)
    assert len(links["#preview"]) == 2
    assert {str(r["local_semantics"]) for r in links["#auxiliary"]} == {
        "mskimg", "psfcat", "sexcat"}
    progenitors = {str(r["access_url"]) for r in links["#progenitor"]}
    assert any("raw%3F" + str(world.ids["raw_sci_public"]) in url for url in progenitors)
    assert sum(url.endswith(("_bias.fits", "_hifreqflat.fits")) for url in progenitors) == 2
    derived = links["#derivation"]
    # Its difference image and the co-add it went into (below).
    assert [str(r["content_type"]) for r in derived] == [DATALINK_TYPE] * 2
    assert "diff%3F" + str(world.ids["diff_sci_public"]) in str(derived[-1]["access_url"])
    assert_valid_votable(response.content)


def test_the_cutout_descriptor_describes_soda_for_this_dataset(live_server, world) -> None:
    did = world.did("sci", "sci_public")
    document = parse(io.BytesIO(fetch(live_server, did).content))
    cutout = by_semantics(fetch(live_server, did))["#cutout"][0]
    descriptor = next(r for r in document.resources if str(cutout["service_def"]) == r.ID)
    assert descriptor.type == "meta" and descriptor.utype == "adhoc:service"
    params = {p.name: p.value for p in descriptor.params}
    assert params["standardID"] == "ivo://ivoa.net/std/SODA#sync-1.0"
    assert params["accessURL"] == f"{live_server}/soda/sync"
    inputs = {p.name: p for p in descriptor.groups[0].entries}
    assert inputs["ID"].value == did
    assert inputs["CIRCLE"].xtype == "circle" and inputs["POLYGON"].xtype == "polygon"
    assert inputs["CIRCLE"].unit == "deg" and inputs["POS"].ucd == "pos.outline;obs"
    assert inputs["PIXEL_1"].values.max == 240 and inputs["PIXEL_2"].values.max == 200


def test_difference_reference_and_raw_link_their_relatives(live_server, world) -> None:
    diff = by_semantics(fetch(live_server, world.did("diff", "diff_sci_public")))
    progenitors = " ".join(str(r["access_url"]) for r in diff["#progenitor"])
    assert f"sci%3F{world.ids['sci_public']}" in progenitors
    assert f"ref%3F{world.ids['ref']}" in progenitors
    assert {str(r["local_semantics"]) for r in diff["#auxiliary"]} == {"diffcat", "diffimgpsf"}
    raw = by_semantics(fetch(live_server, world.did("raw", "raw_sci_public")))
    assert f"sci%3F{world.ids['sci_public']}" in str(raw["#derivation"][0]["access_url"])
    reference = fetch(live_server, world.did("ref", "ref"))
    derived = " ".join(str(r["access_url"]) for r in by_semantics(reference)["#derivation"])
    assert f"diff%3F{world.ids['diff_sci_public']}" in derived
    # The embargoed difference of the same reference is not even mentioned to the public.
    assert str(world.ids["diff_sci_embargoed"]) not in reference.text
    member = {"Authorization": f"Bearer {world.member_token}"}
    assert str(world.ids["diff_sci_embargoed"]) in fetch(
        live_server, world.did("ref", "ref"), headers=member).text


def test_a_reference_links_its_epochs_and_an_epoch_its_references(live_server, world) -> None:
    """DataLink 1.1 section 2.5 (core vocabulary): a co-add's input epochs are its
    #progenitor links, and a science image links the co-adds made from it as #derivation;
    an epoch the requester may not see is not named (the public sees the public epoch only,
    the member of its program both)."""
    sci = f"sci%3F{world.ids['sci_public']}"
    hidden = f"sci%3F{world.ids['sci_embargoed']}"
    reference = by_semantics(fetch(live_server, world.did("ref", "ref")))
    epochs = [str(r["access_url"]) for r in reference["#progenitor"]]
    assert [url for url in epochs if "sci%3F" in url] == [url for url in epochs if sci in url]
    assert len(epochs) == 1 and all(str(r["content_type"]) == DATALINK_TYPE
                                    for r in reference["#progenitor"])
    member = {"Authorization": f"Bearer {world.member_token}"}
    seen = by_semantics(fetch(live_server, world.did("ref", "ref"), headers=member))
    assert sorted(hidden in str(r["access_url"]) or sci in str(r["access_url"])
                  for r in seen["#progenitor"]) == [True, True]
    derived = by_semantics(fetch(live_server, world.did("sci", "sci_public")))["#derivation"]
    assert any(f"ref%3F{world.ids['ref']}" in str(r["access_url"]) for r in derived)


def _masked(text: str, did: str) -> str:
    return text.replace(did, "<ID>")


def test_an_embargoed_id_answers_exactly_like_an_unknown_one(live_server, world) -> None:
    embargoed = world.did("sci", "sci_embargoed")
    unknown = world.did("sci", "sci_public").rsplit("?", 1)[0] + "?770499999"
    hidden, absent = fetch(live_server, embargoed), fetch(live_server, unknown)
    assert _masked(hidden.text, embargoed) == _masked(absent.text, unknown)
    assert dict(hidden.headers).keys() == dict(absent.headers).keys()
    (row,) = rows(hidden)
    assert str(row["error_message"]).startswith("NotFoundFault")
    assert str(row["semantics"]) == "#this"
    member = {"Authorization": f"Bearer {world.member_token}"}
    assert "#this" in fetch(live_server, embargoed, headers=member).text
    assert "NotFoundFault" not in fetch(live_server, embargoed, headers=member).text


def test_rows_of_one_id_are_together_and_in_request_order(live_server, world) -> None:
    wanted = [world.did("ref", "ref"), "not-an-id", world.did("sci", "sci_far"),
              world.did("diff", "diff_sci_public")]
    order = [str(r["ID"]) for r in rows(fetch(live_server, *wanted))]
    collapsed = [i for n, i in enumerate(order) if n == 0 or order[n - 1] != i]
    assert collapsed == wanted


def test_a_repeated_id_has_one_block_of_rows(live_server, world) -> None:
    """DataLink 1.1 3.2: all links for one ID value are consecutive rows, also when the request
    names the ID more than once (its links once, where it was first named)."""
    sci, ref = world.did("sci", "sci_public"), world.did("ref", "ref")
    once = rows(fetch(live_server, sci))
    repeated = rows(fetch(live_server, sci, ref, sci, "not-an-id", sci))
    order = [str(r["ID"]) for r in repeated]
    collapsed = [i for n, i in enumerate(order) if n == 0 or order[n - 1] != i]
    assert collapsed == [sci, ref, "not-an-id"]
    assert repeated[:len(once)] == once


def test_datalinklint_finds_no_errors_or_warnings(live_server, world) -> None:
    url = links_url(live_server, world.did("sci", "sci_public"), world.did("raw", "raw_sci_far"),
                    world.did("diff", "diff_sci_public"), world.did("ref", "ref"), "unknown",
                    world.did("sci", "sci_embargoed"))
    report = datalinklint(url)
    assert totals(report) == {"errors": 0, "warnings": 0}, report


def test_no_id_gives_an_empty_table_and_a_self_description(live_server) -> None:
    response = requests.get(f"{live_server}/datalink/links", timeout=30)
    document = parse(io.BytesIO(response.content))
    assert len(document.get_first_table().array) == 0
    assert any(r.utype == "adhoc:this" for r in document.resources)
    assert_valid_votable(response.content)


@pytest.mark.parametrize(("requested", "content_type", "serialization"), [
    (None, DATALINK_TYPE, "TABLEDATA"),
    ("votable", DATALINK_TYPE, "TABLEDATA"),
    ("application/x-votable+xml", DATALINK_TYPE, "TABLEDATA"),
    ("application/x-votable+xml;content=datalink", DATALINK_TYPE, "TABLEDATA"),
    ("votable/td", "application/x-votable+xml;serialization=TABLEDATA;content=datalink",
     "TABLEDATA"),
    ("application/x-votable+xml;serialization=tabledata",
     "application/x-votable+xml;serialization=TABLEDATA;content=datalink", "TABLEDATA"),
    ("application/x-votable+xml;serialization=BINARY2",
     "application/x-votable+xml;serialization=BINARY2;content=datalink", "BINARY2"),
    ("application/x-votable+xml; serialization=binary2; content=datalink",
     "application/x-votable+xml;serialization=BINARY2;content=datalink", "BINARY2"),
    ("votable/b2", "application/x-votable+xml;serialization=BINARY2;content=datalink",
     "BINARY2"),
    ("text/xml", "text/xml", "TABLEDATA"),
    ("text/xml; foo=bar", "text/xml", "TABLEDATA"),
])
def test_response_formats_send_what_they_say(live_server, world, requested, content_type,
                                             serialization) -> None:
    """DALI 1.1 3.4.6, DataLink 1.1 3.3.1: the Content-Type is the media type of what is sent,
    in its canonical form (never the request's text); a BINARY2 request gets BINARY2 rows and
    keeps DataLink's content parameter."""
    did = world.did("sci", "sci_public")
    extra = {} if requested is None else {"RESPONSEFORMAT": requested}
    response = requests.get(links_url(live_server, did, **extra), timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == content_type
    root = etree.fromstring(response.content)
    data = root.find("v:RESOURCE/v:TABLE/v:DATA/*", VOTABLE_NS)
    assert etree.QName(data).localname == serialization
    assert {str(r["semantics"]) for r in rows(response)} >= {"#this", "#preview", "#cutout"}
    assert rows(response) == rows(fetch(live_server, did))
    assert_valid_votable(response.content)


@pytest.mark.parametrize("requested", ["text/html", "application/x-votable+xml;serialization=FITS",
                                       "csv", "votable/td;serialization=binary2"])
def test_response_formats_not_offered_are_usage_faults(live_server, world, requested) -> None:
    did = world.did("sci", "sci_public")
    refused = requests.get(links_url(live_server, did, RESPONSEFORMAT=requested), timeout=30)
    assert refused.status_code == 400
    info = parse(io.BytesIO(refused.content)).resources[0].infos[0]
    assert info.value == "ERROR" and str(info.content).startswith("UsageFault")


def test_pyvo_reads_links(live_server, world) -> None:
    results = DatalinkResults.from_result_url(links_url(live_server,
                                                        world.did("sci", "sci_public")))
    previews = list(results.bysemantics("#preview", include_narrower=False))
    assert len(previews) == 2
    png = requests.get(previews[0].access_url, timeout=60)
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert results.get_adhocservice_by_ivoid("ivo://ivoa.net/std/SODA#sync-1") is not None


@pytest.mark.parametrize("path", ["capabilities", "availability"])
def test_vosi_resources_exist(live_server, path) -> None:
    assert requests.get(f"{live_server}/datalink/{path}", timeout=30).status_code == 200
