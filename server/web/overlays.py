"""Which catalogs can be drawn over an image, found in the table declarations: a published
table with a main position (``ra``, ``dec``) and a column naming the image (``pid`` for a
science image, ``diffid`` for a difference image, ``refid`` for a reference co-add) is an
overlay of that image, read from the archive's TAP service. A catalog added later (the
transient candidates, say) is offered as soon as it is declared. Pure.

Each query also asks for the rows within the circle around the image (its diagonal): the
catalogs are filed by sky cell once compacted (ingest/README.md), and only a position lets
PostgreSQL prune the cells; by the image's identifier alone, every cell's index is probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from skyvault.schema.model import Table
from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.vo.publisher_did import COLLECTION_OF_TABLE, COLLECTIONS

IMAGE_LINK = {"sci": "pid", "diff": "diffid", "ref": "refid"}
"""The column a catalog row names its image by, per collection."""
COLOURS = ("#00e5ff", "#ffb000", "#ff4fd8", "#7CFC00", "#ff6b6b")
MAX_MARKERS = 5000
EXTRA_COLUMNS = ("mag", "magerr", "snr")
MARGIN_DEG = 1.0 / 3600
"""Beyond the image's circumscribed circle, for positions measured at its very corners."""


@dataclass(frozen=True)
class ImageCircle:
    """The circle around an image: its centre and half its diagonal (ObsCore s_fov / 2)."""

    ra: float
    dec: float
    radius: float


@dataclass(frozen=True)
class Overlay:
    name: str
    """The table's qualified name."""
    label: str
    colour: str
    url: str
    """A query (VOTable, TABLEDATA) that lists the rows on the image: TAP sync for the
    catalogs."""
    shape: str = "circle"
    """Aladin Lite's marker shape."""


SOLAR_SYSTEM = "solar_system_objects"


def solar_system_overlay(field_url: str, others: int) -> Overlay:
    """The known solar-system objects predicted in the epoch's science image (``/most/field``),
    coloured after the ``others`` catalog overlays."""
    return Overlay(SOLAR_SYSTEM, "Known solar-system objects predicted at mid-exposure",
                   COLOURS[others % len(COLOURS)], field_url, shape="cross")


def _is_catalog(table: Table, link: str) -> bool:
    names = {column.name for column in table.columns}
    if table.name in COLLECTION_OF_TABLE or table.schema != "survey":
        return False
    return {"ra", "dec", link} <= names


def _query(table: Table, link: str, image_id: int, circle: ImageCircle | None) -> str:
    names = [column.name for column in table.columns]
    identifier = next((c.name for c in table.columns if c.ucd == "meta.id;meta.main"), None)
    columns = [c for c in (identifier, "ra", "dec", *EXTRA_COLUMNS) if c and c in names]
    query = (f"SELECT TOP {MAX_MARKERS} {', '.join(columns)} FROM {table.qualified_name}"
             f" WHERE {link} = {int(image_id)}")
    if circle is None:  # an image of unknown size: every cell is probed
        return query
    within = (f"CIRCLE('ICRS', {circle.ra:.8f}, {circle.dec:.8f},"
              f" {circle.radius + MARGIN_DEG:.8f})")
    return f"{query} AND 1 = CONTAINS(POINT('ICRS', ra, dec), {within})"


def overlays_for(collection: str, image_id: int, tap_sync_url: str,
                 circle: ImageCircle | None) -> list[Overlay]:
    """The overlays of an image, each with the TAP query that fetches its rows."""
    if collection not in IMAGE_LINK or collection not in COLLECTIONS:
        return []
    link = IMAGE_LINK[collection]
    found = []
    for table in PUBLISHED_TABLES:
        if not _is_catalog(table, link):
            continue
        parameters = {"REQUEST": "doQuery", "LANG": "ADQL", "RESPONSEFORMAT": "votable/td",
                      "QUERY": _query(table, link, image_id, circle)}
        found.append(Overlay(table.qualified_name, table.description,
                             COLOURS[len(found) % len(COLOURS)],
                             f"{tap_sync_url}?{urlencode(parameters)}"))
    return found
