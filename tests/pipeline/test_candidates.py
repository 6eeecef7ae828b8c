"""Difference-image candidates of the test survey, checked against the simulator's truth.

The second night is differenced against references from the first. Every candidate is labelled
from the truth (``candidate_truth``): injected transients, asteroids and variable stars are
real; cosmic rays, bad columns, residuals of constant stars and noise are bogus. The real/bogus
model shipped in the package was trained on another seed's sky (``skyvault pipeline train-rb``,
seed 2), so this night is held out. The figures go to test-artifacts/candidates.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skyvault.pipeline.candidate_truth import (
    MATCH_PIXELS,
    CandidateTruth,
    read_diffcats,
    reference_epochs,
)
from skyvault.pipeline.process import realbogus
from skyvault.pipeline.process.candidates import ARTEFACT_FLAGS
from skyvault.pipeline.rb_training import THRESHOLD, evaluate, labelled_candidates

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
COMPLETENESS_SNR = 7.0
# Floors, from the figures measured on this night with the shipped model (BENCHMARKS.md,
# "Candidates"): precision 0.77 and recall 0.80 at rb >= 0.5, over 359 candidates of which 30
# are real. One real candidate is 3.3% of the recall and one bogus candidate called real about
# 3% of the precision: the floors leave two candidates' worth of room, and fail on anything
# more (a model that calls everything real has a precision of 0.08; one that calls nothing,
# a recall of 0).
PRECISION_FLOOR = 0.7
RECALL_FLOOR = 0.7
FLAGGED_ARTEFACT_FLOOR = 0.5
"""Of the bogus candidates, at least this fraction carries an artefact flag."""
FLAGGED_REAL_CEILING = 0.4
"""Of the real candidates, at most this fraction is flagged. Flags are for artefacts, but a
variable star's change sits on a catalog star many times brighter than the change, which the
bright-star flag cannot tell from a residual (a third of the variables here): the classifier
can."""


@pytest.fixture(scope="module")
def night(survey):
    raw_dirs = list(survey.raw_dirs)
    nightdate = survey.reports[-1].nightdate
    return {
        "truth": CandidateTruth.read(raw_dirs),
        "diffcats": read_diffcats(survey.products, nightdate),
        "epochs": reference_epochs(survey.products),
        "labelled": labelled_candidates(survey.products, raw_dirs, nightdate),
    }


@pytest.fixture(scope="module")
def figures():
    found: dict = {}
    yield found
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "candidates.json").write_text(json.dumps(found, indent=1, default=float))


def _transients(night):
    """Every transient the truth puts on a difference image, with that image's candidates
    and the indices of those within 2 pixels of it."""
    for rows in night["diffcats"]:
        difference = rows.difference
        epochs = night["epochs"][difference.reference_path]
        x = np.asarray(rows.columns["x"], float) - 1
        y = np.asarray(rows.columns["y"], float) - 1
        for transient in night["truth"].expected_transients(difference, epochs):
            near = np.flatnonzero(np.hypot(x - transient["x"], y - transient["y"])
                                  < MATCH_PIXELS)
            yield rows, transient, near


def test_every_transient_above_snr_7_is_a_candidate(night, figures) -> None:
    """Issue 17: every injected transient whose flux changed by more than 7 sigma of the
    difference image since the reference's epochs is found, with the right sign."""
    expected, accepted, missing = 0, 0, []
    for rows, transient, near in _transients(night):
        if transient["snr"] < COMPLETENESS_SNR:
            continue
        expected += 1
        right_sign = rows.columns["isdiffpos"][near] == (1 if transient["positive"] else 0)
        clean = (rows.columns["flags"][near] & ARTEFACT_FLAGS) == 0
        accepted += bool(np.any(right_sign & clean & (rows.columns["rb"][near] >= THRESHOLD)))
        if not right_sign.any():
            difference = rows.difference
            missing.append((difference.expid, difference.ccdid, difference.qid,
                            transient["id"], round(transient["snr"], 1)))
    figures["transients_above_snr7"] = expected
    figures["transients_above_snr7_found"] = expected - len(missing)
    figures["transients_above_snr7_flag_free_and_rb_real"] = accepted
    assert expected > 0, "the night shows transients"
    assert missing == []


def test_candidate_magnitudes_agree_with_the_truth(night, figures) -> None:
    """magpsf and isdiffpos of every clean real candidate (transients and variable stars)
    against the truth's change in flux since the reference's epochs."""
    pulls = []
    for rows in night["diffcats"]:
        epochs = night["epochs"][rows.difference.reference_path]
        change = night["truth"].expected_change(rows, epochs)
        clean = (rows.columns["flags"] & ARTEFACT_FLAGS) == 0
        for k in np.flatnonzero(np.isfinite(change) & clean & (rows.columns["snr"] > 10)):
            assert rows.columns["isdiffpos"][k] == (1 if change[k] > 0 else 0)
            # truth magnitudes are on the true zero point: 10^(-0.4 m) is a flux in its units
            true_mag = -2.5 * np.log10(abs(change[k]))
            sigma = np.hypot(rows.columns["magerr"][k], 0.03)  # and the zero point's
            pulls.append((rows.columns["mag"][k] - true_mag) / sigma)
    figures["magnitude_pull_median"] = float(np.median(pulls)) if pulls else None
    figures["magnitude_pull_count"] = len(pulls)
    assert len(pulls) >= 5
    # The reference is modelled as the plain mean of its epochs' fluxes (its co-add weights
    # them by their noise): no bias beyond 1.5 sigma, and most within 5.
    assert abs(np.median(pulls)) < 1.5
    assert np.mean(np.abs(np.array(pulls)) < 5) > 0.8


def test_artefacts_are_flagged_and_real_candidates_are_not(night, figures) -> None:
    labelled = night["labelled"]
    scores = evaluate(labelled, np.nan_to_num(labelled.rb, nan=0.0))
    flagged = (labelled.flags & ARTEFACT_FLAGS) != 0
    real = labelled.real
    kinds, counts = np.unique(labelled.kinds, return_counts=True)
    figures["candidates"] = int(real.size)
    figures["kinds"] = dict(zip(kinds.tolist(), counts.tolist(), strict=True))
    figures["flagged_fraction_of_bogus"] = scores.flagged_artefact_fraction
    figures["flagged_fraction_of_real"] = float(flagged[real].mean())
    figures["flag_free_bogus_fraction_before_rb"] = scores.flag_free_bogus_fraction
    assert real.sum() > 0 and (~real).sum() > 0
    assert scores.flagged_artefact_fraction >= FLAGGED_ARTEFACT_FLOOR
    assert flagged[real].mean() <= FLAGGED_REAL_CEILING


def test_real_bogus_on_a_held_out_night(night, figures) -> None:
    """The shipped model, trained on seed 2's sky, on this night (seed 1): precision and
    recall at rb >= 0.5 above the floors; every candidate carries the model's version."""
    labelled = night["labelled"]
    version = realbogus.model_version(realbogus.MODEL_PATH)
    assert {rows.rb_version for rows in night["diffcats"]} == {version}
    assert np.all(np.isfinite(labelled.rb))
    scores = evaluate(labelled, labelled.rb)
    figures["held_out"] = scores.as_dict()
    figures["rb_version"] = version
    assert scores.precision >= PRECISION_FLOOR, scores
    assert scores.recall >= RECALL_FLOOR, scores
    # The classifier leaves fewer bogus candidates among the flag-free ones than flags alone.
    assert scores.accepted_bogus_fraction < scores.flag_free_bogus_fraction
