"""One small simulated survey, processed once per test session.

Two nights ten days apart revisit the same two survey fields (so the first night's epochs make
references and the second night has difference images in which supernovae have changed); the
first night also follows two of the known asteroids. Small camera: 256 x 256 quadrants, 4 CCDs.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyvault.pipeline.orchestrate import NightReport, dask_client, run_night
from skyvault.pipeline.simulate.night import default_survey_fields, simulate_night
from skyvault.pipeline.simulate.plan import PlanConfig

SEED = 1
NIGHTS = (dt.date(2026, 11, 20), dt.date(2026, 11, 30))


@dataclass(frozen=True)
class ProcessedSurvey:
    base: Path
    raw_dirs: tuple[Path, ...]
    products: Path
    reports: tuple[NightReport, ...]


@pytest.fixture(scope="session")
def survey(tmp_path_factory) -> ProcessedSurvey:
    # SKYVAULT_PIPELINE_SURVEY_DIR keeps the data for a look afterwards; a rerun on it reuses
    # the simulation and resumes the processing, so it is quick.
    kept = os.environ.get("SKYVAULT_PIPELINE_SURVEY_DIR")
    base = Path(kept) if kept else tmp_path_factory.mktemp("pipeline-survey")
    products = base / "products"
    fields = default_survey_fields(NIGHTS[0])
    raw_dirs, reports = [], []
    with dask_client(2, None) as client:
        for index, night in enumerate(NIGHTS):
            raw_dir = base / "raw" / f"{night:%Y%m%d}"
            if (raw_dir / "night.json").exists():
                raw_dirs.append(raw_dir)
                reports.append(run_night(raw_dir, products, client=client, progress=False))
                continue
            simulate_night(
                night,
                raw_dir,
                seed=SEED,
                size="small",
                workers=2,
                fields=fields,
                with_asteroids=index == 0,
                plan_config=PlanConfig(max_asteroids=2),
            )
            reports.append(run_night(raw_dir, products, client=client, progress=False))
            raw_dirs.append(raw_dir)
    return ProcessedSurvey(base, tuple(raw_dirs), products, tuple(reports))
