"""Migration 0011 fixes the rows stored before it: NaN floats, -99 / -1 sentinels and the fake
zenith pointing of bias and flat frames become NULL (issue 13 items 3 and 4, issue 18)."""

from __future__ import annotations

import psycopg
import pytest

from skyvault.db import Database
from skyvault.schema.migrate import current_revision, downgrade, head_revision, upgrade

OLD_ROWS = """
INSERT INTO survey.exposures (expid, obsjd, telra, teldec, imgtypecode, itid, programid,
                              release_date)
VALUES (1, 2460000.5, 150.0, 20.0, 'o', 1, 1, '2020-01-01'),
       (2, 2460000.4, 0.0, 90.0, 'b', 2, 1, '2020-01-01'),
       (3, 2460000.41, 0.0, 90.0, 'f', 4, 1, '2020-01-01');
INSERT INTO survey.raw_images (rawid, expid, obsjd, ra, dec, footprint, programid, release_date)
VALUES (11, 1, 2460000.5, 150.0, 20.0,
        '{(149.9d,19.9d),(150.1d,19.9d),(150.1d,20.1d),(149.9d,20.1d)}', 1, '2020-01-01'),
       (12, 2, 2460000.4, 0.0, 90.0, NULL, 1, '2020-01-01'),
       (13, 3, 2460000.41, 0.0, 90.0, NULL, 1, '2020-01-01');
INSERT INTO survey.science_images (pid, expid, rawid, obsjd, ra, dec, maglimit, magzp, magzprms,
                                   astrom_rms, programid, release_date)
VALUES (21, 1, 11, 2460000.5, 150.0, 20.0, 20.7, 26.1, 0.03, 0.08, 1, '2020-01-01'),
       (22, 1, 11, 2460000.5, 150.05, 20.0, -99, -99, -1, -1, 1, '2020-01-01');
INSERT INTO survey.reference_images (refid, ra, dec, maglimit, magzp, magzprms, release_date)
VALUES (31, 150.0, 20.0, -99, -99, -1, '2020-01-01');
INSERT INTO survey.difference_images (diffid, pid, refid, obsjd, ra, dec, maglimit, programid,
                                      release_date)
VALUES (41, 22, 31, 2460000.5, 150.05, 20.0, -99, 1, '2020-01-01');
CREATE TABLE survey.psf_sources_m11 PARTITION OF survey.psf_sources FOR VALUES FROM (1) TO (2);
INSERT INTO survey.psf_sources (sourceid, pid, nid, ra, dec, mag, magerr, snr, obsjd, programid,
                                release_date)
VALUES (51, 21, 1, 150.0, 20.0, 18.5, 0.02, 50, 2460000.5, 1, '2020-01-01'),
       (52, 22, 1, 150.05, 20.0, 'NaN', 'NaN', 40, 2460000.5, 1, '2020-01-01'),
       (53, 22, 1, 150.06, 20.0, 'NaN', 0.1, 'NaN', 2460000.5, 1, '2020-01-01');
CREATE TABLE survey.candidates_m11 PARTITION OF survey.candidates FOR VALUES FROM (1) TO (2);
INSERT INTO survey.candidates (candid, diffid, pid, nid, jd, ra, dec, magpsf, distnr, magnr,
                               diffmaglim, rb, programid, release_date)
VALUES (41000001, 41, 22, 1, 2460000.5, 150.05, 20.0, 19.2, 0.4, 17.5, 20.5, 0.9, 1,
        '2020-01-01'),
       (41000002, 41, 22, 1, 2460000.5, 150.051, 20.0, 'NaN', 'NaN', 'NaN', 'NaN', 'NaN', 1,
        '2020-01-01');
"""
COMPACTED_ROWS = """
CREATE TABLE survey.candidates_sky_m11 PARTITION OF survey.candidates_sky
    FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
INSERT INTO survey.candidates (candid, diffid, pid, nid, jd, ra, dec, magpsf, distnr, magnr,
                               diffmaglim, rb, programid, release_date, placement)
VALUES (41000003, 41, 22, 1, 2460000.5, 150.052, 20.0, 19.4, 'NaN', 'NaN', 20.5, 0.2, 1,
        '2020-01-01', 1);
"""
"""A night compacted into a sky cell (migration 0015), between 0015 and 0011."""


def _other_database(database: Database, name: str) -> str:
    with database.admin(autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return database.urls.admin.replace("/skyvault?", f"/{name}?")


def test_stored_unknowns_become_null_and_the_downgrade_restores_the_constraints(
        database: Database) -> None:
    url = _other_database(database, "migrate_unknowns")
    upgrade(url, "0017")  # catalogs by night only
    with psycopg.connect(url) as connection:
        connection.execute(OLD_ROWS)
    upgrade(url, "0015")  # the revision before 0011: nights and sky cells
    with psycopg.connect(url) as connection:
        connection.execute(COMPACTED_ROWS)
    upgrade(url)
    assert current_revision(url) == head_revision()
    with psycopg.connect(url) as connection:
        sources = connection.execute(
            "SELECT sourceid, mag, magerr, snr FROM survey.psf_sources ORDER BY sourceid"
        ).fetchall()
        images = connection.execute(
            "SELECT pid, maglimit, magzp, magzprms, astrom_rms FROM survey.science_images"
            " ORDER BY pid").fetchall()
        reference = connection.execute(
            "SELECT maglimit, magzp, magzprms FROM survey.reference_images").fetchone()
        difference = connection.execute(
            "SELECT maglimit FROM survey.difference_images").fetchone()
        exposures = connection.execute(
            "SELECT expid, telra, teldec FROM survey.exposures ORDER BY expid").fetchall()
        candidates = connection.execute(
            "SELECT candid, magpsf, distnr, magnr, diffmaglim, rb FROM survey.candidates"
            " ORDER BY candid").fetchall()
        raws = connection.execute(
            "SELECT rawid, ra, dec FROM survey.raw_images ORDER BY rawid").fetchall()
        obscore = connection.execute(
            "SELECT image_id, s_ra, s_dec FROM ivoa.obscore WHERE image_table = 'raw_images'"
            " ORDER BY image_id").fetchall()
    assert sources == [(51, 18.5, 0.02, 50.0), (52, None, None, 40.0), (53, None, 0.1, None)]
    assert [row[1:] for row in images] == [(20.7, 26.1, 0.03, 0.08), (None,) * 4]
    assert reference == (None, None, None) and difference == (None,)
    assert candidates[0][1:] == pytest.approx((19.2, 0.4, 17.5, 20.5, 0.9))
    assert candidates[1][1:] == (None,) * 5
    assert candidates[2][1:] == (pytest.approx(19.4), None, None, pytest.approx(20.5),
                                 pytest.approx(0.2))
    assert exposures == [(1, 150.0, 20.0), (2, None, None), (3, None, None)]
    assert raws == [(11, 150.0, 20.0), (12, None, None), (13, None, None)]
    assert obscore == raws

    downgrade(url, "0015")
    with psycopg.connect(url) as connection:
        restored = connection.execute(
            "SELECT rawid, ra, dec FROM survey.raw_images ORDER BY rawid").fetchall()
        not_null = connection.execute(
            "SELECT count(*) FROM pg_attribute WHERE attnotnull AND attname IN"
            " ('ra', 'dec', 'telra', 'teldec') AND attrelid IN"
            " ('survey.raw_images'::regclass, 'survey.exposures'::regclass)").fetchone()[0]
    assert restored == [(11, 150.0, 20.0), (12, 0.0, 90.0), (13, 0.0, 90.0)]
    assert not_null == 4
    upgrade(url)
    assert current_revision(url) == head_revision()
