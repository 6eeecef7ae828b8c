"""Source association: the detections of one exposure into objects, per filter (pure numpy).

An *object* is a point on the sky seen in one filter. Its position is that of the detection
that created it, and never moves: the identifier (``oid``) encodes it, so an object's
detections are found by a small cone around the position its identifier names, whatever
the catalog's layout (ingest/README.md, "Objects and light curves").

A detection joins the nearest object of its filter within its match radius, each object taking
at most one detection per image; detections nobody takes create objects. The radius follows
the astrometric errors (``match_radius_arcsec``): five times the combined uncertainty of the
two positions compared (the detection's centroid error, the same for the detection that
created the object, and the image's astrometric rms), between 1" and 2". 5 sigma keeps every
true pair (a miss rate of e^-12.5 in two dimensions); 2" is below the separation at which two
stars of the survey's ~2" seeing are still detected apart, so two stars are never one object.

The greedy rule (closest pairs first, one detection per object and image) is applied in rounds
of mutually closest pairs, which gives the same result as taking pairs one by one in order of
distance. Detections of one call must come from images that
do not overlap on the sky (one exposure's quadrants): detections left alone create one object
each, without being matched to one another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from skyvault.ingest.q3c import OBJECT_SERIAL_BITS, object_ids

ARCSEC_DEG = 1.0 / 3600.0
SIGMA_LIMIT = 5.0
"""Match radius in units of the combined positional uncertainty."""
RADIUS_MIN_ARCSEC = 1.0
RADIUS_MAX_ARCSEC = 2.0
LOOKUP_RADIUS_ARCSEC = RADIUS_MAX_ARCSEC + 0.1
"""Every detection of an object lies within this of the position its identifier names: the
match radius at most, plus the half-diagonal of the identifier's pixel (0.06")."""
CENTROID_FACTOR = 1.0 / 2.355
"""Centroid error per axis ~ FWHM / (2.355 S/N) for a well-sampled PSF (a Gaussian's
sigma / S/N); the pipeline's sources have S/N >= 5."""
CANDIDATES = 4
"""Nearest objects considered per detection: enough that a detection beaten to its nearest
object by a closer one of the same image still finds its own."""

FILTER_BITS = 2
"""The identifier's serial (``ingest.q3c.object_ids``: the low 16 bits, which tell apart objects
created in the same q3c pixel of depth 22, 0.08") holds the filter in its lowest two bits and
a counter in the other fourteen."""
MAX_COUNTER = (1 << (OBJECT_SERIAL_BITS - FILTER_BITS)) - 1


class IdentifierSpaceFull(RuntimeError):
    """More objects of one filter than the serial bits hold in one 0.08" pixel."""


def match_radius_arcsec(seeing_arcsec: float, snr: np.ndarray,
                        astrometric_rms_arcsec: float) -> np.ndarray:
    """The match radius of each detection of an image (see the module's documentation)."""
    snr = np.where(np.isfinite(snr) & (snr > 0), snr, 5.0)
    # An image without a measured seeing (the pipeline writes -99) is taken as a poor one.
    seeing = seeing_arcsec if np.isfinite(seeing_arcsec) and seeing_arcsec > 0 else 3.0
    centroid = CENTROID_FACTOR * seeing / np.maximum(snr, 1.0)
    astrometric = astrometric_rms_arcsec if np.isfinite(astrometric_rms_arcsec) and \
        astrometric_rms_arcsec > 0 else 0.3
    sigma = np.sqrt(2.0 * centroid ** 2 + astrometric ** 2)
    return np.clip(SIGMA_LIMIT * sigma, RADIUS_MIN_ARCSEC, RADIUS_MAX_ARCSEC)


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def _chord(arcsec: np.ndarray | float) -> np.ndarray | float:
    return 2.0 * np.sin(np.radians(np.asarray(arcsec) * ARCSEC_DEG) / 2.0)


