"""Cutouts of FITS images: which pixels a sky region covers, and the cutout file itself.

- ``open_image`` finds the first 2-D image HDU of a file (plain or tile-compressed) and gives
  its header as an image header (a compressed HDU's binary-table keywords translated back).
- ``region_box`` maps sky shapes (SODA CIRCLE / POLYGON / POS) to the bounding box of the
  pixels they cover, through the image's own WCS; ``pixel_box`` does the same for SODA-style
  PIXEL_n ranges. Partial overlap is clipped to the image; no overlap raises ``NoOverlap``.
- ``cutout_chunks`` reads only the pixels of the box (fitsio section reads: for a compressed
  HDU only the tiles the box touches are decompressed) and writes a primary-HDU FITS file with
  the original header, the new NAXISn, CRPIXn shifted so every pixel keeps its sky position,
  and LTVn (IRAF physical coordinates) pointing back at the source pixels.

Pixel boxes are 0-based and half-open, ``x`` along NAXIS1 (columns), ``y`` along NAXIS2 (rows).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import fitsio
import numpy as np

from skyvault.geometry import inside_convex_polygon, radec_of, separation, unit_vectors
from skyvault.vo.shapes import Circle, Polygon, Range, Shape
from skyvault.vo.skyproj import ProjectionError, SkyProjection

BLOCK = 2880
CARD = 80


class CutoutError(Exception):
    """A cutout that cannot be made from this file."""


class NotAnImage(CutoutError):
    """The file has no two-dimensional image HDU."""


class NoOverlap(CutoutError):
    """The requested region includes no pixel of the image."""


@dataclass(frozen=True)
class PixelBox:
    x0: int
    x1: int
    y0: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersect(self, other: PixelBox) -> PixelBox:
        return PixelBox(max(self.x0, other.x0), min(self.x1, other.x1),
                        max(self.y0, other.y0), min(self.y1, other.y1))


# -- headers --------------------------------------------------------------------------------------

# Structure of the HDU itself: rewritten for the cutout, never copied.
_STRUCTURAL = frozenset({
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "END",
    "CHECKSUM", "DATASUM", "TFIELDS", "THEAP", "ZIMAGE", "ZTENSION", "ZBITPIX", "ZNAXIS",
    "ZPCOUNT", "ZGCOUNT", "ZCMPTYPE", "ZQUANTIZ", "ZDITHER0", "ZSIMPLE", "ZEXTEND",
    "ZBLOCKED", "ZHECKSUM", "ZDATASUM", "ZMASKCMP", "ZBLANK", "BSCALE", "BZERO",
})
_STRUCTURAL_PREFIXES = ("NAXIS", "ZNAXIS", "ZTILE", "ZNAME", "ZVAL", "TTYPE", "TFORM", "TUNIT",
                        "TNULL", "TSCAL", "TZERO", "TDIM", "TDISP")


def _is_structural(name: str) -> bool:
    if name in _STRUCTURAL:
        return True
    return any(name.startswith(p) and name[len(p):].isdigit() for p in _STRUCTURAL_PREFIXES)


@dataclass(frozen=True)
class ImageHeader:
    """The cards of an image HDU other than its structure, and their values by keyword."""

    cards: tuple[str, ...]
    values: dict[str, object]
    naxis1: int
    naxis2: int

    def projection(self) -> SkyProjection:
        structure = [format_card("NAXIS", 2), format_card("NAXIS1", self.naxis1),
                     format_card("NAXIS2", self.naxis2)]
        return SkyProjection.from_cards([*structure, *self.cards])


def image_header(records: Sequence[dict], dims: Sequence[int]) -> ImageHeader:
    """The image header of an HDU from fitsio's header records (plain or compressed)."""
    cards: list[str] = []
    values: dict[str, object] = {}
    for record in records:
        name = (record.get("name") or "").upper()
        if _is_structural(name):
            continue
        if name == "EXTNAME" and str(record.get("value", "")).strip() == "COMPRESSED_IMAGE":
            continue
        card = record.get("card_string") or ""
        cards.append(card)
        if name and name not in ("COMMENT", "HISTORY", ""):
            values[name] = record.get("value")
    naxis2, naxis1 = int(dims[0]), int(dims[1])
    return ImageHeader(tuple(cards), values, naxis1, naxis2)


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value).upper()
        return text if ("." in text or "E" in text or "N" in text) else text + ".0"
    text = str(value).replace("'", "''")
    return f"'{text:<8}'"


