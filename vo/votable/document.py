"""The XML around a VOTable's data: the document head, FIELDs, INFOs, the tail, error documents.

Result documents follow DALI 1.1 section 4.4 and TAP 1.1 section 5: one ``RESOURCE
type="results"``, an ``INFO name="QUERY_STATUS"`` before the TABLE, and, when the table was cut
at MAXREC (or writing failed), a second QUERY_STATUS INFO after it (OVERFLOW or ERROR), so a
writer that streams can still report what it only learns at the end.

The version written is VOTable 1.4 in the 1.3 namespace: the newest that every validator
here (astropy, STILTS votlint 3.4) accepts. ``version="1.1"`` writes VOTable 1.1 instead, for
Simple Cone Search 1.03 (section 2 asks for 1.0 or 1.1, and its UCD1 words such as ``ID_MAIN``
are no valid UCD1+ words, which validators check from VOTable 1.2 on). VOTable 1.1 has no
``xtype`` and no empty cells for integers: a FIELD of integers declares the value that stands
for NULL (``<VALUES null="..."/>``, VOTable 1.1 section 4.6) and its NULL cells hold it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from skyvault.vo.fields import FieldSpec

VOTABLE_VERSION = "1.4"
VOTABLE_NAMESPACE = "http://www.ivoa.net/xml/VOTable/v1.3"
VOTABLE_11_NAMESPACE = "http://www.ivoa.net/xml/VOTable/v1.1"
VOTABLE_MIME = "application/x-votable+xml"

Version = Literal["1.4", "1.1"]
"""The VOTable version a document is written in."""

INTEGER_NULLS_11 = {"unsignedByte": "255", "short": "-32768", "int": "-2147483648",
                    "long": "-9223372036854775808"}
"""The value a VOTable 1.1 FIELD of integers declares as its NULL (the type's extreme)."""

Info = tuple[str, str, str | None]
"""An INFO element: (name, value, text content or None)."""

# Characters XML 1.0 forbids even as character references.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def clean_xml_text(text: str, replacement: str = "\ufffd") -> str:
    """Text with characters XML cannot carry replaced (by U+FFFD; ``?`` where the text must
    stay ASCII, as in a ``char`` cell)."""
    return _ILLEGAL_XML.sub(replacement, text)


def escape_text(text: str, replacement: str = "\ufffd") -> str:
    """Element content: markup escaped; CR kept as a reference so parsers do not fold it."""
    text = clean_xml_text(text, replacement)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def escape_attribute(text: str) -> str:
    """Attribute values: as content, plus quotes and whitespace that parsers would normalise."""
    return (escape_text(text).replace('"', "&quot;").replace("\n", "&#10;")
            .replace("\t", "&#9;"))


def info_element(name: str, value: str, content: str | None = None) -> str:
    head = f'<INFO name="{escape_attribute(name)}" value="{escape_attribute(value)}"'
    if content is None or content == "":
        return head + "/>"
    return f"{head}>{escape_text(content)}</INFO>"


def field_ids(fields: Sequence[FieldSpec]) -> list[str | None]:
    """An ID per FIELD where the name is a valid, unique XML ID; None otherwise."""
    seen: dict[str, int] = {}
    for field in fields:
        seen[field.name] = seen.get(field.name, 0) + 1
    return [f.name if _NCNAME.match(f.name) and seen[f.name] == 1 else None for f in fields]


def null_value_11(field: FieldSpec) -> str | None:
    """The NULL value a VOTable 1.1 FIELD declares: integer scalars only (others use empty
    cells, NaN for floating point)."""
    return INTEGER_NULLS_11.get(field.datatype) if field.arraysize is None else None


@lru_cache(maxsize=4096)  # the same fields head every answer of a service
def field_element(field: FieldSpec, field_id: str | None = None, version: Version = "1.4") -> str:
    attributes = [f'name="{escape_attribute(field.name)}"']
    if field_id:
        attributes.append(f'ID="{escape_attribute(field_id)}"')
    attributes.append(f'datatype="{field.datatype}"')
    xtype = field.xtype if version != "1.1" else None
    for attribute, value in (("arraysize", field.arraysize), ("xtype", xtype),
                             ("unit", field.unit), ("ucd", field.ucd), ("utype", field.utype)):
        if value:
            attributes.append(f'{attribute}="{escape_attribute(value)}"')
    children = []
    if field.description:
        children.append(f"<DESCRIPTION>{escape_text(field.description)}</DESCRIPTION>")
    null = null_value_11(field) if version == "1.1" else None
    if null is not None:
        children.append(f'<VALUES null="{null}"/>')
    head = "<FIELD " + " ".join(attributes)
    return f"{head}>{''.join(children)}</FIELD>" if children else head + "/>"


def votable_open(version: Version = "1.4") -> str:
    if version == "1.1":
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<VOTABLE version="1.1" xmlns="{VOTABLE_11_NAMESPACE}">\n')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<VOTABLE version="{VOTABLE_VERSION}" xmlns="{VOTABLE_NAMESPACE}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{VOTABLE_NAMESPACE} {VOTABLE_NAMESPACE}">\n'
    )


