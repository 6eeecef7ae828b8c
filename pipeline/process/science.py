"""Steps 2-6 for one readout quadrant: from the raw CCD file to the science products.

``process_science`` is a pure function of its inputs (files in, files out, metadata back) so
that Dask can run it anywhere the product folder is visible; the per-step timings it returns
feed the benchmark. The measurements themselves (steps 3-5) are ``measure.measure_image``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyvault import __version__
from skyvault.pipeline.camera import rcid as rcid_of
from skyvault.pipeline.manifest import Footprint, ScienceImageMeta, known
from skyvault.pipeline.naming import (
    filefracday,
    isot,
    nid_of,
    nightdate_of,
    science_path,
    science_prefix,
)
from skyvault.pipeline.process import products
from skyvault.pipeline.process.apcor import ExposurePsf
from skyvault.pipeline.process.astrometry import nominal_wcs
from skyvault.pipeline.process.calibrate import read_bias, read_flat
from skyvault.pipeline.process.instrumental import CalibratedImage, calibrate_quadrant
from skyvault.pipeline.process.measure import Measured, measure_image
from skyvault.pipeline.process.rawio import read_quadrant


@dataclass(frozen=True)
class ScienceJob:
    product_dir: str
    raw_path: str
    """Relative to product_dir."""
    qid: int
    bias_path: str
    flat_path: str
    refcat_path: str
    """Absolute."""
    exposure_psf: ExposurePsf | None = None
    """The exposure's PSF and its flux scale, for a quadrant whose own stars are too faint to
    measure them."""


@dataclass(frozen=True)
class PsfSummary:
    """What the orchestrator needs to share one PSF shape between an exposure's quadrants."""

    fwhm: float
    beta: float
    measured: bool
    """False where too few stars made a default PSF."""
    flux_scale: float
    """The aperture correction applied (1 where too few stars measured it)."""
    flux_scale_uncertainty: float
    """Fractional; NaN where too few stars measured the aperture correction."""
    borrowed: bool
    """The shape was the exposure's, given in the job."""


PSFCAT_UNITS = {
    "x": "pix",
    "y": "pix",
    "ra": "deg",
    "dec": "deg",
    "flux": "ct",
    "fluxerr": "ct",
    "mag": "mag",
    "magerr": "mag",
}
SEXCAT_UNITS = {
    **PSFCAT_UNITS,
    "fwhm": "arcsec",
    "a": "pix",
    "b": "pix",
    "theta": "deg",
    "flux_aper": "ct",
    "fluxerr_aper": "ct",
    "mag_aper": "mag",
    "magerr_aper": "mag",
    "flux_auto": "ct",
    "fluxerr_auto": "ct",
    "mag_auto": "mag",
    "magerr_auto": "mag",
    "background": "ct",
    "flux_max": "ct",
    "kron_radius": "pix",
    "flux_radius": "pix",
}


def quality_cards(measured: Measured, saturate: float) -> products.Cards:
    solution = measured.solution
    zp = measured.zp
    return [
        ("SATURATE", float(saturate), "DN, saturation level of this image"),
        ("SEEING", round(measured.seeing, 4), "FWHM of the PSF, arcsec"),
        ("PSFFWHM", round(measured.psf.fwhm, 4), "FWHM of the PSF, pixels"),
        ("PSFBETA", round(measured.psf.beta, 4), "Moffat beta of the PSF"),
        ("PSFNSTAR", measured.psf.nstars, "stars the PSF was fitted to"),
        ("APCOR", round(measured.apcor, 5), "PSF-fit to total flux factor (applied)"),
        ("NAPCOR", measured.n_apcor, "stars behind APCOR"),
        ("MAGZP", zp.magzp if zp else None, "zero point: mag = MAGZP - 2.5 log10(DN)"),
        ("MAGZPUNC", zp.magzpunc if zp else None, "zero point uncertainty incl. APCOR's, mag"),
        ("MAGZPRMS", zp.magzprms if zp else None, "rms of calibrators about the zero point"),
        ("NZPCAL", zp.ncal if zp else 0, "calibrators used for the zero point"),
        (
            "MAGLIM",
            measured.maglimit if np.isfinite(measured.maglimit) else None,
            "5-sigma point-source limiting magnitude",
        ),
        ("SKYMED", round(measured.background, 4), "median background, DN"),
        ("SKYRMS", round(measured.sky_rms, 4), "background rms, DN"),
        ("ASTRRMS", solution.rms if solution else None, "astrometric rms, arcsec"),
        ("ASTRRMS1", solution.rms_ra if solution else None, "astrometric rms along RA, arcsec"),
        ("ASTRRMS2", solution.rms_dec if solution else None, "astrometric rms along Dec, arcsec"),
        ("NASTMAT", solution.nmatch if solution else 0, "astrometric matches"),
        ("SIPORDER", solution.order if solution else 0, "order of the distortion polynomial"),
        ("INFOBITS", measured.infobits, "quality flags, 0 = nothing to report"),
        ("PIPEVER", __version__, "skyvault.pipeline version"),
    ]


