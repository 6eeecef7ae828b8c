"""Publisher dataset identifiers of the archive's images, and the collections behind them.

``ivo://skyvault.archive/<collection>?<id>`` is what ``archive.publisher_did()`` writes into
``ivoa.obscore.obs_publisher_did``; this module is its inverse. IVOIDs compare
case-insensitively (SIA 2.0 section 2.1.11, IVOA Identifiers), so parsing ignores case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skyvault.schema.model import Table
from skyvault.schema.tables import (
    DIFFERENCE_IMAGES,
    RAW_IMAGES,
    REFERENCE_IMAGES,
    SCIENCE_IMAGES,
)

DID_AUTHORITY = "ivo://skyvault.archive/"


@dataclass(frozen=True)
class Collection:
    name: str
    """The collection part of the DID: raw, sci, ref, diff."""
    table: str
    """Survey table of the images (unqualified)."""
    key: str
    """Identifier column of that table."""
    product: str
    """``survey.files.product`` of the image file itself."""


def _collection(name: str, table: Table, product: str) -> Collection:
    return Collection(name, table.name, table.key, product)


COLLECTIONS: dict[str, Collection] = {c.name: c for c in (
    _collection("raw", RAW_IMAGES, "raw"),
    _collection("sci", SCIENCE_IMAGES, "sciimg"),
    _collection("ref", REFERENCE_IMAGES, "refimg"),
    _collection("diff", DIFFERENCE_IMAGES, "diffimg"),
)}
COLLECTION_OF_TABLE: dict[str, Collection] = {c.table: c for c in COLLECTIONS.values()}

_DID = re.compile(r"ivo://skyvault\.archive/([a-z]+)\?(\d{1,18})", re.IGNORECASE)


@dataclass(frozen=True)
class ImageKey:
    collection: Collection
    image_id: int

    @property
    def did(self) -> str:
        return publisher_did(self.collection.name, self.image_id)


def publisher_did(collection: str, image_id: int) -> str:
    return f"{DID_AUTHORITY}{collection}?{image_id}"


def parse_publisher_did(text: str) -> ImageKey | None:
    """The image a DID names, or None when the text cannot be one of ours."""
    match = _DID.fullmatch(text.strip())
    if match is None:
        return None
    collection = COLLECTIONS.get(match.group(1).lower())
    if collection is None:
        return None
    return ImageKey(collection, int(match.group(2)))


# -- objects and detections (light curves) ---------------------------------------------------

OBJECT_COLLECTION = "obj"
DETECTION_COLLECTION = "src"
_OBJECT_DID = re.compile(r"ivo://skyvault\.archive/obj\?(\d{1,19})", re.IGNORECASE)
_DETECTION_DID = re.compile(r"ivo://skyvault\.archive/src\?(\d{1,18})-(\d{1,19})",
                            re.IGNORECASE)
LARGEST_ID = 2 ** 63 - 1


@dataclass(frozen=True)
class ObjectKey:
    """An object of survey.objects, whose dataset is its light curve."""

    oid: int

    @property
    def did(self) -> str:
        return f"{DID_AUTHORITY}{OBJECT_COLLECTION}?{self.oid}"


@dataclass(frozen=True)
class DetectionKey:
    """A detection of survey.psf_sources: its science image and its source identifier (the
    image first, so that finding it reads one image's rows)."""

    pid: int
    sourceid: int

    @property
    def did(self) -> str:
        return f"{DID_AUTHORITY}{DETECTION_COLLECTION}?{self.pid}-{self.sourceid}"


def parse_object_did(text: str) -> ObjectKey | DetectionKey | None:
    """The object or detection a DID names, or None when the text cannot be one."""
    found = _OBJECT_DID.fullmatch(text.strip())
    if found is not None and int(found.group(1)) <= LARGEST_ID:
        return ObjectKey(int(found.group(1)))
    found = _DETECTION_DID.fullmatch(text.strip())
    if found is not None and int(found.group(2)) <= LARGEST_ID:
        return DetectionKey(int(found.group(1)), int(found.group(2)))
    return None
