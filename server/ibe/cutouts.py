"""IBE cutouts: ``?center=x,y[units]&size=w[,h][units][&gzip=false]`` on a FITS file's URL.

IRSA's definition (https://irsa.ipac.caltech.edu/ibe/cutouts.html):

- ``center``: two numbers and an optional unit. ``px``, ``pix`` or ``pixels``: the pixel
  coordinates of the cutout's centre (FITS convention, the first pixel is 1); an angle unit
  (``deg``, the default, ``rad``, ``arcmin``, ``arcsec``): J2000 right ascension and
  declination. Declinations outside [-90, 90] are illegal; right ascensions are range-reduced.
- ``size``: one or two values and an optional unit (pixels or an angle, degrees by default):
  the full width along the first image axis (NAXIS1) and the full height along the second;
  one value is both.
- ``gzip``: cutouts are gzipped unless ``gzip=false``.
- A cutout that does not intersect the image is a 400; one partly outside is clipped.

An angular size becomes pixels by the image's pixel scale at its reference point; the box is
the ``round(size)`` pixels (at least one) whose centres lie most evenly around the centre. It
is then cut by SODA's code (``vo.cutout``: the same pixel-range box as SODA's PIXEL_1 and
PIXEL_2, the same section reads and the same header with a shifted WCS), so an IBE cutout and
the SODA cutout of the same pixels are the same file, pixel for pixel.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from flask import Response, stream_with_context
from werkzeug.datastructures import MultiDict

from skyvault.filestore import InvalidStorePath, local_file
from skyvault.server.images.products import FileRow
from skyvault.vo.cutout import (
    CutoutError,
    ImageFile,
    NoOverlap,
    cutout_box,
    cutout_chunks,
    open_image,
)
from skyvault.vo.dali import parse_finite
from skyvault.vo.skyproj import ProjectionError

log = logging.getLogger(__name__)

PARAMETERS = ("center", "size", "gzip")
PIXEL_UNITS = frozenset({"px", "pix", "pixel", "pixels"})
DEGREES_PER = {"deg": 1.0, "rad": math.degrees(1.0), "arcmin": 1 / 60, "arcsec": 1 / 3600}
EAGER_PIXELS = 4 * 1024 * 1024
"""Cutouts up to this many pixels are assembled whole and sent with a Content-Length (clients
such as ztfquery size their progress bars by it); larger ones stream."""
_VALUE = re.compile(r"\s*(?P<numbers>.*?)\s*(?P<unit>[a-zA-Z]*)\s*", re.DOTALL)
_TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "f", "0", "no", "n", "off"})


class CutoutRequestError(ValueError):
    """A cutout request that cannot be made; 400 with the message (IBE answers 400)."""


@dataclass(frozen=True)
class Quantity:
    """Two values, in pixels or (angles) in degrees."""

    first: float
    second: float
    pixels: bool


@dataclass(frozen=True)
class CutoutRequest:
    centre: Quantity
    size: Quantity
    gzip: bool = True


def _quantity(name: str, text: str, count: tuple[int, ...]) -> Quantity:
    match = _VALUE.fullmatch(text)
    assert match is not None  # the pattern matches any text
    unit, numbers = match["unit"].lower(), match["numbers"]
    if unit and unit not in PIXEL_UNITS and unit not in DEGREES_PER:
        raise CutoutRequestError(f"{name}: unknown unit {unit!r}; use px, deg, rad, arcmin or "
                                 "arcsec")
    parts = [part.strip() for part in numbers.split(",")]
    if len(parts) not in count:
        raise CutoutRequestError(f"{name} takes {' or '.join(map(str, count))} comma-separated "
                                 "values and an optional unit")
    values = [parse_finite(part, name, CutoutRequestError) for part in parts]
    pixels = unit in PIXEL_UNITS
    scale = 1.0 if pixels else DEGREES_PER[unit or "deg"]
    return Quantity(values[0] * scale, values[-1] * scale, pixels)


def parse_cutout(args: MultiDict) -> CutoutRequest | None:
    """The cutout a file URL's parameters ask for, None for the whole file; anything else a
    file URL does not take is refused (CutoutRequestError)."""
    given: dict[str, str] = {}
    for name, values in args.lists():
        key = name.lower()
        if key not in PARAMETERS:
            raise CutoutRequestError(f"Unknown parameter {name!r}: a file's URL takes only "
                                     "center and size (and gzip) for a cutout")
        if len(values) > 1 or key in given:
            raise CutoutRequestError(f"{key} may be given once")
        given[key] = values[0]
    if not given:
        return None
    if "center" not in given or "size" not in given:
        raise CutoutRequestError("A cutout needs both center and size")
    centre = _quantity("center", given["center"], (2,))
    if not centre.pixels and not -90.0 <= centre.second <= 90.0:
        raise CutoutRequestError("center: the declination must be between -90 and 90 degrees")
    size = _quantity("size", given["size"], (1, 2))
    if size.first <= 0 or size.second <= 0:
        raise CutoutRequestError("size must be above zero")
    flag = given.get("gzip", "true").strip().lower()
    if flag not in _TRUE | _FALSE:
        raise CutoutRequestError("gzip must be true or false")
    return CutoutRequest(centre, size, flag in _TRUE)


def _span(centre: float, length: float) -> tuple[int, int]:
    """The 1-based inclusive range of the round(length) pixels centred on a 0-based position."""
    count = max(1, math.floor(length + 0.5))
    start = math.floor(centre - (count - 1) / 2 + 0.5)
    return start + 1, start + count


def pixel_ranges(image: ImageFile, wanted: CutoutRequest) -> tuple[tuple[int, int],
                                                                    tuple[int, int]]:
    """The cutout as PIXEL_1 and PIXEL_2 ranges (1-based, inclusive), not yet clipped."""
    projection = None
    if not (wanted.centre.pixels and wanted.size.pixels):
        try:
            projection = image.header.projection()
        except ProjectionError as error:
            raise CutoutRequestError(f"{error}; give center and size in pixels") from None
    if wanted.centre.pixels:
        x, y = wanted.centre.first - 1.0, wanted.centre.second - 1.0
    else:
        assert projection is not None
        xs, ys = projection.world_to_pixel([wanted.centre.first % 360.0], [wanted.centre.second])
        x, y = float(xs[0]), float(ys[0])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise NoOverlap("the center is not on the image's side of the sky")
    width, height = wanted.size.first, wanted.size.second
    if not wanted.size.pixels:
        assert projection is not None
        scale = projection.pixel_scale()
        width, height = width / scale, height / scale
    if max(abs(x), abs(y), width, height) > 1e12:
        raise NoOverlap("the cutout lies far outside the image")
    return _span(x, width), _span(y, height)


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        packed = packer.compress(chunk)
        if packed:
            yield packed
    yield packer.flush()


def _refused(message: str) -> Response:
    return Response(f"{message}\n", status=400, mimetype="text/plain")


def cutout_response(row: FileRow, wanted: CutoutRequest) -> Response:
    """The cutout of a file the requester may read (the caller has checked), or a 400."""
    try:
        path = local_file(row.path)
    except InvalidStorePath:
        log.error("file row with a path outside the store: %r", row.path)
        return Response("Not found.\n", status=404, mimetype="text/plain")
    name = PurePosixPath(row.path).name.split(".")[0]
    stack = contextlib.ExitStack()
    try:
        image = stack.enter_context(open_image(path))
        ranges = pixel_ranges(image, wanted)
        box = cutout_box(image, (), ranges)
    except NoOverlap:
        stack.close()
        return _refused("The requested cutout does not intersect the image")
    except CutoutRequestError as error:
        stack.close()
        return _refused(str(error))
    except (CutoutError, OSError) as error:
        stack.close()
        log.info("no cutout of %s: %s", path, error)
        return _refused(f"{name} has no image to cut out")
    note = f"IBE cutout of {name} pixels [{box.x0 + 1}:{box.x1},{box.y0 + 1}:{box.y1}]"
    suffix = ".fits.gz" if wanted.gzip else ".fits"
    headers = {"Content-Disposition": f'inline; filename="{name}_cutout{suffix}"'}
    mimetype = "application/gzip" if wanted.gzip else "application/fits"

    def chunks() -> Iterator[bytes]:
        made = cutout_chunks(image, box, note)
        return _gzipped(made) if wanted.gzip else made

    if box.width * box.height <= EAGER_PIXELS:
        with stack:
            body = b"".join(chunks())
        return Response(body, mimetype=mimetype, headers=headers)

    def stream() -> Iterator[bytes]:
        with stack:
            yield from chunks()

    return Response(stream_with_context(stream()), mimetype=mimetype, headers=headers)