def match(det_ra: np.ndarray, det_dec: np.ndarray, det_image: np.ndarray,
          radius_arcsec: np.ndarray, obj_ra: np.ndarray, obj_dec: np.ndarray) -> np.ndarray:
    """For each detection, the index of the object it joins, or -1 (see the module's rule)."""
    n_det = len(det_ra)
    assigned = np.full(n_det, -1, dtype=np.int64)
    if n_det == 0 or len(obj_ra) == 0:
        return assigned
    tree = cKDTree(_unit(obj_ra, obj_dec))
    k = min(CANDIDATES, len(obj_ra))
    limit = _chord(RADIUS_MAX_ARCSEC)
    distance, index = tree.query(_unit(det_ra, det_dec), k=k, distance_upper_bound=limit)
    distance = distance.reshape(n_det, k)
    index = index.reshape(n_det, k)
    usable = np.isfinite(distance) & (distance <= _chord(radius_arcsec)[:, None])
    # Candidate pairs, each detection's in order of distance (query returns them sorted).
    det_of_pair = np.repeat(np.arange(n_det), k)[usable.ravel()]
    obj_of_pair = index.ravel()[usable.ravel()]
    dist_of_pair = distance.ravel()[usable.ravel()]
    _, image_code = np.unique(np.asarray(det_image), return_inverse=True)
    # One key per (object, image): an object takes at most one detection of each image.
    key_of_pair = obj_of_pair * (int(image_code.max()) + 1) + image_code[det_of_pair]
    alive = np.ones(len(det_of_pair), dtype=bool)
    while alive.any():
        live = np.flatnonzero(alive)
        # A detection's closest live pair is its first (the tree lists them by distance).
        _, first = np.unique(det_of_pair[live], return_index=True)
        detection_best = live[first]
        # An (object, image)'s closest live pair.
        order = live[np.lexsort((dist_of_pair[live], key_of_pair[live]))]
        head = np.ones(len(order), dtype=bool)
        head[1:] = key_of_pair[order][1:] != key_of_pair[order][:-1]
        # Pairs that are both are what the greedy rule takes next, in any order (the closest
        # live pair always is one, so every round places at least one detection).
        won = np.intersect1d(detection_best, order[head])
        assigned[det_of_pair[won]] = obj_of_pair[won]
        alive &= (assigned[det_of_pair] < 0) & ~np.isin(key_of_pair, key_of_pair[won])
    return assigned


def new_object_ids(ra: np.ndarray, dec: np.ndarray, fid: int,
                   existing: np.ndarray) -> np.ndarray:
    """Identifiers for new objects of filter ``fid`` at these positions: ``object_ids`` of the
    position with the serial (counter << 2 | fid), the counter one more than the highest of
    ``existing`` identifiers (which must include every object of the filter within 0.1" of
    each position) in the same pixel, and counting up within the batch."""
    if not 1 <= fid < 1 << FILTER_BITS:
        raise ValueError(f"filter id {fid} does not fit {FILTER_BITS} bits")
    base = object_ids(ra, dec)
    existing = np.asarray(existing, dtype=np.int64)
    same_filter = existing[(existing & ((1 << FILTER_BITS) - 1)) == fid]
    used_base = same_filter >> OBJECT_SERIAL_BITS << OBJECT_SERIAL_BITS
    used_counter = (same_filter & ((1 << OBJECT_SERIAL_BITS) - 1)) >> FILTER_BITS
    next_counter: dict[int, int] = {}
    for pixel, counter in zip(used_base.tolist(), used_counter.tolist(), strict=True):
        next_counter[pixel] = max(next_counter.get(pixel, 0), counter + 1)
    ids = np.empty(len(base), dtype=np.int64)
    for k, pixel in enumerate(base.tolist()):
        counter = next_counter.get(pixel, 0)
        if counter > MAX_COUNTER:
            raise IdentifierSpaceFull(f"pixel {pixel} holds {counter} objects of filter {fid}")
        next_counter[pixel] = counter + 1
        ids[k] = pixel | (counter << FILTER_BITS) | fid
    return ids


def filter_of(oid: np.ndarray | int) -> np.ndarray | int:
    """The filter id an object identifier carries."""
    return oid & ((1 << FILTER_BITS) - 1)


@dataclass(frozen=True)
class Association:
    oid: np.ndarray
    """Per detection, the identifier of its object."""
    new: np.ndarray
    """Per detection, True where it created its object."""

    @property
    def new_count(self) -> int:
        return int(self.new.sum())


def associate(det_ra: np.ndarray, det_dec: np.ndarray, det_image: np.ndarray,
              radius_arcsec: np.ndarray, fid: int, obj_oid: np.ndarray, obj_ra: np.ndarray,
              obj_dec: np.ndarray) -> Association:
    """Detections of one filter (from images that do not overlap) against the objects of that
    filter around them: the identifier of each detection's object, new ones created."""
    index = match(det_ra, det_dec, det_image, radius_arcsec, obj_ra, obj_dec)
    oid = np.where(index >= 0, np.asarray(obj_oid, dtype=np.int64)[np.maximum(index, 0)]
                   if len(obj_oid) else -1, -1).astype(np.int64)
    new = index < 0
    if new.any():
        oid[new] = new_object_ids(np.asarray(det_ra)[new], np.asarray(det_dec)[new], fid,
                                  obj_oid)
    return Association(oid, new)
