"""Raw camera files: one per CCD, a header-only primary HDU with the exposure's keywords and four
RICE tile-compressed quadrant HDUs (data columns, then overscan columns), as ``.fits.fz``."""

from __future__ import annotations

import os
from pathlib import Path

import fitsio
import numpy as np

TILE_ROWS = 64


def write_raw(
    path: Path,
    primary: list[tuple[str, object, str]],
    quadrants: list[tuple[np.ndarray, list[tuple[str, object, str]]]],
) -> None:
    """Write atomically: readers never see a partial camera file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if temporary.exists():
        temporary.unlink()
    with fitsio.FITS(str(temporary), "rw", clobber=True) as fits:
        fits.write(None, header=_records(primary))
        for data, header in quadrants:
            extname = next(value for key, value, _ in header if key == "EXTNAME")
            fits.write(
                data,
                header=_records([h for h in header if h[0] != "EXTNAME"]),
                extname=str(extname),
                compress="RICE",
                tile_dims=(TILE_ROWS, data.shape[1]),
            )
    os.replace(temporary, path)


def _records(cards: list[tuple[str, object, str]]) -> list[dict]:
    return [{"name": key, "value": value, "comment": comment} for key, value, comment in cards]
