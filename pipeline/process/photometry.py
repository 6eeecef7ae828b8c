"""Step 5: photometric calibration and image quality.

The zero point ties PSF-fit fluxes to the reference catalog's magnitudes in the same filter:
a clipped, inverse-variance mean over well-measured, unsaturated stars (known variables are
left out; unknown ones and blends fall out in the clipping). The limiting magnitude is the
5-sigma point-source limit from the background noise and the PSF's noise-equivalent area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skyvault.pipeline.process.statistics import weighted_clipped_mean
from skyvault.schema.bits import INFOBITS

MIN_SNR = 20.0
ZP_FLOOR = 0.005
"""mag: the scatter of bright, isolated calibrators about the zero point in simulated crowding."""
MIN_CALIBRATORS = 8
"""Below this many calibrators a zero point is flagged (infobits 8): its error can reach a few
hundredths of a magnitude."""

# infobits: quality flags of a science image (0 means nothing to report), declared with their
# meanings in schema/bits.py (INFOBITS).
INFO_ASTROMETRY_FAILED = INFOBITS.value("ASTROMETRY_FAILED")
INFO_ASTROMETRY_POOR = INFOBITS.value("ASTROMETRY_POOR")
INFO_FEW_ASTROMETRIC_MATCHES = INFOBITS.value("FEW_ASTROMETRIC_MATCHES")
INFO_FEW_CALIBRATORS = INFOBITS.value("FEW_CALIBRATORS")
"""Fewer than MIN_CALIBRATORS stars behind the zero point."""
INFO_ZEROPOINT_SCATTER = INFOBITS.value("ZEROPOINT_SCATTER")
INFO_BAD_SEEING = INFOBITS.value("BAD_SEEING")
INFO_SATURATION = INFOBITS.value("SATURATION")
INFO_PSF_DEFAULT = INFOBITS.value("PSF_DEFAULT")
INFO_ZEROPOINT_FAILED = INFOBITS.value("ZEROPOINT_FAILED")
INFO_ZEROPOINT_UNCERTAIN = INFOBITS.value("ZEROPOINT_UNCERTAIN")
"""MAGZPUNC above MAX_ZEROPOINT_UNCERTAINTY."""

ZEROPOINT_UNRELIABLE = (
    INFO_FEW_CALIBRATORS
    | INFO_ZEROPOINT_SCATTER
    | INFO_ZEROPOINT_FAILED
    | INFO_ZEROPOINT_UNCERTAIN
    | INFO_ASTROMETRY_FAILED
)
"""Bits that say a quadrant's zero point, hence every magnitude of its catalogs, cannot be
trusted to 0.02 mag (with the nominal WCS the calibrators may be the wrong stars); catalog rows
of such a quadrant carry ``maskbits.FLAG_ZEROPOINT_UNRELIABLE``."""

MAX_ZEROPOINT_UNCERTAINTY = 0.01
"""mag: above this MAGZPUNC a zero point is flagged (INFO_ZEROPOINT_UNCERTAIN): at twice its
uncertainty it could be 0.02 mag off."""
MAX_ZEROPOINT_RMS = 0.1


class PhotometryError(RuntimeError):
    """No calibrators to tie the photometry to."""


@dataclass(frozen=True)
class ZeroPoint:
    magzp: float
    magzpunc: float
    magzprms: float
    ncal: int


def zero_point(flux: np.ndarray, fluxerr: np.ndarray, ref_mag: np.ndarray) -> ZeroPoint:
    """Zero point from matched pairs (flux in DN over the exposure, catalog magnitude): their
    inverse-variance mean, clipped in units of each star's error (see
    ``weighted_clipped_mean``: a bright variable among ten calibrators put a quadrant 0.03 mag
    off when the clip was set by the spread of the faint ones)."""
    good = (flux > 0) & np.isfinite(ref_mag) & (flux / np.maximum(fluxerr, 1e-30) > MIN_SNR)
    if good.sum() < 2:
        raise PhotometryError(f"{int(good.sum())} calibrators")
    offsets = ref_mag[good] + 2.5 * np.log10(flux[good])
    # Bright stars are not better calibrators than crowding by unseen neighbours lets them be.
    errors = np.hypot(1.0857 * fluxerr[good] / flux[good], ZP_FLOOR)
    magzp, uncertainty, keep = weighted_clipped_mean(offsets, errors)
    chosen = offsets[keep]
    return ZeroPoint(
        magzp=magzp,
        magzpunc=max(uncertainty, 1e-4),
        magzprms=float(np.std(chosen)) if chosen.size > 1 else 0.0,
        ncal=int(chosen.size),
    )


def zero_point_infobits(zp: ZeroPoint) -> int:
    """The infobits a measured zero point earns: too few calibrators, too much scatter among
    them, or too uncertain (MAGZPUNC, the flux scale's uncertainty included)."""
    bits = 0
    if zp.ncal < MIN_CALIBRATORS:
        bits |= INFO_FEW_CALIBRATORS
    if zp.magzprms > MAX_ZEROPOINT_RMS:
        bits |= INFO_ZEROPOINT_SCATTER
    if zp.magzpunc > MAX_ZEROPOINT_UNCERTAINTY:
        bits |= INFO_ZEROPOINT_UNCERTAIN
    return bits


def limiting_magnitude(magzp: float, sky_rms: float, noise_area: float, nsigma: float = 5.0):
    return float(magzp - 2.5 * np.log10(nsigma * sky_rms * np.sqrt(noise_area)))


def magnitudes(flux: np.ndarray, fluxerr: np.ndarray, magzp: float):
    """Calibrated magnitudes and errors; NaN where the flux is not positive."""
    positive = flux > 0
    mag = np.where(positive, magzp - 2.5 * np.log10(np.where(positive, flux, 1.0)), np.nan)
    magerr = np.where(positive, 1.0857 * fluxerr / np.where(positive, flux, 1.0), np.nan)
    return mag.astype(np.float32), magerr.astype(np.float32)
