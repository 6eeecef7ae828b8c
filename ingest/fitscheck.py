"""Is a file a complete, readable FITS file with the keywords the archive needs?

Reads headers only, plus the data when an HDU carries CHECKSUM/DATASUM keywords (then they are
verified). Truncation is caught structurally: every HDU's data must end inside the file,
and the file must be whole 2880-byte blocks. Bytes damaged inside a complete structure are
caught by the SHA-256 the manifest promised, checked separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fitsio
from fitsio import FITSHDR as Header

from skyvault.ingest.errors import (
    CorruptFits,
    GroupRejected,
    ImpossibleValue,
    MissingKeyword,
    Problem,
)

BLOCK = 2880
WCS_KEYWORDS = ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")
IMAGE_TYPES_WITH_WCS = ("sciimg", "refimg", "refunc", "diffimg")
CATALOG_TYPES = ("psfcat", "sexcat", "refpsfcat", "refsexcat", "diffcat")
# Header keywords that, when present, must agree with the manifest (the pipeline writes the
# CCD as CCD_ID, ZTF as CCDID).
CROSS_CHECKED = {"EXPID": ("EXPID",), "CCDID": ("CCDID", "CCD_ID"), "QID": ("QID",),
                 "FIELDID": ("FIELDID",), "PROGRMID": ("PROGRMID",)}


@dataclass(frozen=True)
class ImageHdu:
    index: int
    naxis1: int
    naxis2: int
    header: Header


@dataclass
class FitsContents:
    images: list[ImageHdu] = field(default_factory=list)
    tables: list[int] = field(default_factory=list)
    """Indices of binary-table HDUs that hold data (not the tile-compressed images)."""
    headers: list[Header] = field(default_factory=list)


def inspect_fits(path: Path, product_type: str | None = None) -> FitsContents:
    """The image and table HDUs of a FITS file; raises GroupRejected (CorruptFits) if it is not
    a complete one.

    cfitsio (fitsio) reads the headers, four times faster than astropy, which matters at a few
    hundred files per exposure; it computes where each HDU's data end from the header, so a
    file cut short, or longer than its HDUs, shows here without reading the data.
    """
    size = path.stat().st_size
    if size == 0 or size % BLOCK:
        raise GroupRejected([CorruptFits(
            path, f"{size} bytes is not a whole number of {BLOCK}-byte FITS blocks: truncated "
                  "or not FITS", product_type)])
    contents = FitsContents()
    try:
        with fitsio.FITS(str(path)) as hdus:
            end = 0
            for index, hdu in enumerate(hdus):
                offsets = hdu.get_offsets()
                end = max(end, offsets["data_end"])
                if offsets["data_end"] > size:
                    raise GroupRejected([CorruptFits(
                        path, f"HDU {index} needs {offsets['data_end']} bytes, the file has "
                              f"{size}: truncated", product_type)])
                header = hdu.read_header()
                contents.headers.append(header)
                if "CHECKSUM" in header or "DATASUM" in header:
                    try:
                        hdu.verify_checksum()
                    except (OSError, ValueError) as error:
                        raise GroupRejected([CorruptFits(
                            path, f"HDU {index} fails its own checksum: "
                                  f"{' '.join(str(error).split())}", product_type)]) from error
                if hdu.get_exttype() == "IMAGE_HDU":
                    dims = hdu.get_dims()
                    if len(dims) >= 2:
                        contents.images.append(ImageHdu(index, int(dims[-1]), int(dims[-2]),
                                                        header))
                elif hdu.get_exttype() == "BINARY_TBL":
                    contents.tables.append(index)
            # Bytes after the last HDU: one whose header is cut short, or trailing garbage.
            if end < size:
                raise GroupRejected([CorruptFits(
                    path, f"{size - end} bytes after the last complete HDU: a truncated HDU "
                          "or trailing garbage", product_type)])
    except GroupRejected:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise GroupRejected([CorruptFits(
            path, f"unreadable FITS: {' '.join(str(error).split())}", product_type)]) from error
    return contents


def check_image(path: Path, product_type: str, contents: FitsContents,
                expected: tuple[int, int] | None, keys: dict[str, int]) -> list[Problem]:
    """An image product: one image HDU of the promised size, with a WCS where it needs one,
    and identification keywords that agree with the manifest."""
    if not contents.images:
        return [MissingKeyword(path, "no image HDU (NAXIS >= 2)", product_type)]
    image = contents.images[0]
    problems: list[Problem] = []
    if product_type in IMAGE_TYPES_WITH_WCS:
        absent = [keyword for keyword in WCS_KEYWORDS if keyword not in image.header]
        if absent:
            problems.append(MissingKeyword(path, f"header lacks {', '.join(absent)}",
                                           product_type))
    if expected is not None and (image.naxis1, image.naxis2) != expected:
        problems.append(ImpossibleValue(
            path, f"image is {image.naxis1} x {image.naxis2}, the manifest says "
                  f"{expected[0]} x {expected[1]}", product_type))
    problems += cross_check(path, product_type, contents.headers, keys)
    return problems


def check_raw(path: Path, contents: FitsContents, quadrants: int,
              shape: tuple[int, int], keys: dict[str, int]) -> list[Problem]:
    if len(contents.images) != quadrants:
        return [MissingKeyword(path, f"{len(contents.images)} image HDUs, the manifest says "
                                     f"{quadrants} quadrants", "raw")]
    wrong = [image.index for image in contents.images
             if (image.naxis1, image.naxis2) != shape]
    if wrong:
        return [ImpossibleValue(path, f"quadrant HDUs {wrong} are not {shape[0]} x {shape[1]}",
                                "raw")]
    return cross_check(path, "raw", contents.headers, keys)


def cross_check(path: Path, product_type: str, headers: Sequence[Header],
                keys: dict[str, int]) -> list[Problem]:
    """Identification keywords the file carries must name the product the manifest says."""
    problems: list[Problem] = []
    for key, keywords in CROSS_CHECKED.items():
        expected = keys.get(key)
        if expected is None:
            continue
        for header in headers[:2]:
            keyword = next((k for k in keywords if k in header), None)
            if keyword is not None:
                try:
                    found = int(header[keyword])
                except (TypeError, ValueError):
                    found = None
                if found != expected:
                    problems.append(ImpossibleValue(
                        path, f"header {keyword} = {header[keyword]!r}, the manifest says "
                              f"{expected}", product_type))
                break
    return problems
