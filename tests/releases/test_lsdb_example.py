"""docs/examples/release_lightcurves.py, run as a user would, on a real release export: LSDB on
Dask reads the HATS catalog, and every statistic equals the one computed from the inserted
detections with numpy."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from release_calendar import jd

from skyvault.db import Database
from skyvault.releases.declare import declare_release
from skyvault.releases.export import export_release

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "release_lightcurves.py"
PROGRAM = 23
NID = 99_700
BASE = 660_000_000
RADIUS = 1.5
TARGETS = pd.DataFrame({"target_id": [11, 12, 13, 14, 15, 16],
                        "ra": [300.0, 300.02, 300.2, 301.5, 299.0, 300.9],
                        "dec": [-60.0, -60.0, -60.3, -59.5, -61.2, -60.0]})


@pytest.fixture(scope="module")
def exported(database: Database, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A release of a program of its own: targets observed 12 times in two filters (scatter
    within 1 arcsec, magnitudes with noise), and a background of other detections."""
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    rows = []
    sourceid = BASE
    for target in TARGETS.itertuples():
        for band, base_mag in (("zg", 17.0 + 0.3 * target.target_id % 3), ("zr", 16.5)):
            for epoch in range(12):
                offset = rng.normal(0, 0.3 / 3600, 2)
                magerr = rng.uniform(0.01, 0.05)
                rows.append((sourceid, target.target_id, band,
                             target.ra + offset[0] / np.cos(np.radians(target.dec)),
                             target.dec + offset[1], jd(now - timedelta(days=40 - epoch)),
                             base_mag + rng.normal(0, magerr), magerr))
                sourceid += 1
    for _ in range(3000):  # background: at least 20 arcsec from every target
        while True:
            ra, dec = rng.uniform(298.5, 302.0), rng.uniform(-61.5, -59.0)
            far = np.hypot((TARGETS.ra - ra) * np.cos(np.radians(dec)), TARGETS.dec - dec)
            if far.min() > 20 / 3600:
                break
        rows.append((sourceid, 0, "zr", ra, dec, jd(now - timedelta(days=30)),
                     rng.uniform(15, 20), 0.03))
        sourceid += 1
    truth = pd.DataFrame(rows, columns=["sourceid", "target_id", "filtercode", "ra", "dec",
                                        "obsjd", "mag", "magerr"])
    for column in ("mag", "magerr"):  # what the catalog's real columns hold
        truth[column] = truth[column].astype(np.float32).astype(float)
    with database.admin() as connection:
        connection.execute(
            "INSERT INTO survey.programs (programid, name, release_rule) VALUES"
            " (%s, 'Test: LSDB example', 'data_release') ON CONFLICT DO NOTHING", (PROGRAM,))
        connection.execute(f"CREATE TABLE survey.psf_sources_lsdbtest PARTITION OF"
                           f" survey.psf_sources_nights FOR VALUES FROM ({NID}) TO ({NID + 1})")
        with connection.cursor().copy(
                "COPY survey.psf_sources (sourceid, pid, nid, ra, dec, filtercode, obsjd, mag,"
                " magerr, flags, programid) FROM STDIN") as copy:
            for row in truth.itertuples():
                copy.write_row((row.sourceid, BASE + row.target_id, NID, row.ra, row.dec,
                                row.filtercode, row.obsjd, row.mag, row.magerr, 0, PROGRAM))
        declare_release(connection, "LSDBDR", now - timedelta(hours=1),
                        now - timedelta(hours=2), [PROGRAM])
    root = tmp_path_factory.mktemp("releases")
    export_release(database, "LSDBDR", root, "http://127.0.0.1:1", partition_rows=1000)
    yield root / "LSDBDR" / "catalog" / "psf_sources", truth
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.data_releases WHERE release_name = 'LSDBDR'")
        connection.execute("DROP TABLE survey.psf_sources_lsdbtest")


def test_the_example_computes_each_targets_light_curve_statistics(exported, tmp_path) -> None:
    catalog, truth = exported
    assert len(list(catalog.glob("dataset/Norder=*/Dir=*/Npix=*.parquet"))) > 1
    targets = tmp_path / "targets.csv"
    TARGETS.to_csv(targets, index=False)
    result = subprocess.run([sys.executable, str(SCRIPT), str(catalog), str(targets),
                             "--radius", str(RADIUS), "--out", str(tmp_path / "stats.csv")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    found = pd.read_csv(tmp_path / "stats.csv").set_index(["target_id", "filtercode"])
    expected = {}
    for (target, band), group in truth[truth.target_id > 0].groupby(["target_id",
                                                                     "filtercode"]):
        weight = 1 / group.magerr.to_numpy() ** 2
        mag = group.mag.to_numpy()
        wmean = np.sum(weight * mag) / np.sum(weight)
        expected[(target, band)] = {
            "nobs": len(group), "mean_mag": mag.mean(), "wmean_mag": wmean,
            "std_mag": mag.std(ddof=1), "amplitude": mag.max() - mag.min(),
            "chi2_reduced": np.sum(weight * (mag - wmean) ** 2) / (len(mag) - 1),
            "mjd_first": group.obsjd.min() - 2400000.5}
    assert set(found.index) == set(expected)
    for key, values in expected.items():
        for name, value in values.items():
            assert found.loc[key, name] == pytest.approx(value, abs=2e-6), (key, name)
