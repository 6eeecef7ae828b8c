"""A release recomputed while a night is being compacted: no catalog row keeps its old date.

The compaction copies a night's rows into the sky, then drops the night's partition. A
transaction that updates release dates of that night's rows and commits in between would lose
its update: the copy was taken before its commit, the partition it updated is dropped. Row-level
security reads those dates, so a stale date either withholds released rows or shows embargoed
ones. ``recompute_release_dates`` therefore holds every catalog's compaction off until it
commits (``compact.hold_off_compaction``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.compact import compact_all
from skyvault.ingest.synthetic import NightSpec, write_night
from skyvault.ingest.testing import fresh_database
from skyvault.releases import recompute_release_dates

PROGRAM = 2
"""The partnership program: proprietary for 365 days, set to 0 below."""


def _waiting_for_a_lock(database: Database, deadline_s: float = 300) -> None:
    """Until another backend of this database waits for a lock (the compaction)."""
    started = time.monotonic()
    with database.admin(autocommit=True) as watcher:
        while time.monotonic() - started < deadline_s:
            if watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the compaction never waited for the release's transaction")


def test_dates_recomputed_during_a_compaction_reach_the_sky(database: Database,
                                                              tmp_path: Path) -> None:
    handle = fresh_database(database.urls.admin, "compact_release")
    spec = NightSpec(nightdate="2026-11-10", exposures=2, quadrants=(1, 2), sources=30,
                     programids=(PROGRAM,))
    summary = ingest_paths([write_night(tmp_path / "night", spec).root], database=handle,
                           store=LocalFileStore(tmp_path / "store"),
                           quarantine_root=tmp_path / "quarantine")
    assert summary.ok, summary.lines()
    with handle.admin() as release, ThreadPoolExecutor(1) as pool:
        release.execute("UPDATE survey.programs SET proprietary_days = 0 WHERE programid = %s",
                        (PROGRAM,))
        changed = recompute_release_dates(release, [PROGRAM])
        assert changed["survey.psf_sources"] > 0 and changed["survey.candidates"] > 0

        def compact() -> list:
            with handle.admin(autocommit=True) as compactor:
                return compact_all(compactor)

        running = pool.submit(compact)
        _waiting_for_a_lock(handle)
        release.commit()
        moved = running.result(timeout=600)
    assert {item.catalog for item in moved} == {"psf_sources", "aperture_sources", "candidates",
                                                "lightcurves"}
    with handle.admin() as connection:
        stale = {catalog: connection.execute(
            f"SELECT count(*) FROM survey.{catalog} s JOIN survey.science_images i USING (pid)"
            " WHERE s.programid = i.programid AND s.release_date > i.release_date").fetchone()[0]
            for catalog in ("psf_sources", "aperture_sources", "candidates")}
        placements = connection.execute(
            "SELECT DISTINCT placement FROM survey.psf_sources").fetchall()
    assert placements == [(1,)]
    assert stale == {"psf_sources": 0, "aperture_sources": 0, "candidates": 0}
