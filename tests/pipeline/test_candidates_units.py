"""Difference-image candidates on images made here, where the answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.pipeline.process import maskbits, realbogus
from skyvault.pipeline.process.candidates import (
    FLAG_BRIGHT_STAR,
    FLAG_COSMIC_RAY,
    FLAG_DIPOLE,
    DifferenceImage,
    NearbyCatalog,
    find_candidates,
    measure_candidates,
)
from skyvault.pipeline.process.psf import Psf
from skyvault.pipeline.process.wcs import TanSip
from skyvault.pipeline.psfmodel import add_point_sources

SIZE = 128
SIGMA = 5.0
MAGZP = 26.0
FWHM, BETA = 2.5, 3.0
WCS = TanSip((150.0, 20.0), ((SIZE + 1) / 2, (SIZE + 1) / 2),
             np.array([[-1.0 / 3600, 0.0], [0.0, 1.0 / 3600]]))


def _image(pixels: np.ndarray, mask: np.ndarray | None = None,
           bad: np.ndarray | None = None) -> DifferenceImage:
    return DifferenceImage(
        pixels=pixels.astype(np.float32),
        rms=np.full(pixels.shape, SIGMA, np.float32),
        bad=np.zeros(pixels.shape, bool) if bad is None else bad,
        science_mask=np.zeros(pixels.shape, np.int16) if mask is None else mask,
        psf=Psf(FWHM, BETA, 10),
        magzp=MAGZP,
        maglimit=21.0,
        wcs=WCS,
        pixel_scale=1.0,
    )


def _measure(image: DifferenceImage, stars: NearbyCatalog | None = None,
             reference: NearbyCatalog | None = None) -> dict[str, np.ndarray]:
    return measure_candidates(image, find_candidates(image, gain=6.0), reference, None, stars)


def _at(columns: dict[str, np.ndarray], x: float, y: float, within: float = 1.0) -> int:
    """Index of the candidate nearest (x, y) in 0-based pixels."""
    distance = np.hypot(columns["xpos"] - 1 - x, columns["ypos"] - 1 - y)
    assert distance.min() < within, (x, y, columns["xpos"], columns["ypos"])
    return int(np.argmin(distance))


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(17)


def test_a_point_source_is_measured_as_ztf_measures_it(rng) -> None:
    """magpsf, magap, isdiffpos, fwhm, elong, nneg, nbad, mindtoedge against what was put in:
    a positive and a negative point source of known flux on white noise."""
    pixels = rng.normal(0, SIGMA, (SIZE, SIZE))
    flux = 4000.0  # S/N ~ 45
    add_point_sources(pixels, np.array([40.3]), np.array([60.6]), np.array([flux]), FWHM,
                      BETA, SIGMA)
    add_point_sources(pixels, np.array([90.2]), np.array([30.4]), np.array([-flux]), FWHM,
                      BETA, SIGMA)
    columns = _measure(_image(pixels))
    true_mag = MAGZP - 2.5 * np.log10(flux)
    for x, y, sign in ((40.3, 60.6, 1), (90.2, 30.4, 0)):
        k = _at(columns, x, y)
        assert columns["isdiffpos"][k] == sign
        assert abs(columns["magpsf"][k] - true_mag) < 3 * columns["sigmapsf"][k] + 0.01
        assert abs(columns["magap"][k] - true_mag) < 3 * columns["sigmagap"][k] + 0.02
        assert abs(columns["xpos"][k] - 1 - x) < 0.1 and abs(columns["ypos"][k] - 1 - y) < 0.1
        assert abs(columns["fwhm"][k] / FWHM - 1) < 0.15
        assert columns["elong"][k] < 1.3
        assert columns["nbad"][k] == 0 and columns["nneg"][k] <= 2
        assert columns["mindtoedge"][k] == pytest.approx(min(x, y, SIZE - 1 - x, SIZE - 1 - y),
                                                         abs=0.1)
        assert columns["flags"][k] == 0
        expected_ra, expected_dec = WCS.pixel_to_world(np.array([x + 1]), np.array([y + 1]))
        assert abs(columns["ra"][k] - expected_ra[0]) * 3600 * np.cos(np.radians(20)) < 0.1
        assert abs(columns["dec"][k] - expected_dec[0]) * 3600 < 0.1


def test_artefacts_are_flagged(rng) -> None:
    """A dipole (a star shifted by a pixel between the images), a cosmic ray the science mask
    marked, a residual on a star far brighter than itself, and a source at the edge."""
    pixels = rng.normal(0, SIGMA, (SIZE, SIZE))
    add_point_sources(pixels, np.array([30.0, 31.2]), np.array([30.0, 30.0]),
                      np.array([20000.0, -20000.0]), FWHM, BETA, SIGMA)  # dipole
    add_point_sources(pixels, np.array([80.0]), np.array([90.0]), np.array([3000.0]), FWHM,
                      BETA, SIGMA)  # on a cosmic ray
    add_point_sources(pixels, np.array([100.0]), np.array([40.0]), np.array([2000.0]), FWHM,
                      BETA, SIGMA)  # on a bright star
    add_point_sources(pixels, np.array([1.5]), np.array([70.0]), np.array([5000.0]), FWHM,
                      BETA, SIGMA)  # at the edge
    add_point_sources(pixels, np.array([60.0]), np.array([100.0]), np.array([3000.0]), FWHM,
                      BETA, SIGMA)  # clean
    mask = np.zeros((SIZE, SIZE), np.int16)
    mask[90, 80] = maskbits.SPIKE
    star_ra, star_dec = WCS.pixel_to_world(np.array([101.0]), np.array([41.0]))
    stars = NearbyCatalog(star_ra, star_dec, np.array([MAGZP - 2.5 * np.log10(2e6)]), {})
    columns = _measure(_image(pixels, mask), stars=stars)
    dipole = _at(columns, 30.0, 30.0, within=2.0)  # the lobes overlap: the peak moves
    assert columns["flags"][dipole] & FLAG_DIPOLE
    assert columns["dipole"][dipole] > 0.5
    assert columns["flags"][_at(columns, 80.0, 90.0)] & FLAG_COSMIC_RAY
    assert columns["flags"][_at(columns, 100.0, 40.0)] & FLAG_BRIGHT_STAR
    assert columns["flags"][_at(columns, 1.5, 70.0)] & maskbits.FLAG_EDGE
    clean = _at(columns, 60.0, 100.0)
    assert columns["flags"][clean] == 0 and columns["dipole"][clean] < 0.1


def test_nearest_reference_source_is_reported_within_30_arcsec(rng) -> None:
    """distnr/magnr against a brute-force great-circle distance."""
    pixels = rng.normal(0, SIGMA, (SIZE, SIZE))
    add_point_sources(pixels, np.array([64.0]), np.array([64.0]), np.array([5000.0]), FWHM,
                      BETA, SIGMA)
    ra0, dec0 = WCS.pixel_to_world(np.array([65.0]), np.array([65.0]))
    offsets = np.array([2.0, 5.0, 40.0]) / 3600  # arcsec north
    reference = NearbyCatalog(
        np.full(3, ra0[0]), dec0[0] + offsets, np.array([18.0, 17.0, 12.0]),
        {"sigmag": np.full(3, 0.01), "chi": np.ones(3), "sharp": np.zeros(3)})
    columns = _measure(_image(pixels), reference=reference)
    k = _at(columns, 64.0, 64.0)
    true = np.degrees(np.arccos(np.clip(
        np.sin(np.radians(columns["dec"][k])) * np.sin(np.radians(reference.dec))
        + np.cos(np.radians(columns["dec"][k])) * np.cos(np.radians(reference.dec))
        * np.cos(np.radians(columns["ra"][k] - reference.ra)), -1, 1))) * 3600
    assert columns["distnr"][k] == pytest.approx(true.min(), abs=0.01)
    assert columns["magnr"][k] == reference.mag[np.argmin(true)]
    empty = _measure(_image(pixels), reference=NearbyCatalog(
        np.array([ra0[0]]), np.array([dec0[0] + 40 / 3600]), np.array([12.0]),
        {"sigmag": np.zeros(1), "chi": np.ones(1), "sharp": np.zeros(1)}))
    assert np.isnan(empty["distnr"][_at(empty, 64.0, 64.0)])


def test_the_shipped_model_scores_every_candidate(rng) -> None:
    """The model file in the package loads, and scores are probabilities with its version."""
    pixels = rng.normal(0, SIGMA, (SIZE, SIZE))
    add_point_sources(pixels, np.array([64.0]), np.array([64.0]), np.array([5000.0]), FWHM,
                      BETA, SIGMA)
    columns = _measure(_image(pixels))
    rb, version = realbogus.score(columns, FWHM)
    assert realbogus.MODEL_PATH.exists(), "train it: skyvault pipeline train-rb WORKDIR"
    assert version == realbogus.model_version(realbogus.MODEL_PATH)
    assert rb.shape == columns["xpos"].shape and np.all((rb >= 0) & (rb <= 1))
