"""Training and judging the real/bogus classifier on simulated nights.

``skyvault pipeline train-rb WORKDIR`` simulates a small survey with its own seed (three nights
over the same fields, the second ten days after the first: the first makes references, the
others differences; one CCD; transients twenty times denser than the default sky's),
processes it, labels every candidate of the later nights from the truth
(``candidate_truth``), trains ``realbogus.train`` on them and writes the model file. The
same seed gives the same model: everything upstream is deterministic. The tests judge the
model on the test survey, which has another seed, so another sky: a held-out night.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyvault.pipeline.candidate_truth import CandidateTruth, is_real, read_diffcats
from skyvault.pipeline.process import realbogus
from skyvault.pipeline.process.candidates import ARTEFACT_FLAGS

TRAINING_SEED = 2
TRAINING_NIGHTS = (dt.date(2026, 11, 20), dt.date(2026, 11, 30), dt.date(2026, 12, 1))
"""The first night makes the references; the others are differenced against them."""
TRAINING_TRANSIENT_RATE = 120.0
"""Twenty times the simulator's default: real candidates are rare on a small camera's night."""
TRAINING_CCDS = (6,)
"""One CCD (four quadrants) keeps the command to minutes on two cores."""
THRESHOLD = 0.5
"""rb at or above this is called real."""


@dataclass
class LabelledCandidates:
    features: np.ndarray
    kinds: np.ndarray
    flags: np.ndarray
    snr: np.ndarray
    rb: np.ndarray
    """The score the pipeline gave (NaN without a model)."""

    @property
    def real(self) -> np.ndarray:
        return is_real(self.kinds)


def labelled_candidates(product_dir: Path, raw_dirs: list[Path],
                        nightdate: str) -> LabelledCandidates:
    """Every candidate of a night, with its features and what the truth says it is."""
    truth = CandidateTruth.read(raw_dirs)
    parts = []
    for rows in read_diffcats(product_dir, nightdate):
        parts.append((realbogus.features(rows.columns, rows.psf_fwhm), truth.label(rows),
                      rows.columns["flags"], rows.columns["snr"],
                      rows.columns.get("rb", np.full(len(rows.columns["x"]), np.nan))))
    if not parts:
        empty = np.zeros(0)
        return LabelledCandidates(np.zeros((0, len(realbogus.FEATURES))), empty.astype(str),
                                  empty.astype(int), empty, empty)
    return LabelledCandidates(*(np.concatenate([p[k] for p in parts]) for k in range(5)))


@dataclass(frozen=True)
class Scores:
    """How a set of candidates splits, before and after the classifier."""

    candidates: int
    real: int
    flag_free: int
    flag_free_bogus_fraction: float
    """Of the candidates without artefact flags, the fraction that is bogus (no classifier)."""
    accepted: int
    accepted_bogus_fraction: float
    """Of the flag-free candidates with rb >= 0.5, the fraction that is bogus."""
    precision: float
    """Of all candidates with rb >= 0.5, the fraction that is real."""
    recall: float
    """Of all real candidates, the fraction with rb >= 0.5."""
    flagged_artefact_fraction: float
    """Of the bogus candidates, the fraction with an artefact flag."""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def evaluate(labelled: LabelledCandidates, rb: np.ndarray) -> Scores:
    real = labelled.real
    clean = (labelled.flags & ARTEFACT_FLAGS) == 0
    called = rb >= THRESHOLD
    accepted = clean & called

    def fraction(part: np.ndarray, whole: np.ndarray) -> float:
        return float(part.sum() / whole.sum()) if whole.sum() else float("nan")

    return Scores(
        candidates=int(real.size),
        real=int(real.sum()),
        flag_free=int(clean.sum()),
        flag_free_bogus_fraction=fraction(clean & ~real, clean),
        accepted=int(accepted.sum()),
        accepted_bogus_fraction=fraction(accepted & ~real, accepted),
        precision=fraction(called & real, called),
        recall=fraction(called & real, real),
        flagged_artefact_fraction=fraction(~clean & ~real, ~real),
    )


def simulate_and_process(work: Path, seed: int, nights=TRAINING_NIGHTS,
                         workers: int = 2) -> tuple[Path, list[Path]]:
    """The training survey (reused where already there): products and raw folders."""
    from skyvault.pipeline.orchestrate import dask_client, run_night
    from skyvault.pipeline.simulate.night import default_survey_fields, simulate_night
    from skyvault.pipeline.simulate.plan import PlanConfig

    products = work / "products"
    fields = default_survey_fields(nights[0], ccds=TRAINING_CCDS)
    raw_dirs = []
    with dask_client(workers, None) as client:
        for index, night in enumerate(nights):
            raw_dir = work / "raw" / f"{night:%Y%m%d}"
            if not (raw_dir / "night.json").exists():
                simulate_night(night, raw_dir, seed=seed, size="small", ccds=TRAINING_CCDS,
                               workers=workers, fields=fields, with_asteroids=index == 0,
                               plan_config=PlanConfig(max_asteroids=2),
                               transient_rate=TRAINING_TRANSIENT_RATE)
            run_night(raw_dir, products, client=client, progress=False)
            raw_dirs.append(raw_dir)
    return products, raw_dirs


def train_model(work: Path, out: Path, seed: int = TRAINING_SEED,
                workers: int = 2) -> tuple[str, Scores]:
    """Simulate, process, label, train, write; returns the model version and its scores on
    its own training set (the held-out figures come from the tests)."""
    products, raw_dirs = simulate_and_process(work, seed, workers=workers)
    nights = [labelled_candidates(products, raw_dirs, night.isoformat())
              for night in TRAINING_NIGHTS[1:]]
    labelled = LabelledCandidates(*(np.concatenate([getattr(n, name) for n in nights])
                                    for name in ("features", "kinds", "flags", "snr", "rb")))
    if labelled.real.sum() == 0 or labelled.real.all():
        raise RuntimeError("the training night has no candidates of one class")
    classifier = realbogus.train(labelled.features, labelled.real.astype(int), seed=seed)
    version = realbogus.save(classifier, out)
    rb = classifier.predict_proba(labelled.features)[:, 1]
    return version, evaluate(labelled, rb)
