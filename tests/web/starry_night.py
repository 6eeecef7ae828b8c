"""A public night whose science images show their catalogs' stars: the synthetic product
writer's images are noise, so each science image gets a Gaussian star at every position of its
PSF catalog (through the image's own WCS), and its manifest the new size and checksum. The
viewer's tests can then see whether the overlay's markers fall on the stars.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

STAR_FIELD = 619
STAR_RA, STAR_DEC = 40.0, -5.0
STAR_SIZE = 64
STAR_SIGMA_PIX = 1.3
STAR_PEAK = 400.0


@dataclass(frozen=True)
class StarryNight:
    root: Path
    science: list[Path]


def _paint(image_path: Path, catalog_path: Path) -> None:
    with fits.open(catalog_path) as catalog:
        ra = np.asarray(catalog[1].data["ra"], dtype=float)
        dec = np.asarray(catalog[1].data["dec"], dtype=float)
    with fits.open(image_path) as hdus:
        header = hdus[0].header.copy()
        data = np.asarray(hdus[0].data, dtype=np.float32)
    x, y = WCS(header).world_to_pixel_values(ra, dec)
    rows, columns = np.mgrid[0:data.shape[0], 0:data.shape[1]]
    for star_x, star_y in zip(x, y, strict=True):
        data += (STAR_PEAK * np.exp(-((columns - star_x) ** 2 + (rows - star_y) ** 2)
                                    / (2 * STAR_SIGMA_PIX ** 2))).astype(np.float32)
    fits.PrimaryHDU(data, header).writeto(image_path, overwrite=True, checksum=True)


def _update_manifests(root: Path, changed: dict[str, Path]) -> None:
    for manifest in root.glob("manifests/**/*.json"):
        content = json.loads(manifest.read_text())
        touched = False
        for entry in content.get("files", []):
            path = changed.get(entry.get("path"))
            if path is not None:
                data = path.read_bytes()
                entry["size"] = len(data)
                entry["sha256"] = hashlib.sha256(data).hexdigest()
                touched = True
        if touched:
            manifest.write_text(json.dumps(content, indent=1))


def write_starry_night(root: Path, **spec_values) -> StarryNight:
    from skyvault.ingest.synthetic import NightSpec, write_night

    spec = NightSpec(**{"nightdate": "2024-09-01", "exposures": 1, "programids": (2,),
                        "filtercode": "zg", "ccds": (1,), "quadrants": (1, 2),
                        "sources": 25, "size": STAR_SIZE, "field": STAR_FIELD,
                        "ra": STAR_RA, "dec": STAR_DEC, "seed": 619, **spec_values})
    write_night(root, spec)
    changed = {}
    science = sorted(root.glob("sci/**/*_sciimg.fits"))
    for image in science:
        _paint(image, image.with_name(image.name.replace("_sciimg.fits", "_psfcat.fits")))
        changed[str(image.relative_to(root))] = image
    _update_manifests(root, changed)
    return StarryNight(root, science)
