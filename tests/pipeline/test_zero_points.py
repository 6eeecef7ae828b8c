"""Every trusted zero point within 0.02 mag of the truth, on the demo's survey too (issue 13).

A zero point is trusted unless its infobits say otherwise (``photometry.ZEROPOINT_UNRELIABLE``:
too few calibrators, too much scatter, none, uncertain by more than 0.01 mag, or astrometry
failed). Each quadrant is judged twice against the simulator's truth: its MAGZP against the
true zero point of the image, and its catalog's magnitudes of isolated, non-variable,
unflagged 15-19 mag stars against their true magnitudes (what a user of the catalog sees).
On the demo's survey as `skyvault demo` made it on 2026-12-07, a sparse quadrant with
infobits 0 was 0.044 mag off (its catalog 0.047 mag too bright), and three more 0.018-0.025.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skyvault.pipeline.manifest import read_manifest
from skyvault.pipeline.process import maskbits, photometry
from skyvault.pipeline.validate import ImageZeroPoint, validate_night, zero_point_figures

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PROMISE = 0.02
"""mag: how close every trusted zero point, and its catalog, is to the truth."""
MAX_UNCERTAIN_FRACTION = 0.05
"""Of the quadrants that have enough calibrators, those flagged only for their uncertainty."""


@pytest.fixture(scope="module")
def demo_zero_points(demo_survey) -> list[ImageZeroPoint]:
    images = [
        image
        for raw_dir in demo_survey.raw_dirs
        for image in validate_night(demo_survey.products, raw_dir).zero_points
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "demo_zero_points.json").write_text(
        json.dumps(zero_point_figures(images), indent=1)
    )
    return images


def _worst(images: list[ImageZeroPoint]) -> list[tuple]:
    ordered = sorted(images, key=lambda i: -abs(i.error))
    return [
        (i.expid, i.ccdid, i.qid, i.filtercode, round(i.error, 4), i.infobits) for i in ordered[:5]
    ]


def test_demo_survey_was_processed_without_failures(demo_survey):
    for report in demo_survey.reports:
        assert report.failures == []
        assert report.processed + report.reused == report.quadrants > 0


def test_every_trusted_zero_point_of_the_demo_survey_is_within_0_02_mag(demo_zero_points):
    trusted = [image for image in demo_zero_points if image.trusted]
    assert len(trusted) > 140
    errors = np.array([image.error for image in trusted])
    assert np.all(np.abs(errors) < PROMISE), _worst(trusted)
    assert np.median(np.abs(errors)) < 0.005
    # The catalogs say the same of the stars a user would look up.
    offsets = np.array([image.catalog_offset for image in trusted])
    measured = np.isfinite(offsets)
    assert measured.sum() > 0.8 * len(trusted)
    assert np.all(np.abs(offsets[measured]) < PROMISE), np.sort(np.abs(offsets))[-5:]
    # Each is as close as its own MAGZPUNC says.
    uncertainties = np.array([image.magzpunc for image in trusted])
    assert np.all(np.abs(errors) < 3 * uncertainties), np.max(np.abs(errors) / uncertainties)


def test_the_issue_13_quadrant_is_right_or_flagged(demo_zero_points):
    """Exposure 35970037, CCD 7, q2 (pid 158 of that demo): 0.044 mag off with infobits 0;
    its heaviest calibrator was a 13.8 mag star cut by the image edge, measured 9% faint."""
    (image,) = [i for i in demo_zero_points if (i.expid, i.ccdid, i.qid) == (35970037, 7, 2)]
    assert abs(image.error) < PROMISE or not image.trusted, image
    assert abs(image.catalog_offset) < PROMISE, image


def test_few_quadrants_are_flagged_for_their_uncertainty_alone(demo_zero_points):
    """The flag is for what a quadrant's own stars cannot do, not a way out: among quadrants
    with enough calibrators and a zero point, few are flagged uncertain (the figures per
    filter go to test-artifacts/demo_zero_points.json)."""
    other_reasons = photometry.ZEROPOINT_UNRELIABLE & ~photometry.INFO_ZEROPOINT_UNCERTAIN
    calibrated = [
        image
        for image in demo_zero_points
        if image.magzp > 0 and not image.infobits & other_reasons
    ]
    uncertain = [i for i in calibrated if i.infobits & photometry.INFO_ZEROPOINT_UNCERTAIN]
    print(
        f"flagged uncertain: {len(uncertain)} of {len(calibrated)}",
        zero_point_figures(demo_zero_points),
    )
    assert len(uncertain) <= MAX_UNCERTAIN_FRACTION * len(calibrated)


def test_catalogs_of_untrusted_zero_points_say_so(demo_survey):
    """Every row of a psfcat and sexcat whose image's zero point is flagged carries catalog
    flag 32, and no row of any other image does."""
    flagged_images = trusted_images = 0
    for path in sorted((demo_survey.products / "manifests").glob("*/exp_*.json")):
        for science in read_manifest(path).science:
            untrusted = bool(science.infobits & photometry.ZEROPOINT_UNRELIABLE)
            flagged_images += untrusted
            trusted_images += not untrusted
            for kind in ("psfcat", "sexcat"):
                flags = fits.getdata(demo_survey.products / science.files[kind])["flags"]
                marked = (flags & maskbits.FLAG_ZEROPOINT_UNRELIABLE) != 0
                assert np.all(marked) if untrusted else not np.any(marked), (path, science.ccdid)
    assert flagged_images > 0 and trusted_images > 0