def format_card(name: str, value: object, comment: str | None = None) -> str:
    text = f"{name:<8}= {format_value(value):>20}"
    if comment:
        text += f" / {comment}"
    return text[:CARD].ljust(CARD)


def _card_name(card: str) -> str:
    return card[:8].strip().upper()


def cutout_header_cards(header: ImageHeader, box: PixelBox, bitpix: int,
                        bzero: float | None = None,
                        note: str | None = None) -> list[str]:
    """The cutout's primary header: structure first, then the source cards with the reference
    pixel and the physical-coordinate offsets moved by the box origin."""
    cards = [
        format_card("SIMPLE", True, "conforms to FITS standard"),
        format_card("BITPIX", bitpix, "array data type"),
        format_card("NAXIS", 2, "number of array dimensions"),
        format_card("NAXIS1", box.width),
        format_card("NAXIS2", box.height),
    ]
    if bzero is not None:
        cards += [format_card("BZERO", bzero, "offset for unsigned integers"),
                  format_card("BSCALE", 1)]
    shifts = {"CRPIX1": box.x0, "CRPIX2": box.y0, "LTV1": box.x0, "LTV2": box.y0}
    seen: set[str] = set()
    for card in header.cards:
        name = _card_name(card)
        if name in shifts and card[8:10] == "= ":
            value = header.values.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                comment = card.split(" / ", 1)[1].strip() if " / " in card else None
                card = format_card(name, float(value) - shifts[name], comment)
                seen.add(name)
        cards.append(card.ljust(CARD)[:CARD])
    for axis, name in ((box.x0, "LTV1"), (box.y0, "LTV2")):
        if name not in seen:
            cards.append(format_card(name, float(-axis), "cutout offset: image = physical + LTV"))
    if note:
        cards.append(f"COMMENT {note}"[:CARD].ljust(CARD))
    return cards


def header_bytes(cards: Sequence[str]) -> bytes:
    text = "".join(c.ljust(CARD)[:CARD] for c in cards) + "END".ljust(CARD)
    raw = text.encode("ascii", "replace")
    return raw + b" " * (-len(raw) % BLOCK)


# -- image files ----------------------------------------------------------------------------------


@dataclass
class ImageFile:
    """An open FITS file and its first 2-D image HDU."""

    fits: fitsio.FITS
    hdu: object
    header: ImageHeader
    compressed: bool
    tile: tuple[int, int] | None = None
    """A compressed image's tile size (columns, rows: ZTILE1, ZTILE2)."""
    _projection: SkyProjection | None = field(default=None, repr=False)

    def projection(self) -> SkyProjection:
        """The header's WCS, parsed once per open file (``ProjectionError`` without one)."""
        if self._projection is None:
            self._projection = self.header.projection()
        return self._projection

    def read(self, box: PixelBox) -> np.ndarray:
        return self.hdu[box.y0:box.y1, box.x0:box.x1]  # type: ignore[index]

    def read_all(self) -> np.ndarray:
        return self.hdu.read()  # type: ignore[attr-defined]


def _tile(records: Sequence[dict], dims: Sequence[int]) -> tuple[int, int]:
    """ZTILE1, ZTILE2 of a compressed image (the default, one row per tile, without them)."""
    values = {(record.get("name") or "").upper(): record.get("value") for record in records}
    width = values.get("ZTILE1")
    height = values.get("ZTILE2")
    return (int(width) if isinstance(width, int) else int(dims[1]),
            int(height) if isinstance(height, int) else 1)


