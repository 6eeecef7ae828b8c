"""DataLink 1.1 {links} documents through ``skyvault.vo.datalink`` alone (no server, no database).

The expectations are the standard's (../shared/ivoa/specs/DataLink.tex): the columns, their
UCDs and order of Table 1 ("Fields for Links Output", section 3.2), exactly one of access_url,
service_def and error_message per row (3.2), error messages starting with a fault name (3.4),
the results RESOURCE with the standardID INFO (3.3.1), and service descriptors as RESOURCEs of
type meta that a row's service_def names by ID (section 4).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from astropy.io.votable import parse
from lxml import etree
from xsd_support import VOTABLE, assert_valid

from skyvault.vo.datalink import (
    DATALINK_CONTENT_TYPE,
    LINKS_STANDARD_ID,
    NOT_FOUND_FAULT,
    USAGE_FAULT,
    Link,
    ServiceDescriptor,
    ServiceParam,
    descriptors_document,
    error_text,
    links_document,
)

VO = "{http://www.ivoa.net/xml/VOTable/v1.3}"
DID = "ivo://skyvault/ztf?sci/ztf_20261120_000500_zr_c01_q1"
MISSING = "ivo://skyvault/ztf?sci/nothing_here"

# DataLink 1.1 Table 1: name -> UCD (content_qualifier has none), in the table's order.
TABLE_1 = {
    "ID": "meta.id;meta.main", "access_url": "meta.ref.url", "service_def": "meta.ref",
    "error_message": "meta.code.error", "description": "meta.note", "semantics": "meta.code",
    "content_type": "meta.code.mime", "content_length": "phys.size;meta.file",
    "content_qualifier": None, "local_semantics": "meta.id.assoc", "link_auth": "meta.code",
    "link_authorized": "meta.code",
}

CUTOUT = ServiceDescriptor(
    access_url="https://archive.example/soda/sync",
    input_params=(ServiceParam("ID", ucd="meta.id", value=DID),
                  ServiceParam("CIRCLE", datatype="double", arraysize="3", xtype="circle",
                               unit="deg", description="ra dec radius <deg> & more",
                               maximum="150.0 20.0 0.6")),
    standard_id="ivo://ivoa.net/std/SODA#sync-1.0", id="soda-1", name="cutout",
    description="Cut-outs \"here\"", content_type="application/fits")

LINKS = [
    Link(DID, "#this", access_url="https://archive.example/files/a.fits?x=1&y=2",
         description="The science image", content_type="application/fits",
         content_length=37_814_400, content_qualifier="#image", link_auth="optional",
         link_authorized=True),
    Link(DID, "#preview", access_url="https://archive.example/previews/a.png",
         content_type="image/png", content_length=0),
    Link(DID, "#cutout", service_def="soda-1", description="A cut-out of the image"),
    Link(DID, "#calibration", access_url="https://archive.example/files/bias.fits",
         local_semantics="bias", link_authorized=False),
    Link(MISSING, "#this", error_message=error_text(NOT_FOUND_FAULT, f"{MISSING} is not here")),
]


def _document(links=LINKS, descriptors=(CUTOUT,), **options) -> bytes:
    return b"".join(links_document(links, descriptors, **options))


def _table(document: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        votable = parse(io.BytesIO(document), verify="exception")
    return votable, votable.get_first_table()


def test_the_links_table_has_table_1s_columns_and_ucds_in_order() -> None:
    document = _document()
    assert_valid(document, *VOTABLE)
    _, table = _table(document)
    assert [field.name for field in table.fields] == list(TABLE_1)
    assert {field.name: field.ucd for field in table.fields} == TABLE_1
    kinds = {field.name: field.datatype for field in table.fields}
    assert kinds["content_length"] == "long"
    assert kinds["link_authorized"] == "boolean"
    assert {field.name: field.unit for field in table.fields}["content_length"] == "byte"


@pytest.mark.parametrize("serialization", ["TABLEDATA", "BINARY2"])
def test_rows_come_back_as_written(serialization: str) -> None:
    document = _document(serialization=serialization)
    assert_valid(document, *VOTABLE)
    _, table = _table(document)
    rows = table.array
    assert len(rows) == len(LINKS)
    for row, link in zip(rows, LINKS, strict=True):
        for name, value in zip(TABLE_1, link.row(), strict=True):
            cell = row[name]
            if value is None:
                assert cell is None or np.ma.is_masked(cell) or cell == "", name
            else:
                assert cell == value, (name, cell, value)


def test_the_results_resource_says_it_is_datalink() -> None:
    """3.3.1: ``<INFO name="standardID" value="ivo://ivoa.net/std/DataLink#links-1.1"/>``."""
    root = etree.fromstring(_document())
    results = root.findall(f"{VO}RESOURCE[@type='results']")
    assert len(results) == 1
    infos = {i.get("name"): i.get("value") for i in results[0].findall(f"{VO}INFO")}
    assert infos.get("standardID") == LINKS_STANDARD_ID
    assert DATALINK_CONTENT_TYPE.endswith("content=datalink")


def test_every_service_def_names_a_descriptor_in_the_document() -> None:
    root = etree.fromstring(_document())
    descriptors = {r.get("ID"): r for r in root.iter(f"{VO}RESOURCE")
                   if r.get("type") == "meta" and r.get("utype") == "adhoc:service"}
    named = {link.service_def for link in LINKS if link.service_def}
    assert named == set(descriptors) == {"soda-1"}
    resource = descriptors["soda-1"]
    fixed = {p.get("name"): p.get("value") for p in resource.findall(f"{VO}PARAM")}
    assert fixed["accessURL"] == CUTOUT.access_url
    assert fixed["standardID"] == CUTOUT.standard_id
    assert fixed["contentType"] == "application/fits"
    (group,) = resource.findall(f"{VO}GROUP[@name='inputParams']")
    params = {p.get("name"): p for p in group.findall(f"{VO}PARAM")}
    assert params["ID"].get("value") == DID
    circle = params["CIRCLE"]
    assert (circle.get("xtype"), circle.get("unit"), circle.get("arraysize")) == (
        "circle", "deg", "3")
    # Text that needs escaping survives the trip through XML.
    assert circle.find(f"{VO}DESCRIPTION").text == "ra dec radius <deg> & more"
    assert circle.find(f"{VO}VALUES/{VO}MAX").get("value") == "150.0 20.0 0.6"
    assert resource.find(f"{VO}DESCRIPTION").text == 'Cut-outs "here"'


def test_an_identifier_that_fails_gets_an_error_row_with_a_fault_name() -> None:
    """3.4: an error row per failed ID, its message starting with a fault name."""
    _, table = _table(_document())
    errors = [row for row in table.array if row["error_message"]]
    assert len(errors) == 1
    (row,) = errors
    assert row["ID"] == MISSING
    assert not row["access_url"] and not row["service_def"]
    assert str(row["error_message"]).startswith("NotFoundFault: ")
    assert error_text(USAGE_FAULT, "") == "UsageFault"


@pytest.mark.parametrize("given", [
    {},
    {"access_url": "https://a", "service_def": "soda-1"},
    {"access_url": "https://a", "error_message": "NotFoundFault"},
    {"service_def": "soda-1", "error_message": "UsageFault: x"},
])
def test_a_link_has_exactly_one_of_url_service_and_error(given: dict) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Link(DID, "#this", **given)


def test_an_empty_answer_and_an_overflow_are_valid_documents() -> None:
    empty = _document(links=[], descriptors=())
    assert_valid(empty, *VOTABLE)
    assert len(_table(empty)[1].array) == 0
    overflow = _document(links=LINKS[:1], overflow=True)
    assert_valid(overflow, *VOTABLE)
    root = etree.fromstring(overflow)
    (results,) = root.findall(f"{VO}RESOURCE[@type='results']")
    assert [i.get("value") for i in results.iter(f"{VO}INFO")
            if i.get("name") == "QUERY_STATUS"][-1] == "OVERFLOW"


def test_a_descriptors_document_is_a_valid_votable_of_descriptors_alone() -> None:
    document = descriptors_document([CUTOUT])
    assert_valid(document, *VOTABLE)
    root = etree.fromstring(document)
    resources = root.findall(f"{VO}RESOURCE")
    assert [(r.get("type"), r.get("ID")) for r in resources] == [("meta", "soda-1")]
