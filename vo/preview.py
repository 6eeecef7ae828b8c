"""PNG previews of image arrays: block-averaged to a size, zscale-stretched, north up as FITS
draws it (row 0 at the bottom)."""

from __future__ import annotations

import io
import math

import numpy as np
from astropy.visualization import ZScaleInterval
from PIL import Image

PREVIEW_SIZES = {"small": 256, "large": 1024}
"""Longest side in pixels: small for result tables, large for detail pages."""


def block_average(data: np.ndarray, pixels: int) -> np.ndarray:
    """The image shrunk by an integer factor so its longest side is at most ``pixels``; blocks
    average their finite pixels (NaN where a block has none)."""
    factor = max(1, math.ceil(max(data.shape) / pixels))
    if factor == 1:
        return data.astype(np.float32, copy=False)
    height, width = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    blocks = data[:height, :width].astype(np.float32, copy=False).reshape(
        height // factor, factor, width // factor, factor)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    count = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def zscale_bytes(data: np.ndarray) -> np.ndarray:
    """8-bit grey levels between IRAF's zscale limits; non-finite pixels black."""
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(data.shape, dtype=np.uint8)
    low, high = ZScaleInterval().get_limits(data[finite])
    if not high > low:
        high = low + 1.0
    scaled = (np.where(finite, data, low) - low) / (high - low)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_png(data: np.ndarray, pixels: int) -> bytes:
    if data.ndim != 2:
        raise ValueError(f"a preview needs a 2-D image, not {data.ndim}-D")
    grey = zscale_bytes(block_average(data, pixels))
    buffer = io.BytesIO()
    Image.fromarray(grey[::-1]).save(buffer, format="PNG")
    return buffer.getvalue()
