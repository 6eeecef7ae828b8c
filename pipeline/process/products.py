"""Step 6: writing products as FITS files with the headers the archive reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from skyvault.pipeline.process import maskbits

Cards = list[tuple[str, object, str]]

EXPOSURE_KEYWORDS = (
    "ORIGIN",
    "TELESCOP",
    "INSTRUME",
    "OBSERVAT",
    "OBSLAT",
    "OBSLON",
    "OBSALT",
    "EXPID",
    "NIGHTID",
    "OBSJD",
    "MJD-OBS",
    "DATE-OBS",
    "EXPTIME",
    "FIELDID",
    "FILTER",
    "FILTERID",
    "FILTCODE",
    "PROGRMID",
    "ITID",
    "IMGTYP",
    "IMGTYPCD",
    "TELRA",
    "TELDEC",
    "AZIMUTH",
    "ELVATION",
    "AIRMASS",
    "MOONRA",
    "MOONDEC",
    "MOONILLF",
    "CCD_ID",
)
MASK_BIT_NAMES = {
    "SOURCE": maskbits.SOURCE,
    "LOWRESP": maskbits.LOW_RESPONSE,
    "HIGHRESP": maskbits.HIGH_RESPONSE,
    "NOISY": maskbits.NOISY,
    "SPIKE": maskbits.SPIKE,
    "SATURATE": maskbits.SATURATED,
    "DEAD": maskbits.DEAD,
    "NAN": maskbits.NAN,
    "PSFSRC": maskbits.PSF_SOURCE,
}


def exposure_cards(primary: dict) -> Cards:
    return [(key, primary[key], "") for key in EXPOSURE_KEYWORDS if key in primary]


def header_from(cards: Cards) -> fits.Header:
    header = fits.Header()
    for key, value, comment in cards:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = None  # FITS has no NaN; an undefined value says 'not measured'
        header[key] = (value, comment)
    return header


def _replace(temporary: Path, path: Path) -> None:
    os.replace(temporary, path)


def _temporary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_image(path: Path, data: np.ndarray, cards: Cards, compress: bool = False) -> None:
    """Write a single-image FITS file atomically; ``compress`` writes a RICE tile-compressed
    image in extension 1 (a .fits.fz file, lossy-quantised for floats with q = 16)."""
    temporary = _temporary(path)
    header = header_from(cards)
    if compress:
        hdu = fits.CompImageHDU(
            data,
            header=header,
            compression_type="RICE_1",
            quantize_level=16.0,
            quantize_method=2,
            dither_seed=1,
        )
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(temporary, overwrite=True)
    else:
        fits.PrimaryHDU(data, header=header).writeto(temporary, overwrite=True)
    _replace(temporary, path)


def write_mask(path: Path, mask: np.ndarray, cards: Cards) -> None:
    bits = [
        (f"MBIT{int(np.log2(bit)):02d}", name, "mask bit") for name, bit in MASK_BIT_NAMES.items()
    ]
    write_image(path, mask.astype(np.int16), cards + bits)


def write_catalog(
    path: Path, columns: dict[str, np.ndarray], units: dict[str, str], cards: Cards, extname: str
) -> None:
    table = Table(columns)
    for name, unit in units.items():
        if name in table.colnames and unit:
            table[name].unit = unit
    hdu = fits.BinTableHDU(table, name=extname)
    for key, value, comment in cards:
        if key not in hdu.header and not key.startswith(("NAXIS", "TTYPE", "TFORM", "TUNIT")):
            if isinstance(value, np.generic):
                value = value.item()
            hdu.header[key] = (value, comment)
    temporary = _temporary(path)
    fits.HDUList([fits.PrimaryHDU(header=header_from(cards)), hdu]).writeto(
        temporary, overwrite=True
    )
    _replace(temporary, path)
