"""SODA cutouts without HTTP: an ID resolved to a file the requester may read, the coverage
checks, the pixel box, and one cutout written to a file. ``/soda/sync`` (``server.soda``) and
the async executor (``server.soda_jobs``, in `skyvault worker`) both cut with these, so the
worker imports no Flask.

The ID is looked up through the requester's connection (``context.reading()``, or the job
owner's), so an embargoed image answers like an unknown one (NotFound).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from skyvault.filestore import InvalidStorePath, local_file
from skyvault.server.images import products
from skyvault.vo.cutout import (
    CutoutError,
    ImageFile,
    NoOverlap,
    PixelBox,
    cutout_box,
    cutout_chunks,
    open_image,
)
from skyvault.vo.publisher_did import parse_publisher_did
from skyvault.vo.soda import FITS_TYPE, Cutout, NotFound, UsageError, overlaps


@dataclass(frozen=True)
class Source:
    """A dataset the requester may read: its file on disk and its ObsCore coverage."""

    did: str
    path: Path
    image: products.ImageRow


def resolve(did: str, connection: psycopg.Connection) -> Source:
    """The file behind an ID, or NotFound (also for images the requester may not see); the
    connection is the requester's (``context.reading()``, or the job owner's)."""
    key = parse_publisher_did(did)
    if key is None:
        raise NotFound(f"no dataset with ID {did}")
    found = products.image_with_file(connection, key)
    if found is None:
        raise NotFound(f"no dataset with ID {did}")
    image, row = found
    if row.content_type != FITS_TYPE:
        raise UsageError(f"{did} is not a FITS image")
    try:
        path = local_file(row.path)
    except InvalidStorePath:
        raise NotFound(f"no dataset with ID {did}") from None
    return Source(did, path, image)


def check_coverage(source: Source, cutout: Cutout) -> None:
    """BAND and TIME select the whole image or nothing (an image has one band and epoch)."""
    image = source.image
    if not overlaps(cutout.band, image.em_min, image.em_max):
        raise NoOverlap("BAND does not overlap the image's filter")
    if not overlaps(cutout.time, image.t_min, image.t_max):
        raise NoOverlap("TIME does not overlap the exposure")


def locate(image: ImageFile, cutout: Cutout) -> PixelBox:
    try:
        return cutout_box(image, cutout.shapes, (cutout.pixel1, cutout.pixel2))
    except NoOverlap:
        raise
    except CutoutError as error:
        raise UsageError(str(error)) from None


def cutout_note(source: Source, box: PixelBox) -> str:
    return (f"SODA cutout of {source.did} pixels [{box.x0 + 1}:{box.x1},{box.y0 + 1}:{box.y1}]")


def write_cutout(source: Source, cutout: Cutout, target: Path) -> None:
    """One cutout into a file (for async results); NoOverlap and SodaError as for sync."""
    check_coverage(source, cutout)
    with open_image(source.path) as image:
        box = locate(image, cutout)
        with target.open("wb") as stream:
            for chunk in cutout_chunks(image, box, cutout_note(source, box)):
                stream.write(chunk)
