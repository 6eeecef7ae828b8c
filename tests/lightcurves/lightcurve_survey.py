"""A small survey made for light curves: one field, 13 nights over 143 days, 3 r-band epochs a
night (39 in all), in a sky where one star in four varies.

The field (RA 80, Dec +60, Galactic latitude 13) is high enough to be observed all season;
its visits are spread over the hours it stands above 35 degrees. Nights are irregularly spaced
(so no spacing aliases a period) and each night's three visits span hours (so periods under a
day are not aliased by the daily gaps). One CCD of the small camera (four 256 x 256 quadrants),
no asteroids, no references or differences (light curves need neither).

``SKYVAULT_LIGHTCURVE_SURVEY_DIR`` keeps the data (a rerun reuses what is done).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyvault.db import Database
from skyvault.ingest.run import IngestSummary
from skyvault.pipeline.demo import make_demo_night
from skyvault.pipeline.simulate.night import geometry_for
from skyvault.pipeline.simulate.plan import PlanConfig, field_grid_for

SEED = 3
CCDS = (10,)
FIELD_POSITION = (80.0, 60.0)
FIRST_NIGHT = dt.date(2026, 9, 20)
NIGHT_OFFSETS = (0, 9, 21, 30, 44, 53, 64, 77, 86, 99, 108, 120, 143)
VARIABLE_FRACTION = 0.25
PLAN = PlanConfig(survey_fields=1, survey_visits=("zr",) * 4, max_asteroids=0,
                  bias_frames=3, flat_frames=3, flat_filters=("zr",),
                  survey_min_altitude=35.0)


@dataclass(frozen=True)
class LightCurveSurvey:
    base: Path
    products: Path
    raw_dirs: tuple[Path, ...]


@dataclass(frozen=True)
class SurveyArchive:
    survey: LightCurveSurvey
    database: Database
    summary: IngestSummary
    stars: np.ndarray
    """The truth: every star of the field's cells (id, ra, dec, mag_g/r/i, var_*)."""


def survey_field() -> int:
    return field_grid_for(geometry_for("small"), CCDS).containing(*FIELD_POSITION)


def nights() -> list[dt.date]:
    return [FIRST_NIGHT + dt.timedelta(days=offset) for offset in NIGHT_OFFSETS]


def make_survey(base: Path, workers: int = 2) -> LightCurveSurvey:
    dates = nights()
    products = make_demo_night(base, dates=dates, seed=SEED, ccds=CCDS, plan_config=PLAN,
                               workers=workers, fields=(survey_field(),),
                               variable_fraction=VARIABLE_FRACTION, references=False,
                               with_asteroids=False)
    raw_dirs = tuple(base / "raw" / f"{night:%Y%m%d}" for night in dates)
    return LightCurveSurvey(base, products, raw_dirs)


if __name__ == "__main__":
    import sys

    survey = make_survey(Path(sys.argv[1]))
    print(survey.products)
