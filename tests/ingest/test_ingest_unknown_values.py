"""Values nobody knows are NULL in the catalog (issue 13 items 3 and 4, issue 18).

A night is ingested in which one exposure's zero point failed: its catalogs carry NaN
magnitudes and its images no zero point (as null, or as the -99 / -1 older manifests wrote).
One candidate of every difference image has no catalog source nearby (NaN neighbour fields).
Its bias and flat frames report the telescope parked at the zenith, which is no sky position.
Queries through the ADQL translator, as the reader role, then behave as SQL says NULL does,
checked against the catalog files themselves.
"""

from __future__ import annotations

import math
from pathlib import Path

import fitsio
import numpy as np
import pytest

from skyvault.access import Requester
from skyvault.db import Database
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.synthetic import NEIGHBOUR_COLUMNS, NightSpec, write_night
from skyvault.ingest.testing import fresh_database
from skyvault.schema.model import DOUBLE, FLOAT
from skyvault.schema.tables import CANDIDATES, PUBLISHED_TABLES
from skyvault.vo.adql import catalog_from_tables, translate

QUADRANTS = (1, 2)
SOURCES = 40
MEMBER = Requester(user_id=-1, username="member", programs=frozenset({1, 2}))
CATALOG = catalog_from_tables(list(PUBLISHED_TABLES))


@pytest.fixture(scope="module", params=["null", "legacy"])
def archive(request, database: Database, tmp_path_factory) -> dict:
    """One night, exposure 1 without a zero point; its manifest says so with nulls, or with
    the sentinels older pipelines wrote."""
    spec = NightSpec(exposures=3, quadrants=QUADRANTS, sources=SOURCES, unmeasured=(1,),
                     legacy_sentinels=request.param == "legacy", unmatched_candidates=1,
                     seed=13)
    handle = fresh_database(database.urls.admin, f"ingest_unknown_{request.param}")
    base = tmp_path_factory.mktemp(f"unknown-{request.param}")
    night = write_night(base / "products", spec)
    summary = ingest_paths([night.root], database=handle, store=LocalFileStore(base / "store"),
                           quarantine_root=base / "quarantine")
    assert summary.ok and summary.quarantined == 0, summary.lines()
    mags = np.concatenate([fitsio.read(str(path), ext=1, columns=["mag"])["mag"]
                           for path in sorted(Path(night.root).glob("sci/**/*_psfcat.fits"))])
    diffcats = [fitsio.read(str(path), ext=1, columns=list(NEIGHBOUR_COLUMNS))
                for path in sorted(Path(night.root).glob("sci/**/*_diffcat.fits"))]
    neighbours = {name: np.concatenate([d[name] for d in diffcats]).astype(np.float64)
                  for name in NEIGHBOUR_COLUMNS}
    return {"db": handle, "mags": mags.astype(np.float64), "neighbours": neighbours}


def adql(archive: dict, query: str) -> list[tuple]:
    translated = translate(query, CATALOG, max_rows=100_000)
    with archive["db"].reading(MEMBER, user_query=True) as connection:
        return connection.execute(translated.sql, translated.params).fetchall()


def test_nan_magnitudes_are_stored_as_null(archive: dict) -> None:
    unknown = int(np.isnan(archive["mags"]).sum())
    assert unknown == len(QUADRANTS) * SOURCES  # the failed exposure's sources
    with archive["db"].admin() as connection:
        for table in ("survey.psf_sources", "survey.aperture_sources"):
            nan, null = connection.execute(
                f"SELECT count(*) FILTER (WHERE mag = 'NaN' OR magerr = 'NaN'),"
                f" count(*) FILTER (WHERE mag IS NULL AND magerr IS NULL) FROM {table}"
            ).fetchone()
            assert (nan, null) == (0, unknown), table
            # the row is still there, with what was measured
            assert connection.execute(
                f"SELECT count(*) FROM {table} WHERE mag IS NULL AND flux IS NOT NULL"
            ).fetchone()[0] == unknown


def test_adql_treats_unknown_magnitudes_as_sql_nulls(archive: dict) -> None:
    """ADQL 2.1 section 2.2.3 (SQL's three-valued logic): a NULL is neither above nor below
    20, is found by IS NULL, is left out of AVG, and sorts where PostgreSQL puts NULLs
    (after every value ascending, before every value descending)."""
    mags = archive["mags"]
    known = mags[np.isfinite(mags)]
    (null,), = adql(archive, "SELECT COUNT(*) FROM survey.psf_sources WHERE mag IS NULL")
    (faint,), = adql(archive, "SELECT COUNT(*) FROM survey.psf_sources WHERE mag > 20")
    (bright,), = adql(archive, "SELECT COUNT(*) FROM survey.psf_sources WHERE NOT mag > 20")
    (mean, counted), = adql(archive, "SELECT AVG(mag), COUNT(mag) FROM survey.psf_sources")
    assert null == int(np.isnan(mags).sum()) > 0
    assert faint == int((known > 20).sum()) and bright == int((known <= 20).sum())
    assert counted == len(known) and not math.isnan(mean)
    assert mean == pytest.approx(float(np.mean(known.astype(np.float32))), rel=1e-6)
    ascending = [row[0] for row in adql(archive, "SELECT mag FROM survey.psf_sources "
                                                 "ORDER BY mag")]
    descending = [row[0] for row in adql(archive, "SELECT mag FROM survey.psf_sources "
                                                  "ORDER BY mag DESC")]
    assert ascending[len(known):] == [None] * null and descending[:null] == [None] * null
    assert ascending[:len(known)] == sorted(ascending[:len(known)])


