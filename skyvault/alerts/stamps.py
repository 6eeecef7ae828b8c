"""Image stamps of an alert: 63 x 63 pixels of the science, reference and difference images
around the candidate, each a gzipped FITS file as ZTF's alert packets carry them.

A stamp is centred on the pixel that holds the candidate's position in that image (through
the image's own WCS: the reference co-add has its own grid), chosen as astropy's ``Cutout2D``
chooses it (the box starts at ``ceil(p - 31.5)``), so that a stamp equals ``Cutout2D(data,
position, 63, mode="partial", fill_value=nan)`` of the archived file. Pixels beyond the image
are NaN. The header holds the stamp's WCS (the reference pixel shifted by the box origin, as
SODA cutouts do, vo/cutout.py) and LTV1/LTV2 back to the source pixels.

Only the stamp's pixels are read (fitsio section reads: of a tile-compressed image, only the
tiles the box touches are decompressed), from files kept open while consecutive alerts use
them (``vo.cutout.OpenImages``, shared with the alerts' forced photometry): a night's alerts
are cut in order of difference image, so each file is opened and its WCS parsed once. Reading
whole images instead cost more than the stamps themselves (benchmarks/bench_alerts.py).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from skyvault.vo.cutout import (
    BLOCK,
    CutoutError,
    ImageFile,
    OpenImages,
    PixelBox,
    format_card,
    header_bytes,
)
from skyvault.vo.skyproj import ProjectionError

SIZE = 63
HALF = SIZE / 2
GZIP_LEVEL = 1
"""Level 6 (gzip's default) made stamps 1% smaller at 1.4 times the time (noise-dominated
pixels compress little at any level; benchmarks/bench_alerts.py)."""
KINDS = ("science", "template", "difference")
FILE_SUFFIX = {"science": "targ_sci", "template": "ref", "difference": "scimref_diff"}
WCS_KEYS = ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRVAL1", "CRVAL2", "CD1_1", "CD1_2",
            "CD2_1", "CD2_2", "CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
            "RADESYS", "EQUINOX", "BUNIT", "MAGZP")
SHIFTED = ("CRPIX1", "CRPIX2")
KEPT = frozenset(WCS_KEYS + SHIFTED)


class StampError(Exception):
    """An image a stamp cannot be cut from (unreadable, no celestial WCS)."""


def stamp_box(x: float, y: float) -> PixelBox:
    """The 63 x 63 box around 0-based position (x, y), as Cutout2D places it."""
    x0, y0 = math.ceil(x - HALF), math.ceil(y - HALF)
    return PixelBox(x0, x0 + SIZE, y0, y0 + SIZE)


def cut(image: ImageFile, ra: float, dec: float) -> tuple[np.ndarray, PixelBox]:
    """The stamp's pixels (NaN beyond the image), read from the file, and its box."""
    x, y = image.projection().world_to_pixel(np.array([ra]), np.array([dec]))
    if not (np.isfinite(x[0]) and np.isfinite(y[0])):
        raise StampError("the position does not project onto the image")
    box = stamp_box(float(x[0]), float(y[0]))
    stamp = np.full((SIZE, SIZE), np.nan, dtype=np.float32)
    inside = box.intersect(PixelBox(0, image.header.naxis1, 0, image.header.naxis2))
    if not inside.is_empty:
        stamp[inside.y0 - box.y0:inside.y1 - box.y0, inside.x0 - box.x0:inside.x1 - box.x0] = \
            image.read(inside)
    return stamp, box


def fits_stamp(image: ImageFile, stamp: np.ndarray, box: PixelBox) -> bytes:
    """The stamp as a FITS file: a primary HDU of 32-bit floats, as ZTF's, with the image's
    WCS cards."""
    cards = [format_card("SIMPLE", True), format_card("BITPIX", -32), format_card("NAXIS", 2),
             format_card("NAXIS1", SIZE), format_card("NAXIS2", SIZE)]
    for card in image.header.cards:
        name = card[:8].strip()
        if name not in KEPT:
            continue
        value = image.header.values.get(name)
        if name in SHIFTED and isinstance(value, (int, float)):
            card = format_card(name, float(value) - (box.x0 if name == "CRPIX1" else box.y0))
        cards.append(card)
    cards += [format_card("LTV1", float(-box.x0), "stamp offset: image = physical + LTV"),
              format_card("LTV2", float(-box.y0))]
    data = stamp.astype(">f4").tobytes()
    return header_bytes(cards) + data + b"\0" * (-len(data) % BLOCK)


def gzipped(content: bytes) -> bytes:
    # mtime=0: the same stamp gives the same bytes (archives are checksummed).
    return gzip.compress(content, compresslevel=GZIP_LEVEL, mtime=0)


class StampCutter:
    """Cuts stamps from the files kept open in ``images``."""

    def __init__(self, images: OpenImages | None = None) -> None:
        self.images = images if images is not None else OpenImages()

    def stamp(self, path: Path, ra: float, dec: float) -> bytes:
        """The gzipped FITS stamp of the image at ``path`` around (ra, dec)."""
        try:
            image = self.images.get(path)
            stamp, box = cut(image, ra, dec)
        except (OSError, ProjectionError, CutoutError) as error:
            raise StampError(f"{path.name}: {error}") from None
        return gzipped(fits_stamp(image, stamp, box))
