"""Forced photometry over an archive against the simulator's truth (issue 17): at every
injected transient's true position, on every difference image of the test survey that covers
it, the forced flux agrees with the flux change the truth says (now minus the reference's
mean) within its error. The epochs are found and the files read as the service does
(``server.forced_photometry``), through row-level security as a member of every program."""

from __future__ import annotations

import numpy as np
import pytest

from skyvault.access import Requester
from skyvault.pipeline.candidate_truth import CandidateTruth, read_diffcats, reference_epochs
from skyvault.pipeline.process.forced import ForcedStatus
from skyvault.server.forced_photometry import find_epochs, measure_epochs
from skyvault.vo.forcedphot import ForcedRequest

EVERY_PROGRAM = Requester(user_id=-1, username="truth", programs=frozenset({1, 2, 3}))
MIN_EPOCHS = 30


@pytest.fixture(scope="module")
def pulls(survey, survey_archive) -> dict:
    truth = CandidateTruth.read(list(survey.raw_dirs))
    epochs_of_reference = reference_epochs(survey.products)
    differences = {(d.difference.expid, d.difference.ccdid, d.difference.qid): d.difference
                   for d in read_diffcats(survey.products, survey.reports[-1].nightdate)}
    # Each transient's expected change on each difference image that shows it.
    expected: dict[tuple[int, int, int, int], float] = {}
    positions: dict[int, tuple[float, float]] = {}
    for key, difference in differences.items():
        for row in truth.expected_transients(
                difference, epochs_of_reference[difference.reference_path]):
            if difference.maglimit is None:
                continue  # the truth's S/N needs the difference's depth
            limit_flux = 10 ** (-0.4 * difference.maglimit) / 5.0
            change = (1.0 if row["positive"] else -1.0) * row["snr"] * limit_flux
            expected[(row["id"], *key)] = change
    table = truth.transients
    for transient_id in {key[0] for key in expected}:
        mine = table[table["id"] == transient_id]
        positions[transient_id] = (float(mine["ra"][0]), float(mine["dec"][0]))
    found: list[tuple[float, float, float]] = []
    statuses: list[int] = []
    unmatched = 0
    with survey_archive.database.reading(EVERY_PROGRAM) as connection:
        requests = {tid: ForcedRequest(ra, dec) for tid, (ra, dec) in positions.items()}
        epochs = {tid: find_epochs(connection, request) for tid, request in requests.items()}
    for transient_id, request in requests.items():
        for row in measure_epochs(epochs[transient_id], request.ra, request.dec):
            statuses.append(row.procstatus)
            key = (transient_id, row.epoch.expid, row.epoch.ccdid, row.epoch.qid)
            if key not in expected:
                unmatched += 1  # the truth has no row for it: off the quadrant's pixels
                continue
            if row.measured.status is not ForcedStatus.OK:
                continue
            scale = 10 ** (-0.4 * row.zpdiff)
            found.append((row.measured.flux * scale, row.measured.fluxerr * scale,
                          expected[key]))
    measured, error, true = (np.array(values) for values in zip(*found, strict=True))
    return {"pull": (measured - true) / error, "true_snr": true / error,
            "statuses": statuses, "expected": len(expected), "unmatched": unmatched}


def test_forced_fluxes_agree_with_the_truth_within_their_errors(pulls) -> None:
    pull = pulls["pull"]
    print(f"forced photometry vs truth: {pull.size} epochs of {pulls['expected']} expected,"
          f" pull mean {pull.mean():+.3f}, std {pull.std():.3f}, median |pull|"
          f" {np.median(np.abs(pull)):.3f}; true S/N from {pulls['true_snr'].min():.1f} to"
          f" {pulls['true_snr'].max():.1f}")
    assert pull.size >= MIN_EPOCHS
    assert abs(pull.mean()) < 0.3
    assert 0.7 < pull.std() < 1.4
    # Every epoch the truth expects is found (and measured, or its status says why not).
    assert len(pulls["statuses"]) - pulls["unmatched"] == pulls["expected"]
