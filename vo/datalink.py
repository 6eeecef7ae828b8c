"""DataLink 1.1 documents: the {links} table and service descriptors.

A ``Link`` is one row of the links table (DataLink 1.1 section 3.2); a ``ServiceDescriptor``
is a ``RESOURCE type="meta" utype="adhoc:service"`` (section 4) that a row's ``service_def``
names, or that a discovery response (SIA) carries for its rows. ``links_document`` writes a
complete response as byte chunks. Pure: no database, no Flask.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.columns import ColumnBatch
from skyvault.vo.votable.document import escape_attribute, escape_text, votable_open
from skyvault.vo.votable.writer import Serialization, write_votable

LINKS_STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
DATALINK_CONTENT_TYPE = "application/x-votable+xml;content=datalink"

# Error prefixes of DataLink 1.1 section 3.4, in order of specificity.
NOT_FOUND_FAULT = "NotFoundFault"
USAGE_FAULT = "UsageFault"
TRANSIENT_FAULT = "TransientFault"
FATAL_FAULT = "FatalFault"
DEFAULT_FAULT = "DefaultFault"


@dataclass(frozen=True)
class Link:
    """One row of a links table: exactly one of access_url, service_def, error_message."""

    id: str
    semantics: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    local_semantics: str | None = None
    link_auth: str | None = None
    """false, optional or true (DataLink 1.1 section 3.2.11)."""
    link_authorized: bool | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.access_url, self.service_def, self.error_message) if v]
        if len(given) != 1:
            raise ValueError("a link has exactly one of access_url, service_def, error_message")

    def row(self) -> tuple[object, ...]:
        return (self.id, self.access_url, self.service_def, self.error_message,
                self.description, self.semantics, self.content_type, self.content_length,
                self.content_qualifier, self.local_semantics, self.link_auth,
                self.link_authorized)


def _text(name: str, ucd: str | None, description: str) -> FieldSpec:
    return FieldSpec(name, "char", arraysize="*", ucd=ucd, description=description)


LINK_FIELDS: tuple[FieldSpec, ...] = (
    _text("ID", "meta.id;meta.main", "Input identifier"),
    _text("access_url", "meta.ref.url", "Link to data or service"),
    _text("service_def", "meta.ref", "Reference to a service descriptor resource"),
    _text("error_message", "meta.code.error", "Error if an access_url cannot be created"),
    _text("description", "meta.note", "Human-readable text describing this link"),
    _text("semantics", "meta.code", "Term from a controlled vocabulary describing the link"),
    _text("content_type", "meta.code.mime", "Media type of the content the link returns"),
    FieldSpec("content_length", "long", unit="byte", ucd="phys.size;meta.file",
              description="Size of the download the link returns"),
    _text("content_qualifier", None, "Product type of what the link returns"),
    _text("local_semantics", "meta.id.assoc", "Service-specific kind of link"),
    _text("link_auth", "meta.code", "Whether the link needs authentication"),
    FieldSpec("link_authorized", "boolean", ucd="meta.code",
              description="Whether the caller is authorized to use the link"),
)


@dataclass(frozen=True)
class ServiceParam:
    """A PARAM of a service descriptor; an empty ``value`` is for the user (or ``ref``) to set."""

    name: str
    datatype: str = "char"
    arraysize: str | None = "*"
    value: str = ""
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    ref: str | None = None
    description: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceDescriptor:
    access_url: str
    input_params: tuple[ServiceParam, ...]
    standard_id: str | None = None
    id: str | None = None
    """XML ID that ``service_def`` refers to."""
    name: str | None = None
    description: str | None = None
    content_type: str | None = None
    example_url: str | None = None
    utype: str = "adhoc:service"


def param_element(param: ServiceParam) -> str:
    attributes = [f'name="{escape_attribute(param.name)}"', f'datatype="{param.datatype}"']
    for attribute, value in (("arraysize", param.arraysize), ("xtype", param.xtype),
                             ("unit", param.unit), ("ucd", param.ucd), ("ref", param.ref)):
        if value:
            attributes.append(f'{attribute}="{escape_attribute(value)}"')
    attributes.append(f'value="{escape_attribute(param.value)}"')
    children = []
    if param.description:
        children.append(f"<DESCRIPTION>{escape_text(param.description)}</DESCRIPTION>")
    if param.minimum is not None or param.maximum is not None or param.options:
        values = ["<VALUES>"]
        if param.minimum is not None:
            values.append(f'<MIN value="{escape_attribute(param.minimum)}"/>')
        if param.maximum is not None:
            values.append(f'<MAX value="{escape_attribute(param.maximum)}"/>')
        values += [f'<OPTION value="{escape_attribute(o)}"/>' for o in param.options]
        values.append("</VALUES>")
        children.append("".join(values))
    head = "<PARAM " + " ".join(attributes)
    return f"{head}>{''.join(children)}</PARAM>" if children else head + "/>"


def _fixed(name: str, value: str, ucd: str | None = None) -> str:
    ucd_attribute = f' ucd="{ucd}"' if ucd else ""
    return (f'<PARAM name="{name}" datatype="char" arraysize="*"{ucd_attribute} '
            f'value="{escape_attribute(value)}"/>')


def descriptor_element(descriptor: ServiceDescriptor) -> str:
    attributes = ['type="meta"', f'utype="{escape_attribute(descriptor.utype)}"']
    if descriptor.id:
        attributes.insert(0, f'ID="{escape_attribute(descriptor.id)}"')
    if descriptor.name:
        attributes.append(f'name="{escape_attribute(descriptor.name)}"')
    parts = [f"<RESOURCE {' '.join(attributes)}>"]
    if descriptor.description:
        parts.append(f"<DESCRIPTION>{escape_text(descriptor.description)}</DESCRIPTION>")
    if descriptor.standard_id:
        parts.append(_fixed("standardID", descriptor.standard_id))
    parts.append(_fixed("accessURL", descriptor.access_url, "meta.ref.url"))
    if descriptor.content_type:
        parts.append(_fixed("contentType", descriptor.content_type))
    if descriptor.example_url:
        parts.append(_fixed("exampleURL", descriptor.example_url))
    parts.append('<GROUP name="inputParams">')
    parts += [param_element(p) for p in descriptor.input_params]
    parts.append("</GROUP></RESOURCE>\n")
    return "\n".join(parts)


def links_document(links: Iterable[Link], descriptors: Sequence[ServiceDescriptor] = (),
                   *, overflow: bool = False,
                   serialization: Serialization = "TABLEDATA") -> Iterator[bytes]:
    """A {links} response (DataLink 1.1 section 3.3.1): the results RESOURCE with its
    standardID INFO, the links table in ``serialization`` (TABLEDATA, which DataLink requires
    every service to offer, or BINARY2), then the service descriptors its rows refer to."""
    batch = ColumnBatch.from_rows(LINK_FIELDS, [link.row() for link in links])
    return write_votable(LINK_FIELDS, [batch], serialization=serialization,
                         infos=[("standardID", LINKS_STANDARD_ID, None)], overflow=overflow,
                         errors="raise",
                         trailer="".join(descriptor_element(d) for d in descriptors))


def descriptors_document(descriptors: Sequence[ServiceDescriptor]) -> bytes:
    """A VOTable holding service descriptors alone: how a service that is called without
    parameters describes its own input parameters (as SODA services do for {sync})."""
    parts = [votable_open(), *(descriptor_element(d) for d in descriptors), "</VOTABLE>\n"]
    return "".join(parts).encode("utf-8")


def error_text(fault: str, detail: str) -> str:
    """``Fault: detail`` as DataLink 1.1 section 3.4 writes messages."""
    return f"{fault}: {detail}" if detail else fault