@contextmanager
def open_image(path: Path | str) -> Iterator[ImageFile]:
    """The first HDU with a 2-D image, tile-compressed or not."""
    fits = fitsio.FITS(str(path))
    try:
        for hdu in fits:
            info = hdu.get_info()
            if hdu.get_exttype() != "IMAGE_HDU" or len(info.get("dims", ())) != 2:
                continue
            records = hdu.read_header().records()
            compressed = bool(info.get("is_compressed_image"))
            yield ImageFile(fits, hdu, image_header(records, info["dims"]), compressed,
                            _tile(records, info["dims"]) if compressed else None)
            return
        raise NotAnImage(f"{Path(path).name} has no two-dimensional image")
    finally:
        fits.close()


class OpenImages:
    """The last ``keep`` image files used, kept open (header and WCS parsed) for section
    reads: an alert night's stamps and forced photometry read many small boxes of the same
    few files in turn. Close it (or use it as a context manager) to close them."""

    def __init__(self, keep: int = 16) -> None:
        self._open: OrderedDict[Path, tuple[ExitStack, ImageFile]] = OrderedDict()
        self._keep = keep

    def get(self, path: Path) -> ImageFile:
        found = self._open.get(path)
        if found is not None:
            self._open.move_to_end(path)
            return found[1]
        stack = ExitStack()
        try:
            image = stack.enter_context(open_image(path))
        except BaseException:
            stack.close()
            raise
        self._open[path] = (stack, image)
        if len(self._open) > self._keep:
            self._open.popitem(last=False)[1][0].close()
        return image

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1][0].close()

    def __enter__(self) -> OpenImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- regions to pixel boxes -----------------------------------------------------------------------


