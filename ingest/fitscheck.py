"""Is a file a complete, readable FITS file with the keywords the archive needs?

Reads headers only, plus the data when the file carries CHECKSUM/DATASUM keywords (then they
are verified). Truncation is caught structurally: every HDU's data must end inside the file,
and the file must be whole 2880-byte blocks. Bytes damaged inside a complete structure are
caught by the SHA-256 the manifest promised, checked separately.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from skyvault.ingest.errors import (
    CorruptFits,
    GroupRejected,
    ImpossibleValue,
    MissingKeyword,
    Problem,
)

BLOCK = 2880
WCS_KEYWORDS = ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")
IMAGE_TYPES_WITH_WCS = ("sciimg", "refimg", "diffimg")
CATALOG_TYPES = ("psfcat", "sexcat", "refpsfcat", "diffcat")
# Header keywords that, when present, must agree with the manifest (the pipeline writes the
# CCD as CCD_ID, ZTF as CCDID).
CROSS_CHECKED = {"EXPID": ("EXPID",), "CCDID": ("CCDID", "CCD_ID"), "QID": ("QID",),
                 "FIELDID": ("FIELDID",), "PROGRMID": ("PROGRMID",)}


@dataclass(frozen=True)
class ImageHdu:
    index: int
    naxis1: int
    naxis2: int
    header: fits.Header


@dataclass
class FitsContents:
    images: list[ImageHdu] = field(default_factory=list)
    tables: list[int] = field(default_factory=list)
    """Indices of binary-table HDUs that hold data (not the tile-compressed images)."""
    headers: list[fits.Header] = field(default_factory=list)


def _checksum_warning(message: str) -> bool:
    lowered = message.lower()
    return "checksum" in lowered or "datasum" in lowered


def inspect_fits(path: Path, product_type: str | None = None) -> FitsContents:
    """The image and table HDUs of a FITS file; raises GroupRejected (CorruptFits) if it is not
    a complete one."""
    size = path.stat().st_size
    if size == 0 or size % BLOCK:
        raise GroupRejected([CorruptFits(
            path, f"{size} bytes is not a whole number of {BLOCK}-byte FITS blocks: truncated "
                  "or not FITS", product_type)])
    contents = FitsContents()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False, lazy_load_hdus=False, checksum=True) as hdus:
                end = 0
                for index, hdu in enumerate(hdus):
                    info = hdus.fileinfo(index)
                    end = max(end, info["datLoc"] + info["datSpan"])
                    if info["datLoc"] + info["datSpan"] > size:
                        raise GroupRejected([CorruptFits(
                            path, f"HDU {index} needs {info['datLoc'] + info['datSpan']} bytes, "
                                  f"the file has {size}: truncated", product_type)])
                    header = hdu.header
                    contents.headers.append(header)
                    if isinstance(hdu, fits.CompImageHDU | fits.ImageHDU | fits.PrimaryHDU):
                        if header.get("NAXIS", 0) >= 2:
                            contents.images.append(ImageHdu(index, int(header["NAXIS1"]),
                                                            int(header["NAXIS2"]), header))
                    elif isinstance(hdu, fits.BinTableHDU):
                        contents.tables.append(index)
                # astropy drops an HDU whose header is cut short with only a logged warning:
                # bytes left after the last HDU it read mean exactly that.
                if end < size:
                    raise GroupRejected([CorruptFits(
                        path, f"{size - end} bytes after the last complete HDU: a truncated HDU "
                              "or trailing garbage", product_type)])
        except GroupRejected:
            raise
        except Exception as error:  # astropy raises OSError, ValueError, KeyError, ...
            raise GroupRejected([CorruptFits(
                path, f"unreadable FITS: {type(error).__name__}: {error}", product_type)]
            ) from error
    for warning in caught:
        message = str(warning.message)
        if _checksum_warning(message):
            raise GroupRejected([CorruptFits(path, f"fails its own checksum: {message}",
                                             product_type)])
        if "truncat" in message.lower():
            raise GroupRejected([CorruptFits(path, f"truncated: {message}", product_type)])
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


def cross_check(path: Path, product_type: str, headers: Sequence[fits.Header],
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
