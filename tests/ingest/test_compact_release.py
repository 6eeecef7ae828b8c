"""A release declared while a night is being compacted applies to the night's rows in the sky.

The compaction copies a night's rows into the sky cells, then drops the night's partition.
Before migration 0016 every catalog row stored its release date and a release rewrote them, so
a release committing between the copy and the drop lost its update (main held compactions off
while a release ran). Now no row stores a release date: a release writes one row of
survey.data_releases and the policies compare each row's program and observation time with it
at query time. So a release and a compaction need no lock between them: the compaction goes
through while the release's transaction is open, and once the release commits the public sees
every row of the night, wherever it was moved.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from skyvault.access import ANONYMOUS
from skyvault.db import Database, DatabaseUrls
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.compact import compact_all
from skyvault.ingest.synthetic import NightSpec, write_night
from skyvault.ingest.testing import fresh_database
from skyvault.releases.declare import declare_release

PROGRAM = 2
"""The partnership program: proprietary for 365 days, so the night is embargoed at first."""
CATALOGS = ("psf_sources", "aperture_sources", "candidates", "lightcurves")


def _counts(service: Database, requester=None) -> dict[str, tuple[int, int]]:
    """Rows and rows in the sky (placement 1) per catalog, as ``requester`` (None: the owner)."""
    query = "SELECT count(*), count(*) FILTER (WHERE placement = 1) FROM survey.{}"
    if requester is None:
        with service.admin() as connection:
            return {c: connection.execute(query.format(c)).fetchone() for c in CATALOGS}
    with service.reading(requester) as connection:
        return {c: connection.execute(query.format(c)).fetchone() for c in CATALOGS}


def test_a_release_declared_during_a_compaction_reaches_the_sky(database: Database,
                                                                 tmp_path: Path) -> None:
    handle = fresh_database(database.urls.admin, "compact_release")
    service = Database(DatabaseUrls(
        admin=handle.urls.admin,
        app=handle.urls.admin.replace("://skyvault@", "://skyvault_app@")))
    spec = NightSpec(nightdate="2026-11-10", exposures=2, quadrants=(1, 2), sources=30,
                     programids=(PROGRAM,))
    summary = ingest_paths([write_night(tmp_path / "night", spec).root], database=service,
                           store=LocalFileStore(tmp_path / "store"),
                           quarantine_root=tmp_path / "quarantine")
    assert summary.ok, summary.lines()
    before = _counts(service)
    assert all(rows > 0 and in_sky == 0 for rows, in_sky in before.values()), before
    assert _counts(service, ANONYMOUS) == {c: (0, 0) for c in CATALOGS}
    try:
        with service.admin() as release, ThreadPoolExecutor(1) as pool:
            instant = datetime.now(UTC) - timedelta(minutes=1)
            declare_release(release, "DR-DURING-COMPACTION", instant, instant, [PROGRAM])

            def compact() -> list:
                with service.admin(autocommit=True) as compactor:
                    return compact_all(compactor)

            # The compaction waits for nothing the release holds (a lock would time out here).
            moved = pool.submit(compact).result(timeout=300)
            assert _counts(service, ANONYMOUS) == {c: (0, 0) for c in CATALOGS}
            release.commit()
        assert {item.catalog for item in moved} == set(CATALOGS)
        after = _counts(service)
        assert after == {c: (rows, rows) for c, (rows, _) in before.items()}
        assert _counts(service, ANONYMOUS) == after
    finally:
        service.close()
