"""Forced photometry over an archive against the simulator's truth (issue 17): at every
injected transient's true position, on every difference image of the test survey that covers
it, the forced flux agrees with the flux change the truth says (now minus the reference's
mean) within its error; and at empty places of the sky (no star, galaxy, transient or asteroid
within 10 arcsec in the truth: a true change of zero) likewise. The epochs are found and the
files read as the service does (``skyvault.forced_photometry``), through row-level security as
a member of every program.

The epochs of one position share the reference's noise (every difference subtracts the same
co-add there), so their pulls are not independent: the mean's tolerance is set by the number
of positions, not of epochs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from skyvault.access import Requester
from skyvault.forced_photometry import ForcedRow, find_epochs, measure_epochs
from skyvault.geometry import unit_vectors
from skyvault.pipeline.candidate_truth import CandidateTruth, read_diffcats, reference_epochs
from skyvault.vo.forcedphot import ForcedRequest

EVERY_PROGRAM = Requester(user_id=-1, username="truth", programs=frozenset({1, 2, 3}))
EMPTY_ARCSEC = 10.0
EMPTY_PER_IMAGE = 6
"""Empty places drawn around each difference image's centre."""


def measured_pulls(connection, positions: dict[object, tuple[float, float]],
                   expected) -> dict[object, list[float]]:
    """Pull of every measured epoch, by position; ``expected(key, row)`` is the true flux
    change (10^(-0.4 mag) units) or None where the truth says nothing of that epoch."""
    epochs = {key: find_epochs(connection, ForcedRequest(ra, dec))
              for key, (ra, dec) in positions.items()}
    pulls: dict[object, list[float]] = {}
    for key, (ra, dec) in positions.items():
        for row in measure_epochs(epochs[key], ra, dec):
            true = expected(key, row)
            if true is None or not np.isfinite(row.measured.flux):
                continue
            scale = 10 ** (-0.4 * row.zpdiff)
            pulls.setdefault(key, []).append(
                (row.measured.flux * scale - true) / (row.measured.fluxerr * scale))
    return pulls


@pytest.fixture(scope="module")
def truth_pulls(survey, survey_archive) -> dict:
    truth = CandidateTruth.read(list(survey.raw_dirs))
    epochs_of_reference = reference_epochs(survey.products)
    diffcats = read_diffcats(survey.products, survey.reports[-1].nightdate)
    changes: dict[tuple[int, int, int, int], float] = {}
    for diffcat in diffcats:
        difference = diffcat.difference
        if difference.maglimit is None:
            continue  # the truth's S/N needs the difference's depth
        limit_flux = 10 ** (-0.4 * difference.maglimit) / 5.0
        for row in truth.expected_transients(
                difference, epochs_of_reference[difference.reference_path]):
            changes[(row["id"], difference.expid, difference.ccdid, difference.qid)] = \
                (1.0 if row["positive"] else -1.0) * row["snr"] * limit_flux
    table = truth.transients
    transients = {tid: (float(table["ra"][table["id"] == tid][0]),
                        float(table["dec"][table["id"] == tid][0]))
                  for tid in {key[0] for key in changes}}

    def transient_change(tid, row: ForcedRow) -> float | None:
        return changes.get((tid, row.epoch.expid, row.epoch.ccdid, row.epoch.qid))

    empty = empty_places(truth, survey_archive.database)
    with survey_archive.database.reading(EVERY_PROGRAM) as connection:
        on_transients = measured_pulls(connection, transients, transient_change)
        on_empty_sky = measured_pulls(connection, empty, lambda key, row: 0.0)
    return {"transients": on_transients, "empty": on_empty_sky, "expected": len(changes)}


def empty_places(truth: CandidateTruth, database) -> dict[int, tuple[float, float]]:
    """Places on the differences with nothing within 10 arcsec in the truth."""
    with database.admin() as connection:
        centres = connection.execute(
            "SELECT ra, dec FROM survey.difference_images ORDER BY diffid").fetchall()
    rng = np.random.default_rng(11)
    things = [truth.truth.stars, truth.truth.galaxies, truth.transients]
    if truth.asteroids is not None and len(truth.asteroids):
        things.append(truth.asteroids)
    trees = [cKDTree(unit_vectors(np.asarray(t["ra"], float), np.asarray(t["dec"], float)))
             for t in things]
    chord = 2 * np.sin(np.radians(EMPTY_ARCSEC / 3600) / 2)
    places: dict[int, tuple[float, float]] = {}
    for ra, dec in centres:
        for _ in range(EMPTY_PER_IMAGE):
            candidate_ra = ra + rng.uniform(-0.025, 0.025) / np.cos(np.radians(dec))
            candidate_dec = dec + rng.uniform(-0.025, 0.025)
            point = unit_vectors(np.array([candidate_ra]), np.array([candidate_dec]))
            if all(not tree.query_ball_point(point[0], chord) for tree in trees):
                places[len(places)] = (float(candidate_ra % 360), float(candidate_dec))
    return places


def summary(pulls: dict[object, list[float]]) -> tuple[np.ndarray, int]:
    flat = np.array([value for values in pulls.values() for value in values])
    return flat, len(pulls)


def test_forced_fluxes_of_injected_transients_agree_with_the_truth(truth_pulls) -> None:
    pull, positions = summary(truth_pulls["transients"])
    print(f"transients: {pull.size} epochs ({truth_pulls['expected']} in the truth) at"
          f" {positions} positions: pull mean {pull.mean():+.3f}, std {pull.std():.3f}")
    assert pull.size >= 0.8 * truth_pulls["expected"] and positions >= 10
    # Epochs of one position share the reference's noise: the mean is known to ~1/sqrt(N
    # positions), and is held to three times that.
    assert abs(pull.mean()) < 3.0 / np.sqrt(positions)
    assert 0.7 < pull.std() < 1.4


def test_forced_fluxes_on_empty_sky_scatter_as_their_errors_say(truth_pulls) -> None:
    pull, positions = summary(truth_pulls["empty"])
    print(f"empty sky: {pull.size} epochs at {positions} positions: pull mean"
          f" {pull.mean():+.3f}, std {pull.std():.3f}")
    assert positions >= 100
    assert abs(pull.mean()) < 0.3
    assert 0.7 < pull.std() < 1.4
