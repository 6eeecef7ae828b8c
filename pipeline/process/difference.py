"""Image differencing: science minus the PSF-matched reference (Alard & Lupton 1998).

The reference is resampled onto the science image's grid and scaled to its zero point. The
sharper of the two images is convolved with a kernel, a sum of Gaussians times polynomials
fitted by linear least squares on stamps around bright stars, to match the other's PSF. The
difference keeps the science image's photometric scale; sources are found in it above and
below zero (``isdiffpos``) and measured with the PSF of the broader image.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage
from scipy.signal import fftconvolve

from skyvault.pipeline.manifest import DifferenceMeta, ScienceImageMeta
from skyvault.pipeline.naming import science_path, science_prefix
from skyvault.pipeline.process import maskbits, photometry, products
from skyvault.pipeline.process.extract import detect, fill_unusable, measure_background, psf_kernel
from skyvault.pipeline.process.psf import Psf, fit_sources
from skyvault.pipeline.process.resample import resample
from skyvault.pipeline.process.wcs import TanSip

DETECT_SIGMA = 5.0
BASIS_SIGMAS = (0.7, 1.5, 3.0)
BASIS_DEGREES = (4, 2, 2)
MAX_STAMPS = 150


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
    product_dir: str, science: ScienceImageMeta, refimg: str, reference_programids: list[int]
) -> DifferenceMeta:
    root = Path(product_dir)
    timings: dict[str, float] = {}
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
    timings["resample"] = time.process_time() - clock

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
    good = (psfcat["flags"] == 0) & (psfcat["snr"] > 15)
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
    timings["convolve"] = time.process_time() - clock

    diff_bkg = measure_background(difference, diff_bad)
    kernel_psf = psf_kernel(out_psf.fwhm, out_psf.beta)
    correlation = noise_correlation(difference - diff_bkg.level, diff_bad, diff_bkg.rms, kernel_psf)
    # Resampling and convolution correlate the noise: a PSF-sized sum fluctuates more than the
    # per-pixel rms says. Detection thresholds and flux errors use the measured factor.
    rms_map = diff_bkg.rms * correlation
    noise = float(diff_bkg.global_rms) * correlation
    rows = []
    for sign in (1.0, -1.0):
        signed = np.where(diff_bad, 0.0, sign * (difference - diff_bkg.level)).astype(np.float32)
        objects, _ = detect(
            signed, np.where(diff_bad, 1e6, rms_map), DETECT_SIGMA, kernel_psf, minarea=3
        )
        if len(objects) == 0:
            continue
        fit = fit_sources(
            signed,
            rms_map.astype(np.float64) ** 2,
            diff_bad,
            objects["x"].astype(float),
            objects["y"].astype(float),
            out_psf,
            float(sci_header.get("GAIN", 6.0)),
        )
        keep = fit.flux > 0
        rows.append((sign, fit, keep))
    xs, ys, flux, fluxerr, chi, sharp, positive, flags = [], [], [], [], [], [], [], []
    for sign, fit, keep in rows:
        xs.append(fit.x[keep])
        ys.append(fit.y[keep])
        flux.append(sign * fit.flux[keep])
        fluxerr.append(fit.fluxerr[keep])
        chi.append(fit.chi[keep])
        sharp.append(fit.sharpness[keep])
        positive.append(np.full(int(keep.sum()), 1 if sign > 0 else 0, dtype=np.int16))
        f = np.zeros(int(keep.sum()), dtype=np.int32)
        f[fit.npix_bad[keep] > 0] |= maskbits.FLAG_BAD_PIXELS
        f[~fit.converged[keep]] |= maskbits.FLAG_FIT_FAILED
        flags.append(f)

    def joined(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    x_all, y_all = joined(xs, np.float64), joined(ys, np.float64)
    flux_all, fluxerr_all = joined(flux, np.float64), joined(fluxerr, np.float64)
    ra, dec = sci_wcs.pixel_to_world(x_all + 1, y_all + 1)
    mag, magerr = photometry.magnitudes(np.abs(flux_all), fluxerr_all, magzp)
    n = x_all.size
    catalog = {
        "sourceid": np.arange(1, n + 1, dtype=np.int64),
        "x": (x_all + 1).astype(np.float32),
        "y": (y_all + 1).astype(np.float32),
        "ra": np.asarray(ra, dtype=np.float64),
        "dec": np.asarray(dec, dtype=np.float64),
        "flux": flux_all.astype(np.float32),
        "fluxerr": fluxerr_all.astype(np.float32),
        "mag": mag,
        "magerr": magerr,
        "snr": (np.abs(flux_all) / np.maximum(fluxerr_all, 1e-30)).astype(np.float32),
        "isdiffpos": joined(positive, np.int16),
        "chi": joined(chi, np.float32),
        "sharpness": joined(sharp, np.float32),
        "flags": joined(flags, np.int32),
    }
    maglimit = photometry.limiting_magnitude(magzp, noise, out_psf.noise_area)
    prefix = science_prefix(
        science.filefracday, science.field, science.filtercode, science.ccdid, science.qid
    )
    paths = {kind: science_path(prefix, kind) for kind in ("diffimg", "diffcat")}
    cards = [
        *[(key, sci_header[key], "") for key in products.EXPOSURE_KEYWORDS if key in sci_header],
        ("QID", science.qid, ""),
        ("RCID", science.rcid, ""),
        ("MAGZP", magzp, "zero point of the difference"),
        ("MAGLIM", maglimit if np.isfinite(maglimit) else None, "5-sigma limit of the difference"),
        ("SKYRMS", noise, "rms of the difference, DN (corrected for correlation)"),
        ("NOISECOR", correlation, "noise correlation factor applied"),
        ("PSFFWHM", out_psf.fwhm, "PSF of the difference, pixels"),
        ("PSFBETA", out_psf.beta, ""),
        ("KERNCONV", "reference" if convolve_reference else "science", "image convolved"),
        ("KERNSUM", kernel_sum, "photometric scale of the kernel"),
        ("NDIFFSRC", n, "sources in the diffcat"),
        ("SCIFILE", Path(science.files["sciimg"]).name, ""),
        ("REFFILE", Path(refimg).name, ""),
        *[(key, value, "") for key, value in sci_wcs.header().items()],
    ]
    products.write_image(root / paths["diffimg"], difference, cards, compress=True)
    products.write_catalog(
        root / paths["diffcat"],
        catalog,
        {
            "x": "pix",
            "y": "pix",
            "ra": "deg",
            "dec": "deg",
            "flux": "ct",
            "fluxerr": "ct",
            "mag": "mag",
            "magerr": "mag",
        },
        cards,
        "DIFFCAT",
    )
    infobits = (
        0 if n < 0.2 * max(science.nsources_psf, 1) + 20 else photometry.INFO_ZEROPOINT_SCATTER
    )
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
        maglimit=float(maglimit) if np.isfinite(maglimit) else -99.0,
        ndiffsources=n,
        reference_path=refimg,
        reference_programids=list(reference_programids),
        science_path=science.files["sciimg"],
        files={kind: str(path) for kind, path in paths.items()},
        infobits=infobits,
    )
