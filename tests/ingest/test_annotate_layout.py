"""The candidates' history fields (``skyvault ingest annotate``) wherever a night's rows are:
in its night partition, in the sky cells once compacted, or in both (a reprocessed exposure
of a compacted night). Annotating must give what annotating the same rows in night partitions
gives: ingest's own values before the compaction, and a second archive, never compacted, that
ingested the same products."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.candidate_history import annotate_nights, candidate_nights
from skyvault.ingest.compact import compact_all
from skyvault.ingest.synthetic import NightSpec, reprocess_exposure, write_night
from skyvault.ingest.testing import fresh_database
from skyvault.schema.model import SkyLayout

# Two nights of the same field and the same seed: candidates of the second night fall on the
# first night's, so histories and names span nights.
SPECS = [NightSpec(nightdate=f"2026-11-{day}", exposures=2, quadrants=(1, 2), sources=20,
                   seed=5, ra=40.0, dec=5.0) for day in (10, 11)]
FIELDS = ("objectid", "ndethist", "ncovhist", "jdstarthist", "jdendhist")


def _annotations(connection) -> dict[tuple[float, float, float], tuple]:
    """Each candidate's fields, keyed by what it is (position and time), not by its ids."""
    return {(ra, dec, jd): fields for ra, dec, jd, *fields in connection.execute(
        f"SELECT ra, dec, jd, {', '.join(FIELDS)} FROM survey.candidates").fetchall()}


def _same_histories(found: dict, expected: dict) -> None:
    """Equal counts and dates, and the same candidates grouped under one objectid."""
    assert found.keys() == expected.keys()
    for key, fields in expected.items():
        assert found[key][1:] == fields[1:], key

    def groups(table: dict) -> set[frozenset]:
        names: dict[str, set] = {}
        for key, fields in table.items():
            names.setdefault(fields[0], set()).add(key)
        return {frozenset(keys) for keys in names.values()}

    assert groups(found) == groups(expected)


def _clear(connection) -> None:
    connection.execute(
        f"UPDATE survey.candidates SET {', '.join(f'{name} = NULL' for name in FIELDS)}")


def _ingest(handle: Database, roots: list[Path], base: Path) -> None:
    summary = ingest_paths(roots, database=handle, store=LocalFileStore(base / "store"),
                           quarantine_root=base / "quarantine")
    assert summary.ok, summary.lines()


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("annotate-layout")
    return [write_night(base / f"night{index}", spec).root for index, spec in enumerate(SPECS)]


def test_annotating_compacted_nights_gives_what_ingest_gave(database: Database, nights,
                                                            tmp_path: Path) -> None:
    handle = fresh_database(database.urls.admin, "annotate_compacted")
    _ingest(handle, nights, tmp_path)
    with handle.admin(autocommit=True) as connection:
        ingested = _annotations(connection)
        moved = compact_all(connection, catalogs=["candidates"])
        placements = connection.execute(
            "SELECT DISTINCT placement FROM survey.candidates").fetchall()
        _clear(connection)
        report = annotate_nights(connection, candidate_nights(connection))
        again = _annotations(connection)
    assert [item.nid for item in moved] == [spec.nid for spec in SPECS]
    assert placements == [(SkyLayout.SKY,)]
    assert report.nights == [spec.nid for spec in SPECS]
    assert all(None not in fields for fields in ingested.values())
    assert max(fields[1] for fields in ingested.values()) > 1, "no history spans nights"
    assert again == ingested


def test_a_night_in_both_halves_is_annotated_whole(database: Database, nights,
                                                   tmp_path: Path) -> None:
    """A compacted night, then an exposure of it reprocessed: its other exposure's candidates
    stay in the sky, the new ones land in a night partition; annotating the night fills both,
    as an archive that never compacted fills them from the same products."""
    handle = fresh_database(database.urls.admin, "annotate_mixed")
    _ingest(handle, nights, tmp_path / "mixed")
    first = SPECS[0].nid
    with handle.admin(autocommit=True) as connection:
        compact_all(connection, catalogs=["candidates"])
    reprocess_exposure(nights[0], SPECS[0], 1, seed=77)
    _ingest(handle, [nights[0]], tmp_path / "mixed")
    with handle.admin(autocommit=True) as connection:
        halves = connection.execute(
            "SELECT DISTINCT placement FROM survey.candidates WHERE nid = %s ORDER BY 1",
            (first,)).fetchall()
        _clear(connection)
        annotate_nights(connection, candidate_nights(connection))
        mixed = _annotations(connection)
    reference = fresh_database(database.urls.admin, "annotate_reference")
    _ingest(reference, nights, tmp_path / "reference")
    with reference.admin() as connection:
        expected = _annotations(connection)
    assert halves == [(SkyLayout.NIGHTS,), (SkyLayout.SKY,)]
    assert all(None not in fields for fields in mixed.values())
    _same_histories(mixed, expected)
