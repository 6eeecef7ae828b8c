"""Reading camera files: the exposure header and one quadrant's data and overscan."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import fitsio
import numpy as np

from skyvault.pipeline.camera import CameraGeometry


class RawFileError(ValueError):
    """A raw file that cannot be read or lacks what processing needs."""


REQUIRED_PRIMARY = (
    "EXPID",
    "OBSJD",
    "EXPTIME",
    "FIELDID",
    "FILTCODE",
    "FILTERID",
    "PROGRMID",
    "ITID",
    "IMGTYP",
    "IMGTYPCD",
    "TELRA",
    "TELDEC",
    "AIRMASS",
    "CCD_ID",
)
_SECTION = re.compile(r"\[(\d+):(\d+),(\d+):(\d+)\]")


def parse_section(text: str) -> tuple[slice, slice]:
    """FITS section '[x1:x2,y1:y2]' (1-based, inclusive) to numpy (rows, columns) slices."""
    match = _SECTION.fullmatch(text.strip())
    if not match:
        raise RawFileError(f"bad section {text!r}")
    x1, x2, y1, y2 = (int(v) for v in match.groups())
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def header_dict(header: fitsio.FITSHDR) -> dict:
    return {record["name"]: record["value"] for record in header.records() if record["name"]}


def read_primary(path: Path) -> dict:
    try:
        header = header_dict(fitsio.read_header(str(path), ext=0))
    except OSError as error:
        raise RawFileError(f"{path.name}: {error}") from error
    missing = [key for key in REQUIRED_PRIMARY if key not in header]
    if missing:
        raise RawFileError(f"{path.name}: missing keywords {', '.join(missing)}")
    return header


@dataclass(frozen=True)
class RawQuadrant:
    ccdid: int
    qid: int
    data: np.ndarray
    """Image pixels, float32 ADU."""
    overscan: np.ndarray
    header: dict
    primary: dict
    geometry: CameraGeometry

    @property
    def gain(self) -> float:
        return float(self.header["GAIN"])

    @property
    def read_noise(self) -> float:
        return float(self.header["READNOI"])

    @property
    def saturate(self) -> float:
        return float(self.header["SATURATE"])

    def overscan_level(self) -> float:
        """Median of the overscan, rejecting its first columns where charge may still trail."""
        return float(
            np.median(self.overscan[:, 2:] if self.overscan.shape[1] > 4 else self.overscan)
        )


def read_quadrant(path: Path, qid: int, primary: dict | None = None) -> RawQuadrant:
    try:
        with fitsio.FITS(str(path)) as fits:
            hdu = fits[f"Q{qid}"]
            header = header_dict(hdu.read_header())
            raw = hdu.read()
            primary = primary or header_dict(fits[0].read_header())
    except (OSError, ValueError) as error:
        raise RawFileError(f"{path.name} Q{qid}: {error}") from error
    for key in ("DATASEC", "BIASSEC", "GAIN", "READNOI", "SATURATE"):
        if key not in header:
            raise RawFileError(f"{path.name} Q{qid}: missing {key}")
    data_rows, data_cols = parse_section(header["DATASEC"])
    bias_rows, bias_cols = parse_section(header["BIASSEC"])
    data = raw[data_rows, data_cols].astype(np.float32)
    overscan = raw[bias_rows, bias_cols].astype(np.float32)
    geometry = CameraGeometry.for_quadrant(data.shape[1], data.shape[0], overscan.shape[1])
    if "PIXSCALE" in primary:
        geometry = CameraGeometry(
            quadrant_nx=geometry.quadrant_nx,
            quadrant_ny=geometry.quadrant_ny,
            overscan=geometry.overscan,
            pixel_scale=float(primary["PIXSCALE"]),
        )
    return RawQuadrant(
        ccdid=int(primary["CCD_ID"]),
        qid=qid,
        data=data,
        overscan=overscan,
        header=header,
        primary=primary,
        geometry=geometry,
    )
