"""A DS9 region file of an object's path and the images that caught it.

DS9 has no polyline region, so the path is a chain of ``line`` segments (fk5 degrees), with
a small ``point`` at each ephemeris time tagged with its date; each matched image adds its
footprint as a ``polygon`` and the predicted position as a ``circle`` labelled with the image.
Format: https://ds9.si.edu/doc/ref/region.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

MAX_LABELS = 60
"""Date labels along the path, at most (more would hide the path)."""


@dataclass(frozen=True)
class RegionImage:
    ra: float
    dec: float
    corners: tuple[tuple[float, float], ...]
    label: str


def _text(label: str) -> str:
    # DS9 text is delimited by braces; braces in a label cannot be escaped.
    return label.replace("{", "(").replace("}", ")")


def ds9_regions(
    title: str,
    path_ra: ArrayLike,
    path_dec: ArrayLike,
    path_labels: Sequence[str],
    images: Sequence[RegionImage],
    circle_arcsec: float = 10.0,
) -> str:
    ra = np.asarray(path_ra, dtype=float)
    dec = np.asarray(path_dec, dtype=float)
    lines = [
        "# Region file format: DS9 version 4.1",
        f"# {_text(title)}",
        'global color=cyan width=1 font="helvetica 9 normal roman" select=1 edit=0 move=0 '
        "delete=1 include=1 source=1",
        "fk5",
    ]
    for k in range(ra.size - 1):
        lines.append(f"line({ra[k]:.7f},{dec[k]:.7f},{ra[k + 1]:.7f},{dec[k + 1]:.7f}) "
                     "# line=0 0")
    every = max(1, int(np.ceil(ra.size / MAX_LABELS)))
    for k in range(0, ra.size, every):
        label = path_labels[k] if k < len(path_labels) else ""
        lines.append(f"point({ra[k]:.7f},{dec[k]:.7f}) # point=x text={{{_text(label)}}}")
    for image in images:
        corners = ",".join(f"{r:.7f},{d:.7f}" for r, d in image.corners)
        lines.append(f"polygon({corners}) # color=orange")
        lines.append(f'circle({image.ra:.7f},{image.dec:.7f},{circle_arcsec:g}") '
                     f"# color=red text={{{_text(image.label)}}}")
    return "\n".join(lines) + "\n"
