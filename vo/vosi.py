"""VOSI 1.1 documents: capabilities, availability and tables (VODataService 1.2 tableset).

Pure functions from the declarative schema model and plain values to XML bytes. The TAP
capability element itself (TAPRegExt) is built in ``skyvault.vo.tapregext``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from skyvault.schema.model import Column, Schema, Table
from skyvault.schema.tap_schema import adql_column_name

VOSI_CAP_NS = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VOSI_AVAIL_NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
VOSI_TABLES_NS = "http://www.ivoa.net/xml/VOSITables/v1.0"
VR_NS = "http://www.ivoa.net/xml/VOResource/v1.0"
VS_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
TR_NS = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = f"{{{XSI_NS}}}type"

CAPABILITIES_ID = "ivo://ivoa.net/std/VOSI#capabilities"
AVAILABILITY_ID = "ivo://ivoa.net/std/VOSI#availability"
TABLES_ID = "ivo://ivoa.net/std/VOSI#tables-1.1"
EXAMPLES_ID = "ivo://ivoa.net/std/DALI#examples"


def serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- capabilities -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A capability with one ParamHTTP interface: VOSI resources, DALI examples."""

    standard_id: str
    url: str
    use: str = "full"
    version: str | None = None
    security_methods: tuple[str | None, ...] = ()
    """standardIDs of accepted authentication; None stands for anonymous access."""
    other_urls: tuple[str, ...] = ()
    """Further accessURLs of the same interface (VOResource 1.1 allows several)."""


def interface_element(parent: etree._Element, url: str, *, use: str = "full",
                      version: str | None = None,
                      security_methods: Iterable[str | None] = (),
                      other_urls: Iterable[str] = ()) -> etree._Element:
    interface = etree.SubElement(parent, "interface", role="std")
    interface.set(XSI_TYPE, "vs:ParamHTTP")
    if version:
        interface.set("version", version)
    for access_url in (url, *other_urls):
        etree.SubElement(interface, "accessURL", use=use).text = access_url
    for method in security_methods:
        element = etree.SubElement(interface, "securityMethod")
        if method:
            element.set("standardID", method)
    return interface


def capabilities_document(capabilities: Sequence[etree._Element | Endpoint]) -> bytes:
    """<vosi:capabilities> with the given capability elements and simple endpoints."""
    root = etree.Element(
        f"{{{VOSI_CAP_NS}}}capabilities",
        nsmap={"vosi": VOSI_CAP_NS, "vr": VR_NS, "vs": VS_NS, "tr": TR_NS, "xsi": XSI_NS},
    )
    for capability in capabilities:
        if isinstance(capability, Endpoint):
            element = etree.SubElement(root, "capability", standardID=capability.standard_id)
            interface_element(element, capability.url, use=capability.use,
                              version=capability.version,
                              security_methods=capability.security_methods,
                              other_urls=capability.other_urls)
        else:
            root.append(capability)
    return serialise(root)


# -- availability -------------------------------------------------------------------------------


def availability_document(available: bool, up_since: dt.datetime | None = None,
                          notes: Iterable[str] = ()) -> bytes:
    """<vosi:availability> (VOSI 1.1 section 3.3)."""
    root = etree.Element(f"{{{VOSI_AVAIL_NS}}}availability", nsmap={"vosi": VOSI_AVAIL_NS})
    etree.SubElement(root, f"{{{VOSI_AVAIL_NS}}}available").text = (
        "true" if available else "false"
    )
    if up_since is not None:
        etree.SubElement(root, f"{{{VOSI_AVAIL_NS}}}upSince").text = (
            up_since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    for note in notes:
        etree.SubElement(root, f"{{{VOSI_AVAIL_NS}}}note").text = note
    return serialise(root)


# -- tables -------------------------------------------------------------------------------------


def _column_element(parent: etree._Element, column: Column) -> None:
    element = etree.SubElement(parent, "column")
    if column.std:
        element.set("std", "true")
    etree.SubElement(element, "name").text = adql_column_name(column)
    etree.SubElement(element, "description").text = column.description
    if column.unit:
        etree.SubElement(element, "unit").text = column.unit
    if column.ucd:
        etree.SubElement(element, "ucd").text = column.ucd
    if column.utype:
        etree.SubElement(element, "utype").text = column.utype
    data_type = etree.SubElement(element, "dataType")
    data_type.set(XSI_TYPE, "vs:VOTableType")
    if column.arraysize:
        data_type.set("arraysize", column.arraysize)
    if column.xtype:
        data_type.set("extendedType", column.xtype)
    data_type.text = column.datatype
    if column.indexed:
        etree.SubElement(element, "flag").text = "indexed"
    if column.primary_key:
        etree.SubElement(element, "flag").text = "primary"
    if column.nullable and not column.primary_key:
        etree.SubElement(element, "flag").text = "nullable"


def _table_content(element: etree._Element, table: Table, detail: bool,
                   published: frozenset[str]) -> None:
    element.set("type", table.table_type)
    etree.SubElement(element, "name").text = table.qualified_name
    etree.SubElement(element, "description").text = table.description
    if table.utype:
        etree.SubElement(element, "utype").text = table.utype
    if not detail:
        return
    for column in table.columns:
        _column_element(element, column)
    for key in table.foreign_keys:
        if key.target_table not in published:
            continue
        fk = etree.SubElement(element, "foreignKey")
        etree.SubElement(fk, "targetTable").text = key.target_table
        for source, target in zip(key.columns, key.target_columns, strict=True):
            pair = etree.SubElement(fk, "fkColumn")
            etree.SubElement(pair, "fromColumn").text = source
            etree.SubElement(pair, "targetColumn").text = target
        if key.description:
            etree.SubElement(fk, "description").text = key.description


def _published(schemas: Iterable[Schema]) -> frozenset[str]:
    return frozenset(t.qualified_name for s in schemas for t in s.tables if t.published)


def tableset_document(schemas: Sequence[Schema], detail: bool = True) -> bytes:
    """<vosi:tableset>: every published table; columns and keys only with ``detail``."""
    root = etree.Element(f"{{{VOSI_TABLES_NS}}}tableset",
                         nsmap={"vosi": VOSI_TABLES_NS, "vs": VS_NS, "xsi": XSI_NS})
    published = _published(schemas)
    for schema in schemas:
        tables = [t for t in schema.tables if t.published]
        if not tables:
            continue
        element = etree.SubElement(root, "schema")
        etree.SubElement(element, "name").text = schema.name
        etree.SubElement(element, "description").text = schema.description
        for table in tables:
            _table_content(etree.SubElement(element, "table"), table, detail, published)
    return serialise(root)


def table_document(table: Table, schemas: Sequence[Schema]) -> bytes:
    """<vosi:table> for one table, with its columns (VOSI 1.1 section 3.4)."""
    root = etree.Element(f"{{{VOSI_TABLES_NS}}}table",
                         nsmap={"vosi": VOSI_TABLES_NS, "vs": VS_NS, "xsi": XSI_NS})
    _table_content(root, table, True, _published(schemas))
    return serialise(root)
