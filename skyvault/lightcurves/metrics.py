"""Collapsed light-curve statistics, as in ZTF's data releases, with the ``light-curve`` package.

The statistics of survey.objects (schema/objects_sql.py computes them in SQL, from the epochs
the requester may see, when asked) are computed here for survey.objects_released and for
services. ``light-curve`` (the feature extractor alert brokers use, Rust under Python) gives
the moments, the median absolute deviation, the reduced chi-square, Stetson K and the von
Neumann ratio (its ``Eta``). Stetson J, which it lacks, the largest slope (its
``MaximumSlope`` panics on two epochs at one time, which seeded or merged data can hold; pairs
at one time are skipped here, as in SQL), the counts, extremes and mean positions are numpy.
tests/lightcurves/test_survey_truth.py holds SQL, this module and hand-written numpy to
agreement; benchmarks/bench_lightcurves.py measures the package against numpy.

Statistics use the unflagged epochs (``good``), in time order; each needs a minimum number of
them (2 for a spread, 3 for skewness, 4 for kurtosis) and is NaN below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import light_curve as lc
import numpy as np

from skyvault.schema.objects_sql import METRIC_NAMES

_FEATURES: tuple[tuple[str, object, int], ...] = (
    ("meanmag", lc.Mean(), 1),
    ("weightedmeanmag", lc.WeightedMean(), 1),
    ("medianmag", lc.Median(), 1),
    ("magrms", lc.StandardDeviation(), 2),
    ("medianabsdev", lc.MedianAbsoluteDeviation(), 1),
    ("chisq", lc.ReducedChi2(), 2),
    ("skewness", lc.Skew(), 3),
    ("smallkurtosis", lc.Kurtosis(), 4),
    ("stetsonk", lc.StetsonK(), 2),
    ("vonneumannratio", lc.Eta(), 2),
)
_EXTRACTORS = {
    minimum: (tuple(name for name, _, need in _FEATURES if need <= minimum),
              lc.Extractor(*(feature for _, feature, need in _FEATURES if need <= minimum)))
    for minimum in (1, 2, 3, 4)
}


@dataclass(frozen=True)
class Epochs:
    """One object's visible epochs."""

    mjd: np.ndarray
    mag: np.ndarray
    """Relative photometry applied."""
    magerr: np.ndarray
    good: np.ndarray
    ra: np.ndarray
    dec: np.ndarray


def stetson_j(mag: np.ndarray, magerr: np.ndarray) -> float:
    """Stetson (1996) J over pairs of consecutive epochs (in time order), unit weights:
    delta_i = sqrt(n / (n - 1)) (m_i - weighted mean) / sigma_i, P = delta_i delta_(i+1),
    J = sum sgn(P) sqrt(|P|) / (n - 1)."""
    n = len(mag)
    if n < 2:
        return float("nan")
    weight = 1.0 / magerr ** 2
    mean = np.sum(weight * mag) / np.sum(weight)
    delta = np.sqrt(n / (n - 1.0)) * (mag - mean) / magerr
    product = delta[:-1] * delta[1:]
    return float(np.sum(np.sign(product) * np.sqrt(np.abs(product))) / (n - 1))


def maximum_slope(mjd: np.ndarray, mag: np.ndarray) -> float:
    """Largest |dm/dt| between successive epochs (in time order), pairs at one time skipped."""
    dt, dm = np.diff(mjd), np.diff(mag)
    apart = dt != 0
    return float(np.max(np.abs(dm[apart] / dt[apart]))) if apart.any() else float("nan")


def _mean_position(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    r, d = np.radians(ra), np.radians(dec)
    x, y, z = (np.mean(np.cos(d) * np.cos(r)), np.mean(np.cos(d) * np.sin(r)),
               np.mean(np.sin(d)))
    ra_mean = float(np.degrees(np.arctan2(y, x)) % 360.0)
    return ra_mean, float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def collapse(epochs: Epochs) -> dict[str, float | int]:
    """The statistics of METRIC_NAMES for one object (NaN where undefined)."""
    out: dict[str, float | int] = {name: float("nan") for name in METRIC_NAMES}
    out["nobs"] = len(epochs.mjd)
    if len(epochs.mjd):
        out["firstmjd"] = float(epochs.mjd.min())
        out["lastmjd"] = float(epochs.mjd.max())
        out["meanra"], out["meandec"] = _mean_position(epochs.ra, epochs.dec)
    good = epochs.good
    order = np.lexsort((epochs.mag[good], epochs.mjd[good]))
    t = epochs.mjd[good][order].astype(np.float64)
    m = epochs.mag[good][order].astype(np.float64)
    e = epochs.magerr[good][order].astype(np.float64)
    n = len(t)
    out["ngoodobs"] = n
    if n == 0:
        return out
    out["minmag"], out["maxmag"] = float(m.min()), float(m.max())
    out["medmagerr"] = float(np.median(e))
    out["stetsonj"] = stetson_j(m, e)
    out["maxslope"] = maximum_slope(t, m)
    names, extractor = _EXTRACTORS[min(n, 4)]
    if m.max() == m.min():
        # A flat series: the package refuses the statistics that divide by the spread, which
        # are undefined (SQL gives NULL); the others are computed one by one.
        for name, feature, need in _FEATURES:
            if need <= n and name in ("meanmag", "weightedmeanmag", "medianmag", "magrms",
                                      "medianabsdev", "chisq"):
                out[name] = float(feature(t, m, e, sorted=True, check=False)[0])
        return out
    values = extractor(t, m, e, sorted=True, check=False)
    out.update(zip(names, (float(v) for v in values), strict=True))
    return out
