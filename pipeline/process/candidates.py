"""Difference-image candidates: ZTF's alert-candidate measurements and artefact flags.

Every detection on a difference image (positive or negative) becomes a candidate with the
fields of ZTF's alert ``candidate`` record that the image itself determines (Masci et al. 2019;
the ZTF Avro schema 4.02 field guide): position, PSF-fit and aperture magnitudes, shape, bad and
negative pixels around it, distance to the edge, the nearest source of the reference image's
catalog (``distnr``, ``magnr``...) and of the external star-galaxy catalog (``distpsnr1``,
``sgscore1``...). Fields that need other epochs (``ndethist``...) or the orbits (``ssdistnr``)
are the archive's, filled after ingest.

Artefacts get catalog flags, so that by default they raise no alert:

- ``FLAG_DIPOLE``: an opposite-sign lobe next to the candidate (a misaligned or mis-scaled
  star, the classic subtraction residual);
- ``FLAG_BRIGHT_STAR``: on a catalog star much brighter than the candidate's own flux, or in
  the halo of a saturated one (ring residuals);
- ``FLAG_COSMIC_RAY``: pixels the science image marked as a cosmic-ray hit under its core;
- ``FLAG_BAD_PIXELS`` (bad columns, masked pixels under the core) and ``FLAG_EDGE`` (close to
  the image's edge or to the border of the reference's coverage).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import sep
from astropy.io import fits
from scipy.spatial import cKDTree

from skyvault.pipeline.process import maskbits, photometry
from skyvault.pipeline.process.extract import REFERENCE_APERTURE, detect, psf_kernel
from skyvault.pipeline.process.psf import Psf, PsfFit, fit_sources
from skyvault.pipeline.process.wcs import TanSip
from skyvault.schema.bits import CATALOG_FLAGS

FLAG_DIPOLE = CATALOG_FLAGS.value("DIPOLE")
FLAG_BRIGHT_STAR = CATALOG_FLAGS.value("BRIGHT_STAR")
FLAG_COSMIC_RAY = CATALOG_FLAGS.value("COSMIC_RAY")
ARTEFACT_FLAGS = (
    maskbits.FLAG_SATURATED
    | maskbits.FLAG_BAD_PIXELS
    | maskbits.FLAG_EDGE
    | maskbits.FLAG_FIT_FAILED
    | FLAG_DIPOLE
    | FLAG_BRIGHT_STAR
    | FLAG_COSMIC_RAY
)
"""A candidate with any of these flags raises no alert by default."""

STAMP_HALF = 2
"""5 x 5 pixel box of ``nbad``, ``nneg`` and ``sumrat``, as ZTF counts them."""
EDGE_PIXELS = 5.0
NEAREST_RADIUS_ARCSEC = 30.0
"""Beyond this no nearest source is reported (NULL), as ZTF's -999."""
DIPOLE_RATIO = 0.35
BRIGHT_STAR_RATIO = 20.0
"""A catalog star this many times brighter than the candidate within ``BRIGHT_STAR_FWHM``."""
BRIGHT_STAR_FWHM = 1.5
SATURATED_HALO_FWHM = 4.0


@dataclass(frozen=True)
class DifferenceImage:
    """What the measurements read: the background-subtracted difference, its noise, the
    pixels it has no value for, and the science image's mask."""

    pixels: np.ndarray
    """Science minus PSF-matched reference, background subtracted; 0 where ``bad``."""
    rms: np.ndarray
    """Per-pixel noise, corrected for correlation."""
    bad: np.ndarray
    science_mask: np.ndarray
    psf: Psf
    magzp: float
    maglimit: float
    wcs: TanSip
    pixel_scale: float
    """arcsec per pixel."""


@dataclass(frozen=True)
class Detections:
    """Detections of one sign on the difference, and their PSF fits."""

    sign: float
    objects: np.ndarray
    """sep's objects (x, y, a, b, ...)."""
    fit: PsfFit


@dataclass(frozen=True)
class NearbyCatalog:
    """A reference catalog around the image: positions, magnitude, and columns to report."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    extra: dict[str, np.ndarray]


DETECT_SIGMA = 5.0


def find_candidates(image: DifferenceImage, gain: float) -> list[Detections]:
    """Detections above and below zero at 5 sigma of the PSF-matched filter (the noise map
    corrected for correlation), each fitted with the difference's PSF."""
    kernel = psf_kernel(image.psf.fwhm, image.psf.beta)
    found = []
    for sign in (1.0, -1.0):
        signed = np.where(image.bad, 0.0, sign * image.pixels).astype(np.float32)
        objects, _ = detect(signed, np.where(image.bad, 1e6, image.rms), DETECT_SIGMA, kernel,
                            minarea=3)
        if len(objects) == 0:
            continue
        fit = fit_sources(
            signed,
            image.rms.astype(np.float64) ** 2,
            image.bad,
            objects["x"].astype(float),
            objects["y"].astype(float),
            image.psf,
            gain,
        )
        found.append(Detections(sign, objects, fit))
    return found


