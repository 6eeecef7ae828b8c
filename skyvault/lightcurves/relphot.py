"""Relative photometry: per-epoch zero-point corrections from the constant stars (pure numpy).

Each image's zero point is measured by the pipeline against a reference catalog, to about
0.01-0.02 mag. Light curves see those errors as epoch-to-epoch scatter common to every star of
the image. As ZTF's source matching does, the residual of each epoch is measured on the stars
that do not vary: the correction of an image is the weighted mean (clipped at 3 sigma) of
(object's mean magnitude - detection's magnitude) over the image's calibration stars, and
the object means are recomputed with the corrections applied, a few times over.

Calibration stars: unflagged detections with S/N >= 10 of objects with at least
``MIN_EPOCHS`` such epochs and a reduced chi-square about their mean below ``CHI2_MAX``, or
below ``RELATIVE_CHI2`` times the median star's where zero-point errors inflate every star's
(the errors are widened by ``ERROR_FLOOR``; a variable of 0.05 mag semi-amplitude is still far
above). An image with fewer than ``MIN_STARS`` calibration stars gets no correction.

Images whose correction is already known (``fixed``) keep it and anchor the system; without
any, the median correction of the solved images is set to zero, so the corrections keep the
pipeline's absolute calibration on average.

A correction is itself a measurement, uncertain by a few millimagnitudes where a quadrant has
few stars: applied where the pipeline's zero points are already better than that, it would add
scatter instead of removing it. So the corrections of a series of images (one quadrant of one
field, ``group``) are shrunk towards zero by the empirical-Bayes factor
tau^2 / (tau^2 + error^2), tau^2 the variance of the true corrections that the series shows
beyond its errors (the James-Stein estimate, which never does worse on average than either
applying the raw corrections or none): a quadrant with real zero-point errors keeps its
corrections, one without them keeps its pipeline photometry. A series of fewer than
``MIN_SERIES`` solved images is not shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ERROR_FLOOR = 0.01
CHI2_MAX = 4.0
MIN_EPOCHS = 3
MIN_STARS = 5
MIN_SNR = 10.0
ITERATIONS = 4
CLIP_SIGMA = 3.0
MIN_SERIES = 5
RELATIVE_CHI2 = 3.0


@dataclass(frozen=True)
class Corrections:
    value: np.ndarray
    """Per image, the magnitude to add (NaN: not enough calibration stars)."""
    error: np.ndarray
    nstars: np.ndarray


def _object_means(obj: np.ndarray, mag: np.ndarray, weight: np.ndarray,
                  n_obj: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = np.bincount(obj, weight, n_obj)
    count = np.bincount(obj, None, n_obj)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(obj, weight * mag, n_obj) / total
        chi2 = np.bincount(obj, weight * (mag - mean[obj]) ** 2, n_obj) / (count - 1)
    return mean, chi2, count


def _clipped_mean(residual: np.ndarray, weight: np.ndarray) -> tuple[float, float, int]:
    keep = np.ones(len(residual), dtype=bool)
    for _ in range(3):
        mean = np.average(residual[keep], weights=weight[keep])
        spread = np.sqrt(np.average((residual[keep] - mean) ** 2, weights=weight[keep]))
        inside = np.abs(residual - mean) <= CLIP_SIGMA * max(spread, ERROR_FLOOR / 2)
        if inside.sum() < MIN_STARS or np.array_equal(inside, keep):
            break
        keep = inside
    n = int(keep.sum())
    mean = float(np.average(residual[keep], weights=weight[keep]))
    scatter = float(np.sqrt(np.average((residual[keep] - mean) ** 2, weights=weight[keep])))
    error = max(scatter, ERROR_FLOOR / 2) / np.sqrt(n)
    return mean, error, n


def shrink(value: np.ndarray, error: np.ndarray, solved: np.ndarray,
           group: np.ndarray) -> np.ndarray:
    """The solved corrections of each series shrunk by tau^2 / (tau^2 + error^2)."""
    out = value.copy()
    for series in np.unique(group[solved & np.isfinite(value)]):
        members = solved & np.isfinite(value) & (group == series)
        if members.sum() < MIN_SERIES:
            continue
        tau2 = max(float(np.mean(value[members] ** 2) - np.mean(error[members] ** 2)), 0.0)
        out[members] = value[members] * tau2 / (tau2 + error[members] ** 2)
    return out


def solve(image: np.ndarray, obj: np.ndarray, mag: np.ndarray, magerr: np.ndarray,
          usable: np.ndarray, fixed: np.ndarray,
          group: np.ndarray | None = None) -> Corrections:
    """Corrections of the images whose ``fixed`` value is NaN.

    ``image`` and ``obj`` index each detection's image (into ``fixed``) and object; ``usable``
    marks unflagged detections with a finite magnitude; ``fixed`` holds known corrections;
    ``group`` (per image) names the series the corrections are shrunk within (``shrink``).
    """
    n_img = len(fixed)
    n_obj = int(obj.max()) + 1 if len(obj) else 0
    calibrating = usable & np.isfinite(mag) & (magerr > 0) & (magerr <= 1.0857 / MIN_SNR)
    image, obj = image[calibrating], obj[calibrating]
    mag, magerr = mag[calibrating], magerr[calibrating]
    weight = 1.0 / (magerr ** 2 + ERROR_FLOOR ** 2)
    to_solve = ~np.isfinite(fixed)
    value = np.where(to_solve, 0.0, fixed)
    error = np.full(n_img, np.nan)
    nstars = np.zeros(n_img, dtype=np.int64)
    for _ in range(ITERATIONS):
        corrected = mag + value[image]
        mean, chi2, count = _object_means(obj, corrected, weight, n_obj)
        enough = count >= MIN_EPOCHS
        # Before the first correction every star carries the zero-point errors: the threshold
        # follows the typical star's chi-square, so that variables, not all stars, stand out.
        typical = float(np.nanmedian(chi2[enough])) if enough.any() else 0.0
        constant = enough & (chi2 < max(CHI2_MAX, RELATIVE_CHI2 * typical))
        use = constant[obj]
        residual = mean[obj] - mag
        order = np.argsort(image[use], kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(image[use][order])) + 1) \
            if use.any() else []
        solved = np.full(n_img, np.nan)
        for index in members:
            img = int(image[use][index[0]])
            if not to_solve[img] or len(index) < MIN_STARS:
                nstars[img] = len(index)
                continue
            solved[img], error[img], nstars[img] = _clipped_mean(residual[use][index],
                                                                weight[use][index])
        if not np.isfinite(fixed).any() and np.isfinite(solved).any():
            solved -= np.nanmedian(solved)  # the gauge: the pipeline's calibration on average
        value = np.where(to_solve, np.nan_to_num(solved, nan=0.0), fixed)
        value_known = np.isfinite(solved)
    final = np.where(to_solve, np.where(value_known, value, np.nan), fixed)
    error = np.where(to_solve & value_known, error, np.where(to_solve, np.nan, error))
    if group is not None:
        final = shrink(final, error, to_solve & value_known, np.asarray(group))
    return Corrections(final, error, nstars)