def process_science(job: ScienceJob) -> tuple[ScienceImageMeta, dict[str, float], PsfSummary]:
    """Process one quadrant and write its sciimg, mskimg, psfcat and sexcat."""
    timings: dict[str, float] = {}
    product_dir = Path(job.product_dir)
    clock = time.process_time()
    raw = read_quadrant(product_dir / job.raw_path, job.qid)
    bias = read_bias(product_dir / job.bias_path)
    flat = read_flat(product_dir / job.flat_path)
    calibrated: CalibratedImage = calibrate_quadrant(raw, bias, flat)
    timings["instrumental"] = time.process_time() - clock

    primary = raw.primary
    ccdid, qid = raw.ccdid, job.qid
    band = str(primary["FILTCODE"])
    guess = nominal_wcs(raw.geometry, ccdid, qid, float(primary["TELRA"]), float(primary["TELDEC"]))
    measured = measure_image(
        calibrated.image,
        calibrated.mask,
        calibrated.gain,
        calibrated.saturate,
        guess,
        band,
        job.refcat_path,
        raw.geometry.pixel_scale,
        timings,
        job.exposure_psf,
    )

    clock = time.process_time()
    obsjd = float(primary["OBSJD"])
    ffd = filefracday(obsjd)
    field_id = int(primary["FIELDID"])
    prefix = science_prefix(ffd, field_id, band, ccdid, qid)
    paths = {kind: science_path(prefix, kind) for kind in ("sciimg", "mskimg", "psfcat", "sexcat")}
    nightdate = nightdate_of(obsjd)
    wcs_cards = measured.wcs.header()
    base = [
        *products.exposure_cards(primary),
        ("QID", qid, "readout quadrant 1..4"),
        ("RCID", rcid_of(ccdid, qid), "readout channel 0..63"),
        ("FILEFRAC", ffd, "filefracday"),
        ("NIGHTDAT", nightdate.isoformat(), "local evening date of the night"),
        ("GAIN", calibrated.gain, "e-/DN"),
        ("READNOI", calibrated.read_noise, "e-"),
        ("NCOSMIC", calibrated.n_cosmic_pixels, "pixels flagged as cosmic-ray hits"),
        ("RAWFILE", Path(job.raw_path).name, ""),
        ("BIASFILE", Path(job.bias_path).name, ""),
        ("FLATFILE", Path(job.flat_path).name, ""),
    ]
    quality = quality_cards(measured, calibrated.saturate)
    wcs_list = [(key, value, "") for key, value in wcs_cards.items()]
    header_cards = base + quality + wcs_list
    products.write_image(
        product_dir / paths["sciimg"],
        calibrated.image,
        [*header_cards, ("BUNIT", "ct", "bias-subtracted, flat-fielded")],
    )
    products.write_mask(product_dir / paths["mskimg"], measured.mask, header_cards)
    products.write_catalog(
        product_dir / paths["psfcat"], measured.psfcat, PSFCAT_UNITS, header_cards, "PSFCAT"
    )
    products.write_catalog(
        product_dir / paths["sexcat"], measured.sexcat, SEXCAT_UNITS, header_cards, "SEXCAT"
    )
    timings["write"] = time.process_time() - clock

    ny, nx = calibrated.image.shape
    corners_ra, corners_dec = measured.wcs.corners((ny, nx))
    centre = measured.wcs.centre((ny, nx))
    solution, zp = measured.solution, measured.zp
    meta = ScienceImageMeta(
        expid=int(primary["EXPID"]),
        nid=int(primary.get("NIGHTID", nid_of(nightdate))),
        ccdid=ccdid,
        qid=qid,
        rcid=rcid_of(ccdid, qid),
        field=field_id,
        fid=int(primary["FILTERID"]),
        filtercode=band,
        programid=int(primary["PROGRMID"]),
        obsjd=obsjd,
        obsdate=isot(obsjd),
        filefracday=ffd,
        exptime=float(primary["EXPTIME"]),
        airmass=float(primary["AIRMASS"]),
        moonillf=float(primary.get("MOONILLF", 0.0)),
        naxis1=nx,
        naxis2=ny,
        footprint=footprint(centre, corners_ra, corners_dec),
        wcs=wcs_cards,
        astrom_rms=solution.rms if solution else None,
        astrom_rms_ra=solution.rms_ra if solution else None,
        astrom_rms_dec=solution.rms_dec if solution else None,
        astrom_nmatch=solution.nmatch if solution else 0,
        seeing=float(measured.seeing),
        maglimit=known(measured.maglimit),
        magzp=known(zp.magzp) if zp else None,
        magzpunc=known(zp.magzpunc) if zp else None,
        magzprms=known(zp.magzprms) if zp else None,
        nzpcal=zp.ncal if zp else 0,
        saturate=float(calibrated.saturate),
        sky=float(measured.background),
        skyrms=float(measured.sky_rms),
        nsources_psf=int(measured.psfcat["sourceid"].size),
        nsources_sex=int(measured.sexcat["sourceid"].size),
        infobits=int(measured.infobits),
        files={kind: str(path) for kind, path in paths.items()},
        calibration_files={"bias": job.bias_path, "hifreqflat": job.flat_path},
        raw_path=job.raw_path,
    )
    summary = PsfSummary(
        fwhm=measured.psf.fwhm,
        beta=measured.psf.beta,
        measured=not measured.psf_default,
        flux_scale=float(measured.apcor),
        flux_scale_uncertainty=float(measured.apcor_uncertainty),
        borrowed=job.exposure_psf is not None,
    )
    return meta, timings, summary



def footprint(centre, corners_ra, corners_dec) -> Footprint:
    return Footprint(
        ra=float(centre[0]),
        dec=float(centre[1]),
        ra1=float(corners_ra[0]),
        dec1=float(corners_dec[0]),
        ra2=float(corners_ra[1]),
        dec2=float(corners_dec[1]),
        ra3=float(corners_ra[2]),
        dec3=float(corners_dec[2]),
        ra4=float(corners_ra[3]),
        dec4=float(corners_dec[3]),
    )