def measure_candidates(image: DifferenceImage, detections: list[Detections],
                       reference: NearbyCatalog | None, external: NearbyCatalog | None,
                       stars: NearbyCatalog | None) -> dict[str, np.ndarray]:
    """The candidate columns of the diffcat, one row per detection with a positive fit."""
    parts = []
    for found in detections:
        keep = found.fit.flux > 0
        parts.append(_measure(image, found, keep))
    columns = _join(parts)
    ra, dec = image.wcs.pixel_to_world(columns["xpos"], columns["ypos"])
    columns["ra"], columns["dec"] = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
    columns.update(_nearest(reference, columns["ra"], columns["dec"], REFERENCE_COLUMNS))
    columns.update(_nearest(external, columns["ra"], columns["dec"], EXTERNAL_COLUMNS))
    columns["flags"] = columns["flags"] | _artefacts(image, columns, stars)
    return columns


def _measure(image: DifferenceImage, found: Detections, keep: np.ndarray) -> dict:
    fit, objects = found.fit, found.objects
    x, y = fit.x[keep], fit.y[keep]
    flux, fluxerr = fit.flux[keep], fit.fluxerr[keep]
    signed = np.where(image.bad, 0.0, found.sign * image.pixels).astype(np.float32)
    ny, nx = signed.shape
    magpsf, sigmapsf = photometry.magnitudes(flux, fluxerr, image.magzp)
    radius = REFERENCE_APERTURE
    aperture, aperture_err, _ = sep.sum_circle(
        signed, x, y, radius, err=image.rms.astype(np.float32), mask=image.bad, subpix=5
    )
    to_total = 1.0 / image.psf.fraction_within(radius)
    magap, sigmagap = photometry.magnitudes(aperture * to_total, aperture_err * to_total,
                                            image.magzp)
    box = _boxes(signed, x, y)
    bad_box = _boxes(image.bad.astype(np.float32), x, y)
    a = np.asarray(objects["a"], np.float64)[keep]
    b = np.asarray(objects["b"], np.float64)[keep]
    flags = np.zeros(x.size, dtype=np.int32)
    flags[fit.npix_bad[keep] > 0] |= maskbits.FLAG_BAD_PIXELS
    flags[~fit.converged[keep]] |= maskbits.FLAG_FIT_FAILED
    absolute = np.abs(box).sum(axis=(1, 2))
    return {
        "xpos": (x + 1).astype(np.float64),
        "ypos": (y + 1).astype(np.float64),
        "flux": (found.sign * flux).astype(np.float32),
        "fluxerr": fluxerr.astype(np.float32),
        "magpsf": magpsf,
        "sigmapsf": sigmapsf,
        "chipsf": fit.chi[keep].astype(np.float32),
        "magap": magap,
        "sigmagap": sigmagap,
        "magdiff": (magap - magpsf).astype(np.float32),
        "scorr": (flux / np.maximum(fluxerr, 1e-30)).astype(np.float32),
        "isdiffpos": np.full(x.size, 1 if found.sign > 0 else 0, dtype=np.int16),
        "diffmaglim": np.full(x.size, image.maglimit, dtype=np.float32),
        "fwhm": _fwhm(signed, image.bad, x, y, image.psf),
        "aimage": a.astype(np.float32),
        "bimage": b.astype(np.float32),
        "elong": (a / np.maximum(b, 1e-3)).astype(np.float32),
        "nbad": np.rint(bad_box.sum(axis=(1, 2))).astype(np.int16),
        "nneg": ((box < 0) & (bad_box == 0)).sum(axis=(1, 2)).astype(np.int16),
        "sumrat": np.where(absolute > 0, box.sum(axis=(1, 2)) / np.maximum(absolute, 1e-30),
                           0.0).astype(np.float32),
        "mindtoedge": np.minimum.reduce([x, y, nx - 1 - x, ny - 1 - y]).astype(np.float32),
        "sharpness": fit.sharpness[keep].astype(np.float32),
        "dipole": _dipole_ratio(signed, image.bad, x, y, image.psf.fwhm),
        "flags": flags,
    }


