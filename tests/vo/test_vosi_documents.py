"""VOSI 1.1 documents through ``skyvault.vo.vosi`` alone, validated against the VOSI schemas
(../shared/ivoa/xsd) and read back for what VOSI 1.1 (../shared/ivoa/specs/VOSI.tex) says
they hold: capabilities (section 3.2; interfaces of VOResource 1.1, anonymous access as a
``securityMethod`` without standardID), availability (3.3; ``upSince`` an xs:dateTime) and
tables (3.4; only published tables, keys only to published tables).
"""

from __future__ import annotations

import datetime as dt

from lxml import etree
from xsd_support import AVAILABILITY, CAPABILITIES, TABLES, assert_valid

from skyvault.schema.model import INT, TEXT, Column, ForeignKey, Schema, Table
from skyvault.vo.vosi import (
    AVAILABILITY_ID,
    CAPABILITIES_ID,
    VOSI_AVAIL_NS,
    XSI_TYPE,
    Endpoint,
    availability_document,
    capabilities_document,
    table_document,
    tableset_document,
)

COOKIE = "ivo://ivoa.net/sso#cookie"
BASE = "https://archive.example/sia"


def _capabilities() -> etree._Element:
    document = capabilities_document([
        Endpoint(CAPABILITIES_ID, f"{BASE}/capabilities"),
        Endpoint(AVAILABILITY_ID, f"{BASE}/availability"),
        Endpoint("ivo://ivoa.net/std/SIA#query-2.0", f"{BASE}/query", use="base",
                 version="2.0", security_methods=(None, COOKIE),
                 other_urls=("https://mirror.example/sia/query",)),
    ])
    assert_valid(document, *CAPABILITIES)
    return etree.fromstring(document)


def test_capabilities_list_each_endpoint_once_with_its_interface() -> None:
    root = _capabilities()
    assert root.tag == "{http://www.ivoa.net/xml/VOSICapabilities/v1.0}capabilities"
    capabilities = root.findall("capability")
    assert [c.get("standardID") for c in capabilities] == [
        CAPABILITIES_ID, AVAILABILITY_ID, "ivo://ivoa.net/std/SIA#query-2.0"]
    for capability in capabilities:
        (interface,) = capability.findall("interface")
        assert interface.get(XSI_TYPE) == "vs:ParamHTTP"
        assert interface.get("role") == "std"
    vosi_url = capabilities[0].find("interface/accessURL")
    assert (vosi_url.text, vosi_url.get("use")) == (f"{BASE}/capabilities", "full")


def test_a_query_interface_states_version_mirrors_and_who_may_call() -> None:
    (interface,) = _capabilities().findall("capability")[2].findall("interface")
    assert interface.get("version") == "2.0"
    urls = [(u.text, u.get("use")) for u in interface.findall("accessURL")]
    assert urls == [(f"{BASE}/query", "base"), ("https://mirror.example/sia/query", "base")]
    methods = [m.get("standardID") for m in interface.findall("securityMethod")]
    # Anonymous access is a securityMethod with no standardID (VOResource 1.1 section 3.2.4).
    assert methods == [None, COOKIE]


def test_availability_says_up_or_down_and_since_when_in_utc() -> None:
    since = dt.datetime(2026, 12, 8, 5, 30, 15, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    up = availability_document(True, since, ["all good", "db & disks <ok>"])
    assert_valid(up, *AVAILABILITY)
    root = etree.fromstring(up)
    ns = {"vosi": VOSI_AVAIL_NS}
    assert root.findtext("vosi:available", namespaces=ns) == "true"
    # 05:30:15 at UTC+2 is 03:30:15 UTC.
    assert root.findtext("vosi:upSince", namespaces=ns) == "2026-12-08T03:30:15Z"
    assert [n.text for n in root.findall("vosi:note", ns)] == ["all good", "db & disks <ok>"]

    down = availability_document(False, notes=["database unreachable"])
    assert_valid(down, *AVAILABILITY)
    root = etree.fromstring(down)
    assert root.findtext("vosi:available", namespaces=ns) == "false"
    assert root.find("vosi:upSince", ns) is None


def _schema() -> Schema:
    key = Column("id", INT, "Row identifier", ucd="meta.id;meta.main", primary_key=True,
                 nullable=False, indexed=True)
    hidden = Table("demo", "hidden", "Private bookkeeping", (key,), published=False)
    parent = Table("demo", "parent", "Parents", (key, Column("name", TEXT, "A name")))
    child = Table("demo", "child", "Children", (
        key,
        Column("parent_id", INT, "The parent", nullable=False),
        Column("hidden_id", INT, "Bookkeeping row"),
    ), foreign_keys=(ForeignKey(("parent_id",), "demo.parent", ("id",), "Each child's parent"),
                     ForeignKey(("hidden_id",), "demo.hidden", ("id",))))
    return Schema("demo", "A small schema", (hidden, parent, child))


def test_a_tableset_lists_published_tables_and_keys_between_them() -> None:
    document = tableset_document([_schema()])
    assert_valid(document, *TABLES)
    root = etree.fromstring(document)
    tables = {t.findtext("name"): t for t in root.iter("table")}
    assert set(tables) == {"demo.parent", "demo.child"}
    keys = tables["demo.child"].findall("foreignKey")
    assert [k.findtext("targetTable") for k in keys] == ["demo.parent"]
    assert [(c.findtext("fromColumn"), c.findtext("targetColumn"))
            for c in keys[0].findall("fkColumn")] == [("parent_id", "id")]
    columns = {c.findtext("name"): c for c in tables["demo.child"].findall("column")}
    assert [f.text for f in columns["id"].findall("flag")] == ["indexed", "primary"]
    assert [f.text for f in columns["parent_id"].findall("flag")] == []
    assert [f.text for f in columns["hidden_id"].findall("flag")] == ["nullable"]
    assert columns["id"].find("dataType").text == "int"


def test_a_tableset_without_detail_has_no_columns_and_one_table_has_them() -> None:
    schema = _schema()
    brief = tableset_document([schema], detail=False)
    assert_valid(brief, *TABLES)
    assert etree.fromstring(brief).find(".//column") is None
    one = table_document(schema.tables[2], [schema])
    assert_valid(one, *TABLES)
    root = etree.fromstring(one)
    assert root.findtext("name") == "demo.child"
    assert [c.findtext("name") for c in root.findall("column")] == [
        "id", "parent_id", "hidden_id"]
