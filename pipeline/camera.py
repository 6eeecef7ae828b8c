"""Geometry of the ZTF-like mosaic: 16 CCDs in a 4 x 4 grid, each read out as 2 x 2 quadrants.

Both the simulator and the processing need it: the simulator to place the sky on the pixels, the
processing for the first-guess WCS that astrometric calibration then solves. The camera is
described by one quadrant's size; everything else scales from it, so a 256 x 256 "small" camera
has the same layout as the 3072 x 3080 one, only smaller.

Focal-plane coordinates are in pixels from the boresight, +x towards decreasing RA (east left)
and +y towards increasing Dec when the camera rotation is zero. CCD 1 is at the south-east
corner; CCD ids run along x (west) first, then north: ccd = 1 + 4 * row + col. Within a CCD,
quadrants follow ZTF's counter-clockwise order from the top right: q1 top right, q2 top left,
q3 bottom left, q4 bottom right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALL_CCDS = tuple(range(1, 17))
QUADRANTS = (1, 2, 3, 4)

_QUADRANT_CELL = {1: (1, 1), 2: (0, 1), 3: (0, 0), 4: (1, 0)}
"""qid -> (column, row) of the quadrant within its CCD."""


def rcid(ccdid: int, qid: int) -> int:
    """Readout-channel id 0..63, as ZTF numbers them."""
    return (ccdid - 1) * 4 + (qid - 1)


@dataclass(frozen=True)
class CameraGeometry:
    quadrant_nx: int
    quadrant_ny: int
    overscan: int
    """Overscan columns appended to every quadrant in raw files."""
    pixel_scale: float = 1.012
    """arcsec per pixel."""
    ccd_gap: int = 0
    """Pixels between adjacent CCDs; 0 means a default that scales with the quadrant size."""
    distortion: float = 1.6e-4
    """Radial distortion k (deg^-2): true radius r(1 + k r^2), r in degrees on the sky."""

    @classmethod
    def full(cls) -> CameraGeometry:
        return cls(quadrant_nx=3072, quadrant_ny=3080, overscan=30)

    @classmethod
    def small(cls, size: int = 256) -> CameraGeometry:
        return cls(quadrant_nx=size, quadrant_ny=size, overscan=16)

    @classmethod
    def for_quadrant(cls, nx: int, ny: int, overscan: int) -> CameraGeometry:
        """The geometry a raw file implies, from one quadrant's data and overscan size."""
        return cls(quadrant_nx=nx, quadrant_ny=ny, overscan=overscan)

    @property
    def gap(self) -> int:
        return self.ccd_gap or max(8, self.quadrant_nx // 48)

    @property
    def ccd_pitch_x(self) -> int:
        return 2 * self.quadrant_nx + self.gap

    @property
    def ccd_pitch_y(self) -> int:
        return 2 * self.quadrant_ny + self.gap

    def quadrant_origin(self, ccdid: int, qid: int) -> tuple[float, float]:
        """Focal-plane position (pixels) of the centre of quadrant pixel (0, 0)."""
        row, col = divmod(ccdid - 1, 4)
        qcol, qrow = _QUADRANT_CELL[qid]
        x0 = (col - 2) * self.ccd_pitch_x + self.gap / 2 + qcol * self.quadrant_nx
        y0 = (row - 2) * self.ccd_pitch_y + self.gap / 2 + qrow * self.quadrant_ny
        return x0 + 0.5, y0 + 0.5

    def to_focal_plane(
        self, ccdid: int, qid: int, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quadrant pixel coordinates (0-based) to focal-plane pixels."""
        x0, y0 = self.quadrant_origin(ccdid, qid)
        return np.asarray(x) + x0, np.asarray(y) + y0

    def from_focal_plane(
        self, ccdid: int, qid: int, fx: np.ndarray, fy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        x0, y0 = self.quadrant_origin(ccdid, qid)
        return np.asarray(fx) - x0, np.asarray(fy) - y0

    def locate(
        self, fx: np.ndarray, fy: np.ndarray, ccds: tuple[int, ...] = ALL_CCDS
    ) -> np.ndarray:
        """(ccdid, qid) of focal-plane points; (0, 0) where a point falls in a gap or off the
        read-out CCDs. Returns an (n, 2) int array."""
        fx = np.atleast_1d(np.asarray(fx, dtype=float))
        fy = np.atleast_1d(np.asarray(fy, dtype=float))
        out = np.zeros((fx.size, 2), dtype=int)
        for ccdid in ccds:
            for qid in QUADRANTS:
                x, y = self.from_focal_plane(ccdid, qid, fx, fy)
                inside = (x >= -0.5) & (x < self.quadrant_nx - 0.5)
                inside &= (y >= -0.5) & (y < self.quadrant_ny - 0.5)
                out[inside] = (ccdid, qid)
        return out

    def footprint_extent(self, ccds: tuple[int, ...]) -> tuple[float, float, float, float]:
        """Focal-plane bounding box (xmin, xmax, ymin, ymax) of the given CCDs, pixels."""
        corners = []
        for ccdid in ccds:
            for qid in QUADRANTS:
                x0, y0 = self.quadrant_origin(ccdid, qid)
                corners.append((x0 - 0.5, y0 - 0.5))
                corners.append((x0 + self.quadrant_nx - 0.5, y0 + self.quadrant_ny - 0.5))
        xy = np.array(corners)
        return xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max()

    def footprint_size_deg(self, ccds: tuple[int, ...]) -> tuple[float, float]:
        xmin, xmax, ymin, ymax = self.footprint_extent(ccds)
        return (xmax - xmin) * self.pixel_scale / 3600, (ymax - ymin) * self.pixel_scale / 3600

    def footprint_centre(self, ccds: tuple[int, ...]) -> tuple[float, float]:
        xmin, xmax, ymin, ymax = self.footprint_extent(ccds)
        return (xmin + xmax) / 2, (ymin + ymax) / 2
