"""Steps 2-6 for one readout quadrant: from the raw CCD file to the science products.

``process_science`` is a pure function of its inputs (files in, files out, metadata back) so
that Dask can run it anywhere the product folder is visible; the per-step timings it returns
feed the benchmark.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from skyvault import __version__
from skyvault.pipeline.camera import rcid as rcid_of
from skyvault.pipeline.manifest import Footprint, ScienceImageMeta
from skyvault.pipeline.naming import (
    filefracday,
    isot,
    nid_of,
    nightdate_of,
    science_path,
    science_prefix,
)
from skyvault.pipeline.process import maskbits, photometry, products, refcat
from skyvault.pipeline.process.apcor import aperture_correction
from skyvault.pipeline.process.astrometry import (
    MIN_POSITION_ERROR,
    AstrometricSolution,
    AstrometryError,
    nominal_wcs,
    solve,
)
from skyvault.pipeline.process.calibrate import read_bias, read_flat
from skyvault.pipeline.process.extract import (
    APERTURE_RADII,
    DETECT_THRESHOLD,
    REFERENCE_APERTURE,
    aperture_photometry,
    detect,
    fill_unusable,
    measure_background,
    psf_kernel,
)
from skyvault.pipeline.process.instrumental import CalibratedImage, calibrate_quadrant
from skyvault.pipeline.process.psf import Psf, PsfError, fit_sources_deblended, measure_psf
from skyvault.pipeline.process.rawio import read_quadrant
from skyvault.pipeline.process.wcs import TanSip

DEFAULT_FWHM_ARCSEC = 2.0
PSF_REGION = 1536
MATCH_RADIUS_ARCSEC = 1.5
SIP_MAX_ORDER = 3


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
    psf_shape: tuple[float, float] | None = None
    """The exposure's PSF (FWHM in pixels, Moffat beta), for a quadrant whose own stars are too
    faint to measure it."""


@dataclass(frozen=True)
class PsfSummary:
    """What the orchestrator needs to share one PSF shape between an exposure's quadrants."""

    fwhm: float
    beta: float
    measured: bool
    """False where too few stars made a default PSF."""
    flux_scale_uncertainty: float
    """Fractional; NaN where too few stars measured the aperture correction."""
    borrowed: bool
    """The shape was the exposure's, given in the job."""


@dataclass
class Measured:
    """Everything measured on one image, before it is written: shared with references."""

    image: np.ndarray
    """Background-subtracted, DN."""
    mask: np.ndarray
    background: float
    sky_rms: float
    psf: Psf
    psf_default: bool
    solution: AstrometricSolution | None
    wcs: TanSip
    psfcat: dict[str, np.ndarray]
    sexcat: dict[str, np.ndarray]
    zp: photometry.ZeroPoint | None
    maglimit: float
    seeing: float
    infobits: int
    apcor: float = 1.0
    n_apcor: int = 0
    apcor_uncertainty: float = float("nan")
    timings: dict[str, float] = field(default_factory=dict)