def test_candidates_without_a_neighbour_have_null_neighbour_fields(archive: dict) -> None:
    """survey.candidates (the diffcats): where the pipeline found no catalog source within
    30 arcsec it writes NaN; the catalog holds NULL, no float column of any candidate is NaN,
    and ADQL's comparisons and AVG see only the measured distances."""
    floats = [c.name for c in CANDIDATES.columns if c.type in (FLOAT, DOUBLE)]
    with archive["db"].admin() as connection:
        nan = connection.execute(
            "SELECT count(*) FROM survey.candidates WHERE "
            + " OR ".join(f"{name} = 'NaN'" for name in floats)).fetchone()[0]
        counts = connection.execute(
            "SELECT count(*), "
            + ", ".join(f"count(*) FILTER (WHERE {name} IS NULL)" for name in NEIGHBOUR_COLUMNS)
            + " FROM survey.candidates").fetchone()
    assert nan == 0
    total, nulls = counts[0], dict(zip(NEIGHBOUR_COLUMNS, counts[1:], strict=True))
    for name, values in archive["neighbours"].items():
        assert total == len(values)
        assert nulls[name] == int(np.isnan(values).sum()) > 0, name
    distances = archive["neighbours"]["distnr"]
    known = distances[np.isfinite(distances)]
    (far,), = adql(archive, "SELECT COUNT(*) FROM survey.candidates WHERE distnr > 5")
    (unknown,), = adql(archive, "SELECT COUNT(*) FROM survey.candidates WHERE distnr IS NULL")
    (mean,), = adql(archive, "SELECT AVG(distnr) FROM survey.candidates")
    assert far == int((known > 5).sum()) and unknown == len(distances) - len(known)
    assert mean == pytest.approx(float(np.mean(known.astype(np.float32))), rel=1e-6)


def test_images_without_a_zero_point_have_null_photometry(archive: dict) -> None:
    with archive["db"].admin() as connection:
        rows = connection.execute(
            "SELECT magzp, maglimit, magzprms FROM survey.science_images ORDER BY expid, rcid"
        ).fetchall()
        sentinels = connection.execute(
            "SELECT (SELECT count(*) FROM survey.science_images WHERE maglimit = -99"
            " OR magzp = -99 OR magzprms < 0 OR astrom_rms < 0)"
            " + (SELECT count(*) FROM survey.reference_images WHERE maglimit = -99"
            " OR magzp = -99 OR magzprms < 0)"
            " + (SELECT count(*) FROM survey.difference_images WHERE maglimit = -99)"
        ).fetchone()[0]
    assert sentinels == 0
    unknown = [row for row in rows if row == (None, None, None)]
    assert len(unknown) == len(QUADRANTS) and len(rows) == 3 * len(QUADRANTS)
    (mean,), = adql(archive, "SELECT AVG(maglimit) FROM survey.science_images")
    assert mean == pytest.approx(20.8, abs=1e-5)  # the measured images' depth, nothing else


def test_frames_without_a_sky_position_have_null_positions(archive: dict) -> None:
    """Bias and flat frames: NULL pointing, NULL image centre, NULL s_ra/s_dec in ObsCore, so
    a cone at the pole (where their header says the telescope was) finds none of them."""
    with archive["db"].admin() as connection:
        exposures = connection.execute(
            "SELECT imgtypecode, telra, teldec FROM survey.exposures ORDER BY expid").fetchall()
        raws = connection.execute(
            "SELECT e.imgtypecode, r.ra, r.dec FROM survey.raw_images r"
            " JOIN survey.exposures e USING (expid)").fetchall()
    assert sorted(code for code, *_ in exposures) == ["b", "f", "o", "o", "o"]
    for code, ra, dec in exposures + raws:
        assert (ra is None and dec is None) == (code != "o"), (code, ra, dec)
    obscore = adql(archive, "SELECT obs_id, s_ra, s_dec, s_region FROM ivoa.obscore "
                            "WHERE calib_level = 1")
    assert sum(1 for _, ra, dec, region in obscore
               if ra is None and dec is None and region is None) == 2
    for query in (
        "SELECT obs_publisher_did FROM ivoa.obscore WHERE "
        "1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 0, 90, 1))",
        "SELECT rawid FROM survey.raw_images WHERE "
        "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 0, 90, 1))",
        "SELECT expid FROM survey.exposures WHERE "
        "1 = CONTAINS(POINT('ICRS', telra, teldec), CIRCLE('ICRS', 0, 90, 1))",
    ):
        assert adql(archive, query) == [], query
