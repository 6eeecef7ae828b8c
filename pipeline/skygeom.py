"""The camera's optics: the mapping from a quadrant's pixels to the sky (focal plane, rotation,
radial distortion, and the gnomonic projection of ``skyvault.geometry``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skyvault.geometry import gnomonic, gnomonic_inverse
from skyvault.pipeline.camera import CameraGeometry


@dataclass(frozen=True)
class Pointing:
    """Where the camera's boresight is and how the camera is turned on the sky."""

    ra: float
    dec: float
    rotation: float = 0.0
    """deg, positive turns focal-plane +y from north towards east."""


class Optics:
    """The true pixel <-> sky mapping of the camera: focal plane, rotation, radial distortion,
    gnomonic projection. The simulator uses it with the true pointing; the processing never
    sees it and must solve the WCS from the stars."""

    def __init__(self, geometry: CameraGeometry, pointing: Pointing):
        self.geometry = geometry
        self.pointing = pointing
        self._scale = geometry.pixel_scale / 3600.0
        theta = np.radians(pointing.rotation)
        self._cos, self._sin = np.cos(theta), np.sin(theta)

    def focal_to_standard(self, fx, fy) -> tuple[np.ndarray, np.ndarray]:
        u = -np.asarray(fx, dtype=float) * self._scale
        v = np.asarray(fy, dtype=float) * self._scale
        xi = self._cos * u + self._sin * v
        eta = -self._sin * u + self._cos * v
        factor = 1.0 + self.geometry.distortion * (xi**2 + eta**2)
        return xi * factor, eta * factor

    def standard_to_focal(self, xi, eta) -> tuple[np.ndarray, np.ndarray]:
        xi = np.asarray(xi, dtype=float)
        eta = np.asarray(eta, dtype=float)
        r_true = np.hypot(xi, eta)
        r = r_true.copy()
        for _ in range(6):  # r (1 + k r^2) = r_true, Newton steps from r_true
            k = self.geometry.distortion
            r = r - (r * (1 + k * r**2) - r_true) / (1 + 3 * k * r**2)
        factor = np.where(r_true > 0, r / np.where(r_true > 0, r_true, 1.0), 1.0)
        xi, eta = xi * factor, eta * factor
        u = self._cos * xi - self._sin * eta
        v = self._sin * xi + self._cos * eta
        return -u / self._scale, v / self._scale

    def pixel_to_sky(self, ccdid: int, qid: int, x, y) -> tuple[np.ndarray, np.ndarray]:
        """0-based quadrant pixel coordinates to (ra, dec) in degrees."""
        fx, fy = self.geometry.to_focal_plane(ccdid, qid, x, y)
        xi, eta = self.focal_to_standard(fx, fy)
        return gnomonic_inverse(xi, eta, self.pointing.ra, self.pointing.dec)

    def sky_to_pixel(self, ccdid: int, qid: int, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        xi, eta = gnomonic(ra, dec, self.pointing.ra, self.pointing.dec)
        fx, fy = self.standard_to_focal(xi, eta)
        return self.geometry.from_focal_plane(ccdid, qid, fx, fy)

    def sky_to_focal(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        xi, eta = gnomonic(ra, dec, self.pointing.ra, self.pointing.dec)
        return self.standard_to_focal(xi, eta)
