"""Small simulated surveys, each processed once per test session.

``survey``: two nights ten days apart revisit the same two survey fields (so the first night's
epochs make references and the second night has difference images in which supernovae have
changed); the first night also follows two of the known asteroids. Small camera: 256 x 256
quadrants, 4 CCDs.

``survey_archive``: ``survey``'s products ingested once into a database of their own (files in
the session's file store, where the services read them): the candidates' and the forced
photometry's tests read the same archive.

``demo_survey``: two nights of the demo's survey (``skyvault.pipeline.demo``: CCDs 6 and 7,
three known objects followed), whose zero points are checked against the truth; no references.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyvault.config import settings
from skyvault.db import Database
from skyvault.pipeline.demo import DEMO_CCDS, DEMO_PLAN
from skyvault.pipeline.orchestrate import NightReport, dask_client, run_night
from skyvault.pipeline.simulate.night import default_survey_fields, simulate_night
from skyvault.pipeline.simulate.plan import PlanConfig

SEED = 1
NIGHTS = (dt.date(2026, 11, 20), dt.date(2026, 11, 30))
DEMO_NIGHTS = (dt.date(2026, 11, 7), dt.date(2026, 11, 18))
"""The first and last nights of the demo as `skyvault demo` made them on 2026-12-07: on the
first a star cut by the image edge set a sparse quadrant's zero point 0.044 mag off; on the
last (Moon 70% lit, 2.8" seeing) quadrants' flux scales were left 0.02-0.025 mag off
(issue 13)."""


@dataclass(frozen=True)
class ProcessedSurvey:
    base: Path
    raw_dirs: tuple[Path, ...]
    products: Path
    reports: tuple[NightReport, ...]


def _process_survey(
    base: Path,
    nights: tuple[dt.date, ...],
    ccds: tuple[int, ...] | None,
    plan_config: PlanConfig,
    *,
    asteroids_first_night_only: bool,
    references: bool,
) -> ProcessedSurvey:
    """Simulate (unless done) and process the nights, all on the first night's survey fields.
    A rerun on a kept folder reuses the simulation and resumes the processing."""
    products = base / "products"
    fields = default_survey_fields(nights[0], "small", ccds)
    raw_dirs, reports = [], []
    with dask_client(2, None) as client:
        for index, night in enumerate(nights):
            raw_dir = base / "raw" / f"{night:%Y%m%d}"
            if not (raw_dir / "night.json").exists():
                simulate_night(
                    night,
                    raw_dir,
                    seed=SEED,
                    size="small",
                    ccds=ccds,
                    workers=2,
                    fields=fields,
                    with_asteroids=index == 0 or not asteroids_first_night_only,
                    plan_config=plan_config,
                )
            reports.append(
                run_night(raw_dir, products, client=client, progress=False, references=references)
            )
            raw_dirs.append(raw_dir)
    return ProcessedSurvey(base, tuple(raw_dirs), products, tuple(reports))


@pytest.fixture(scope="session")
def survey(tmp_path_factory) -> ProcessedSurvey:
    # SKYVAULT_PIPELINE_SURVEY_DIR keeps the data for a look afterwards; a rerun on it reuses
    # the simulation and resumes the processing, so it is quick.
    kept = os.environ.get("SKYVAULT_PIPELINE_SURVEY_DIR")
    base = Path(kept) if kept else tmp_path_factory.mktemp("pipeline-survey")
    return _process_survey(
        base,
        NIGHTS,
        None,
        PlanConfig(max_asteroids=2),
        asteroids_first_night_only=True,
        references=True,
    )


@dataclass(frozen=True)
class SurveyArchive:
    database: Database
    """The archive's own database (not the session's: its rows are this survey's alone)."""
    summary: object
    """ingest's ``IngestSummary``."""


@pytest.fixture(scope="session")
def survey_archive(survey: ProcessedSurvey, database: Database,
                   tmp_path_factory) -> SurveyArchive:
    from skyvault.ingest import LocalFileStore, ingest_paths
    from skyvault.ingest.testing import fresh_database

    handle = fresh_database(database.urls.admin, "survey_archive")
    summary = ingest_paths([survey.products], database=handle,
                           store=LocalFileStore(settings().store_root),
                           quarantine_root=tmp_path_factory.mktemp("survey-quarantine"))
    assert summary.ok, summary.lines()
    return SurveyArchive(handle, summary)


@pytest.fixture(scope="session")
def demo_survey(tmp_path_factory) -> ProcessedSurvey:
    """As the demo simulates its nights (``skyvault.pipeline.demo.make_demo_night``); without
    references, which the zero points do not use."""
    kept = os.environ.get("SKYVAULT_DEMO_SURVEY_DIR")
    base = Path(kept) if kept else tmp_path_factory.mktemp("demo-survey")
    return _process_survey(
        base,
        DEMO_NIGHTS,
        DEMO_CCDS,
        DEMO_PLAN,
        asteroids_first_night_only=False,
        references=False,
    )
