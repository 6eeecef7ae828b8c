"""Steps 3-5 on one calibrated image (a science quadrant or a reference co-add): sources,
PSF, PSF-fit and aperture photometry, astrometry, zero point, and the catalogs they make.

``measure_image`` runs the steps in order, each a function of its own with a typed result:
``extract_sources`` -> ``fit_psf_photometry`` -> ``reference_stars`` + ``solve_astrometry`` ->
``calibrate_zero_point`` -> ``psf_catalog`` / ``aperture_catalog``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from skyvault.pipeline.process import maskbits, photometry, refcat
from skyvault.pipeline.process.apcor import ApertureCorrection, ExposurePsf, aperture_correction
from skyvault.pipeline.process.astrometry import (
    MIN_POSITION_ERROR,
    AstrometricSolution,
    AstrometryError,
    solve,
)
from skyvault.pipeline.process.extract import (
    APERTURE_RADII,
    DETECT_THRESHOLD,
    REFERENCE_APERTURE,
    ApertureCatalog,
    Background,
    aperture_photometry,
    detect,
    fill_unusable,
    measure_background,
    psf_kernel,
)
from skyvault.pipeline.process.psf import (
    Psf,
    PsfError,
    PsfFit,
    fit_sources_deblended,
    measure_psf,
)
from skyvault.pipeline.process.wcs import TanSip

DEFAULT_FWHM_ARCSEC = 2.0
PSF_REGION = 1536
MATCH_RADIUS_ARCSEC = 1.5
SIP_MAX_ORDER = 3


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


@dataclass
class Extraction:
    """Step 3a: the background-subtracted image, its PSF, and the detections' apertures."""

    subtracted: np.ndarray
    variance: np.ndarray
    background: Background
    unusable: np.ndarray
    psf: Psf
    psf_default: bool
    segmap: np.ndarray
    aper: ApertureCatalog
    infobits: int


@dataclass
class PsfPhotometry:
    """Step 3b: the PSF fit of every detection (aperture-corrected), its flags and S/N."""

    fit: PsfFit
    aper: ApertureCatalog
    flags: np.ndarray
    snr: np.ndarray
    apcor: float
    n_apcor: int
    apcor_uncertainty: float


