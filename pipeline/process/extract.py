"""Step 3a: background, source detection and aperture photometry with sep (SExtractor's core).

Unusable pixels (bad columns, cosmic rays) are filled by interpolation along rows before
detection, so they neither break a star in two nor create sources of their own; photometry
then gives them no weight and flags sources that touch them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep

from skyvault.pipeline.process import maskbits
from skyvault.pipeline.psfmodel import moffat_pixels

APERTURE_RADII = (1.5, 2.5, 4.0, 6.0, 10.0)
"""Fixed aperture radii, pixels (the FLUX_APER columns)."""
REFERENCE_APERTURE = 4.0
"""The aperture of the ``flux``/``mag`` columns of sexcat, aperture-corrected to total."""
DETECT_THRESHOLD = 5.0
"""Detection threshold in sigma of the PSF-matched filtered image (about the PSF-fit S/N)."""
MIN_AREA = 3
sep.set_sub_object_limit(4096)


@dataclass(frozen=True)
class Background:
    level: np.ndarray
    rms: np.ndarray
    global_level: float
    global_rms: float


def fill_unusable(image: np.ndarray, unusable: np.ndarray) -> np.ndarray:
    """Copy of the image with unusable pixels replaced by linear interpolation along their row
    (bad pixels on a CCD come mostly in columns)."""
    if not unusable.any():
        return image.copy()
    filled = image.astype(np.float32).copy()
    columns = np.arange(image.shape[1])
    for row in np.flatnonzero(unusable.any(axis=1)):
        bad = unusable[row]
        good = ~bad
        if good.sum() < 2:
            filled[row] = np.median(image[~unusable]) if (~unusable).any() else 0.0
            continue
        filled[row, bad] = np.interp(columns[bad], columns[good], image[row, good])
    return filled


def measure_background(image: np.ndarray, unusable: np.ndarray, box: int = 64) -> Background:
    data = np.ascontiguousarray(image, dtype=np.float32)
    bkg = sep.Background(data, mask=unusable, bw=box, bh=box, fw=3, fh=3)
    return Background(
        level=bkg.back(),
        rms=bkg.rms(),
        global_level=float(bkg.globalback),
        global_rms=float(bkg.globalrms),
    )


def psf_kernel(fwhm: float, beta: float) -> np.ndarray:
    """The matched filter: the PSF core out to one FWHM (holding most of the signal-to-noise;
    a wider kernel costs time in proportion to its area for little gain)."""
    radius = max(1, int(np.ceil(1.0 * fwhm)))
    grid = np.arange(-radius, radius + 1, dtype=float)
    kernel = moffat_pixels(grid[None, :], grid[:, None], fwhm, beta)
    return (kernel / kernel.sum()).astype(np.float32)


def detect(
    subtracted: np.ndarray,
    rms: np.ndarray,
    threshold: float,
    kernel: np.ndarray | None,
    minarea: int = MIN_AREA,
) -> tuple[np.ndarray, np.ndarray]:
    """sep objects and the segmentation map."""
    data = np.ascontiguousarray(subtracted, dtype=np.float32)
    # sep allocates its pixel stack on every call: size it to the image, not to the worst case.
    sep.set_extract_pixstack(max(300_000, data.size // 8))
    objects, segmap = sep.extract(
        data,
        threshold,
        err=np.ascontiguousarray(rms, dtype=np.float32),
        minarea=minarea,
        filter_kernel=kernel
        if kernel is not None
        else np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32),
        filter_type="matched",
        deblend_cont=0.005,
        # SExtractor's cleaning models neighbours with a Moffat of its own and throws away
        # faint stars near brighter ones as if they were wings: it cost a third of the stars
        # one magnitude above the limit. PSF fitting copes with the neighbours instead.
        clean=False,
        segmentation_map=True,
    )
    return objects, segmap


@dataclass
class ApertureCatalog:
    x: np.ndarray
    """0-based windowed centroids."""
    y: np.ndarray
    flux_aper: np.ndarray
    """(n, len(APERTURE_RADII)) DN."""
    fluxerr_aper: np.ndarray
    flux_auto: np.ndarray
    fluxerr_auto: np.ndarray
    kron_radius: np.ndarray
    flux_radius: np.ndarray
    a: np.ndarray
    b: np.ndarray
    theta: np.ndarray
    """deg, counter-clockwise from +x."""
    peak: np.ndarray
    isoarea: np.ndarray
    background: np.ndarray
    sep_flags: np.ndarray
    imaflags: np.ndarray
    """OR of the mask bits under each source's isophote."""


