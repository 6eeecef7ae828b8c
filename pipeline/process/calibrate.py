"""Step 1: calibration products per readout quadrant and night.

The bias is the median of the overscan-corrected bias frames; its pixel scatter reveals noisy
(hot) columns. The high-frequency flat is the median of the overscan- and bias-corrected dome
flats, each normalised to median 1; it reveals dead and low-response pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from skyvault.pipeline.process import maskbits
from skyvault.pipeline.process.rawio import RawQuadrant


class CalibrationError(RuntimeError):
    """Too few or inconsistent frames to make a calibration product."""


NOISY_FACTOR = 4.0
"""A pixel whose scatter across bias frames exceeds this times the median scatter is noisy."""


@dataclass(frozen=True)
class MasterBias:
    image: np.ndarray
    """ADU above the overscan level."""
    rms: np.ndarray
    """Pixel scatter across the frames, ADU."""
    nframes: int

    def noisy(self) -> np.ndarray:
        # Bias frames are integers a read noise of ~1.5 ADU apart: the floor keeps the
        # quantisation from making a typical scatter of zero.
        typical = max(float(np.median(self.rms[::4, ::4])), 0.5)
        offset = np.abs(self.image - np.median(self.image[::4, ::4]))
        return (self.rms > NOISY_FACTOR * typical) | (offset > 20 * typical)


@dataclass(frozen=True)
class MasterFlat:
    image: np.ndarray
    """Relative response, median 1."""
    badpix: np.ndarray
    """Mask bits (uint16): dead, low and high response."""
    nframes: int


def _pixel_scatter(stack: np.ndarray) -> np.ndarray:
    """Standard deviation across frames (not a median-based estimate: with a few integer-valued
    frames those are zero for most pixels)."""
    return np.std(stack, axis=0, ddof=1).astype(np.float32)


def combine_bias(frames: list[RawQuadrant]) -> MasterBias:
    if len(frames) < 3:
        raise CalibrationError(f"{len(frames)} bias frames; at least 3 are needed")
    stack = np.stack([f.data - f.overscan_level() for f in frames])
    return MasterBias(
        image=np.median(stack, axis=0).astype(np.float32),
        rms=_pixel_scatter(stack),
        nframes=len(frames),
    )


def combine_flat(frames: list[RawQuadrant], bias: MasterBias) -> MasterFlat:
    if len(frames) < 3:
        raise CalibrationError(f"{len(frames)} flat frames; at least 3 are needed")
    normalised = []
    for frame in frames:
        image = frame.data - frame.overscan_level() - bias.image
        level = float(np.median(image))
        if level <= 0:
            raise CalibrationError("a dome flat has no light in it")
        normalised.append(image / level)
    flat = np.median(np.stack(normalised), axis=0)
    flat = (flat / np.median(flat)).astype(np.float32)
    badpix = np.zeros(flat.shape, dtype=np.uint16)
    badpix[flat < 0.2] |= maskbits.DEAD
    badpix[(flat >= 0.2) & (flat < 0.7)] |= maskbits.LOW_RESPONSE
    badpix[flat > 1.5] |= maskbits.HIGH_RESPONSE
    # Dividing by a dead pixel's tiny response would only amplify noise; 1 keeps values finite.
    flat[flat < 0.2] = 1.0
    return MasterFlat(image=flat, badpix=badpix, nframes=len(frames))


def write_bias(path, bias: MasterBias, cards: list[tuple[str, object, str]]) -> None:
    header = fits.Header(cards)
    header["NFRAMES"] = (bias.nframes, "bias frames combined")
    header["BUNIT"] = ("adu", "above the overscan level")
    header["MEDIAN"] = (float(np.median(bias.image)), "ADU")
    header["RMSMED"] = (float(np.median(bias.rms)), "median pixel scatter, ADU")
    primary = fits.PrimaryHDU(bias.image, header=header)
    rms = fits.ImageHDU(bias.rms, name="RMS")
    fits.HDUList([primary, rms]).writeto(path, overwrite=True)


def read_bias(path) -> MasterBias:
    with fits.open(path, memmap=False) as hdul:
        return MasterBias(
            image=hdul[0].data.astype(np.float32),
            rms=hdul["RMS"].data.astype(np.float32),
            nframes=int(hdul[0].header["NFRAMES"]),
        )


def write_flat(path, flat: MasterFlat, cards: list[tuple[str, object, str]]) -> None:
    header = fits.Header(cards)
    header["NFRAMES"] = (flat.nframes, "dome flats combined")
    header["BUNIT"] = ("", "relative response, median 1")
    header["NBADPIX"] = (int(np.count_nonzero(flat.badpix)), "dead or odd-response pixels")
    primary = fits.PrimaryHDU(flat.image, header=header)
    badpix = fits.ImageHDU(flat.badpix.astype(np.int16), name="BADPIX")
    fits.HDUList([primary, badpix]).writeto(path, overwrite=True)


def read_flat(path) -> MasterFlat:
    with fits.open(path, memmap=False) as hdul:
        return MasterFlat(
            image=hdul[0].data.astype(np.float32),
            badpix=hdul["BADPIX"].data.astype(np.uint16),
            nframes=int(hdul[0].header["NFRAMES"]),
        )
