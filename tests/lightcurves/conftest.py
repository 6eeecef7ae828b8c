"""The light-curve survey (lightcurve_survey.py), simulated and processed once per session, and
ingested into a database of its own, its nights then compacted into the sky cells but the
last (as the demo and the morning's timer leave an archive): light curves are read across both
halves of the layout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lightcurve_survey import LightCurveSurvey, SurveyArchive, make_survey
from survey_service import Served, serve_survey

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.compact import compact_all
from skyvault.ingest.testing import fresh_database


@pytest.fixture(scope="session")
def lightcurve_survey(tmp_path_factory) -> LightCurveSurvey:
    kept = os.environ.get("SKYVAULT_LIGHTCURVE_SURVEY_DIR")
    base = Path(kept) if kept else tmp_path_factory.mktemp("lightcurve-survey")
    return make_survey(base)


@pytest.fixture(scope="session")
def survey_archive(database: Database, lightcurve_survey: LightCurveSurvey,
                   tmp_path_factory) -> SurveyArchive:
    handle = fresh_database(database.urls.admin, "lightcurve_survey")
    base = tmp_path_factory.mktemp("lightcurve-archive")
    summary = ingest_paths([lightcurve_survey.products], database=handle,
                           store=LocalFileStore(base / "store"),
                           quarantine_root=base / "quarantine")
    assert summary.ok, summary.lines()
    with handle.admin(autocommit=True) as connection:
        compact_all(connection, keep_latest=1)
    tables = [fits.getdata(raw / "truth" / "stars.fits") for raw in lightcurve_survey.raw_dirs]
    stars = np.concatenate(tables)
    _, first = np.unique(stars["id"], return_index=True)
    return SurveyArchive(lightcurve_survey, handle, summary, stars[first])


@pytest.fixture(scope="module")
def served(survey_archive: SurveyArchive, database: Database) -> Iterator[Served]:
    """The survey's archive over HTTP for one module (survey_service.py)."""
    with serve_survey(survey_archive, database) as service:
        yield service
