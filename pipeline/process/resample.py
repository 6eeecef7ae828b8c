"""Resampling an image onto another image's pixel grid through both WCSs.

The pixel-to-pixel mapping is smooth, so it is computed exactly on a coarse grid and
interpolated; the image is then sampled with a cubic spline (after bad pixels are filled so
they do not ring into their neighbours) and the bad-pixel map with linear interpolation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from skyvault.pipeline.process.extract import fill_unusable
from skyvault.pipeline.process.wcs import TanSip

GRID_STEP = 16


def pixel_mapping(
    source: TanSip, target: TanSip, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """0-based source pixel coordinates (x, y) of every target pixel."""
    ny, nx = shape
    gx = np.unique(np.append(np.arange(0, nx, GRID_STEP), nx - 1)).astype(float)
    gy = np.unique(np.append(np.arange(0, ny, GRID_STEP), ny - 1)).astype(float)
    mx, my = np.meshgrid(gx, gy)
    ra, dec = target.pixel_to_world(mx + 1, my + 1)
    sx, sy = source.world_to_pixel(ra, dec)
    # Interpolate the coarse mapping to every pixel (bilinear in grid-index space).
    iy = np.interp(np.arange(ny), gy, np.arange(gy.size))
    ix = np.interp(np.arange(nx), gx, np.arange(gx.size))
    grid_y, grid_x = np.meshgrid(iy, ix, indexing="ij")
    full_x = ndimage.map_coordinates(sx - 1, [grid_y, grid_x], order=1)
    full_y = ndimage.map_coordinates(sy - 1, [grid_y, grid_x], order=1)
    return full_x, full_y


def resample(
    image: np.ndarray,
    bad: np.ndarray,
    source: TanSip,
    target: TanSip,
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(resampled image, bad map) on the target grid; off-image pixels are bad."""
    x, y = pixel_mapping(source, target, shape)
    filled = fill_unusable(image, bad)
    values = ndimage.map_coordinates(filled, [y, x], order=3, mode="nearest").astype(np.float32)
    spread = ndimage.map_coordinates(
        bad.astype(np.float32), [y, x], order=1, mode="constant", cval=1.0
    )
    ny, nx = image.shape
    outside = (x < -0.5) | (x > nx - 0.5) | (y < -0.5) | (y > ny - 0.5)
    return values, (spread > 0.02) | outside
