"""Many objects against one night: which of the night's images holds which object.

The single-object search (``search``) integrates one orbit over the whole span. A night and
many orbits call for the other shape: ``batch.predict_night`` integrates each orbit once to the
night (ASSIST, full force model) and moves it over the night two-body, vectorised over objects
and times (its error over half a night: metres). The same three stages follow:

1. the path of every object on a grid through the night (every ``GRID_STEP_DAYS``, and the
   midpoints to measure the linear interpolation's error per object, which becomes its margin);
2. candidate exposures (pointing within the camera's radius of the path) and then candidate
   images (centre within the image's own radius), both with the margin;
3. positions at the candidates' own mid-exposure times (``predict_night`` again, for the
   candidate objects only) and the exact four-corner test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skyvault.geometry import angle_between, inside_convex_polygon, unit_vectors

from .batch import predict_night
from .orbits import Orbit
from .search import CAMERA_RADIUS_DEG, MARGIN_FLOOR_DEG, footprint_radius_deg

GRID_STEP_DAYS = 10.0 / 1440.0
OBJECTS_PER_PASS = 500
"""Objects whose paths are compared with the exposures at once (bounds memory)."""


@dataclass(frozen=True)
class NightImages:
    """A night's exposures and their images (arrays). ``image_exposure[i]`` is the index in the
    exposure arrays of image i's exposure."""

    exposure_mid_mjd: NDArray[np.float64]
    telra: NDArray[np.float64]
    teldec: NDArray[np.float64]
    image_id: NDArray[np.int64]
    image_exposure: NDArray[np.intp]
    centre_ra: NDArray[np.float64]
    centre_dec: NDArray[np.float64]
    corners_ra: NDArray[np.float64]
    corners_dec: NDArray[np.float64]

    @property
    def radius_deg(self) -> NDArray[np.float64]:
        return footprint_radius_deg(self.centre_ra, self.centre_dec, self.corners_ra,
                                    self.corners_dec)


@dataclass(frozen=True)
class NightMatches:
    """Object ``orbit_index[k]`` is in image ``image_index[k]`` at (ra[k], dec[k])."""

    orbit_index: NDArray[np.intp]
    image_index: NDArray[np.intp]
    ra: NDArray[np.float64]
    dec: NDArray[np.float64]
    candidate_pairs: int


def _linear(vectors: NDArray[np.float64], grid: NDArray[np.float64],
            times: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vectors (objects, grid, 3) interpolated linearly to ``times`` -> (objects, times, 3)."""
    index = np.clip(np.searchsorted(grid, times, side="right") - 1, 0, grid.size - 2)
    s = ((times - grid[index]) / (grid[index + 1] - grid[index]))[None, :, None]
    value = vectors[:, index] * (1.0 - s) + vectors[:, index + 1] * s
    return value / np.linalg.norm(value, axis=-1, keepdims=True)


def _candidates(orbits: list[Orbit], night: NightImages, observatory: str
                ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(object, image) pairs that might match, every pair that does among them."""
    start = float(night.exposure_mid_mjd.min())
    stop = float(night.exposure_mid_mjd.max())
    count = max(2, int(np.ceil((stop - start) / GRID_STEP_DAYS)) + 1)
    grid = np.linspace(start, max(stop, start + 1e-6), count)
    middles = 0.5 * (grid[:-1] + grid[1:])
    pointings = unit_vectors(night.telra, night.teldec)
    image_radius = night.radius_deg
    centres = unit_vectors(night.centre_ra, night.centre_dec)
    images_of = [np.flatnonzero(night.image_exposure == e)
                 for e in range(night.exposure_mid_mjd.size)]
    pair_objects: list[NDArray[np.intp]] = []
    pair_images: list[NDArray[np.intp]] = []
    for first in range(0, len(orbits), OBJECTS_PER_PASS):
        chunk = orbits[first:first + OBJECTS_PER_PASS]
        coarse = predict_night(chunk, np.concatenate([grid, middles]), observatory)
        vectors = unit_vectors(coarse.ra, coarse.dec)
        nodes, checks = vectors[:, :count], vectors[:, count:]
        guessed = 0.5 * (nodes[:, :-1] + nodes[:, 1:])
        guessed /= np.linalg.norm(guessed, axis=-1, keepdims=True)
        margin = 2.0 * angle_between(guessed, checks).max(axis=1) + MARGIN_FLOOR_DEG
        at_exposures = _linear(nodes, grid, night.exposure_mid_mjd)
        near = angle_between(at_exposures, pointings[None, :, :]) <= (
            CAMERA_RADIUS_DEG + margin[:, None])
        for local, exposure in zip(*np.nonzero(near), strict=True):
            images = images_of[exposure]
            distance = angle_between(at_exposures[local, exposure][None, :], centres[images])
            keep = images[distance <= image_radius[images] + margin[local]]
            pair_objects.append(np.full(keep.size, first + local, dtype=np.intp))
            pair_images.append(keep)
    if not pair_objects:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    return np.concatenate(pair_objects), np.concatenate(pair_images)


def search_night(orbits: list[Orbit], night: NightImages, observatory: str = "I41"
                 ) -> NightMatches:
    """Every (object, image) pair of the night where the image's corners hold the object."""
    objects, images = _candidates(orbits, night, observatory)
    if objects.size == 0:
        empty = np.empty(0)
        return NightMatches(objects, images, empty, empty, 0)
    wanted = np.unique(objects)
    times = night.exposure_mid_mjd[night.image_exposure[images]]
    unique_times, time_index = np.unique(times, return_inverse=True)
    exact = predict_night([orbits[k] for k in wanted], unique_times, observatory)
    row = np.searchsorted(wanted, objects)
    ra, dec = exact.ra[row, time_index], exact.dec[row, time_index]
    inside = inside_convex_polygon(ra, dec, night.corners_ra[images], night.corners_dec[images])
    return NightMatches(objects[inside], images[inside], ra[inside], dec[inside],
                        int(objects.size))
