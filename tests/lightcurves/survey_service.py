"""The light-curve survey's archive over real HTTP, for the API and page tests: the data a
numpy brute force reads (the detections of survey.psf_sources, not the light-curve table the
service reads; the registry; the images' corners), a member of every program, and a data
release of the first half of the nights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightcurve_survey import SurveyArchive

from skyvault import db as db_module
from skyvault.accounts import model as accounts
from skyvault.db import APP_ROLE, Database, DatabaseUrls, _with_role_option

JD_MJD = 2400000.5
RELEASE = "LCDR-TEST"
MEMBER = "lightcurve-member"
MEMBER_PASSWORD = "lightcurve-member-password"


@dataclass(frozen=True)
class Served:
    base: str
    member_token: str
    cutoff_jd: float
    points: pd.DataFrame
    """Every detection with an object (psf_sources), mag with the relative correction."""
    objects: pd.DataFrame
    images: pd.DataFrame


def _brute_data(archive: SurveyArchive) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with archive.database.admin() as connection:
        points = pd.DataFrame(connection.execute(
            "SELECT s.oid, s.sourceid, s.expid, s.pid, s.obsjd,"
            " (s.mag + coalesce(i.relphot_corr, 0))::double precision AS mag,"
            " s.magerr::double precision AS magerr, s.flags,"
            " s.filtercode, s.ra, s.dec FROM survey.psf_sources s JOIN survey.science_images i"
            " USING (pid) WHERE s.oid IS NOT NULL").fetchall(),
            columns=["oid", "sourceid", "expid", "pid", "obsjd", "mag", "magerr", "flags",
                     "filtercode", "ra", "dec"])
        objects = pd.DataFrame(connection.execute(
            "SELECT oid, ra, dec, fid, filtercode FROM survey.object_registry").fetchall(),
            columns=["oid", "ra", "dec", "fid", "filtercode"])
        images = pd.DataFrame(connection.execute(
            "SELECT pid, fid, obsjd, maglimit, ra1, dec1, ra2, dec2, ra3, dec3, ra4, dec4"
            " FROM survey.science_images WHERE is_current = 1").fetchall(),
            columns=["pid", "fid", "obsjd", "maglimit", "ra1", "dec1", "ra2", "dec2", "ra3",
                     "dec3", "ra4", "dec4"])
    return points, objects, images


@contextmanager
def serve_survey(survey_archive: SurveyArchive, database: Database) -> Iterator[Served]:
    """The survey's archive served by an application of its own (its database in place of
    the session's until the block ends), with a member of every program and a data release
    of the first half of the nights, declared for the block; and the brute force's data."""
    from served_app import served_app

    handle = survey_archive.database
    url = handle.urls.admin
    points, objects, images = _brute_data(survey_archive)
    nights = np.sort(np.unique(np.floor(points["obsjd"] - 0.5)))
    cutoff_jd = float(nights[len(nights) // 2] + 0.5)
    with handle.admin() as connection:
        programs = [row[0] for row in connection.execute(
            "SELECT programid FROM survey.programs")]
        if connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                              (MEMBER,)).fetchone() is None:
            accounts.create_user(connection, MEMBER, MEMBER_PASSWORD)
            accounts.grant_programs(connection, MEMBER, set(programs))
        token = accounts.create_token(connection, MEMBER, "lightcurve api").token
        connection.execute(
            "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
            " programids) VALUES (%s, now() - interval '1 minute',"
            " to_timestamp((%s - 2440587.5) * 86400), %s) ON CONFLICT DO NOTHING",
            (RELEASE, cutoff_jd, programs))
    serving = Database(DatabaseUrls(admin=url, app=_with_role_option(url, APP_ROLE)))
    db_module.set_database(serving)
    try:
        with served_app({}) as base:
            yield Served(base, token, cutoff_jd, points, objects, images)
    finally:
        db_module.set_database(database)
        serving.close()
        with handle.admin() as connection:
            connection.execute("DELETE FROM survey.data_releases WHERE release_name = %s",
                               (RELEASE,))
