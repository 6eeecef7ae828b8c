"""Crash safety: an ingest killed with SIGKILL anywhere, then restarted, loses and duplicates
nothing.

The ingest runs as a separate process (``python -m skyvault.ingest``) that kills itself with
SIGKILL at the n-th pass of a chosen crash point (SKYVAULT_INGEST_CRASH, see
skyvault/crash.py): while writing a file, before and after the renames that publish
files, with rows inserted, in the middle of a catalog's COPY, just before and just after
COMMIT, while sealing a night's partition, and while quarantining. Points and counts are drawn
from a seeded generator; after every run the archive must be consistent (no archived file
missing or different, catalog rows matching what each committed group loaded, no exposure
half in), and after a final clean run ``ingest check`` must find nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from skyvault.crash import ENVIRONMENT_VARIABLE, POINTS
from skyvault.db import Database
from skyvault.ingest import LocalFileStore, check_archive
from skyvault.ingest.synthetic import NightSpec, reprocess_exposure, write_night
from skyvault.ingest.testing import fresh_database

SPEC = NightSpec(nightdate="2026-11-16", exposures=5, quadrants=(1, 2), sources=30, seed=21)
BAD = 4
"""Exposure whose sciimg is truncated: quarantined on every run."""
KILLS = 23
FIRST = ("associate:registered:1", "quarantine:copied:1", "seal:prebuilt:1", "seal:indexed:1",
         "seal:after:1")
"""Points only the first runs reach (the bad group's first quarantine, the night's sealing),
after association, which every exposure passes, made sure of once as the first exposure
registers its objects (before the runs that get every group in)."""
WORK = ("place:write", "place:before_rename", "place:after_rename", "db:rows", "copy:mid",
        "commit:before", "commit:after")
"""Points every group passes."""


def _truncate_sciimg(manifest: Path, root: Path) -> None:
    data = json.loads(manifest.read_text())
    entry = next(f for f in data["files"] if f["product_type"] == "sciimg")
    path = root / entry["path"]
    path.write_bytes(path.read_bytes()[:-2880])
    entry["size"] = path.stat().st_size
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(data, indent=1))


def _consistent(handle: Database, store: LocalFileStore) -> None:
    """What must hold after any crash: orphans and unsealed nights are allowed, nothing else."""
    report = check_archive(database=handle, store=store, quick=True, deep=True)
    assert not report.missing, report.missing
    assert not report.mismatched, report.mismatched
    assert not report.catalog_problems, report.catalog_problems
    with handle.admin() as connection:
        partial = connection.execute(
            "SELECT e.expid, count(s.pid) FROM survey.exposures e LEFT JOIN"
            " survey.science_images s ON s.expid = e.expid AND s.is_current = 1"
            " WHERE e.itid = 1 GROUP BY e.expid HAVING count(s.pid) <> %s",
            (len(SPEC.quadrants),)).fetchall()
        assert partial == []  # an exposure is in with all its quadrants or not at all
        unfiled = connection.execute(
            "SELECT count(*) FROM survey.science_images s WHERE (SELECT count(*) FROM"
            " survey.files f WHERE f.image_table = 'science_images' AND f.image_id = s.pid) <> 4"
        ).fetchone()[0]
        assert unfiled == 0


def test_sigkill_anywhere_then_restart_leaves_the_archive_consistent(
        database: Database, tmp_path: Path) -> None:
    handle = fresh_database(database.urls.admin, "ingest_crash")
    root = tmp_path / "products"
    night = write_night(root, SPEC)
    _truncate_sciimg(night.exposures[BAD], root)
    store = LocalFileStore(tmp_path / "store")
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": handle.urls.admin,
                   "SKYVAULT_STORE": str(store.root),
                   "SKYVAULT_QUARANTINE": str(tmp_path / "quarantine")}
    environment.pop(ENVIRONMENT_VARIABLE, None)

    def ingest(crash: str | None) -> int:
        env = dict(environment)
        if crash:
            env[ENVIRONMENT_VARIABLE] = crash
        run = subprocess.run([sys.executable, "-m", "skyvault.ingest", str(root),
                              "--no-progress"], env=env, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode in (-signal.SIGKILL, 0, 1), run.stderr
        return run.returncode

    rng = random.Random(20261121)
    killed: Counter[str] = Counter()
    reprocessed: Counter[int] = Counter()
    runs = 0
    while sum(killed.values()) < KILLS:
        runs += 1
        assert runs <= 2 * KILLS, f"only {sum(killed.values())} kills in {runs} runs"
        crash = FIRST[runs - 1] if runs <= len(FIRST) else \
            f"{rng.choice(WORK)}:{rng.randint(1, 2)}"
        if ingest(crash) == -signal.SIGKILL:
            killed[crash.rpartition(":")[0]] += 1
        else:
            # The run got through: give the next ones work, reruns of the pipeline for two
            # exposures (new versions, old ones superseded, their catalog rows replaced).
            for index in rng.sample([i for i in range(SPEC.exposures) if i != BAD], 2):
                reprocessed[index] += 1
                reprocess_exposure(root, SPEC, index, seed=1000 + runs + index)
        _consistent(handle, store)

    assert ingest(None) == 1  # the truncated exposure stays quarantined
    report = check_archive(database=handle, store=store, deep=True)
    assert report.clean, report.lines()
    # Where the kills fell: every point, file placement, COPY and commit included.
    assert set(killed) == set(POINTS), killed

    good = SPEC.exposures - 1
    quadrants = len(SPEC.quadrants)
    versions = quadrants * (good + sum(reprocessed.values()))
    with handle.admin() as connection:
        counts = dict(connection.execute(
            "SELECT 'science', count(*) FROM survey.science_images UNION ALL"
            " SELECT 'current', count(*) FROM survey.science_images WHERE is_current = 1"
            " UNION ALL SELECT 'diff', count(*) FROM survey.difference_images UNION ALL"
            " SELECT 'psf', count(*) FROM survey.psf_sources UNION ALL"
            " SELECT 'aperture', count(*) FROM survey.aperture_sources UNION ALL"
            " SELECT 'raw', count(*) FROM survey.raw_images UNION ALL"
            " SELECT 'exposures', count(*) FROM survey.exposures UNION ALL"
            " SELECT 'references', count(*) FROM survey.reference_images UNION ALL"
            " SELECT 'quarantined', count(DISTINCT original_path) FROM archive.quarantine"
        ).fetchall())
        duplicates = connection.execute(
            "SELECT count(*) FROM (SELECT pid, sourceid FROM survey.psf_sources"
            " GROUP BY 1, 2 HAVING count(*) > 1) AS d").fetchone()[0]
    assert counts == {
        "science": versions, "current": quadrants * good, "diff": versions,
        "psf": quadrants * good * SPEC.sources, "aperture": quadrants * good * SPEC.sources,
        "raw": good + 2, "exposures": good + 2, "references": quadrants,
        "quarantined": 2,  # the truncated sciimg and its manifest
    }
    assert duplicates == 0