def aperture_photometry(
    subtracted: np.ndarray,
    rms: np.ndarray,
    background: np.ndarray,
    objects: np.ndarray,
    segmap: np.ndarray,
    mask: np.ndarray,
    gain: float,
    fwhm: float,
) -> ApertureCatalog:
    data = np.ascontiguousarray(subtracted, dtype=np.float32)
    err = np.ascontiguousarray(rms, dtype=np.float32)
    bad = (mask & (maskbits.UNUSABLE & ~maskbits.SATURATED)) != 0
    n = len(objects)
    x, y = objects["x"].astype(np.float64), objects["y"].astype(np.float64)
    if n:
        xw, yw, wflag = sep.winpos(data, x, y, np.full(n, fwhm / 2.3548), mask=bad)
        ok = (wflag == 0) & np.isfinite(xw) & (np.hypot(xw - x, yw - y) < 2 * fwhm)
        x, y = np.where(ok, xw, x), np.where(ok, yw, y)
    flux_aper = np.zeros((n, len(APERTURE_RADII)))
    fluxerr_aper = np.zeros((n, len(APERTURE_RADII)))
    for k, radius in enumerate(APERTURE_RADII):
        if n:
            flux, fluxerr, _ = sep.sum_circle(
                data, x, y, radius, err=err, mask=bad, gain=gain, subpix=5
            )
            flux_aper[:, k], fluxerr_aper[:, k] = flux, fluxerr
    # sep rejects degenerate ellipses (a or b of 0 or NaN for one-pixel objects).
    a = np.asarray(objects["a"], dtype=np.float64)
    b = np.asarray(objects["b"], dtype=np.float64)
    theta = np.asarray(objects["theta"], dtype=np.float64)
    a = np.where(np.isfinite(a) & (a > 0.3), a, 0.5)
    b = np.minimum(np.where(np.isfinite(b) & (b > 0.3), b, 0.5), a)
    theta = np.clip(np.nan_to_num(theta), -np.pi / 2 + 1e-6, np.pi / 2 - 1e-6)
    if n:
        kron, _ = sep.kron_radius(data, x, y, a, b, theta, 6.0, mask=bad)
        kron = np.where(np.isfinite(kron) & (kron > 0), kron, 2.5)
        flux_auto, fluxerr_auto, _ = sep.sum_ellipse(
            data,
            x,
            y,
            a,
            b,
            theta,
            2.5 * np.maximum(kron, 1.4),
            err=err,
            mask=bad,
            gain=gain,
            subpix=1,
        )
        flux_radius, _ = sep.flux_radius(
            data, x, y, 6.0 * np.maximum(a, 1.0), 0.5, normflux=flux_auto, subpix=5
        )
    else:
        kron = flux_auto = fluxerr_auto = flux_radius = np.zeros(0)
    imaflags = np.zeros(n, dtype=np.int32)
    if n:
        labels = segmap.reshape(-1)
        hit = labels > 0
        np.bitwise_or.at(imaflags, labels[hit] - 1, mask.reshape(-1)[hit].astype(np.int32))
    ix = np.clip(np.rint(x).astype(int), 0, data.shape[1] - 1)
    iy = np.clip(np.rint(y).astype(int), 0, data.shape[0] - 1)
    return ApertureCatalog(
        x=x,
        y=y,
        flux_aper=flux_aper,
        fluxerr_aper=fluxerr_aper,
        flux_auto=np.asarray(flux_auto, dtype=float),
        fluxerr_auto=np.asarray(fluxerr_auto),
        kron_radius=np.asarray(kron, dtype=float),
        flux_radius=np.asarray(flux_radius),
        a=np.asarray(a, dtype=float),
        b=np.asarray(b, dtype=float),
        theta=np.degrees(np.asarray(theta, dtype=float)),
        peak=objects["peak"].astype(float),
        isoarea=objects["npix"].astype(float),
        background=background[iy, ix].astype(float),
        sep_flags=objects["flag"].astype(int),
        imaflags=imaflags,
    )
