"""The periodogram of a light curve: the one period search of the archive, used by the
light-curve web page and the period checks against the simulator's truth.

The Lomb-Scargle periodogram (astropy, floating mean, the epochs' errors as weights) measures,
at each trial frequency, how much of the chi-square about the mean a sinusoid removes. Near
the survey's limit that is not the whole evidence: a faint star drops below the limit in its
faint phases, so its detections are its bright phases only (a censored light curve) and the
periodogram of the detections alone can peak elsewhere. The upper limits (images that covered
the position without a detection, each with its 5-sigma limiting magnitude) say where the star
was fainter than a value. So the best period minimises, over the same frequency grid,

    chi2(f) = chi2 of the detections about the sinusoid fitted at f   (1 - power) * chi2_ref
            + sum over upper limits of ((limit - model(t)) / SIGMA_LIMIT)^2 where the model
              is brighter than the limit (it would have been detected)

the likelihood of a censored measurement in its simplest (one-sided Gaussian) form. A limit is
a 5-sigma one: at the limit the magnitude's error is 1.0857 / 5 = 0.217 mag (SIGMA_LIMIT).
Without upper limits the best period is the periodogram's highest peak.

The frequency grid runs from ``1 / min(span, LONGEST_PERIOD_DAYS)`` to
``1 / SHORTEST_PERIOD_DAYS``, ``SAMPLES_PER_PEAK`` points per peak width (1 / span), so no peak
falls between two frequencies. Each filter is a light curve of its own (an object is one
filter's detections).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.timeseries import LombScargle

SHORTEST_PERIOD_DAYS = 0.08
LONGEST_PERIOD_DAYS = 100.0
SAMPLES_PER_PEAK = 20
MINIMUM_EPOCHS = 8
"""Fewer epochs than this get no periodogram: a sinusoid and a mean have three parameters."""
SIGMA_LIMIT = 2.5 / np.log(10) / 5.0
"""The magnitude error at a 5-sigma limiting magnitude (0.217 mag)."""
_CHUNK = 4096
"""Frequencies fitted at once (memory: chunk x epochs x a few doubles)."""


@dataclass(frozen=True)
class Periodogram:
    frequency: np.ndarray
    """Cycles per day."""
    power: np.ndarray
    """Lomb-Scargle power of the detections (standard normalisation: the fraction of the
    chi-square about the weighted mean that a sinusoid removes)."""
    censored_chi2: np.ndarray | None
    """chi2(f) with the upper limits (module doc); None without upper limits."""
    best_period: float
    """Days: the highest peak, or the least censored chi2 with upper limits."""
    best_power: float
    false_alarm_probability: float
    """Of the highest peak of the detections' periodogram (astropy, Baluev)."""
    upper_limits: int


def _sinusoids(t: np.ndarray, m: np.ndarray, w: np.ndarray,
               frequency: np.ndarray) -> np.ndarray:
    """Weighted least-squares (mean, sine, cosine) at each frequency: (F, 3). The normal
    equations' sums are matrix products (BLAS), then one batched 3 x 3 solve."""
    phase = 2 * np.pi * frequency[:, None] * t[None, :]
    sin, cos = np.sin(phase), np.cos(phase)
    wm = w * m
    s1, c1 = sin @ w, cos @ w
    ss, sc = (sin * sin) @ w, (sin * cos) @ w
    total = np.full(len(frequency), w.sum())
    normal = np.stack([np.stack([total, s1, c1], -1), np.stack([s1, ss, sc], -1),
                       np.stack([c1, sc, total - ss], -1)], -2)
    right = np.stack([np.full(len(frequency), wm.sum()), sin @ wm, cos @ wm], -1)
    return np.linalg.solve(normal, right[..., None])[..., 0]


def _limit_penalty(t: np.ndarray, m: np.ndarray, w: np.ndarray, limit_t: np.ndarray,
                   limit_mag: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Per frequency: the upper limits' chi-square where the fitted sinusoid is brighter."""
    penalty = np.empty(len(frequency))
    for start in range(0, len(frequency), _CHUNK):
        chunk = frequency[start:start + _CHUNK]
        params = _sinusoids(t, m, w, chunk)
        phase = 2 * np.pi * chunk[:, None] * limit_t[None, :]
        model = params[:, :1] + params[:, 1:2] * np.sin(phase) + params[:, 2:] * np.cos(phase)
        brighter = np.clip(limit_mag[None, :] - model, 0.0, None)
        penalty[start:start + _CHUNK] = np.sum((brighter / SIGMA_LIMIT) ** 2, axis=1)
    return penalty


def periodogram(mjd: np.ndarray, mag: np.ndarray, magerr: np.ndarray,
                limit_mjd: np.ndarray | None = None,
                limit_mag: np.ndarray | None = None) -> Periodogram | None:
    """The periodogram of the detections (unflagged ones: the caller chooses) and, if given,
    the upper limits; None with fewer than MINIMUM_EPOCHS detections or no time span."""
    t = np.asarray(mjd, dtype=float)
    m = np.asarray(mag, dtype=float)
    e = np.asarray(magerr, dtype=float)
    lt = np.asarray(limit_mjd if limit_mjd is not None else [], dtype=float)
    lm = np.asarray(limit_mag if limit_mag is not None else [], dtype=float)
    usable = np.isfinite(lt) & np.isfinite(lm)
    lt, lm = lt[usable], lm[usable]
    if len(t) < MINIMUM_EPOCHS:
        return None
    span = float(np.ptp(np.concatenate([t, lt])))
    if span <= 0:
        return None
    model = LombScargle(t, m, e)
    frequency, power = model.autopower(
        minimum_frequency=1.0 / min(span, LONGEST_PERIOD_DAYS),
        maximum_frequency=1.0 / SHORTEST_PERIOD_DAYS, samples_per_peak=SAMPLES_PER_PEAK)
    peak = int(np.argmax(power))
    censored = None
    best = peak
    if len(lt):
        w = 1.0 / e ** 2
        reference = float(np.sum(w * (m - np.sum(w * m) / np.sum(w)) ** 2))
        censored = (1.0 - power) * reference + _limit_penalty(t, m, w, lt, lm, frequency)
        best = int(np.argmin(censored))
    return Periodogram(frequency, power, censored, float(1.0 / frequency[best]),
                       float(power[best]), float(model.false_alarm_probability(power[peak])),
                       len(lt))


def phase(mjd: np.ndarray, period: float) -> np.ndarray:
    """Phase in [0, 1) of each epoch for ``period``, from MJD 0."""
    return np.mod(np.asarray(mjd, dtype=float) / period, 1.0)
