"""Robust weighted means for calibrations that rest on a handful of stars."""

from __future__ import annotations

import numpy as np

CLIP_SIGMA = 3.0


def weighted_clipped_mean(
    values: np.ndarray, errors: np.ndarray, min_keep: int = 2
) -> tuple[float, float, np.ndarray]:
    """Inverse-variance mean, its uncertainty, and the values kept.

    Values are clipped at 3 sigma about a robust centre, in units of their own errors
    (scaled up where the scatter shows the errors too small, never down): a variable star or
    a blend among a sparse quadrant's calibrators may be the brightest, so the heaviest, of
    them, and a clip on the plain spread of the rest, set by the faintest, lets it through.
    The uncertainty is scaled up the same way.
    """
    weights = np.asarray(errors, dtype=float) ** -2.0
    values = np.asarray(values, dtype=float)
    keep = np.ones(values.size, dtype=bool)
    for _ in range(5):
        # The centre is the plain median of the better-measured half: no one heavy star
        # decides it, and the faintest do not blur it. Its own uncertainty widens the clip,
        # or the one star measured better than the centre is known would fall to it.
        better = values[keep & (errors <= np.median(errors[keep]))]
        centre = float(np.median(better))
        spread = 1.4826 * float(np.median(np.abs(better - centre)))
        centre_error = 1.2533 * spread / np.sqrt(better.size)
        normalised = (values - centre) / np.hypot(errors, centre_error)
        scatter = max(1.4826 * float(np.median(np.abs(normalised[keep]))), 1.0)
        new_keep = np.abs(normalised) < CLIP_SIGMA * scatter
        if new_keep.sum() < min_keep or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    total = float(np.sum(weights[keep]))
    mean = float(np.sum(weights[keep] * values[keep]) / total)
    chi2 = float(np.sum(weights[keep] * (values[keep] - mean) ** 2))
    excess = max(chi2 / max(int(keep.sum()) - 1, 1), 1.0)
    return mean, float(np.sqrt(excess / total)), keep
