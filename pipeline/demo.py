"""The demo's data: a few small simulated nights, processed, with references and differences.

``make_demo_night(out_dir)`` writes::

    out_dir/raw/<yyyymmdd>/...   each night's raw files, refcat.fits and truth/ (simulator output)
    out_dir/products/            the product folder: raw/, cal/, sci/, ref/, manifests/

and returns ``out_dir/products``. All nights revisit the same survey fields (those the first
night chooses), so the first night's epochs make references and later nights have difference
images. The last night comes ten days after the previous ones so that supernovae have changed.
Reruns reuse what is done. (Surveys made for light curves monitor a field and ask for more
variable stars: ``PlanConfig.monitor_visits``, ``variable_fraction``; the demo does not yet,
see DEMO_PLAN.)
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from skyvault.pipeline.orchestrate import NightReport, dask_client, run_night
from skyvault.pipeline.simulate.night import (
    SimulationSummary,
    default_survey_fields,
    simulate_night,
)
from skyvault.pipeline.simulate.plan import PlanConfig
from skyvault.pipeline.simulate.sky import VARIABLE_FRACTION

log = logging.getLogger(__name__)

DEFAULT_FIRST_NIGHT = dt.date(2026, 11, 20)
DEMO_CCDS = (6, 7)
"""Two CCDs (eight quadrants) keep the demo to a couple of minutes on two cores."""
DEMO_PLAN = PlanConfig(max_asteroids=3)
"""Two survey fields, and three of the known objects followed (2P/Encke, unsaturated, first).
Not yet a monitored field (``monitor_visits=("zr",) * 8``: 33 r-band epochs over the three
nights, for light curves): its extra exposures put a trusted zero point 0.026 mag off, beyond
the 0.02 mag the pipeline promises (tests/pipeline/test_zero_points.py)."""


def demo_dates(first: dt.date, nights: int) -> list[dt.date]:
    """Consecutive nights, except the last of three or more, which comes ten days later."""
    if nights < 1:
        raise ValueError("at least one night")
    dates = [first + dt.timedelta(days=k) for k in range(nights)]
    if nights >= 3:
        dates[-1] = dates[-2] + dt.timedelta(days=10)
    return dates


def make_demo_night(
    out_dir: Path,
    nights: int = 3,
    seed: int = 1,
    *,
    first_night: dt.date = DEFAULT_FIRST_NIGHT,
    dates: list[dt.date] | None = None,
    ccds: tuple[int, ...] = DEMO_CCDS,
    plan_config: PlanConfig = DEMO_PLAN,
    workers: int | None = None,
    progress: bool = False,
    fields: tuple[int, ...] | None = None,
    variable_fraction: float = VARIABLE_FRACTION,
    references: bool = True,
    with_asteroids: bool = True,
) -> Path:
    """Simulate and process ``nights`` small nights (or those of ``dates``) of the survey
    fields ``fields`` (default: those the first night chooses); return the product folder."""
    out_dir = Path(out_dir)
    products = out_dir / "products"
    dates = dates or demo_dates(first_night, nights)
    fields = fields or default_survey_fields(dates[0], "small", ccds)
    with dask_client(workers, None) as client:
        for nightdate in dates:
            raw_dir = out_dir / "raw" / f"{nightdate:%Y%m%d}"
            if not (raw_dir / "night.json").exists():
                summary: SimulationSummary = simulate_night(
                    nightdate,
                    raw_dir,
                    seed=seed,
                    size="small",
                    ccds=ccds,
                    workers=workers,
                    fields=fields,
                    plan_config=plan_config,
                    variable_fraction=variable_fraction,
                    with_asteroids=with_asteroids,
                )
                log.info("simulated %s: %d exposures", nightdate, summary.exposures)
            report: NightReport = run_night(
                raw_dir,
                products,
                client=client,
                progress=progress,
                references=references,
            )
            log.info(
                "processed %s: %d quadrants, %d failed, %d differences, %d references",
                nightdate,
                report.quadrants,
                len(report.failures),
                report.differences,
                len(report.references),
            )
    return products