def document_head(version: Version = "1.4", resource_name: str | None = None) -> str:
    name = f' name="{escape_attribute(resource_name)}"' if resource_name else ""
    return votable_open(version) + f'<RESOURCE type="results"{name}>\n'


def table_head(
    fields: Sequence[FieldSpec],
    *,
    status: str = "OK",
    infos: Sequence[Info] = (),
    table_name: str | None = None,
    description: str | None = None,
    version: Version = "1.4",
    resource_name: str | None = None,
) -> str:
    """Everything from the XML declaration to the TABLE's last FIELD."""
    parts = [document_head(version, resource_name), info_element("QUERY_STATUS", status), "\n"]
    for name, value, content in infos:
        parts += [info_element(name, value, content), "\n"]
    parts.append(f'<TABLE name="{escape_attribute(table_name)}">\n' if table_name else "<TABLE>\n")
    if description:
        parts.append(f"<DESCRIPTION>{escape_text(description)}</DESCRIPTION>\n")
    for field, field_id in zip(fields, field_ids(fields), strict=True):
        parts += [field_element(field, field_id, version), "\n"]
    return "".join(parts)


def document_tail(*, overflow: bool = False, error: str | None = None,
                  trailer: str = "") -> str:
    """From the end of the TABLE to the end of the document, with any trailing status; the
    ``trailer`` (XML of further RESOURCEs, e.g. DataLink service descriptors) follows the
    results RESOURCE."""
    parts = ["</TABLE>\n"]
    if error is not None:
        parts += [info_element("QUERY_STATUS", "ERROR", error or "error while writing"), "\n"]
    elif overflow:
        parts += [info_element("QUERY_STATUS", "OVERFLOW"), "\n"]
    parts += ["</RESOURCE>\n", trailer, "</VOTABLE>\n"]
    return "".join(parts)


def metadata_votable(
    fields: Sequence[FieldSpec],
    *,
    infos: Sequence[Info] = (),
    overflow: bool = True,
    table_name: str | None = None,
) -> bytes:
    """A result document with the FIELDs and no rows: the answer to MAXREC=0 (DALI 2.3.5).

    With ``overflow`` (the default, as DALI asks for MAXREC=0) an OVERFLOW INFO follows the
    table.
    """
    text = table_head(fields, infos=infos, table_name=table_name) + document_tail(
        overflow=overflow
    )
    return text.encode("utf-8")


def error_votable(message: str, *, infos: Sequence[Info] = ()) -> bytes:
    """A DALI error document: ``INFO name="QUERY_STATUS" value="ERROR"`` holding ``message``.

    DALI 1.1 section 4.4.2. The HTTP status is the caller's: 400 for a bad request, 500 for a
    failure of the service, 200 from a UWS job's error resource.
    """
    parts = [document_head(), info_element("QUERY_STATUS", "ERROR", message or "error"), "\n"]
    for name, value, content in infos:
        parts += [info_element(name, value, content), "\n"]
    parts.append("</RESOURCE>\n</VOTABLE>\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class ErrorResponse:
    body: bytes
    status: int
    content_type: str = VOTABLE_MIME


def error_response(message: str, http_status: int = 400, *,
                   infos: Sequence[Info] = ()) -> ErrorResponse:
    """The error document with the HTTP status and Content-Type to send it with."""
    return ErrorResponse(error_votable(message, infos=infos), http_status)


def scs_error_votable(message: str) -> bytes:
    """A Simple Cone Search 1.03 error (section 2): one ``INFO name="Error"`` as a child of
    VOTABLE, the place the standard prefers, in VOTable 1.1 as the standard's results are;
    the schema still wants a RESOURCE."""
    text = (votable_open("1.1") + info_element("Error", message or "error")
            + "\n<RESOURCE/>\n</VOTABLE>\n")
    return text.encode("utf-8")