def _usable_for_psf(objects, mask: np.ndarray, saturate: float, fwhm_guess: float) -> np.ndarray:
    """Bright, isolated, unsaturated, round detections."""
    n = len(objects)
    if n == 0:
        return np.zeros(0, int)
    x, y = objects["x"], objects["y"]
    tree = cKDTree(np.column_stack([x, y]))
    neighbours = tree.query_ball_point(np.column_stack([x, y]), r=4 * fwhm_guess)
    isolated = np.array([len(group) == 1 for group in neighbours])
    ix = np.clip(np.rint(x).astype(int), 0, mask.shape[1] - 1)
    iy = np.clip(np.rint(y).astype(int), 0, mask.shape[0] - 1)
    radius = 3
    clean = np.ones(n, dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yy = np.clip(iy + dy, 0, mask.shape[0] - 1)
            xx = np.clip(ix + dx, 0, mask.shape[1] - 1)
            clean &= (mask[yy, xx] & maskbits.UNUSABLE) == 0
    margin = 4 * fwhm_guess
    inside = (
        (x > margin) & (x < mask.shape[1] - margin) & (y > margin) & (y < mask.shape[0] - margin)
    )
    round_ = objects["b"] / np.maximum(objects["a"], 1e-6) > 0.75
    ok = (
        isolated
        & clean
        & inside
        & round_
        & (objects["peak"] < 0.5 * saturate)
        & (objects["flag"] == 0)
    )
    chosen = np.flatnonzero(ok)
    return chosen[np.argsort(-objects["flux"][chosen])][:60]


def measure_image(
    image: np.ndarray,
    mask: np.ndarray,
    gain: float,
    saturate: float,
    guess: TanSip,
    band: str,
    refcat_path: str | Path,
    pixel_scale: float,
    timings: dict[str, float] | None = None,
    psf_shape: tuple[float, float] | None = None,
) -> Measured:
    """Steps 3-5 on a calibrated image (science or co-add); ``psf_shape`` (FWHM, beta) is used
    instead of measuring the PSF (see ``ScienceJob``)."""
    timings = timings if timings is not None else {}
    clock = time.process_time()
    infobits = 0
    unusable = (mask & maskbits.UNUSABLE) != 0
    unusable_not_saturated = (mask & (maskbits.UNUSABLE & ~maskbits.SATURATED)) != 0
    filled = fill_unusable(image, unusable_not_saturated)
    box = 64 if min(image.shape) >= 256 else 32
    background = measure_background(filled, unusable, box=box)
    subtracted = (filled - background.level).astype(np.float32)
    variance = background.rms.astype(np.float64) ** 2

    fwhm_guess = DEFAULT_FWHM_ARCSEC / pixel_scale
    # PSF stars come from the central part of big images: 1500 x 1500 pixels hold hundreds of
    # bright stars, and scanning the whole quadrant twice would double the cost of detection.
    ny, nx = subtracted.shape
    y0, x0 = max(0, (ny - PSF_REGION) // 2), max(0, (nx - PSF_REGION) // 2)
    region = (slice(y0, y0 + PSF_REGION), slice(x0, x0 + PSF_REGION))
    bright, _ = detect(
        np.ascontiguousarray(subtracted[region]),
        np.ascontiguousarray(background.rms[region]),
        10.0,
        None,
        minarea=5,
    )
    bright = _shift(bright, x0, y0)
    if len(bright):
        sizes = 2.3548 * np.sqrt((bright["a"] ** 2 + bright["b"] ** 2) / 2)
        good = (bright["flag"] == 0) & (bright["peak"] < 0.5 * saturate)
        if good.sum() >= 3:
            fwhm_guess = float(np.median(sizes[good]))
    psf_stars = _usable_for_psf(bright, mask, saturate, fwhm_guess)
    psf_default = False
    if psf_shape is not None:
        # Faint stars show the core but cannot tell the wings, which set the flux scale, from
        # the FWHM (the two trade against each other): the exposure's shape is surer.
        psf = Psf(psf_shape[0], psf_shape[1], 0)
    else:
        try:
            psf = measure_psf(
                subtracted,
                variance,
                unusable,
                bright["x"][psf_stars].astype(float),
                bright["y"][psf_stars].astype(float),
                gain,
                fwhm_guess,
            )
        except PsfError:
            psf = Psf(fwhm_guess, 3.0, 0)
            psf_default = True
            infobits |= photometry.INFO_PSF_DEFAULT
    # Filled-in pixels carry no noise of their own (neighbouring bad columns even share one
    # good column's): the matched filter must not count them as independent measurements.
    detection_rms = np.where(unusable_not_saturated, background.rms * 30.0, background.rms)
    objects, segmap = detect(
        subtracted, detection_rms, DETECT_THRESHOLD, psf_kernel(psf.fwhm, psf.beta)
    )
    aper = aperture_photometry(
        subtracted, background.rms, background.level, objects, segmap, mask, gain, psf.fwhm
    )
    timings["extract"] = timings.get("extract", 0.0) + time.process_time() - clock

    clock = time.process_time()
    saturated = _any_bit_near(mask, aper.x, aper.y, maskbits.SATURATED, max(2.0, psf.fwhm))
    saturated |= (aper.imaflags & maskbits.SATURATED) != 0
    fit = fit_sources_deblended(
        subtracted,
        variance,
        unusable,
        aper.x,
        aper.y,
        psf,
        gain,
        background.global_rms,
        saturated=saturated,
    )
    flags = np.zeros(aper.x.size, dtype=np.int32)
    saturated_core = _any_bit_near(mask, fit.x, fit.y, maskbits.SATURATED, max(2.0, psf.fwhm))
    flags[saturated_core | ((aper.imaflags & maskbits.SATURATED) != 0)] |= maskbits.FLAG_SATURATED
    bad_core = _any_bit_near(
        mask, fit.x, fit.y, maskbits.UNUSABLE & ~maskbits.SATURATED, max(1.5, psf.fwhm)
    )
    flags[bad_core] |= maskbits.FLAG_BAD_PIXELS
    edge = 3
    near_edge = (
        (fit.x < edge)
        | (fit.y < edge)
        | (fit.x > image.shape[1] - 1 - edge)
        | (fit.y > image.shape[0] - 1 - edge)
    )
    flags[near_edge] |= maskbits.FLAG_EDGE
    flags[(aper.sep_flags & 1) != 0] |= maskbits.FLAG_BLENDED
    flags[~fit.converged] |= maskbits.FLAG_FIT_FAILED
    snr = np.where(np.isfinite(fit.fluxerr) & (fit.fluxerr > 0), fit.flux / fit.fluxerr, 0.0)
    # The deblender can split a bright star where a filled-in bad column crosses its wing;
    # such a fragment sits on the column, is blended, and no point source fits it.
    fragment = bad_core & ((flags & maskbits.FLAG_BLENDED) != 0) & (fit.chi > 10)
    if fragment.any():
        keep = ~fragment
        fit, aper = _subset(fit, keep), _subset(aper, keep)
        flags, snr = flags[keep], snr[keep]
    correction = aperture_correction(
        subtracted, unusable, background.rms, gain, fit, flags, snr, psf
    )
    apcor, n_apcor = correction.factor, correction.nstars
    correction_uncertainty = correction.uncertainty
    fit.flux = fit.flux * apcor
    fit.fluxerr = fit.fluxerr * apcor
    timings["psf"] = timings.get("psf", 0.0) + time.process_time() - clock

    clock = time.process_time()
    corners_ra, corners_dec = guess.corners(image.shape)
    stars = refcat.load(Path(refcat_path))
    nearby = refcat.in_region(stars, corners_ra, corners_dec, margin=0.05)
    ref_ra, ref_dec = stars.ra[nearby], stars.dec[nearby]
    ref_mag = stars.mag[band][nearby].astype(np.float64)
    clean_flags = maskbits.FLAG_SATURATED | maskbits.FLAG_BAD_PIXELS | maskbits.FLAG_FIT_FAILED
    usable = astrometric_sources(flags, snr, fit.chi)
    solution: AstrometricSolution | None
    try:
        solution = solve(
            fit.x + 1,
            fit.y + 1,
            fit.flux,
            usable,
            ref_ra,
            ref_dec,
            ref_mag,
            guess,
            image.shape,
            SIP_MAX_ORDER,
            centroid_error(psf.fwhm, snr, fit.chi),
        )
        wcs = solution.wcs
        if solution.rms > 0.5:
            infobits |= photometry.INFO_ASTROMETRY_POOR
        if solution.nmatch < 10:
            infobits |= photometry.INFO_FEW_ASTROMETRIC_MATCHES
    except AstrometryError:
        solution = None
        wcs = guess
        infobits |= photometry.INFO_ASTROMETRY_FAILED
    psf_ra, psf_dec = wcs.pixel_to_world(fit.x + 1, fit.y + 1)
    aper_ra, aper_dec = wcs.pixel_to_world(aper.x + 1, aper.y + 1)
    timings["astrometry"] = timings.get("astrometry", 0.0) + time.process_time() - clock

    clock = time.process_time()
    zp: photometry.ZeroPoint | None = None
    if ref_ra.size and fit.x.size:
        rx, ry = wcs.world_to_pixel(ref_ra, ref_dec)
        tree = cKDTree(np.column_stack([rx, ry]))
        distance, nearest = tree.query(
            np.column_stack([fit.x + 1, fit.y + 1]),
            distance_upper_bound=MATCH_RADIUS_ARCSEC / pixel_scale,
        )
        matched = np.isfinite(distance) & ((flags & (clean_flags | maskbits.FLAG_BLENDED)) == 0)
        matched &= _isolated_in_catalog(tree, ref_mag, nearest, matched, 2.5 * psf.fwhm)
        # A known variable is no calibrator: a bright one outweighs the rest of a sparse
        # quadrant's calibrators, and two put one 0.05 mag off.
        matched[matched] &= ~stars.variable[nearby][nearest[matched]]
        try:
            zp = photometry.zero_point(
                fit.flux[matched], fit.fluxerr[matched], ref_mag[nearest[matched]]
            )
            # The zero point is for total fluxes: it is no surer than the flux scale (in a
            # sparse quadrant whose stars are all faint, a few percent).
            if np.isfinite(correction.uncertainty):
                total = np.hypot(zp.magzpunc, 1.0857 * correction.uncertainty)
                zp = dataclasses.replace(zp, magzpunc=float(total))
            if zp.ncal < photometry.MIN_CALIBRATORS:
                infobits |= photometry.INFO_FEW_CALIBRATORS
            if zp.magzprms > 0.1:
                infobits |= photometry.INFO_ZEROPOINT_SCATTER
        except photometry.PhotometryError:
            zp = None
    if zp is None:
        infobits |= photometry.INFO_ZEROPOINT_FAILED
    magzp = zp.magzp if zp else float("nan")
    maglimit = photometry.limiting_magnitude(magzp, background.global_rms, psf.noise_area)
    seeing = psf.fwhm * (wcs.pixel_scale() if solution else pixel_scale)
    if seeing > 4.0:
        infobits |= photometry.INFO_BAD_SEEING
    if np.count_nonzero(mask & maskbits.SATURATED) > 0.01 * mask.size:
        infobits |= photometry.INFO_SATURATION

    psf_mag, psf_magerr = photometry.magnitudes(fit.flux, fit.fluxerr, magzp)
    n = fit.x.size
    psfcat = {
        "sourceid": np.arange(1, n + 1, dtype=np.int64),
        "x": (fit.x + 1).astype(np.float32),
        "y": (fit.y + 1).astype(np.float32),
        "ra": psf_ra.astype(np.float64),
        "dec": psf_dec.astype(np.float64),
        "flux": fit.flux.astype(np.float32),
        "fluxerr": fit.fluxerr.astype(np.float32),
        "mag": psf_mag,
        "magerr": psf_magerr,
        "snr": snr.astype(np.float32),
        "chi": fit.chi.astype(np.float32),
        "sharpness": fit.sharpness.astype(np.float32),
        "flags": flags,
    }
    k_ref = APERTURE_RADII.index(REFERENCE_APERTURE)
    correction = 1.0 / psf.fraction_within(REFERENCE_APERTURE)
    aper_flux = aper.flux_aper[:, k_ref] * correction
    aper_fluxerr = aper.fluxerr_aper[:, k_ref] * correction
    aper_mag, aper_magerr = photometry.magnitudes(aper_flux, aper_fluxerr, magzp)
    mag_aper, magerr_aper = photometry.magnitudes(aper.flux_aper, aper.fluxerr_aper, magzp)
    mag_auto, magerr_auto = photometry.magnitudes(aper.flux_auto, aper.fluxerr_auto, magzp)
    sexcat = {
        "sourceid": np.arange(1, n + 1, dtype=np.int64),
        "x": (aper.x + 1).astype(np.float32),
        "y": (aper.y + 1).astype(np.float32),
        "ra": aper_ra.astype(np.float64),
        "dec": aper_dec.astype(np.float64),
        "flux": aper_flux.astype(np.float32),
        "fluxerr": aper_fluxerr.astype(np.float32),
        "mag": aper_mag,
        "magerr": aper_magerr,
        "snr": np.where(aper_fluxerr > 0, aper_flux / np.maximum(aper_fluxerr, 1e-30), 0).astype(
            np.float32
        ),
        "fwhm": (2 * aper.flux_radius * (wcs.pixel_scale() if solution else pixel_scale)).astype(
            np.float32
        ),
        "a": aper.a.astype(np.float32),
        "b": aper.b.astype(np.float32),
        "theta": aper.theta.astype(np.float32),
        "flags": flags,
        "flux_aper": aper.flux_aper.astype(np.float32),
        "fluxerr_aper": aper.fluxerr_aper.astype(np.float32),
        "mag_aper": mag_aper,
        "magerr_aper": magerr_aper,
        "flux_auto": aper.flux_auto.astype(np.float32),
        "fluxerr_auto": aper.fluxerr_auto.astype(np.float32),
        "mag_auto": mag_auto,
        "magerr_auto": magerr_auto,
        "kron_radius": aper.kron_radius.astype(np.float32),
        "flux_radius": aper.flux_radius.astype(np.float32),
        "background": aper.background.astype(np.float32),
        "isoarea": aper.isoarea.astype(np.int32),
        "flux_max": aper.peak.astype(np.float32),
        "imaflags": aper.imaflags.astype(np.int32),
    }
    out_mask = mask.copy()
    out_mask[segmap > 0] |= maskbits.SOURCE
    _set_bits_near(out_mask, fit.x, fit.y, maskbits.PSF_SOURCE, psf.fwhm)
    timings["photometry"] = timings.get("photometry", 0.0) + time.process_time() - clock
    return Measured(
        image=subtracted,
        mask=out_mask,
        background=background.global_level,
        sky_rms=background.global_rms,
        psf=psf,
        psf_default=psf_default,
        solution=solution,
        wcs=wcs,
        psfcat=psfcat,
        sexcat=sexcat,
        zp=zp,
        maglimit=maglimit,
        seeing=seeing,
        infobits=infobits,
        apcor=apcor,
        n_apcor=n_apcor,
        apcor_uncertainty=correction_uncertainty,
        timings=timings,
    )


def centroid_error(fwhm: float, snr: np.ndarray, chi: np.ndarray) -> np.ndarray:
    """Per-axis centroid error in pixels of a point source: about FWHM / (2.35 S/N) times the
    sqrt(2) a PSF with wings costs over a Gaussian, no better than the PSF model and the flat
    allow, and worse by sqrt(chi) where the fit is poor (a star on a saturated neighbour's
    halo, a blend): weighted so, such a star still helps a sparse quadrant's solution."""
    statistical = np.sqrt(2.0) * fwhm / 2.3548 / np.maximum(snr, 1.0)
    return np.maximum(statistical, MIN_POSITION_ERROR) * np.sqrt(np.maximum(chi, 1.0))


ASTROMETRY_SNR = 10.0
ASTROMETRY_SNR_SPARSE = 5.0
ASTROMETRY_MIN_SOURCES = 12
ASTROMETRY_MAX_CHI = 100.0
"""Beyond this the source is no point source at all (a galaxy, a merged pair, a fragment)."""


def astrometric_sources(flags: np.ndarray, snr: np.ndarray, chi: np.ndarray) -> np.ndarray:
    """Detections fit for astrometry: no saturated or bad pixel in the core, a converged PSF fit
    that is not hopeless (poor ones are weighted down, see ``centroid_error``), S/N > 10.

    A sparse quadrant (high latitude, bright Moon, or a saturated asteroid's halo covering
    its one bright star) may hold only one or two such; it then takes every clean detection
    above S/N 5, whose centroids are still good to a fifth of a pixel, rather than fail.
    """
    bad = maskbits.FLAG_SATURATED | maskbits.FLAG_BAD_PIXELS | maskbits.FLAG_FIT_FAILED
    clean = ((flags & bad) == 0) & (chi < ASTROMETRY_MAX_CHI)
    usable = clean & (snr > ASTROMETRY_SNR)
    if np.count_nonzero(usable) < ASTROMETRY_MIN_SOURCES:
        usable = clean & (snr > ASTROMETRY_SNR_SPARSE)
    return usable


CONTAMINATION_LIMIT = 0.01


def _isolated_in_catalog(tree, ref_mag, nearest, matched, radius: float) -> np.ndarray:
    """Calibrators whose catalog neighbours within ``radius`` pixels add less than 1% to
    their light: a deep catalog knows the faint stars that the image blends in."""
    ok = np.zeros(nearest.size, dtype=bool)
    for k in np.flatnonzero(matched):
        own = nearest[k]
        group = tree.query_ball_point(tree.data[own], r=radius)
        others = [j for j in group if j != own]
        contamination = np.sum(10 ** (-0.4 * (ref_mag[others] - ref_mag[own]))) if others else 0.0
        ok[k] = contamination < CONTAMINATION_LIMIT
    return ok


def _shift(objects: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """sep objects of a sub-image in the coordinates of the whole image."""
    if dx == 0 and dy == 0:
        return objects
    shifted = objects.copy()
    for name in ("x", "xmin", "xmax", "xpeak", "xcpeak"):
        if name in shifted.dtype.names:
            shifted[name] += dx
    for name in ("y", "ymin", "ymax", "ypeak", "ycpeak"):
        if name in shifted.dtype.names:
            shifted[name] += dy
    return shifted


def _subset(record, keep: np.ndarray):
    """A copy of a dataclass of per-source arrays with only the ``keep`` sources."""
    values = {}
    for name, value in vars(record).items():
        is_per_source = isinstance(value, np.ndarray) and value.shape[:1] == keep.shape
        values[name] = value[keep] if is_per_source else value
    return type(record)(**values)


def _offsets(radius: float):
    r = int(np.ceil(radius))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= radius * radius:
                yield dx, dy


def _any_bit_near(mask, x, y, bits, radius) -> np.ndarray:
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    found = np.zeros(x.size, dtype=bool)
    for dx, dy in _offsets(radius):
        xx, yy = ix + dx, iy + dy
        inside = (xx >= 0) & (xx < mask.shape[1]) & (yy >= 0) & (yy < mask.shape[0])
        values = mask[np.clip(yy, 0, mask.shape[0] - 1), np.clip(xx, 0, mask.shape[1] - 1)]
        found |= inside & ((values & bits) != 0)
    return found


def _set_bits_near(mask, x, y, bits, radius) -> None:
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    for dx, dy in _offsets(radius):
        xx, yy = ix + dx, iy + dy
        inside = (xx >= 0) & (xx < mask.shape[1]) & (yy >= 0) & (yy < mask.shape[0])
        mask[yy[inside], xx[inside]] |= bits


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
        job.psf_shape,
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
        astrom_rms=solution.rms if solution else -1.0,
        astrom_rms_ra=solution.rms_ra if solution else -1.0,
        astrom_rms_dec=solution.rms_dec if solution else -1.0,
        astrom_nmatch=solution.nmatch if solution else 0,
        seeing=float(measured.seeing),
        maglimit=_finite(measured.maglimit),
        magzp=_finite(zp.magzp if zp else float("nan")),
        magzpunc=zp.magzpunc if zp else -1.0,
        magzprms=zp.magzprms if zp else -1.0,
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
        flux_scale_uncertainty=float(measured.apcor_uncertainty),
        borrowed=job.psf_shape is not None,
    )
    return meta, timings, summary


def _finite(value: float) -> float:
    """JSON has no NaN: unmeasured quantities are -99 (as ZTF writes them)."""
    return float(value) if np.isfinite(value) else -99.0


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
