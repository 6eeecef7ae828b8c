"""Real/bogus: the probability that a difference-image candidate is a real astrophysical change.

A scikit-learn gradient-boosted tree ensemble (``HistGradientBoostingClassifier``) over
features the candidate's own measurements give (shape, sharpness, negative and bad pixels,
the dipole ratio, the aperture-minus-PSF magnitude, distances to catalog sources...), trained
on the simulator's truth by ``skyvault pipeline train-rb`` (``pipeline/rb_training.py``). The
model file ships in the package (``rb_model.joblib``, 27 kB; a pickle, so scikit-learn is pinned
to the minor version that wrote it, 1.9); its version, the name
and the first hex digits of its SHA-256, goes with every score (``rb_version``). Without a
model file every score is NaN and the version ``none``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).with_name("rb_model.joblib")
NO_MODEL = "none"
FEATURES = (
    "scorr",
    "chipsf",
    "sharpness",
    "fwhm_ratio",
    "elong",
    "nbad",
    "nneg",
    "sumrat",
    "dipole",
    "magdiff",
    "mindtoedge",
    "isdiffpos",
    "distnr",
    "magnr_minus_magpsf",
    "sharpnr",
    "distpsnr1",
    "sgscore1",
    "mag_above_limit",
)
"""What the classifier sees: ratios and differences, so that one model serves every seeing,
depth and zero point."""
MISSING_DISTANCE = 30.0
"""No catalog source within 30 arcsec counts as one at 30 arcsec."""


@dataclass(frozen=True)
class Model:
    classifier: object
    version: str


def features(columns: dict[str, np.ndarray], seeing_pixels: float) -> np.ndarray:
    """The feature matrix (rows: candidates, columns: ``FEATURES``) from diffcat-style columns
    (archive names, or the pipeline's: ``mag``/``snr``/``chi``); ``seeing_pixels`` is the FWHM
    of the difference image's PSF."""
    def col(*names: str) -> np.ndarray:
        for name in names:
            if name in columns:
                return np.asarray(columns[name], dtype=np.float64)
        raise KeyError(names[0])

    magpsf = col("magpsf", "mag")
    fwhm = col("fwhm")
    distnr = np.nan_to_num(col("distnr"), nan=MISSING_DISTANCE)
    magnr = col("magnr")
    table = {
        "scorr": col("scorr", "snr"),
        "chipsf": col("chipsf", "chi"),
        "sharpness": col("sharpness"),
        "fwhm_ratio": fwhm / max(seeing_pixels, 1e-3),
        "elong": col("elong"),
        "nbad": col("nbad"),
        "nneg": col("nneg"),
        "sumrat": col("sumrat"),
        "dipole": col("dipole"),
        "magdiff": np.nan_to_num(col("magdiff"), nan=5.0),
        "mindtoedge": col("mindtoedge"),
        "isdiffpos": col("isdiffpos"),
        "distnr": distnr,
        "magnr_minus_magpsf": np.where(np.isfinite(magnr), magnr - magpsf, 10.0),
        "sharpnr": np.nan_to_num(col("sharpnr"), nan=0.0),
        "distpsnr1": np.nan_to_num(col("distpsnr1"), nan=MISSING_DISTANCE),
        "sgscore1": np.nan_to_num(col("sgscore1"), nan=0.5),
        "mag_above_limit": col("diffmaglim") - magpsf,
    }
    matrix = np.column_stack([table[name] for name in FEATURES]) if magpsf.size else \
        np.zeros((0, len(FEATURES)))
    return np.nan_to_num(matrix, nan=0.0, posinf=99.0, neginf=-99.0)


def model_version(path: Path) -> str:
    return f"rb-hgb-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Model | None:
    import joblib

    return Model(joblib.load(path), model_version(Path(path)))


def load_model(path: Path = MODEL_PATH) -> Model | None:
    if not path.exists():
        return None
    return _load(str(path), path.stat().st_mtime)


def score(columns: dict[str, np.ndarray], seeing_pixels: float,
          path: Path = MODEL_PATH) -> tuple[np.ndarray, str]:
    """The real/bogus score of every candidate (NaN without a model) and the model's version."""
    model = load_model(path)
    n = len(next(iter(columns.values()))) if columns else 0
    if model is None:
        return np.full(n, np.nan, dtype=np.float32), NO_MODEL
    if n == 0:
        return np.zeros(0, dtype=np.float32), model.version
    from threadpoolctl import threadpool_limits

    # One thread: a pipeline worker is one core's, and OpenMP's thread team costs more than the
    # trees for a few hundred candidates (measured on two busy cores: the candidates step of a
    # small difference image took 0.27 s of CPU with it, 0.05 s without).
    with threadpool_limits(limits=1, user_api="openmp"):
        probability = model.classifier.predict_proba(features(columns, seeing_pixels))[:, 1]
    return probability.astype(np.float32), model.version


def train(matrix: np.ndarray, labels: np.ndarray, seed: int = 0):
    """A fitted classifier; deterministic for a given training set and seed."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    classifier = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, max_leaf_nodes=15, l2_regularization=1.0,
        class_weight="balanced", random_state=seed,
    )
    return classifier.fit(matrix, labels)


def save(classifier, path: Path) -> str:
    """Write the model file; returns its version."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(classifier, path, compress=3)
    return model_version(path)
