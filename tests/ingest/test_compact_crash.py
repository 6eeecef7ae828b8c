"""Compaction killed anywhere, then run again, loses and duplicates no catalog row; and a
reprocessed exposure of a compacted night replaces its rows in the sky.

Three nights are ingested as real product folders (``ingest_paths``), then
``python -m skyvault.ingest compact`` is run in its own process, which kills itself with
SIGKILL at a chosen pass of a crash point (SKYVAULT_INGEST_CRASH, skyvault/crash.py):
with the night's cells created, with its rows copied, just after its commit. After each kill
the catalogs must hold exactly the rows ingest loaded, each once, and ``ingest check --deep``
must agree with what was loaded per image.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from skyvault.crash import COMPACTION_POINTS, ENVIRONMENT_VARIABLE
from skyvault.db import Database
from skyvault.ingest import LocalFileStore, check_archive, ingest_paths
from skyvault.ingest.catalogs import CATALOG_OF, CATALOG_TABLES, loaded_tables
from skyvault.ingest.partitions import partitions
from skyvault.ingest.synthetic import NightSpec, reprocess_exposure, write_night
from skyvault.ingest.testing import fresh_database, table_counts

SPECS = [NightSpec(nightdate=f"2026-11-{day}", exposures=2, quadrants=(1, 2), sources=25,
                   seed=day, ra=5.0 * day, dec=10.0 + day)
         for day in (10, 11, 12)]
"""With references, so that each exposure has difference images and candidates: four catalogs
(psf_sources, aperture_sources, candidates, and the light-curve points made from psf_sources)
of three nights each to compact."""
CATALOGS = {table.name: CATALOG_OF[product] for product in CATALOG_TABLES
            for table in loaded_tables(product)}
KILLS = [f"{point}:{count}" for count in (1, 2) for point in COMPACTION_POINTS]


def _rows_once(handle: Database, expected: dict[str, int]) -> None:
    with handle.admin() as connection:
        counts = table_counts(connection)
        for catalog, of in CATALOGS.items():
            duplicates = connection.execute(
                f"SELECT count(*) FROM (SELECT {of.image_key}, {of.row_key}"
                f" FROM survey.{catalog} GROUP BY 1, 2 HAVING count(*) > 1) AS d").fetchone()[0]
            assert duplicates == 0, catalog
    assert counts == expected


def test_compaction_killed_anywhere_then_rerun(database: Database, tmp_path: Path) -> None:
    handle = fresh_database(database.urls.admin, "compact_crash")
    store = LocalFileStore(tmp_path / "store")
    roots = [write_night(tmp_path / f"night{index}", spec).root
             for index, spec in enumerate(SPECS)]
    kw = {"database": handle, "store": store, "quarantine_root": tmp_path / "quarantine"}
    assert ingest_paths(roots, **kw).ok
    with handle.admin() as connection:
        expected = table_counts(connection)
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": handle.urls.admin}
    environment.pop(ENVIRONMENT_VARIABLE, None)

    def compact(crash: str | None) -> subprocess.CompletedProcess:
        env = dict(environment)
        if crash:
            env[ENVIRONMENT_VARIABLE] = crash
        return subprocess.run([sys.executable, "-m", "skyvault.ingest", "compact"], env=env,
                              capture_output=True, text=True, timeout=300)

    # Twelve nights to move (three per catalog): every kill below comes before the last one.
    for crash in KILLS:
        run = compact(crash)
        assert run.returncode == -signal.SIGKILL, (crash, run.stdout, run.stderr)
        _rows_once(handle, expected)
        report = check_archive(database=handle, store=store, quick=True, deep=True)
        assert not report.catalog_problems, report.catalog_problems

    final = compact(None)
    assert final.returncode == 0, final.stderr
    assert "compacted" in final.stdout or "nothing to compact" in final.stdout
    _rows_once(handle, expected)
    with handle.admin() as connection:
        assert [p for p in partitions(connection) if p.attached] == []
        placed = {catalog: connection.execute(
            f"SELECT DISTINCT placement FROM survey.{catalog}").fetchall()
            for catalog in CATALOGS}
    assert placed == {catalog: [(1,)] for catalog in CATALOGS}
    assert all(expected[f"survey.{catalog}"] > 0 for catalog in CATALOGS), expected
    assert check_archive(database=handle, store=store, deep=True).clean

    # A rerun of the pipeline for an exposure of a compacted night: its old rows leave the
    # sky, its new rows land in a new partition of that night, which compacts in turn.
    reprocess_exposure(roots[0], SPECS[0], 1, seed=99)
    summary = ingest_paths([roots[0]], **kw)
    assert summary.ok and summary.reprocessed > 0, summary.lines()
    with handle.admin() as connection:
        after = table_counts(connection)
    _rows_once(handle, {**after, **{f"survey.{name}": expected[f"survey.{name}"]
                                    for name in CATALOGS}})
    assert check_archive(database=handle, store=store, deep=True).clean
    with handle.admin() as connection:
        night = [p.nid for p in partitions(connection) if p.attached]
    assert night == [SPECS[0].nid] * len(CATALOGS)  # one partition per catalog
    assert compact(None).returncode == 0
    assert check_archive(database=handle, store=store, deep=True).clean
    with handle.admin() as connection:
        assert [p for p in partitions(connection)] == []
