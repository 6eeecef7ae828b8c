"""XML Schema validation against the IVOA schemas in ../shared/ivoa/xsd, offline (TAP, VOSI, UWS
and DataLink documents: tests/tap and tests/vo import it).

The schemas import each other by their public URLs; a resolver maps those to the local copies.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

XSD_DIR = Path(__file__).resolve().parents[2] / "shared" / "ivoa" / "xsd"

# Substring of an imported schema's URL -> local file (newest version of each namespace).
_LOCAL = (
    ("VOSICapabilities", "VOSICapabilities-v1.0.xsd"),
    ("VOSIAvailability", "VOSIAvailability-v1.0.xsd"),
    ("VOSITables", "VOSITables-v1.1.xsd"),
    ("TAPRegExt", "TAPRegExt-v1.1.xsd"),
    ("VODataService", "VODataService-v1.2.xsd"),
    ("VOResource", "VOResource-v1.1.xsd"),
    ("stc-v1.30", "stc-v1.30.xsd"),
    ("UWS", "UWS-v1.1.xsd"),
    ("xlink", "xlink.xsd"),
    ("xml.xsd", "xmlnamespace.xsd"),
)


class _Resolver(etree.Resolver):
    def resolve(self, url, pubid, context):
        for key, name in _LOCAL:
            if key in url:
                return self.resolve_filename(str(XSD_DIR / name), context)
        return None


@cache
def schema(*names: str) -> etree.XMLSchema:
    """A schema importing the given local files (by the namespace each declares)."""
    imports = []
    for name in names:
        target = etree.parse(str(XSD_DIR / name)).getroot().get("targetNamespace")
        imports.append(f'<xs:import namespace="{target}" schemaLocation="{XSD_DIR / name}"/>')
    wrapper = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
               + "".join(imports) + "</xs:schema>")
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_Resolver())
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser, base_url=str(XSD_DIR) + "/"))


def assert_valid(document: bytes, *names: str) -> None:
    checker = schema(*names)
    tree = etree.fromstring(document)
    if not checker.validate(tree):
        raise AssertionError("\n".join(str(e) for e in checker.error_log))


CAPABILITIES = ("VOSICapabilities-v1.0.xsd", "TAPRegExt-v1.1.xsd", "VODataService-v1.2.xsd")
TABLES = ("VOSITables-v1.1.xsd", "VODataService-v1.2.xsd")
AVAILABILITY = ("VOSIAvailability-v1.0.xsd",)
UWS = ("UWS-v1.1.xsd",)
VOTABLE = ("VOTable.xsd",)
"""VOTable 1.3 to 1.5 documents (one namespace, the schema of the newest version)."""
