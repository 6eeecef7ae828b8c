"""What a night leaves behind as it goes: task outcomes, their state files, and provenance.

Each finished task leaves a state record under ``state/<yyyymmdd>/``; a rerun reuses those whose
files are all still there, so an interrupted night resumes where it stopped. This module knows
those records and nothing of Dask or of how a night is planned; the reference builder reads the
science states through it.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from skyvault import __version__
from skyvault.pipeline.manifest import (
    CalibrationMeta,
    DifferenceMeta,
    ProductFile,
    Provenance,
    QuadrantFailure,
    ScienceImageMeta,
    from_plain,
    to_plain,
    write_atomic,
)


@dataclass
class QuadrantOutcome:
    expid: int
    ccdid: int
    qid: int
    science: ScienceImageMeta | None = None
    difference: DifferenceMeta | None = None
    files: list[ProductFile] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    failure: QuadrantFailure | None = None
    reference_name: str | None = None
    reused: bool = False
    psf_fwhm: float | None = None
    """Pixels, measured on the quadrant's own stars (None where too few made a default PSF)."""
    psf_beta: float | None = None
    flux_scale: float | None = None
    """The aperture correction of that PSF (None where too few stars measured it)."""
    flux_scale_uncertainty: float | None = None
    """Fractional, of the aperture correction (None where too few stars measured it)."""
    borrowed_psf: bool = False


@dataclass
class CalibrationOutcome:
    ccdid: int
    qid: int
    rows: list[CalibrationMeta] = field(default_factory=list)
    files: list[ProductFile] = field(default_factory=list)
    failure: str | None = None
    reused: bool = False


Outcome = TypeVar("Outcome", QuadrantOutcome, CalibrationOutcome)


def state_dir(product_dir: Path, nightdate: str) -> Path:
    return product_dir / "state" / nightdate.replace("-", "")


def quadrant_state(product_dir: Path, nightdate: str, expid: int, ccdid: int, qid: int) -> Path:
    return state_dir(product_dir, nightdate) / f"{expid}_c{ccdid:02d}_q{qid}.json"


def calibration_state(product_dir: Path, nightdate: str, ccdid: int, qid: int) -> Path:
    return state_dir(product_dir, nightdate) / f"cal_c{ccdid:02d}_q{qid}.json"


def save_state(path: Path, outcome: QuadrantOutcome | CalibrationOutcome) -> None:
    write_atomic(path, json.dumps(to_plain(outcome)).encode())


def files_intact(product_dir: Path, files: list[ProductFile]) -> bool:
    for item in files:
        path = product_dir / item.path
        if not path.exists() or path.stat().st_size != item.size:
            return False
    return True


def load_state(path: Path, cls: type[Outcome], product_dir: Path) -> Outcome | None:
    """A finished task's record, if it is there and its files are intact."""
    if not path.exists():
        return None
    try:
        state = from_plain(cls, json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    if state.failure or not files_intact(product_dir, state.files):
        return None
    state.reused = True
    return state


def load_science_states(product_dir: Path) -> list[QuadrantOutcome]:
    """Every finished science quadrant of every night in the product folder."""
    found = []
    for path in sorted((Path(product_dir) / "state").glob("*/*_c*_q*.json")):
        if path.name.startswith("cal_"):
            continue
        state = load_state(path, QuadrantOutcome, Path(product_dir))
        if state is not None and state.science is not None:
            found.append(state)
    return found


# --- provenance -------------------------------------------------------------------------------


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "skyvault": __version__}
    for package in ("numpy", "scipy", "astropy", "sep", "fitsio", "dask", "distributed"):
        try:
            module = __import__(package)
            versions[package] = str(getattr(module, "__version__", "unknown"))
        except ImportError:
            continue
    return versions


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance(inputs: list[str], parameters: dict | None = None) -> Provenance:
    return Provenance(
        pipeline_version=__version__,
        created=now_utc(),
        software=software_versions(),
        input_files=sorted(set(inputs)),
        parameters=parameters or {},
    )