def circle_outline(circle: Circle, points: int = 72) -> tuple[np.ndarray, np.ndarray]:
    """Points on the circle's boundary (small circle at angular radius r)."""
    ra0, dec0 = math.radians(circle.ra), math.radians(circle.dec)
    r = math.radians(circle.radius)
    bearing = np.linspace(0.0, 2 * math.pi, points, endpoint=False)
    dec = np.arcsin(math.sin(dec0) * math.cos(r) + math.cos(dec0) * math.sin(r) * np.cos(bearing))
    ra = ra0 + np.arctan2(np.sin(bearing) * math.sin(r) * math.cos(dec0),
                          math.cos(r) - math.sin(dec0) * np.sin(dec))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def polygon_outline(vertices: Sequence[tuple[float, float]],
                    per_edge: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Vertices with points along each great-circle edge between them."""
    corners = unit_vectors([v[0] for v in vertices], [v[1] for v in vertices])
    parts = []
    for i in range(len(corners)):
        a, b = corners[i], corners[(i + 1) % len(corners)]
        t = np.linspace(0.0, 1.0, per_edge, endpoint=False)[:, None]
        chord = (1 - t) * a + t * b
        parts.append(chord / np.linalg.norm(chord, axis=1)[:, None])
    return radec_of(np.vstack(parts))


def range_outline(shape: Range, per_edge: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The boundary of a longitude/latitude box: meridian and parallel segments."""
    span = (shape.ra_max - shape.ra_min) % 360.0 or 360.0
    ras = (shape.ra_min + np.linspace(0.0, span, per_edge)) % 360.0
    decs = np.linspace(shape.dec_min, shape.dec_max, per_edge)
    ra = np.concatenate([ras, np.full(per_edge, ras[-1]), ras[::-1], np.full(per_edge, ras[0])])
    dec = np.concatenate([np.full(per_edge, shape.dec_min), decs, np.full(per_edge, shape.dec_max),
                          decs[::-1]])
    return ra, dec


def contains(shape: Shape, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Which sky positions lie inside the shape (boundary included)."""
    if isinstance(shape, Circle):
        return separation(ra, dec, shape.ra, shape.dec) <= shape.radius
    if isinstance(shape, Range):
        in_dec = (dec >= shape.dec_min) & (dec <= shape.dec_max)
        if shape.covers_all_longitudes:
            return in_dec
        if shape.ra_min <= shape.ra_max:
            return in_dec & (ra >= shape.ra_min) & (ra <= shape.ra_max)
        return in_dec & ((ra >= shape.ra_min) | (ra <= shape.ra_max))
    if isinstance(shape, Polygon):
        # Exact for convex polygons, which are what cutout requests use.
        return inside_convex_polygon(ra, dec, [v[0] for v in shape.vertices],
                                     [v[1] for v in shape.vertices])
    raise TypeError(shape)


def _point_in_polygon(x: float, y: float, px: np.ndarray, py: np.ndarray) -> bool:
    inside = False
    j = len(px) - 1
    for i in range(len(px)):
        if (py[i] > y) != (py[j] > y):
            cross = px[i] + (y - py[i]) * (px[j] - px[i]) / (py[j] - py[i])
            if x < cross:
                inside = not inside
        j = i
    return inside


def _segments_cross(a: tuple[float, float], b: tuple[float, float],
                    c: tuple[float, float], d: tuple[float, float]) -> bool:
    def orient(p, q, r) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    d1, d2 = orient(c, d, a), orient(c, d, b)
    d3, d4 = orient(a, b, c), orient(a, b, d)
    return (d1 * d2 <= 0) and (d3 * d4 <= 0)


def _outline_meets_rectangle(px: np.ndarray, py: np.ndarray, x0: float, x1: float, y0: float,
                             y1: float) -> bool:
    if np.any((px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)):
        return True
    rect = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if any(_point_in_polygon(cx, cy, px, py) for cx, cy in rect):
        return True
    n = len(px)
    for i in range(n):
        a, b = (px[i], py[i]), (px[(i + 1) % n], py[(i + 1) % n])
        for k in range(4):
            if _segments_cross(a, b, rect[k], rect[(k + 1) % 4]):
                return True
    return False


def _index_box(xmin: float, xmax: float, ymin: float, ymax: float, naxis1: int,
               naxis2: int) -> PixelBox:
    # Pixel i spans [i - 0.5, i + 0.5]: include every pixel the region's extent reaches.
    box = PixelBox(math.floor(xmin + 0.5), math.floor(xmax + 0.5) + 1,
                   math.floor(ymin + 0.5), math.floor(ymax + 0.5) + 1)
    return box.intersect(PixelBox(0, naxis1, 0, naxis2))


def _sampled_box(shape: Shape, projection: SkyProjection, naxis1: int,
                 naxis2: int) -> PixelBox | None:
    """For shapes the projection cannot draw (beyond the tangent plane, whole-sky ranges):
    test a grid of pixel centres against the shape and grow the hit cells by one step."""
    step = max(1, min(naxis1, naxis2) // 64)
    xs = np.unique(np.append(np.arange(0, naxis1, step), naxis1 - 1))
    ys = np.unique(np.append(np.arange(0, naxis2, step), naxis2 - 1))
    gx, gy = np.meshgrid(xs, ys)
    ra, dec = projection.pixel_to_world(gx.ravel().astype(float), gy.ravel().astype(float))
    inside = contains(shape, ra, dec)
    if not inside.any():
        return None
    hit_x, hit_y = gx.ravel()[inside], gy.ravel()[inside]
    return _index_box(hit_x.min() - step, hit_x.max() + step, hit_y.min() - step,
                      hit_y.max() + step, naxis1, naxis2)


def region_box(shape: Shape, projection: SkyProjection, naxis1: int,
               naxis2: int) -> PixelBox | None:
    """The pixels of an ``naxis1`` x ``naxis2`` image the shape covers, or None."""
    if isinstance(shape, Circle):
        ra, dec = circle_outline(shape)
    elif isinstance(shape, Polygon):
        ra, dec = polygon_outline(shape.vertices)
    elif isinstance(shape, Range) and not shape.covers_all_longitudes:
        ra, dec = range_outline(shape)
    else:
        return _sampled_box(shape, projection, naxis1, naxis2)
    px, py = projection.world_to_pixel(ra, dec)
    if not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
        return _sampled_box(shape, projection, naxis1, naxis2)
    edge = (-0.5, naxis1 - 0.5, -0.5, naxis2 - 0.5)
    if not _outline_meets_rectangle(px, py, *edge):
        return None
    box = _index_box(float(px.min()), float(px.max()), float(py.min()), float(py.max()),
                     naxis1, naxis2)
    return None if box.is_empty else box


def pixel_box(axis1: tuple[int, int] | None, axis2: tuple[int, int] | None, naxis1: int,
              naxis2: int) -> PixelBox | None:
    """1-based inclusive pixel ranges (PIXEL_1, PIXEL_2) as a clipped box, or None."""
    x0, x1 = (axis1[0] - 1, axis1[1]) if axis1 else (0, naxis1)
    y0, y1 = (axis2[0] - 1, axis2[1]) if axis2 else (0, naxis2)
    box = PixelBox(x0, x1, y0, y1).intersect(PixelBox(0, naxis1, 0, naxis2))
    return None if box.is_empty else box


def cutout_box(image: ImageFile, shapes: Sequence[Shape],
               pixels: tuple[tuple[int, int] | None, tuple[int, int] | None]) -> PixelBox:
    """The box every filter allows (their intersection); NoOverlap when it is empty."""
    header = image.header
    box = PixelBox(0, header.naxis1, 0, header.naxis2)
    if pixels[0] or pixels[1]:
        found = pixel_box(pixels[0], pixels[1], header.naxis1, header.naxis2)
        if found is None:
            raise NoOverlap("the pixel ranges are outside the image")
        box = box.intersect(found)
    if shapes:
        try:
            projection = header.projection()
        except ProjectionError as error:
            raise CutoutError(f"{error}; use PIXEL_1 and PIXEL_2") from None
        for shape in shapes:
            found = region_box(shape, projection, header.naxis1, header.naxis2)
            if found is None:
                raise NoOverlap("the region does not overlap the image")
            box = box.intersect(found)
    if box.is_empty:
        raise NoOverlap("the filters together select no pixel")
    return box


# -- writing --------------------------------------------------------------------------------------

_BITPIX = {np.dtype(np.uint8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32,
           np.dtype(np.int64): 64, np.dtype(np.float32): -32, np.dtype(np.float64): -64}
# Unsigned integers are stored signed with BZERO (FITS 4.0 section 5.2.5).
_UNSIGNED = {np.dtype(np.uint16): (np.dtype(">i2"), 32768.0),
             np.dtype(np.uint32): (np.dtype(">i4"), 2147483648.0),
             np.dtype(np.int8): (np.dtype(">u1"), -128.0)}


def _stored(data: np.ndarray) -> tuple[np.ndarray, int, float | None]:
    dtype = data.dtype.newbyteorder("=")
    if dtype in _UNSIGNED:
        stored_type, bzero = _UNSIGNED[dtype]
        shifted = (data.astype(np.int64) - int(bzero)).astype(stored_type)
        return shifted, stored_type.itemsize * 8, bzero
    if dtype not in _BITPIX:
        raise CutoutError(f"pixel type {data.dtype} cannot be written")
    return data.astype(dtype.newbyteorder(">"), copy=False), _BITPIX[dtype], None


def cutout_chunks(image: ImageFile, box: PixelBox, note: str | None = None,
                  rows_per_chunk: int = 512) -> Iterator[bytes]:
    """The cutout FITS file, written as it is read, a band of rows at a time."""
    first = image.read(PixelBox(box.x0, box.x1, box.y0, min(box.y1, box.y0 + rows_per_chunk)))
    stored, bitpix, bzero = _stored(first)
    yield header_bytes(cutout_header_cards(image.header, box, bitpix, bzero, note))
    written = stored.nbytes
    yield stored.tobytes()
    for start in range(box.y0 + rows_per_chunk, box.y1, rows_per_chunk):
        band = image.read(PixelBox(box.x0, box.x1, start, min(box.y1, start + rows_per_chunk)))
        data = _stored(band)[0]
        written += data.nbytes
        yield data.tobytes()
    padding = -written % BLOCK
    if padding:
        yield b"\0" * padding

