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


def _compact_bits(spread: np.ndarray) -> np.ndarray:
    """Inverse of ``_spread_bits``: bit 2k of each value to bit k."""
    values = spread.astype(np.uint64) & np.uint64(0x5555555555555555)
    for shift, mask in ((1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F),
                        (4, 0x00FF00FF00FF00FF), (8, 0x0000FFFF0000FFFF),
                        (16, 0x00000000FFFFFFFF)):
        values = (values | (values >> np.uint64(shift))) & np.uint64(mask)
    return values


def ipix2ang(ipix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre (ra, dec in degrees) of q3c pixels of full depth (q3c_ipix2ang's answer)."""
    ipix = np.asarray(ipix, dtype=np.int64).astype(np.uint64)
    face = (ipix // np.uint64(NSIDE * NSIDE)).astype(np.int64)
    morton = ipix % np.uint64(NSIDE * NSIDE)
    xi = _compact_bits(morton).astype(np.float64)
    yi = _compact_bits(morton >> np.uint64(1)).astype(np.float64)
    x = (xi + 0.5) / NSIDE * 2.0 - 1.0
    y = (yi + 0.5) / NSIDE * 2.0 - 1.0
    equatorial_ra = np.degrees(np.arctan(x)) + (face - 1) * 90.0
    equatorial_dec = np.degrees(np.arctan(y * np.cos(np.arctan(x))))
    polar_dec = np.degrees(np.arctan(1.0 / np.hypot(x, y)))
    ra = np.where(face == 0, np.degrees(np.arctan2(x, -y)),
                  np.where(face == 5, np.degrees(np.arctan2(x, y)), equatorial_ra)) % 360.0
    dec = np.where(face == 0, polar_dec, np.where(face == 5, -polar_dec, equatorial_dec))
    return ra, dec


# -- object identifiers that are sky keys ----------------------------------------------------------
# A table of detections grouped by object (lightcurves, alert candidates) files its rows under
# its objects' pixels, so that "every detection of object X" is one sky cell: the identifier
# is the q3c pixel of the object's position with its last bits replaced by a serial number
# (schema/model.py SkyLayout.key_margin_deg, ingest/README.md).

OBJECT_SERIAL_BITS = 16
"""Serial bits of an object identifier: 65,536 objects per pixel of depth 22 (0.08")."""


def object_ids(ra: np.ndarray, dec: np.ndarray, serial: np.ndarray | int = 0) -> np.ndarray:
    """Identifiers of new objects at these positions; ``serial`` tells apart objects created in
    the same 0.08" pixel (below 2**OBJECT_SERIAL_BITS)."""
    serial = np.asarray(serial, dtype=np.int64)
    if np.any((serial < 0) | (serial >= 1 << OBJECT_SERIAL_BITS)):
        raise ValueError(f"object serial numbers run from 0 to {(1 << OBJECT_SERIAL_BITS) - 1}")
    return (ang2ipix(ra, dec) >> OBJECT_SERIAL_BITS << OBJECT_SERIAL_BITS) | serial


def object_positions(oid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre of the pixel an object identifier names (within 0.06" of the object)."""
    base = np.asarray(oid, dtype=np.int64) >> OBJECT_SERIAL_BITS << OBJECT_SERIAL_BITS
    return ipix2ang(base + (1 << (OBJECT_SERIAL_BITS - 1)))


def near_their_objects(ra: np.ndarray, dec: np.ndarray, oid: np.ndarray,
                       margin_deg: float) -> np.ndarray:
    """Which detections lie within ``margin_deg`` of the pixel of their object's identifier:
    what a loader must check (and quarantine otherwise) before filing rows under the object,
    since cones on such a table prune its cells by that margin."""
    ra0, dec0 = object_positions(oid)
    a, d, a0, d0 = map(np.radians, (np.asarray(ra), np.asarray(dec), ra0, dec0))
    hav = np.sin((d - d0) / 2) ** 2 + np.cos(d) * np.cos(d0) * np.sin((a - a0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))) <= margin_deg
