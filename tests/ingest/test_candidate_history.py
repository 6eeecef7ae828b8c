"""The step after ingest that needs the orbits: a candidate where a known asteroid was at
mid-exposure carries its name, distance and predicted magnitude (issue 17's ssnamenr)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from skyvault.db import Database
from skyvault.ingest.candidate_history import SOLAR_SYSTEM_RADIUS_ARCSEC, tag_solar_system
from skyvault.ingest.partitions import ensure_live
from skyvault.ingest.testing import fresh_database
from skyvault.sso.ephemeris import predict
from skyvault.sso.load import load_demo
from skyvault.sso.orbits import load_demo_orbits

OBSJD = 2461000.75  # 2025-12-20 06:00 UTC, exposure start
EXPTIME = 30.0
NID = 3275
HALF_DEG = 0.2


@pytest.fixture(scope="module")
def tagged(database: Database):
    handle = fresh_database(database.urls.admin, "candidate_history")
    orbit = next(o for o in load_demo_orbits() if o.orbit_type == "asteroid")
    mid_mjd = OBSJD - 2400000.5 + EXPTIME / 2 / 86400
    ephemeris = predict(orbit, [mid_mjd])
    ra, dec = float(ephemeris.ra[0]), float(ephemeris.dec[0])
    cos_dec = np.cos(np.radians(dec))
    observed = dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=OBSJD - 2451544.5)
    corners = [(ra - HALF_DEG / cos_dec, dec - HALF_DEG), (ra + HALF_DEG / cos_dec, dec - HALF_DEG),
               (ra + HALF_DEG / cos_dec, dec + HALF_DEG), (ra - HALF_DEG / cos_dec, dec + HALF_DEG)]
    offsets = {"on": (3.0, 0.0), "second": (20.0, 10.0), "far": (60.0, 0.0)}
    with handle.admin(autocommit=True) as connection:
        load_demo(connection)
        ensure_live(connection, "candidates", NID)
        connection.execute(
            "INSERT INTO survey.exposures (expid, obsjd, obsdate, nid, exptime, telra, teldec,"
            " itid, programid) VALUES (1, %s, %s, %s, %s, %s, %s, 1, 1)",
            (OBSJD, observed, NID, EXPTIME, ra, dec))
        connection.execute(
            "INSERT INTO survey.science_images (pid, expid, obsjd, obsdate, nid, field, ccdid,"
            " qid, rcid, exptime, ra, dec, ra1, dec1, ra2, dec2, ra3, dec3, ra4, dec4,"
            " footprint, programid) VALUES (10, 1, %s, %s, %s, 1, 1, 1, 0, %s,"
            " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::spoly, 1)",
            (OBSJD, observed, NID, EXPTIME, ra, dec, *[v for c in corners for v in c],
             "{" + ",".join(f"({a}d,{b}d)" for a, b in corners) + "}"))
        for number, (dx, dy) in enumerate(offsets.values(), start=1):
            connection.execute(
                "INSERT INTO survey.candidates (candid, diffid, pid, nid, jd, ra, dec, field,"
                " rcid, programid) VALUES (%s, 7, 10, %s, %s, %s, %s, 1, 0, 1)",
                (7_000_000 + number, NID, OBSJD, ra + dx / 3600 / cos_dec, dec + dy / 3600))
        count = tag_solar_system(connection, NID)
        rows = {candid: (distance, name, magnitude) for candid, distance, name, magnitude in
                connection.execute("SELECT candid, ssdistnr, ssnamenr, ssmagnr"
                                   " FROM survey.candidates").fetchall()}
    return {"orbit": orbit, "ephemeris": ephemeris, "count": count, "rows": rows,
            "offsets": offsets}


def test_a_candidate_on_a_known_asteroid_carries_its_name(tagged) -> None:
    orbit, rows = tagged["orbit"], tagged["rows"]
    distance, name, magnitude = rows[7_000_001]
    assert name == (orbit.name or orbit.designation)
    assert distance == pytest.approx(3.0, abs=0.05)
    assert magnitude == pytest.approx(float(tagged["ephemeris"].vmag[0]), abs=0.01)
    assert rows[7_000_002][0] == pytest.approx(np.hypot(20.0, 10.0), abs=0.05)


def test_nothing_beyond_30_arcsec_is_tagged(tagged) -> None:
    assert SOLAR_SYSTEM_RADIUS_ARCSEC == 30.0
    assert tagged["rows"][7_000_003] == (None, None, None)
    assert tagged["count"] == 2
