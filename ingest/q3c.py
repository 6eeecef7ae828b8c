"""q3c's pixel number, computed with numpy (identical to the SQL ``q3c_ang2ipix(ra, dec)``).

Ingest sorts each catalog by it before COPY, so a partition's rows lie in q3c order within
each image: a cone search reads a few contiguous pages per image that covers it, as if the
partition had been CLUSTERed, without rewriting it.

q3c projects the sphere on the six faces of a cube (0 north, 1-4 around the equator, 5 south),
divides each face into 2^30 x 2^30 cells and numbers them in Z order (Morton: x bits at even
positions, y bits at odd ones), after ``face * 2^60``.
"""

from __future__ import annotations

import numpy as np

NSIDE = 1 << 30
_MASKS = (
    (16, 0x0000FFFF0000FFFF),
    (8, 0x00FF00FF00FF00FF),
    (4, 0x0F0F0F0F0F0F0F0F),
    (2, 0x3333333333333333),
    (1, 0x5555555555555555),
)


def _spread_bits(values: np.ndarray) -> np.ndarray:
    """Put bit k of each value at bit 2k."""
    spread = values.astype(np.uint64)
    for shift, mask in _MASKS:
        spread = (spread | (spread << np.uint64(shift))) & np.uint64(mask)
    return spread


def ang2ipix(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """q3c ipix (int64) of positions in degrees."""
    ra = np.mod(np.asarray(ra, dtype=np.float64), 360.0)
    dec = np.asarray(dec, dtype=np.float64)
    face = np.floor((ra + 45.0) / 90.0).astype(np.int64) % 4
    ra_face = np.radians(ra - face * 90.0)
    tan_dec = np.tan(np.radians(dec))
    x = np.tan(ra_face)
    y = tan_dec / np.cos(ra_face)
    north = y > 1
    south = y < -1
    ra_rad = np.radians(ra)
    with np.errstate(divide="ignore", invalid="ignore"):
        polar_x = np.sin(ra_rad) / tan_dec
        polar_y = -np.cos(ra_rad) / tan_dec
    x = np.where(north, polar_x, np.where(south, -polar_x, x))
    y = np.where(north | south, polar_y, y)
    face = np.where(north, 0, np.where(south, 5, face + 1))
    xi = np.clip(((x + 1.0) / 2.0 * NSIDE).astype(np.int64), 0, NSIDE - 1)
    yi = np.clip(((y + 1.0) / 2.0 * NSIDE).astype(np.int64), 0, NSIDE - 1)
    ipix = (face.astype(np.uint64) * np.uint64(NSIDE) * np.uint64(NSIDE)
            + _spread_bits(xi) + (_spread_bits(yi) << np.uint64(1)))
    return ipix.astype(np.int64)


# -- sky cells -----------------------------------------------------------------------------------
# A cell of depth d is a q3c pixel of that depth: the 2d leading bits of the Z-order number,
# after the face. Its pixels are one contiguous range of ipix, which is what lets PostgreSQL
# range-partition a catalog by ``q3c_ang2ipix(ra, dec)`` and prune cells from q3c's ranges.

PIXEL_BITS = 60
"""Bits of the Z-order number within a face (30 per axis)."""


def cell_shift(depth: int) -> int:
    if not 0 <= depth <= PIXEL_BITS // 2:
        raise ValueError(f"cell depth {depth} outside 0..{PIXEL_BITS // 2}")
    return PIXEL_BITS - 2 * depth


def cell_of(ipix: np.ndarray | int, depth: int) -> np.ndarray | int:
    """The cell number (face * 4**depth + Z-order at that depth) of q3c pixels."""
    return ipix >> cell_shift(depth)


def cell_range(cell: int, depth: int) -> tuple[int, int]:
    """The q3c pixels of a cell: [low, high)."""
    shift = cell_shift(depth)
    return cell << shift, (cell + 1) << shift


def cell_count(depth: int) -> int:
    return 6 * 4 ** depth
