"""Image differencing: science minus the PSF-matched reference (Alard & Lupton 1998).

The reference is resampled onto the science image's grid and scaled to its zero point. The
sharper of the two images is convolved with a kernel, a sum of Gaussians times polynomials
fitted by linear least squares on stamps around bright stars, to match the other's PSF. The
difference keeps the science image's photometric scale; sources are found in it above and
below zero (``isdiffpos``), measured with the PSF of the broader image as ZTF's alert
candidates are, flagged where they look like artefacts, and scored real or bogus
(``candidates``, ``realbogus``): the ``diffcat``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage
from scipy.signal import fftconvolve

from skyvault.pipeline.manifest import DifferenceMeta, ScienceImageMeta, known
from skyvault.pipeline.naming import science_path, science_prefix
from skyvault.pipeline.process import maskbits, photometry, products, realbogus, refcat
from skyvault.pipeline.process.candidates import (
    DifferenceImage,
    NearbyCatalog,
    find_candidates,
    measure_candidates,
    reference_sources,
    star_galaxy_catalog,
)
from skyvault.pipeline.process.extract import fill_unusable, measure_background, psf_kernel
from skyvault.pipeline.process.psf import Psf
from skyvault.pipeline.process.resample import resample
from skyvault.pipeline.process.wcs import TanSip
from skyvault.pipeline.psfmodel import moffat_pixels

BASIS_SIGMAS = (0.7, 1.5, 3.0)
BASIS_DEGREES = (4, 2, 2)
MAX_STAMPS = 150


DIFFCAT_UNITS = {
    **dict.fromkeys(("x", "y", "aimage", "bimage", "fwhm", "mindtoedge"), "pix"),
    "ra": "deg",
    "dec": "deg",
    "flux": "ct",
    "fluxerr": "ct",
    **dict.fromkeys(("mag", "magerr", "magap", "sigmagap", "magdiff", "diffmaglim", "magnr",
                     "sigmagnr", "sgmag1", "srmag1", "simag1"), "mag"),
    **dict.fromkeys(("distnr", "distpsnr1"), "arcsec"),
}


class DifferenceError(RuntimeError):
    """The images could not be matched (no stars to fit the kernel on)."""


def _basis(radius: int) -> list[np.ndarray]:
    grid = np.arange(-radius, radius + 1, dtype=float)
    gx, gy = np.meshgrid(grid, grid)
    kernels = []
    for sigma, degree in zip(BASIS_SIGMAS, BASIS_DEGREES, strict=True):
        gauss = np.exp(-(gx**2 + gy**2) / (2 * sigma**2))
        for total in range(degree + 1):
            for p in range(total + 1):
                q = total - p
                kernel = gauss * gx**p * gy**q
                kernels.append(kernel / np.sqrt(np.sum(kernel**2)))
    return kernels


def fit_kernel(
    source: np.ndarray,
    target: np.ndarray,
    bad: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radius: int,
    half: int,
) -> tuple[np.ndarray, float]:
    """Kernel K and background b minimising |target - (K * source + b)| on stamps."""
    basis = _basis(radius)
    ny, nx = source.shape
    inside = (
        (x > half + radius)
        & (x < nx - half - radius - 1)
        & (y > half + radius)
        & (y < ny - half - radius - 1)
    )
    ix, iy = np.rint(x[inside]).astype(int), np.rint(y[inside]).astype(int)
    if ix.size < 3:
        raise DifferenceError(f"{ix.size} stamps for the kernel fit")
    big = half + radius
    src = np.stack(
        [source[j - big : j + big + 1, i - big : i + big + 1] for i, j in zip(ix, iy, strict=True)]
    )
    tgt = np.stack(
        [
            target[j - half : j + half + 1, i - half : i + half + 1]
            for i, j in zip(ix, iy, strict=True)
        ]
    )
    ok = np.stack(
        [
            ~bad[j - half : j + half + 1, i - half : i + half + 1]
            for i, j in zip(ix, iy, strict=True)
        ]
    )
    columns = []
    for kernel in basis:
        convolved = fftconvolve(src, kernel[None], mode="valid", axes=(1, 2))
        columns.append(convolved[ok])
    columns.append(np.ones(int(ok.sum())))
    design = np.stack(columns, axis=1)
    values = tgt[ok]
    keep = np.ones(values.size, dtype=bool)
    for _ in range(3):
        coefficients, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        residual = values - design @ coefficients
        sigma = 1.4826 * np.median(np.abs(residual[keep])) + 1e-9
        new_keep = np.abs(residual) < 5 * sigma
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    kernel = np.sum([c * k for c, k in zip(coefficients[:-1], basis, strict=True)], axis=0)
    return kernel, float(coefficients[-1])


def noise_correlation(
    image: np.ndarray, bad: np.ndarray, rms: np.ndarray, kernel: np.ndarray
) -> float:
    """How much more a kernel-weighted sum fluctuates than independent pixels of the given rms
    would make it: the robust spread of the filtered image over its expected spread."""
    filled = np.where(bad, 0.0, image)
    filtered = fftconvolve(filled, kernel, mode="same")
    good = ~ndimage.binary_dilation(bad, iterations=kernel.shape[0] // 2 + 1)
    if good.sum() < 1000:
        return 1.0
    values = filtered[good]
    spread = 1.4826 * np.median(np.abs(values - np.median(values)))
    expected = float(np.median(rms[good])) * np.sqrt(np.sum(kernel**2))
    return float(np.clip(spread / max(expected, 1e-12), 1.0, 5.0))


def _read(path: Path):
    with fits.open(path, memmap=False) as hdul:
        return hdul[0].data.astype(np.float32), hdul[0].header, hdul


def make_difference(
    product_dir: str,
    science: ScienceImageMeta,
    refimg: str,
    reference_programids: list[int],
    refcat_path: str | None = None,
    timings: dict[str, float] | None = None,
) -> DifferenceMeta:
    """The difference image and its candidates (``diffcat``); ``refcat_path`` (the reference
    catalog the science image was calibrated with; the star-galaxy catalog ``sgcat.fits``
    beside it is read if there) serves the candidates' artefact flags and ``distpsnr1``.
    ``timings`` receives the CPU seconds of each step (resample, convolve, detect,
    candidates)."""
    root = Path(product_dir)
    timings = {} if timings is None else timings
    clock = time.process_time()
    with fits.open(root / science.files["sciimg"], memmap=False) as hdul:
        sci = hdul[0].data.astype(np.float32)
        sci_header = hdul[0].header.copy()
    sci_mask = fits.getdata(root / science.files["mskimg"]).astype(np.uint16)
    with fits.open(root / refimg, memmap=False) as hdul:
        ref = hdul[0].data.astype(np.float32)
        ref_header = hdul[0].header.copy()
        ref_cover = hdul["COVERAGE"].data
        ref_mask = (
            hdul["MASK"].data.astype(np.uint16)
            if "MASK" in hdul
            else np.zeros(ref.shape, np.uint16)
        )
    sci_wcs, ref_wcs = TanSip.from_header(sci_header), TanSip.from_header(ref_header)
    shape = sci.shape
    sci_bad = (sci_mask & maskbits.UNUSABLE) != 0
    ref_bad = (ref_cover == 0) | ((ref_mask & maskbits.UNUSABLE) != 0)
    sci_filled = fill_unusable(sci, sci_bad & ((sci_mask & maskbits.SATURATED) == 0))
    sci_bkg = measure_background(sci_filled, sci_bad)
    sci_sub = sci_filled - sci_bkg.level
    scale = 10 ** (0.4 * (float(sci_header["MAGZP"]) - float(ref_header["MAGZP"])))
    ref_on_sci, ref_on_sci_bad = resample(ref * scale, ref_bad, ref_wcs, sci_wcs, shape)
    timings["resample"], clock = time.process_time() - clock, time.process_time()

    sci_psf = Psf(float(sci_header["PSFFWHM"]), float(sci_header["PSFBETA"]), 0)
    ref_psf = Psf(float(ref_header["PSFFWHM"]), float(ref_header["PSFBETA"]), 0)
    convolve_reference = sci_psf.fwhm >= ref_psf.fwhm
    if convolve_reference:
        source, target, out_psf = ref_on_sci, sci_sub, sci_psf
    else:
        source, target, out_psf = sci_sub, ref_on_sci, ref_psf
    radius = int(np.clip(np.ceil(2.5 * max(sci_psf.fwhm, ref_psf.fwhm)), 4, 15))
    half = int(np.ceil(3 * max(sci_psf.fwhm, ref_psf.fwhm)))
    psfcat = fits.getdata(root / science.files["psfcat"])
    good = ((psfcat["flags"] & maskbits.SOURCE_FLAGS) == 0) & (psfcat["snr"] > 15)
    order = np.argsort(-psfcat["snr"][good])[:MAX_STAMPS]
    stars_x = psfcat["x"][good][order] - 1.0
    stars_y = psfcat["y"][good][order] - 1.0
    bad = sci_bad | ref_on_sci_bad
    kernel, background = fit_kernel(source, target, bad, stars_x, stars_y, radius, half)
    kernel_sum = float(kernel.sum())
    convolved = fftconvolve(fill_unusable(source, bad), kernel, mode="same")
    if convolve_reference:
        difference = target - convolved - background
        magzp = float(sci_header["MAGZP"])
    else:
        difference = convolved - target + background
        magzp = float(sci_header["MAGZP"]) + 2.5 * np.log10(max(kernel_sum, 1e-6))
    diff_bad = ndimage.binary_dilation(bad, iterations=2)
    difference = np.where(diff_bad, 0.0, difference).astype(np.float32)
    timings["convolve"], clock = time.process_time() - clock, time.process_time()

    diff_bkg = measure_background(difference, diff_bad)
    kernel_psf = psf_kernel(out_psf.fwhm, out_psf.beta)
    correlation = noise_correlation(difference - diff_bkg.level, diff_bad, diff_bkg.rms, kernel_psf)
    # Resampling and convolution correlate the noise: a PSF-sized sum fluctuates more than the
    # per-pixel rms says. Detection thresholds and flux errors use the measured factor.
    rms_map = diff_bkg.rms * correlation
    noise = float(diff_bkg.global_rms) * correlation
    maglimit = photometry.limiting_magnitude(magzp, noise, out_psf.noise_area)
    image = DifferenceImage(
        pixels=np.where(diff_bad, 0.0, difference - diff_bkg.level).astype(np.float32),
        rms=rms_map.astype(np.float32),
        bad=diff_bad,
        science_mask=sci_mask,
        psf=out_psf,
        magzp=magzp,
        maglimit=float(maglimit) if np.isfinite(maglimit) else np.nan,
        wcs=sci_wcs,
        pixel_scale=sci_wcs.pixel_scale(),
    )
    detections = find_candidates(image, float(sci_header.get("GAIN", 6.0)))
    timings["detect"], clock = time.process_time() - clock, time.process_time()
    reference_catalog = reference_sources(root / refimg.replace("_refimg.", "_refpsfcat."))
    stars, external = _catalogs_around(refcat_path, sci_wcs, shape, science.filtercode)
    measured = measure_candidates(image, detections, reference_catalog, external, stars)
    rb, rb_version = realbogus.score(measured, out_psf.fwhm)
    timings["candidates"], clock = time.process_time() - clock, time.process_time()
    n = measured["xpos"].size
    mag, magerr = measured.pop("magpsf"), measured.pop("sigmapsf")
    flags = measured.pop("flags")
    # The difference is calibrated with the science image's zero point, trusted or not.
    if science.infobits & photometry.ZEROPOINT_UNRELIABLE:
        flags = flags | maskbits.FLAG_ZEROPOINT_UNRELIABLE
    catalog = {
        "sourceid": np.arange(1, n + 1, dtype=np.int64),
        "x": measured.pop("xpos").astype(np.float32),
        "y": measured.pop("ypos").astype(np.float32),
        "ra": measured.pop("ra"),
        "dec": measured.pop("dec"),
        "flux": measured.pop("flux"),
        "fluxerr": measured.pop("fluxerr"),
        "mag": mag,
        "magerr": magerr,
        "snr": measured.pop("scorr"),
        "isdiffpos": measured.pop("isdiffpos"),
        "chi": measured.pop("chipsf"),
        "sharpness": measured.pop("sharpness"),
        "flags": flags,
        **measured,
        "rb": rb,
    }
    prefix = science_prefix(
        science.filefracday, science.field, science.filtercode, science.ccdid, science.qid
    )
    paths = {kind: science_path(prefix, kind) for kind in ("diffimg", "diffcat", "diffimgpsf")}
    quadrant_cards = [
        *[(key, sci_header[key], "") for key in products.EXPOSURE_KEYWORDS if key in sci_header],
        ("QID", science.qid, ""),
        ("RCID", science.rcid, ""),
    ]
    cards = [
        *quadrant_cards,
        ("MAGZP", magzp, "zero point of the difference"),
        ("MAGLIM", maglimit if np.isfinite(maglimit) else None, "5-sigma limit of the difference"),
        ("SKYRMS", noise, "rms of the difference, DN (corrected for correlation)"),
        ("NOISECOR", correlation, "noise correlation factor applied"),
        ("GAIN", float(sci_header.get("GAIN", 6.0)), "e-/DN of the science image"),
        ("PSFFWHM", out_psf.fwhm, "PSF of the difference, pixels"),
        ("PSFBETA", out_psf.beta, ""),
        ("KERNCONV", "reference" if convolve_reference else "science", "image convolved"),
        ("KERNSUM", kernel_sum, "photometric scale of the kernel"),
        ("NDIFFSRC", n, "sources in the diffcat"),
        ("RBVERSN", rb_version, "real/bogus model of the rb column"),
        ("SCIFILE", Path(science.files["sciimg"]).name, ""),
        ("REFFILE", Path(refimg).name, ""),
        *[(key, value, "") for key, value in sci_wcs.header().items()],
    ]
    products.write_image(root / paths["diffimg"], difference, cards, compress=True)
    products.write_image(
        root / paths["diffimgpsf"],
        psf_image(out_psf),
        [*quadrant_cards, *PSF_IMAGE_CARDS, ("PSFFWHM", out_psf.fwhm, "FWHM, pixels"),
         ("PSFBETA", out_psf.beta, "Moffat beta")],
    )
    products.write_catalog(
        root / paths["diffcat"],
        catalog,
        DIFFCAT_UNITS,
        cards,
        "DIFFCAT",
    )
    infobits = (
        0 if n < 0.2 * max(science.nsources_psf, 1) + 20 else photometry.INFO_ZEROPOINT_SCATTER
    )
    infobits |= science.infobits & photometry.ZEROPOINT_UNRELIABLE
    return DifferenceMeta(
        expid=science.expid,
        ccdid=science.ccdid,
        qid=science.qid,
        rcid=science.rcid,
        field=science.field,
        fid=science.fid,
        filtercode=science.filtercode,
        programid=science.programid,
        obsjd=science.obsjd,
        obsdate=science.obsdate,
        naxis1=science.naxis1,
        naxis2=science.naxis2,
        footprint=science.footprint,
        wcs=science.wcs,
        magzp=magzp,
        maglimit=known(maglimit),
        ndiffsources=n,
        reference_path=refimg,
        reference_programids=list(reference_programids),
        science_path=science.files["sciimg"],
        files={kind: str(path) for kind, path in paths.items()},
        infobits=infobits,
    )


PSF_IMAGE_SIZE = 25
"""ZTF's diffimgpsf is a 25 x 25 pixel image of the difference image's PSF."""
PSF_IMAGE_CARDS = [
    ("ORIGIN", "SkyVault pipeline", "PSF of the difference image, unit sum"),
    ("PSFCEN", PSF_IMAGE_SIZE // 2 + 1, "centre pixel (FITS, 1-based) on both axes"),
]


def psf_image(psf: Psf) -> np.ndarray:
    """The difference's PSF sampled on a PSF_IMAGE_SIZE square grid, centred on its middle
    pixel and normalised to unit sum (ZTF's diffimgpsf, as its PSF-fit photometry uses)."""
    half = PSF_IMAGE_SIZE // 2
    grid = np.arange(-half, half + 1, dtype=float)
    image = moffat_pixels(grid[None, :], grid[:, None], psf.fwhm, psf.beta)
    return (image / image.sum()).astype(np.float32)


def _catalogs_around(
    refcat_path: str | None, wcs: TanSip, shape: tuple[int, ...], band: str
) -> tuple[NearbyCatalog | None, NearbyCatalog | None]:
    """The reference catalog's stars on the image (for the bright-star flag) and the
    star-galaxy catalog around it (for ``distpsnr1``), or None where there are none."""
    if refcat_path is None:
        return None, None
    corners_ra, corners_dec = wcs.corners(shape)
    stars_all = refcat.load(Path(refcat_path))
    nearby = refcat.in_region(stars_all, corners_ra, corners_dec, margin=0.01)
    stars = NearbyCatalog(
        stars_all.ra[nearby], stars_all.dec[nearby],
        stars_all.mag[band][nearby].astype(np.float64), {},
    )
    centre = wcs.centre(shape)
    radius = float(np.max(np.hypot(
        (np.asarray(corners_ra) - centre[0] + 180) % 360 - 180,
        np.asarray(corners_dec) - centre[1]))) + 0.01
    external = star_galaxy_catalog(
        Path(refcat_path).with_name("sgcat.fits"), band, float(centre[0]), float(centre[1]),
        radius,
    )
    return stars, external