@dataclass(frozen=True)
class ReferenceStars:
    """The reference catalog's stars around the image, in the image's band."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    variable: np.ndarray


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
    exposure_psf: ExposurePsf | None = None,
) -> Measured:
    """Steps 3-5 on a calibrated image (science or co-add); ``exposure_psf`` is used instead
    of measuring the PSF and its aperture correction (see ``ScienceJob``)."""
    timings = timings if timings is not None else {}
    clock = time.process_time()
    extraction = extract_sources(image, mask, gain, saturate, pixel_scale, exposure_psf)
    timings["extract"] = timings.get("extract", 0.0) + time.process_time() - clock

    clock = time.process_time()
    photometry_ = fit_psf_photometry(extraction, mask, gain, exposure_psf)
    timings["psf"] = timings.get("psf", 0.0) + time.process_time() - clock

    clock = time.process_time()
    stars = reference_stars(guess, image.shape, refcat_path, band)
    solution, wcs, infobits = solve_astrometry(photometry_, stars, guess, image.shape,
                                               extraction.psf.fwhm)
    timings["astrometry"] = timings.get("astrometry", 0.0) + time.process_time() - clock

    clock = time.process_time()
    psf = extraction.psf
    infobits |= extraction.infobits
    zp = calibrate_zero_point(photometry_, stars, wcs, pixel_scale, psf.fwhm)
    if zp is None:
        infobits |= photometry.INFO_ZEROPOINT_FAILED
    else:
        infobits |= photometry.zero_point_infobits(zp)
    magzp = zp.magzp if zp else float("nan")
    background = extraction.background
    maglimit = photometry.limiting_magnitude(magzp, background.global_rms, psf.noise_area)
    scale = wcs.pixel_scale() if solution else pixel_scale
    seeing = psf.fwhm * scale
    if seeing > 4.0:
        infobits |= photometry.INFO_BAD_SEEING
    if np.count_nonzero(mask & maskbits.SATURATED) > 0.01 * mask.size:
        infobits |= photometry.INFO_SATURATION
    if infobits & photometry.ZEROPOINT_UNRELIABLE:
        photometry_.flags |= maskbits.FLAG_ZEROPOINT_UNRELIABLE
    psfcat = psf_catalog(photometry_, wcs, magzp)
    sexcat = aperture_catalog(photometry_, wcs, magzp, psf, scale)
    out_mask = mask.copy()
    out_mask[extraction.segmap > 0] |= maskbits.SOURCE
    _set_bits_near(out_mask, photometry_.fit.x, photometry_.fit.y, maskbits.PSF_SOURCE, psf.fwhm)
    timings["photometry"] = timings.get("photometry", 0.0) + time.process_time() - clock
    return Measured(
        image=extraction.subtracted,
        mask=out_mask,
        background=background.global_level,
        sky_rms=background.global_rms,
        psf=psf,
        psf_default=extraction.psf_default,
        solution=solution,
        wcs=wcs,
        psfcat=psfcat,
        sexcat=sexcat,
        zp=zp,
        maglimit=maglimit,
        seeing=seeing,
        infobits=infobits,
        apcor=photometry_.apcor,
        n_apcor=photometry_.n_apcor,
        apcor_uncertainty=photometry_.apcor_uncertainty,
        timings=timings,
    )


def extract_sources(
    image: np.ndarray,
    mask: np.ndarray,
    gain: float,
    saturate: float,
    pixel_scale: float,
    exposure_psf: ExposurePsf | None,
) -> Extraction:
    """Background, the PSF (measured on bright isolated stars, or the given shape), detection
    with the PSF-matched filter, and aperture photometry."""
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
    if exposure_psf is not None:
        # Faint stars show the core but cannot tell the wings, which set the flux scale, from
        # the FWHM (the two trade against each other): the exposure's shape is surer.
        psf = Psf(exposure_psf.fwhm, exposure_psf.beta, 0)
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
    return Extraction(
        subtracted, variance, background, unusable, psf, psf_default, segmap, aper, infobits
    )


def fit_psf_photometry(
    extraction: Extraction,
    mask: np.ndarray,
    gain: float,
    exposure_psf: ExposurePsf | None = None,
) -> PsfPhotometry:
    """PSF fit of every detection (neighbours subtracted), catalog flags, and the aperture
    correction applied to the fluxes (the exposure's, where its PSF was lent)."""
    psf, aper = extraction.psf, extraction.aper
    subtracted, unusable = extraction.subtracted, extraction.unusable
    saturated = _any_bit_near(mask, aper.x, aper.y, maskbits.SATURATED, max(2.0, psf.fwhm))
    saturated |= (aper.imaflags & maskbits.SATURATED) != 0
    fit = fit_sources_deblended(
        subtracted,
        extraction.variance,
        unusable,
        aper.x,
        aper.y,
        psf,
        gain,
        extraction.background.global_rms,
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
        | (fit.x > mask.shape[1] - 1 - edge)
        | (fit.y > mask.shape[0] - 1 - edge)
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
    if exposure_psf is None:
        correction = aperture_correction(
            subtracted, unusable, extraction.background.rms, gain, fit, flags, snr, psf
        )
    else:
        # The shape's flux scale as the quadrant that lent it measured it (NAPCOR 0).
        correction = ApertureCorrection(exposure_psf.apcor, 0, exposure_psf.apcor_uncertainty)
    fit.flux = fit.flux * correction.factor
    fit.fluxerr = fit.fluxerr * correction.factor
    return PsfPhotometry(
        fit, aper, flags, snr, correction.factor, correction.nstars, correction.uncertainty
    )


def reference_stars(
    guess: TanSip, shape: tuple[int, ...], refcat_path: str | Path, band: str
) -> ReferenceStars:
    corners_ra, corners_dec = guess.corners(shape)
    stars = refcat.load(Path(refcat_path))
    nearby = refcat.in_region(stars, corners_ra, corners_dec, margin=0.05)
    return ReferenceStars(
        stars.ra[nearby],
        stars.dec[nearby],
        stars.mag[band][nearby].astype(np.float64),
        stars.variable[nearby],
    )


def solve_astrometry(
    measured: PsfPhotometry,
    stars: ReferenceStars,
    guess: TanSip,
    shape: tuple[int, ...],
    fwhm: float,
) -> tuple[AstrometricSolution | None, TanSip, int]:
    """The solution (None if it failed), the WCS to use, and the astrometry's infobits."""
    fit = measured.fit
    infobits = 0
    usable = astrometric_sources(measured.flags, measured.snr, fit.chi)
    try:
        solution = solve(
            fit.x + 1,
            fit.y + 1,
            fit.flux,
            usable,
            stars.ra,
            stars.dec,
            stars.mag,
            guess,
            shape,
            SIP_MAX_ORDER,
            centroid_error(fwhm, measured.snr, fit.chi),
        )
    except AstrometryError:
        return None, guess, photometry.INFO_ASTROMETRY_FAILED
    if solution.rms > 0.5:
        infobits |= photometry.INFO_ASTROMETRY_POOR
    if solution.nmatch < 10:
        infobits |= photometry.INFO_FEW_ASTROMETRIC_MATCHES
    return solution, solution.wcs, infobits


def calibrate_zero_point(
    measured: PsfPhotometry, stars: ReferenceStars, wcs: TanSip, pixel_scale: float, fwhm: float
) -> photometry.ZeroPoint | None:
    """The zero point from clean, isolated, non-variable catalog stars (None if none)."""
    fit, flags = measured.fit, measured.flags
    if not (stars.ra.size and fit.x.size):
        return None
    rx, ry = wcs.world_to_pixel(stars.ra, stars.dec)
    tree = cKDTree(np.column_stack([rx, ry]))
    distance, nearest = tree.query(
        np.column_stack([fit.x + 1, fit.y + 1]),
        distance_upper_bound=MATCH_RADIUS_ARCSEC / pixel_scale,
    )
    matched = np.isfinite(distance) & ((flags & maskbits.SOURCE_FLAGS) == 0)
    matched &= _isolated_in_catalog(tree, stars.mag, nearest, matched, 2.5 * fwhm)
    # A known variable is no calibrator: a bright one outweighs the rest of a sparse
    # quadrant's calibrators, and two put one 0.05 mag off.
    matched[matched] &= ~stars.variable[nearest[matched]]
    try:
        zp = photometry.zero_point(
            fit.flux[matched], fit.fluxerr[matched], stars.mag[nearest[matched]]
        )
    except photometry.PhotometryError:
        return None
    # The zero point is for total fluxes: it is no surer than the flux scale (in a sparse
    # quadrant whose stars are all faint, a few percent).
    if np.isfinite(measured.apcor_uncertainty):
        total = np.hypot(zp.magzpunc, 1.0857 * measured.apcor_uncertainty)
        zp = dataclasses.replace(zp, magzpunc=float(total))
    return zp


def psf_catalog(measured: PsfPhotometry, wcs: TanSip, magzp: float) -> dict[str, np.ndarray]:
    fit = measured.fit
    ra, dec = wcs.pixel_to_world(fit.x + 1, fit.y + 1)
    mag, magerr = photometry.magnitudes(fit.flux, fit.fluxerr, magzp)
    n = fit.x.size
    return {
        "sourceid": np.arange(1, n + 1, dtype=np.int64),
        "x": (fit.x + 1).astype(np.float32),
        "y": (fit.y + 1).astype(np.float32),
        "ra": ra.astype(np.float64),
        "dec": dec.astype(np.float64),
        "flux": fit.flux.astype(np.float32),
        "fluxerr": fit.fluxerr.astype(np.float32),
        "mag": mag,
        "magerr": magerr,
        "snr": measured.snr.astype(np.float32),
        "chi": fit.chi.astype(np.float32),
        "sharpness": fit.sharpness.astype(np.float32),
        "flags": measured.flags,
    }


def aperture_catalog(
    measured: PsfPhotometry, wcs: TanSip, magzp: float, psf: Psf, pixel_scale: float
) -> dict[str, np.ndarray]:
    """The sexcat: windowed centroids, the 4-pixel aperture corrected to total with the PSF,
    fixed apertures and Kron fluxes; ``pixel_scale`` that of the solved WCS where there is
    one."""
    aper = measured.aper
    ra, dec = wcs.pixel_to_world(aper.x + 1, aper.y + 1)
    k_ref = APERTURE_RADII.index(REFERENCE_APERTURE)
    correction = 1.0 / psf.fraction_within(REFERENCE_APERTURE)
    flux = aper.flux_aper[:, k_ref] * correction
    fluxerr = aper.fluxerr_aper[:, k_ref] * correction
    mag, magerr = photometry.magnitudes(flux, fluxerr, magzp)
    mag_aper, magerr_aper = photometry.magnitudes(aper.flux_aper, aper.fluxerr_aper, magzp)
    mag_auto, magerr_auto = photometry.magnitudes(aper.flux_auto, aper.fluxerr_auto, magzp)
    n = aper.x.size
    return {
        "sourceid": np.arange(1, n + 1, dtype=np.int64),
        "x": (aper.x + 1).astype(np.float32),
        "y": (aper.y + 1).astype(np.float32),
        "ra": ra.astype(np.float64),
        "dec": dec.astype(np.float64),
        "flux": flux.astype(np.float32),
        "fluxerr": fluxerr.astype(np.float32),
        "mag": mag,
        "magerr": magerr,
        "snr": np.where(fluxerr > 0, flux / np.maximum(fluxerr, 1e-30), 0).astype(np.float32),
        "fwhm": (2 * aper.flux_radius * pixel_scale).astype(np.float32),
        "a": aper.a.astype(np.float32),
        "b": aper.b.astype(np.float32),
        "theta": aper.theta.astype(np.float32),
        "flags": measured.flags,
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