def _fwhm(signed: np.ndarray, bad: np.ndarray, x: np.ndarray, y: np.ndarray,
          psf: Psf) -> np.ndarray:
    """FWHM (pixels) from the half-light radius, scaled by the PSF model's ratio of the two:
    a point source measures the PSF's FWHM, a wider blob (a galaxy's residual, a blend)
    more, a cosmic ray less."""
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    lo, hi = 0.0, 10.0 * psf.fwhm
    for _ in range(40):  # the PSF model's half-light radius, by bisection
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if psf.fraction_within(mid) < 0.5 else (lo, mid)
    radius, _ = sep.flux_radius(signed, x, y, np.full(x.size, 3.0 * psf.fwhm), 0.5,
                                mask=bad, subpix=5)
    return (radius * psf.fwhm / lo).astype(np.float32)


def _boxes(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """5 x 5 stamps centred on each position (zero outside the image)."""
    half = STAMP_HALF
    padded = np.pad(image, half)
    ix = np.clip(np.rint(x).astype(int), 0, image.shape[1] - 1) + half
    iy = np.clip(np.rint(y).astype(int), 0, image.shape[0] - 1) + half
    offsets = np.arange(-half, half + 1)
    rows = iy[:, None, None] + offsets[None, :, None]
    cols = ix[:, None, None] + offsets[None, None, :]
    return padded[rows, cols]


def _dipole_ratio(signed: np.ndarray, bad: np.ndarray, x: np.ndarray, y: np.ndarray,
                  fwhm: float) -> np.ndarray:
    """Opposite-sign flux over own-sign flux within 1.5 FWHM: ~0 for a point source on flat
    noise, large for a dipole (a star's residual left by a small misalignment)."""
    radius = max(2.0, 1.5 * fwhm)
    positive = np.clip(signed, 0, None)
    negative = np.clip(-signed, 0, None)
    own, _, _ = sep.sum_circle(positive, x, y, radius, mask=bad, subpix=1)
    opposite, _, _ = sep.sum_circle(negative, x, y, radius, mask=bad, subpix=1)
    return (opposite / np.maximum(own, 1e-30)).astype(np.float32)


def _artefacts(image: DifferenceImage, columns: dict[str, np.ndarray],
               stars: NearbyCatalog | None) -> np.ndarray:
    x, y = columns["xpos"] - 1, columns["ypos"] - 1
    flags = np.zeros(x.size, dtype=np.int32)
    fwhm = image.psf.fwhm
    flags[columns["dipole"] > DIPOLE_RATIO] |= FLAG_DIPOLE
    flags[_bits_near(image.science_mask, x, y, maskbits.SPIKE, max(1.5, fwhm))] |= \
        FLAG_COSMIC_RAY
    flags[_bits_near(image.science_mask, x, y, maskbits.SATURATED, max(2.0, fwhm))] |= \
        maskbits.FLAG_SATURATED
    flags[columns["nbad"] > 0] |= maskbits.FLAG_BAD_PIXELS
    # The reference's coverage ends where the difference has no pixels: its border is an edge.
    near_border = _bits_near(image.bad.astype(np.uint8), x, y, 1, EDGE_PIXELS)
    flags[(columns["mindtoedge"] < EDGE_PIXELS) | near_border] |= maskbits.FLAG_EDGE
    saturated_halo = _bits_near(image.science_mask, x, y, maskbits.SATURATED,
                                SATURATED_HALO_FWHM * fwhm)
    flags[saturated_halo] |= FLAG_BRIGHT_STAR
    if stars is not None and stars.ra.size and x.size:
        sx, sy = image.wcs.world_to_pixel(stars.ra, stars.dec)
        tree = cKDTree(np.column_stack([sx - 1, sy - 1]))
        groups = tree.query_ball_point(np.column_stack([x, y]), r=BRIGHT_STAR_FWHM * fwhm)
        own = 10 ** (-0.4 * (np.nan_to_num(columns["magpsf"], nan=99.0) - image.magzp))
        for k, group in enumerate(groups):
            if not group:
                continue
            star_flux = np.sum(10 ** (-0.4 * (stars.mag[group] - image.magzp)))
            if star_flux > BRIGHT_STAR_RATIO * own[k]:
                flags[k] |= FLAG_BRIGHT_STAR
    return flags


def _bits_near(mask: np.ndarray, x: np.ndarray, y: np.ndarray, bits: int,
               radius: float) -> np.ndarray:
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    found = np.zeros(x.size, dtype=bool)
    r = int(np.ceil(radius))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            xx, yy = ix + dx, iy + dy
            inside = (xx >= 0) & (xx < mask.shape[1]) & (yy >= 0) & (yy < mask.shape[0])
            values = mask[np.clip(yy, 0, mask.shape[0] - 1), np.clip(xx, 0, mask.shape[1] - 1)]
            found |= inside & ((values & bits) != 0)
    return found


REFERENCE_COLUMNS = {"distnr": "dist", "magnr": "mag", "sigmagnr": "sigmag", "chinr": "chi",
                     "sharpnr": "sharp"}
"""Candidate column -> reference-catalog value (``dist``: the distance itself)."""
EXTERNAL_COLUMNS = {"distpsnr1": "dist", "sgscore1": "sgscore", "sgmag1": "sgmag",
                    "srmag1": "srmag", "simag1": "simag"}


def _nearest(catalog: NearbyCatalog | None, ra: np.ndarray, dec: np.ndarray,
             names: dict[str, str]) -> dict[str, np.ndarray]:
    """Distance (arcsec) to the nearest catalog entry within 30" and its values; NaN where
    there is none."""
    n = ra.size
    out = {name: np.full(n, np.nan, dtype=np.float32) for name in names}
    if catalog is None or catalog.ra.size == 0 or n == 0:
        return out
    chord, index = cKDTree(_unit(catalog.ra, catalog.dec)).query(_unit(ra, dec))
    distance = np.degrees(2 * np.arcsin(np.clip(chord / 2, 0, 1))) * 3600
    near = distance <= NEAREST_RADIUS_ARCSEC
    values = {"dist": distance, "mag": catalog.mag, **catalog.extra}
    for name, source in names.items():
        picked = values[source] if source == "dist" else values[source][index]
        out[name][near] = picked[near]
    return out


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])


