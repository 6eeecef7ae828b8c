"""Simple Cone Search 1.03 over HTTP: the required UCD1 fields, VERB, SR=0, errors, embargo,
and pyvo and STILTS as clients."""

from __future__ import annotations

import io

import pytest
import pyvo
import requests
from astropy.io.votable import parse
from validators import assert_valid_votable, stilts_cone

from skyvault.server.images.scs import CATALOGS


def cone(base: str, catalog: str, headers=None, **params) -> requests.Response:
    return requests.get(f"{base}/scs/{catalog}", params=params, headers=headers, timeout=60)


def table_of(response: requests.Response):
    assert response.status_code == 200, response.text
    return parse(io.BytesIO(response.content)).get_first_table()


def test_source_catalog_cone_returns_the_sources_inside(live_server, world) -> None:
    response = cone(live_server, "psf_sources", RA=150.0, DEC=2.0, SR=0.015)
    table = table_of(response)
    ids = {str(v) for v in table.array["sourceid"]}
    expected = {str(world.ids[f"src_sci_public_{i}"]) for i in (0, 1)}
    assert expected <= ids and str(world.ids["src_sci_public_2"]) not in ids  # 0.02 away
    assert_valid_votable(response.content)


@pytest.mark.parametrize("catalog", sorted(CATALOGS))
def test_every_catalog_has_one_field_of_each_required_ucd(live_server, world, catalog) -> None:
    """SCS 1.03 section 2: exactly one ID_MAIN (a string), POS_EQ_RA_MAIN, POS_EQ_DEC_MAIN."""
    response = cone(live_server, catalog, RA=150.0, DEC=2.0, SR=0.05, VERB=3)
    fields = table_of(response).fields
    for ucd, datatype in (("ID_MAIN", "char"), ("POS_EQ_RA_MAIN", "double"),
                          ("POS_EQ_DEC_MAIN", "double")):
        matching = [f for f in fields if f.ucd == ucd]
        assert len(matching) == 1 and matching[0].datatype == datatype, ucd
    assert_valid_votable(response.content)


def test_verbosity_chooses_the_columns(live_server, world) -> None:
    counts = [len(table_of(cone(live_server, "psf_sources", RA=150.0, DEC=2.0, SR=0.01,
                                VERB=verb)).fields) for verb in (1, 2, 3)]
    assert counts[0] == 3 and counts[0] < counts[1] < counts[2]
    default = table_of(cone(live_server, "psf_sources", RA=150.0, DEC=2.0, SR=0.01))
    assert len(default.fields) == counts[1]


def test_image_tables_answer_with_footprints(live_server, world) -> None:
    table = table_of(cone(live_server, "science_images", RA=150.0, DEC=2.0, SR=0.01, VERB=3))
    row = next(r for r in table.array if str(r["pid"]) == str(world.ids["sci_public"]))
    assert len(row["footprint"]) == 8


def test_sr_zero_returns_the_columns_without_rows(live_server) -> None:
    table = table_of(cone(live_server, "psf_sources", RA=150.0, DEC=2.0, SR=0))
    assert len(table.array) == 0 and len(table.fields) >= 3


def test_maxrec_caps_the_rows(live_server, world) -> None:
    response = cone(live_server, "psf_sources", RA=150.0, DEC=2.0, SR=0.05, MAXREC=1)
    document = parse(io.BytesIO(response.content))
    assert len(document.get_first_table().array) == 1
    assert [i.value for i in document.resources[0].infos] == ["OK", "OVERFLOW"]


def test_an_overflowing_answer_is_valid_votable_1_1(live_server, world) -> None:
    """VOTable 1.1 allows no INFO after the TABLE: the overflow is told before it (the answer
    used to put it after, which votlint refuses), and integers' NULLs are declared values."""
    response = cone(live_server, "science_images", RA=150.0, DEC=2.0, SR=0.5, VERB=3, MAXREC=1)
    assert b'<VOTABLE version="1.1"' in response.content
    assert b'value="OVERFLOW"' in response.content and b"<VALUES null=" in response.content
    assert_valid_votable(response.content)


@pytest.mark.parametrize("params", [
    {"DEC": 2.0, "SR": 0.1}, {"RA": 150.0, "DEC": 91.0, "SR": 0.1},
    {"RA": "east", "DEC": 2.0, "SR": 0.1}, {"RA": 150.0, "DEC": 2.0, "SR": -1},
    {"RA": 150.0, "DEC": 2.0, "SR": 90},
])
def test_errors_are_error_infos(live_server, params) -> None:
    """SCS 1.03 section 2: a VOTable with a single INFO name="Error"."""
    response = cone(live_server, "psf_sources", **params)
    assert response.status_code == 200
    document = parse(io.BytesIO(response.content))
    infos = [i for i in document.infos if i.name == "Error"]
    assert len(infos) == 1 and infos[0].value
    assert_valid_votable(response.content)


def test_unknown_catalogs_are_not_found(live_server) -> None:
    assert cone(live_server, "no_such_table", RA=1, DEC=1, SR=0.1).status_code == 404


def test_embargoed_sources_are_returned_to_members_only(live_server, world) -> None:
    frame = world.frames["sci_embargoed"]
    source = str(world.ids["src_sci_embargoed_0"])
    public = table_of(cone(live_server, "psf_sources", RA=frame.ra, DEC=frame.dec, SR=0.001))
    assert source not in {str(v) for v in public.array["sourceid"]}
    member = {"Authorization": f"Bearer {world.member_token}"}
    mine = table_of(cone(live_server, "psf_sources", headers=member, RA=frame.ra,
                         DEC=frame.dec, SR=0.001))
    assert source in {str(v) for v in mine.array["sourceid"]}


def test_pyvo_and_stilts_as_clients(live_server, world) -> None:
    results = pyvo.dal.SCSService(f"{live_server}/scs/aperture_sources").search(
        pos=(150.0, 2.0), radius=0.015)
    assert str(world.ids["src_sci_public_0"]) in {str(v) for v in results["sourceid"]}
    report = stilts_cone(f"{live_server}/scs/psf_sources?", "cone", 150.0, 2.0, 0.015)
    assert str(world.ids["src_sci_public_1"]) in report, report
