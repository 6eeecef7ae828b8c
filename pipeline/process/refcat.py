"""The astrometric and photometric reference catalog (the role Gaia and Pan-STARRS play for
ZTF): positions, magnitudes in g, r, i and a variability flag, read from a FITS table and
queried by sky box."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits


class ReferenceCatalogError(RuntimeError):
    """The reference catalog is missing or lacks the needed columns."""


@dataclass(frozen=True)
class ReferenceStars:
    ra: np.ndarray
    dec: np.ndarray
    mag: dict[str, np.ndarray]
    """filtercode -> magnitude."""
    variable: np.ndarray
    """Known to vary (Gaia's phot_variable_flag); all False in a catalog without the column."""


@lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> ReferenceStars:
    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul[1].data
            ra = np.asarray(data["ra"], dtype=np.float64)
            names = {name.lower() for name in data.columns.names}
            return ReferenceStars(
                ra=ra,
                dec=np.asarray(data["dec"], dtype=np.float64),
                mag={
                    code: np.asarray(data[f"mag_{code[1]}"], dtype=np.float32)
                    for code in ("zg", "zr", "zi")
                },
                variable=(
                    np.asarray(data["variable"], dtype=bool)
                    if "variable" in names
                    else np.zeros(ra.size, dtype=bool)
                ),
            )
    except (OSError, KeyError) as error:
        raise ReferenceCatalogError(f"{path}: {error}") from error


def load(path: Path) -> ReferenceStars:
    path = Path(path)
    if not path.exists():
        raise ReferenceCatalogError(f"{path} does not exist")
    return _load(str(path), path.stat().st_mtime)


def in_region(stars: ReferenceStars, ra: np.ndarray, dec: np.ndarray, margin: float):
    """Stars inside the bounding box of the given corner positions, widened by ``margin`` deg."""
    dec_lo, dec_hi = float(np.min(dec)) - margin, float(np.max(dec)) + margin
    centre = float(
        np.degrees(np.arctan2(np.mean(np.sin(np.radians(ra))), np.mean(np.cos(np.radians(ra)))))
        % 360
    )
    half = float(np.max(np.abs((np.asarray(ra) - centre + 180) % 360 - 180)))
    cos_dec = max(np.cos(np.radians(max(abs(dec_lo), abs(dec_hi)))), 1e-3)
    half += margin / cos_dec
    sel = (stars.dec > dec_lo) & (stars.dec < dec_hi)
    sel &= np.abs((stars.ra - centre + 180) % 360 - 180) < half
    index = np.flatnonzero(sel)
    return index