def _join(parts: list[dict]) -> dict[str, np.ndarray]:
    template = _measure_dtypes()
    if not parts:
        return {name: np.zeros(0, dtype) for name, dtype in template.items()}
    return {name: np.concatenate([p[name] for p in parts]).astype(dtype)
            for name, dtype in template.items()}


def _measure_dtypes() -> dict[str, type]:
    floats = ("flux", "fluxerr", "magpsf", "sigmapsf", "chipsf", "magap", "sigmagap", "magdiff",
              "scorr", "diffmaglim", "fwhm", "aimage", "bimage", "elong", "sumrat",
              "mindtoedge", "sharpness", "dipole")
    return {"xpos": np.float64, "ypos": np.float64, **dict.fromkeys(floats, np.float32),
            "isdiffpos": np.int16, "nbad": np.int16, "nneg": np.int16, "flags": np.int32}


# --- the catalogs the measurements compare with --------------------------------------------


def reference_sources(refpsfcat: Path) -> NearbyCatalog | None:
    """The reference image's PSF catalog (ZTF's ``distnr``/``magnr`` come from it)."""
    if not refpsfcat.exists():
        return None
    with fits.open(refpsfcat, memmap=False) as hdul:
        data = hdul[1].data
        return NearbyCatalog(
            np.asarray(data["ra"], np.float64), np.asarray(data["dec"], np.float64),
            np.asarray(data["mag"], np.float32),
            {"sigmag": np.asarray(data["magerr"], np.float32),
             "chi": np.asarray(data["chi"], np.float32),
             "sharp": np.asarray(data["sharpness"], np.float32)},
        )


@lru_cache(maxsize=2)
def _star_galaxy_table(path: str, mtime: float) -> dict[str, np.ndarray]:
    with fits.open(path, memmap=False) as hdul:
        data = hdul[1].data
        return {name.lower(): np.asarray(data[name]) for name in data.columns.names}


def star_galaxy_catalog(path: Path, band: str, ra: float, dec: float,
                        radius: float) -> NearbyCatalog | None:
    """The external catalog with a star-galaxy score (``sgcat.fits``: the role Pan-STARRS and
    Tachibana & Miller's sgscore play for ZTF), around (ra, dec) within ``radius`` deg."""
    if not path.exists():
        return None
    table = _star_galaxy_table(str(path), path.stat().st_mtime)
    near = _within(table["ra"], table["dec"], ra, dec, radius)
    return NearbyCatalog(
        table["ra"][near].astype(np.float64), table["dec"][near].astype(np.float64),
        table[f"mag_{band[1]}"][near].astype(np.float32),
        {"sgscore": table["sgscore"][near].astype(np.float32),
         **{f"s{b}mag": table[f"mag_{b}"][near].astype(np.float32) for b in "gri"}},
    )


def _within(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float, radius: float):
    cos_dec = max(np.cos(np.radians(dec0)), 1e-3)
    return (np.abs(dec - dec0) < radius) & \
        (np.abs((ra - ra0 + 180) % 360 - 180) * cos_dec < radius)
