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
import re
from collections.abc import Sequence
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
SIP_CARD = re.compile(r"(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)$")
"""The SIP distortion's cards: its polynomials are in pixels relative to CRPIX, so moving CRPIX
with the box keeps them exact for the stamp (a CTYPE of ...-TAN-SIP without them would not)."""


class StampError(Exception):
    """An image a stamp cannot be cut from (unreadable, no celestial WCS)."""


def stamp_box(x: float, y: float) -> PixelBox:
    """The 63 x 63 box around 0-based position (x, y), as Cutout2D places it."""
    x0, y0 = math.ceil(x - HALF), math.ceil(y - HALF)
    return PixelBox(x0, x0 + SIZE, y0, y0 + SIZE)


def tile_sections(boxes: Sequence[PixelBox], tile: tuple[int, int], width: int,
                  height: int) -> list[PixelBox]:
    """Sections of a tile-compressed image that meet every tile the boxes touch, each tile in
    one section and no other tile: a tile row's runs of adjacent touched tiles, merged with
    the next tile row's where those have the same runs (one-row tiles: bands of rows), each
    cut down to the pixels of the boxes it meets (a band of whole 3072-pixel rows cost more to
    copy than its 63-pixel stamps: benchmarks/bench_alerts.py --ztf-stamps)."""
    tile_width, tile_height = tile
    touched: dict[int, set[int]] = {}
    for box in boxes:
        columns = range(box.x0 // tile_width, (box.x1 - 1) // tile_width + 1)
        for row in range(box.y0 // tile_height, (box.y1 - 1) // tile_height + 1):
            touched.setdefault(row, set()).update(columns)
    sections: list[PixelBox] = []
    band: tuple[tuple[tuple[int, int], ...], int, int] | None = None

    def close(runs: tuple[tuple[int, int], ...], first: int, last: int) -> None:
        for x0, x1 in runs:
            sections.append(PixelBox(x0 * tile_width, min(x1 * tile_width, width),
                                     first * tile_height, min(last * tile_height, height)))

    for row in sorted(touched):
        runs = _runs(sorted(touched[row]))
        if band is not None and band[0] == runs and band[2] == row:
            band = (runs, band[1], row + 1)
            continue
        if band is not None:
            close(*band)
        band = (runs, row, row + 1)
    if band is not None:
        close(*band)
    return [_hull(section, boxes) for section in sections]


def _hull(section: PixelBox, boxes: Sequence[PixelBox]) -> PixelBox:
    """The part of ``section`` within the bounding box of the boxes that meet it."""
    met = [box.intersect(section) for box in boxes]
    met = [box for box in met if not box.is_empty]
    return PixelBox(min(b.x0 for b in met), max(b.x1 for b in met),
                    min(b.y0 for b in met), max(b.y1 for b in met))


def _runs(indices: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Adjacent indices as half-open runs: [0, 1, 2, 5] -> ((0, 3), (5, 6))."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return tuple(runs)


def read_boxes(image: ImageFile, boxes: Sequence[PixelBox]) -> list[np.ndarray]:
    """The pixels of each box (inside the image). A tile-compressed image is read in the
    sections that hold the tiles the boxes touch (``tile_sections``), so a tile several
    stamps share is decompressed once, and no tile they miss is (one read per box
    decompressed shared tiles again, the whole image tiles no stamp needs: on one-row tiles
    both cost more, benchmarks/bench_alerts.py); a plain image box by box."""
    if image.tile is None or not boxes:
        return [image.read(box) for box in boxes]
    canvas: np.ndarray | None = None
    for section in tile_sections(boxes, image.tile, image.header.naxis1,
                                 image.header.naxis2):
        pixels = image.read(section)
        if canvas is None:
            # Untouched pages of an empty array cost nothing: only the sections are filled.
            canvas = np.empty((image.header.naxis2, image.header.naxis1), dtype=pixels.dtype)
        canvas[section.y0:section.y1, section.x0:section.x1] = pixels
    assert canvas is not None
    return [canvas[box.y0:box.y1, box.x0:box.x1] for box in boxes]


def cut_many(image: ImageFile, positions: Sequence[tuple[float, float]],
             ) -> list[tuple[np.ndarray, PixelBox] | StampError]:
    """Each position's stamp pixels (NaN beyond the image) and box, or why it has none."""
    ra = np.array([position[0] for position in positions], dtype=float)
    dec = np.array([position[1] for position in positions], dtype=float)
    xs, ys = image.projection().world_to_pixel(ra, dec)
    image_box = PixelBox(0, image.header.naxis1, 0, image.header.naxis2)
    found: list[tuple[np.ndarray, PixelBox] | StampError] = []
    reads: list[tuple[np.ndarray, PixelBox, PixelBox]] = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if not (math.isfinite(x) and math.isfinite(y)):
            found.append(StampError("the position does not project onto the image"))
            continue
        box = stamp_box(x, y)
        stamp = np.full((SIZE, SIZE), np.nan, dtype=np.float32)
        inside = box.intersect(image_box)
        if not inside.is_empty:
            reads.append((stamp, box, inside))
        found.append((stamp, box))
    for (stamp, box, inside), pixels in zip(
            reads, read_boxes(image, [inside for _, _, inside in reads]), strict=True):
        stamp[inside.y0 - box.y0:inside.y1 - box.y0, inside.x0 - box.x0:inside.x1 - box.x0] = \
            pixels
    return found


def cut(image: ImageFile, ra: float, dec: float) -> tuple[np.ndarray, PixelBox]:
    """The stamp's pixels (NaN beyond the image), read from the file, and its box."""
    result = cut_many(image, [(ra, dec)])[0]
    if isinstance(result, StampError):
        raise result
    return result


class StampHeader:
    """The cards a stamp of one image carries: the structure, the image's WCS cards (the
    reference pixel moved by the box origin) and LTV1/LTV2, chosen from the image's header
    once for all its stamps."""

    def __init__(self, image: ImageFile) -> None:
        self.cards: list[tuple[str, str, float | None]] = []
        for card in image.header.cards:
            name = card[:8].strip()
            if name not in KEPT and not SIP_CARD.match(name):
                continue
            value = image.header.values.get(name)
            shifted = name in SHIFTED and isinstance(value, (int, float))
            self.cards.append((name, card, float(value) if shifted else None))  # type: ignore[arg-type]

    def bytes(self, box: PixelBox) -> bytes:
        cards = [format_card("SIMPLE", True), format_card("BITPIX", -32),
                 format_card("NAXIS", 2), format_card("NAXIS1", SIZE),
                 format_card("NAXIS2", SIZE)]
        for name, card, value in self.cards:
            if value is not None:
                card = format_card(name, value - (box.x0 if name == "CRPIX1" else box.y0))
            cards.append(card)
        cards += [format_card("LTV1", float(-box.x0), "stamp offset: image = physical + LTV"),
                  format_card("LTV2", float(-box.y0))]
        return header_bytes(cards)


def fits_stamp(image: ImageFile, stamp: np.ndarray, box: PixelBox,
               header: StampHeader | None = None) -> bytes:
    """The stamp as a FITS file: a primary HDU of 32-bit floats, as ZTF's, with the image's
    WCS cards."""
    data = stamp.astype(">f4").tobytes()
    return ((header or StampHeader(image)).bytes(box) + data
            + b"\0" * (-len(data) % BLOCK))


def gzipped(content: bytes) -> bytes:
    # mtime=0: the same stamp gives the same bytes (archives are checksummed).
    return gzip.compress(content, compresslevel=GZIP_LEVEL, mtime=0)


class StampCutter:
    """Cuts stamps from the files kept open in ``images``."""

    def __init__(self, images: OpenImages | None = None) -> None:
        self.images = images if images is not None else OpenImages()

    def stamp(self, path: Path, ra: float, dec: float) -> bytes:
        """The gzipped FITS stamp of the image at ``path`` around (ra, dec)."""
        result = self.stamps(path, [(ra, dec)])[0]
        if isinstance(result, StampError):
            raise result
        return result

    def stamps(self, path: Path, positions: Sequence[tuple[float, float]],
               ) -> list[bytes | StampError]:
        """The gzipped FITS stamps of the image at ``path`` around each position (the stamps
        of one difference image's alerts: the image's tiles read once, its WCS applied to
        them together, its header cards chosen once), or why each has none."""
        try:
            image = self.images.get(path)
            cuts = cut_many(image, positions)
            header = StampHeader(image)
        except (OSError, ProjectionError, CutoutError) as error:
            failed = StampError(f"{path.name}: {error}")
            return [failed for _ in positions]
        return [StampError(f"{path.name}: {result}") if isinstance(result, StampError)
                else gzipped(fits_stamp(image, *result, header)) for result in cuts]
