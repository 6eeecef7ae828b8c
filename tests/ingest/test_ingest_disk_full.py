"""The file store's disk fills up during an ingest: a clear error, no half-written product,
nothing lost; once there is room, the same ingest completes and the archive checks clean.

The store is a small tmpfs (mounted by the test, as root like CI): big enough for part of the
night's products, not for all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, check_archive
from skyvault.ingest.synthetic import NightSpec, write_night
from skyvault.ingest.testing import fresh_database

SPEC = NightSpec(nightdate="2026-11-18", exposures=3, quadrants=(1, 2), sources=20, seed=33)


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted at a fresh folder; unmounted afterwards."""
    mount_point = tmp_path / "store"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                   check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _resize(mount_point: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount_point)], check=True)


def test_a_full_store_stops_the_ingest_cleanly_and_nothing_is_lost(
        database: Database, tmp_path: Path, small_disk: Path) -> None:
    handle = fresh_database(database.urls.admin, "ingest_disk_full")
    root = tmp_path / "products"
    write_night(root, SPEC)
    needed = _tree_bytes(root)
    # Room for about a third of the products: the ingest fills the disk part-way.
    _resize(small_disk, str(needed // 3))
    store = LocalFileStore(small_disk)
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": handle.urls.admin,
                   "SKYVAULT_STORE": str(small_disk),
                   "SKYVAULT_QUARANTINE": str(tmp_path / "quarantine")}

    def ingest() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "skyvault.ingest", str(root),
                               "--no-progress"], env=environment, capture_output=True,
                              text=True, timeout=300)

    full = ingest()
    assert full.returncode != 0
    said = full.stdout + full.stderr
    assert "No space left on device" in said and "Traceback" not in said, said[-2000:]
    # No half-written product: no temporary left, every archived file complete and checksummed,
    # every row's file present (groups that did not fit were not committed).
    assert not [p for p in small_disk.rglob("*.tmp")]
    report = check_archive(database=handle, store=store, deep=True)
    assert not report.missing and not report.mismatched and not report.catalog_problems
    assert not report.orphans, report.orphans
    with handle.admin() as connection:
        quarantined = connection.execute("SELECT count(*) FROM archive.quarantine").fetchone()[0]
    assert quarantined == 0  # a full disk is the service's problem, not the products'

    _resize(small_disk, str(2 * needed + 1_000_000))
    again = ingest()
    assert again.returncode == 0, again.stdout + again.stderr
    report = check_archive(database=handle, store=store, deep=True)
    assert report.clean, report.lines()
    with handle.admin() as connection:
        science = connection.execute(
            "SELECT count(*) FROM survey.science_images WHERE is_current = 1").fetchone()[0]
        sources = connection.execute("SELECT count(*) FROM survey.psf_sources").fetchone()[0]
    quadrants = SPEC.exposures * len(SPEC.quadrants) * len(SPEC.ccds)
    assert science == quadrants
    assert sources == quadrants * SPEC.sources
