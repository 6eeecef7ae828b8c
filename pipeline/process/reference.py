"""Reference co-adds: several epochs of one (field, ccdid, qid, filter) on a common grid.

Each epoch is background-subtracted, scaled to a common zero point, resampled onto the
field's nominal quadrant grid (TAN, north up) and averaged with inverse-variance weights,
rejecting outliers that even the seeing difference between epochs cannot explain. The
co-add then goes through the same extraction, PSF, astrometric and photometric steps as a
science image.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from skyvault.pipeline.camera import CameraGeometry
from skyvault.pipeline.camera import rcid as rcid_of
from skyvault.pipeline.manifest import ReferenceMeta, known
from skyvault.pipeline.naming import FILTERS, isot, reference_path, reference_prefix
from skyvault.pipeline.process import maskbits, products
from skyvault.pipeline.process.astrometry import nominal_wcs
from skyvault.pipeline.process.extract import fill_unusable, measure_background
from skyvault.pipeline.process.measure import measure_image
from skyvault.pipeline.process.resample import resample
from skyvault.pipeline.process.science import (
    PSFCAT_UNITS,
    SEXCAT_UNITS,
    footprint,
    quality_cards,
)
from skyvault.pipeline.process.wcs import TanSip

REFERENCE_MAGZP = 26.0
"""Every reference is scaled to this zero point before its own calibration measures it."""
CLIP_SIGMA = 5.0


class TooFewEpochs(RuntimeError):
    """Not enough usable epochs to build a reference."""


@dataclass(frozen=True)
class ReferenceEpoch:
    expid: int
    obsjd: float
    exptime: float
    programid: int
    sciimg: str
    mskimg: str


@dataclass(frozen=True)
class ReferenceJob:
    product_dir: str
    field: int
    filtercode: str
    ccdid: int
    qid: int
    epochs: tuple[ReferenceEpoch, ...]
    refcat_path: str


def _read_epoch(product_dir: Path, epoch: ReferenceEpoch):
    with fits.open(product_dir / epoch.sciimg, memmap=False) as hdul:
        image = hdul[0].data.astype(np.float32)
        header = hdul[0].header
    mask = fits.getdata(product_dir / epoch.mskimg).astype(np.uint16)
    return image, header, mask


def coadd_uncertainty(
    cube: np.ndarray, w: np.ndarray, sky_weights: np.ndarray, gains: np.ndarray
) -> np.ndarray:
    """ZTF's refunc: the 1-sigma uncertainty of each co-added pixel. The co-add is
    sum(w_i v_i) / sum(w_i) with weights fixed per epoch (its sky noise), so its variance is
    sum(w_i^2 var_i) / sum(w_i)^2, each epoch's variance being its sky noise squared plus the
    source's own Poisson noise (the pixel's scaled counts over the epoch's effective gain).
    Pixels no epoch covers have no value: NaN."""
    signal = np.clip(np.nan_to_num(cube), 0.0, None)
    variance = 1.0 / sky_weights[:, None, None] + signal / gains[:, None, None]
    total = w.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt((w**2 * variance).sum(axis=0)) / total
    return np.where(total > 0, sigma, np.nan).astype(np.float32)


def make_reference(job: ReferenceJob) -> ReferenceMeta:
    product_dir = Path(job.product_dir)
    if len(job.epochs) < 2:
        raise TooFewEpochs(f"{len(job.epochs)} epochs")
    first_image, first_header, _ = _read_epoch(product_dir, job.epochs[0])
    ny, nx = first_image.shape
    pixel_scale = float(first_header.get("PIXSCALE", 1.012))
    geometry = CameraGeometry(quadrant_nx=nx, quadrant_ny=ny, overscan=0, pixel_scale=pixel_scale)
    grid = nominal_wcs(
        geometry, job.ccdid, job.qid, float(first_header["TELRA"]), float(first_header["TELDEC"])
    )
    stack, weights, saturated, gains, saturations = [], [], np.zeros((ny, nx), bool), [], []
    for epoch in job.epochs:
        image, header, mask = _read_epoch(product_dir, epoch)
        if not all(isinstance(header.get(k), int | float) for k in ("MAGZP", "SKYRMS", "SATURATE")):
            continue
        bad = (mask & maskbits.UNUSABLE) != 0
        background = measure_background(
            fill_unusable(image, bad & ~((mask & maskbits.SATURATED) != 0)), bad
        )
        scale = 10 ** (0.4 * (REFERENCE_MAGZP - float(header["MAGZP"])))
        wcs = TanSip.from_header(header)
        values, values_bad = resample((image - background.level) * scale, bad, wcs, grid, (ny, nx))
        sat_values, _ = resample(
            ((mask & maskbits.SATURATED) != 0).astype(np.float32),
            np.zeros_like(bad),
            wcs,
            grid,
            (ny, nx),
        )
        saturated |= sat_values > 0.1
        values[values_bad] = np.nan
        stack.append(values)
        weights.append(1.0 / (float(header["SKYRMS"]) * scale) ** 2)
        gains.append(float(header.get("GAIN", 6.0)) / scale)
        saturations.append((float(header["SATURATE"]) - float(header.get("SKYMED", 0))) * scale)
    if len(stack) < 2:
        raise TooFewEpochs(f"{len(stack)} calibrated epochs")
    cube = np.stack(stack)
    w = np.array(weights)[:, None, None] * np.isfinite(cube)
    with warnings.catch_warnings():  # pixels no epoch covers are all-NaN, and that is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(cube, axis=0)
    sigma = np.sqrt(1.0 / np.array(weights))[:, None, None]
    tolerance = CLIP_SIGMA * np.sqrt(sigma**2 + (0.15 * np.abs(median))[None] ** 2)
    outlier = np.abs(cube - median[None]) > tolerance
    w = np.where(outlier | ~np.isfinite(cube), 0.0, w)
    total = w.sum(axis=0)
    coadd = np.where(
        total > 0, np.nansum(np.nan_to_num(cube) * w, axis=0) / np.maximum(total, 1e-30), 0.0
    )
    uncertainty = coadd_uncertainty(cube, w, np.array(weights), np.array(gains))
    coverage = np.sum(w > 0, axis=0).astype(np.int16)
    mask = np.zeros((ny, nx), dtype=np.uint16)
    mask[coverage == 0] |= maskbits.NAN
    mask[saturated & (coverage < len(stack))] |= maskbits.SATURATED
    coadd = coadd.astype(np.float32)
    gain = float(np.sum(gains))
    saturate = float(np.min(saturations))

    measured = measure_image(
        coadd, mask, gain, saturate, grid, job.filtercode, job.refcat_path, pixel_scale
    )
    prefix = reference_prefix(job.field, job.filtercode, job.ccdid, job.qid)
    paths = {kind: reference_path(prefix, kind)
             for kind in ("refimg", "refunc", "refpsfcat", "refsexcat")}
    obsjds = [e.obsjd for e in job.epochs]
    programids = sorted({e.programid for e in job.epochs})
    # A co-add is public from the first data release after it was made, whatever programs
    # its epochs came from (skyvault/releases/dating.py): its header says which programs
    # contributed, how many epochs and the span they cover, and names no epoch (the inputs
    # are in the archive's private provenance; DataLink shows the ones the reader may see).
    cards = [
        ("ORIGIN", "SkyVault pipeline", "reference co-add"),
        ("FIELDID", job.field, ""),
        ("FILTCODE", job.filtercode, ""),
        ("FILTERID", FILTERS[job.filtercode], ""),
        ("CCD_ID", job.ccdid, ""),
        ("QID", job.qid, ""),
        ("RCID", rcid_of(job.ccdid, job.qid), ""),
        ("NFRAMES", len(stack), "epochs co-added"),
        ("STARTJD", min(obsjds), "start of the earliest epoch, JD"),
        ("ENDJD", max(obsjds), "start of the latest epoch, JD"),
        ("PROGIDS", ",".join(str(p) for p in programids), "programs of the epochs"),
        ("REFZP", REFERENCE_MAGZP, "zero point the epochs were scaled to"),
        ("GAIN", gain, "effective e-/DN of the co-add"),
        ("PIXSCALE", pixel_scale, "arcsec/pixel, nominal"),
        *quality_cards(measured, saturate),
        *[(key, value, "") for key, value in measured.wcs.header().items()],
    ]
    target = product_dir / paths["refimg"]
    target.parent.mkdir(parents=True, exist_ok=True)
    header = products.header_from([*cards, ("BUNIT", "ct", "scaled to REFZP")])
    temporary = target.with_name(f".{target.name}.tmp")
    fits.HDUList(
        [
            fits.PrimaryHDU(coadd, header=header),
            fits.ImageHDU(coverage, name="COVERAGE"),
            fits.ImageHDU(measured.mask.astype(np.int16), name="MASK"),
        ]
    ).writeto(temporary, overwrite=True)
    temporary.replace(target)
    unc_header = products.header_from([*cards, ("BUNIT", "ct", "1-sigma, scaled to REFZP")])
    unc_target = product_dir / paths["refunc"]
    unc_temporary = unc_target.with_name(f".{unc_target.name}.tmp")
    fits.PrimaryHDU(uncertainty, header=unc_header).writeto(unc_temporary, overwrite=True)
    unc_temporary.replace(unc_target)
    products.write_catalog(
        product_dir / paths["refpsfcat"], measured.psfcat, PSFCAT_UNITS, cards, "REFPSFCAT"
    )
    products.write_catalog(
        product_dir / paths["refsexcat"], measured.sexcat, SEXCAT_UNITS, cards, "REFSEXCAT"
    )
    corners_ra, corners_dec = measured.wcs.corners((ny, nx))
    zp = measured.zp
    return ReferenceMeta(
        field=job.field,
        ccdid=job.ccdid,
        qid=job.qid,
        rcid=rcid_of(job.ccdid, job.qid),
        fid=FILTERS[job.filtercode],
        filtercode=job.filtercode,
        nframes=len(stack),
        startobsjd=min(obsjds),
        endobsjd=max(obsjds),
        startobsdate=isot(min(obsjds)),
        endobsdate=isot(max(obsjds)),
        input_expids=[e.expid for e in job.epochs],
        programids=programids,
        naxis1=nx,
        naxis2=ny,
        footprint=footprint(measured.wcs.centre((ny, nx)), corners_ra, corners_dec),
        wcs=measured.wcs.header(),
        seeing=float(measured.seeing),
        maglimit=known(measured.maglimit),
        magzp=known(zp.magzp) if zp else None,
        magzprms=known(zp.magzprms) if zp else None,
        nsources_psf=int(measured.psfcat["sourceid"].size),
        infobits=int(measured.infobits),
        files={kind: str(path) for kind, path in paths.items()},
        input_files=[e.sciimg for e in job.epochs],
    )
