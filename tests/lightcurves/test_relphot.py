"""Relative photometry (skyvault/lightcurves/relphot.py) on synthetic epochs of known zero-point
errors."""

from __future__ import annotations

import numpy as np

from skyvault.lightcurves import relphot


def _epochs(rng: np.random.Generator, n_img: int = 30, n_star: int = 300):
    true_mag = rng.uniform(14, 20, n_star)
    amplitude = np.where(rng.uniform(size=n_star) < 0.1, rng.uniform(0.05, 0.5, n_star), 0.0)
    period = rng.uniform(0.3, 10, n_star)
    zp_error = rng.normal(0, 0.03, n_img)
    image = np.repeat(np.arange(n_img), n_star)
    obj = np.tile(np.arange(n_star), n_img)
    t = rng.uniform(0, 100, n_img)[image]
    magerr = 0.004 + 0.02 * 10 ** (0.4 * (true_mag[obj] - 19))
    signal = true_mag[obj] + amplitude[obj] * np.sin(2 * np.pi * t / period[obj])
    mag = signal + zp_error[image] + rng.normal(0, 1, len(obj)) * magerr
    usable = rng.uniform(size=len(obj)) > 0.02
    return image, obj, mag, magerr, usable, zp_error, amplitude


def test_corrections_recover_the_zero_point_errors() -> None:
    """Each image's correction is minus its zero-point error, up to one common offset (the
    gauge: the median correction is zero), to well under the 0.03 mag errors."""
    rng = np.random.default_rng(4)
    image, obj, mag, magerr, usable, zp_error, _ = _epochs(rng)
    result = relphot.solve(image, obj, mag, magerr, usable, np.full(30, np.nan))
    recovered = result.value + zp_error
    assert np.all(np.isfinite(result.value))
    assert np.std(recovered) < 0.003
    assert abs(np.median(result.value)) < 1e-9
    assert np.all(result.nstars >= relphot.MIN_STARS)


def test_constant_stars_scatter_less_after_correction() -> None:
    rng = np.random.default_rng(5)
    image, obj, mag, magerr, usable, _, amplitude = _epochs(rng)
    result = relphot.solve(image, obj, mag, magerr, usable, np.full(30, np.nan))
    bright_constant = (amplitude[obj] == 0) & (magerr < 0.01)
    before = [np.std(mag[bright_constant & (obj == k)]) for k in np.unique(obj[bright_constant])]
    corrected = mag + result.value[image]
    after = [np.std(corrected[bright_constant & (obj == k)])
             for k in np.unique(obj[bright_constant])]
    assert np.median(after) < 0.5 * np.median(before)


def test_known_corrections_anchor_the_rest() -> None:
    """Images already corrected keep their value; the others are put on their system."""
    rng = np.random.default_rng(6)
    image, obj, mag, magerr, usable, zp_error, _ = _epochs(rng)
    fixed = np.full(30, np.nan)
    fixed[:10] = -zp_error[:10]
    result = relphot.solve(image, obj, mag, magerr, usable, fixed)
    assert np.array_equal(result.value[:10], fixed[:10])
    assert np.max(np.abs(result.value[10:] + zp_error[10:])) < 0.005


def test_an_image_with_too_few_stars_gets_no_correction() -> None:
    rng = np.random.default_rng(7)
    image, obj, mag, magerr, usable, _, _ = _epochs(rng)
    sparse = (image == 3) & (obj >= 3)
    keep = ~sparse
    result = relphot.solve(image[keep], obj[keep], mag[keep], magerr[keep], usable[keep],
                           np.full(30, np.nan))
    assert np.isnan(result.value[3]) and result.nstars[3] < relphot.MIN_STARS
    assert np.isfinite(np.delete(result.value, 3)).all()


def test_corrections_shrink_where_zero_points_were_already_good() -> None:
    """Two quadrants of few stars: one with 0.03 mag zero-point errors keeps corrections close
    to them; one without errors gets corrections shrunk to well below their own noise, so they
    add no scatter."""
    rng = np.random.default_rng(8)
    parts = []
    for series, zp_sigma in ((0, 0.03), (1, 0.0)):
        image, obj, mag, magerr, usable, drawn, _ = _epochs(rng, n_img=30, n_star=25)
        zp = rng.normal(0, zp_sigma, 30) if zp_sigma else np.zeros(30)
        parts.append((image + 30 * series, obj + 25 * series, mag - drawn[image] + zp[image],
                      magerr, usable, zp))
    image, obj, mag, magerr, usable = (np.concatenate([p[k] for p in parts]) for k in range(5))
    group = np.repeat([0, 1], 30)
    raw = relphot.solve(image, obj, mag, magerr, usable, np.full(60, np.nan))
    shrunk = relphot.solve(image, obj, mag, magerr, usable, np.full(60, np.nan), group)
    noisy, clean = slice(0, 30), slice(30, 60)
    truth = -parts[0][5]
    assert np.std(shrunk.value[noisy] - truth + np.median(shrunk.value[noisy] - truth)) < \
        0.5 * np.std(truth)
    assert np.std(shrunk.value[clean]) < 0.5 * np.std(raw.value[clean])
