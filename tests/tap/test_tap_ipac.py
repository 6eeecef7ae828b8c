"""TAP's IPAC table output (RESPONSEFORMAT=ipac, as IPAC's TAP services name it), read back by
astropy's ``ascii.ipac`` reader and compared, cell by cell, with what the database holds:
numbers exactly, NULLs as NULLs, timestamps, arrays, and long or non-ASCII text.

Format: IRSA's IPAC Table Format 1.2, https://irsa.ipac.caltech.edu/applications/DDGEN/Doc/ipac_tbl.html.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import requests
from astropy.io import ascii as astropy_ascii

from skyvault.access import Requester
from skyvault.db import Database

LONG_TEXT = ("Ωmega ✓ ü — " + "long values stay whole; " * 150).strip()


def ipac_rows(tap, query: str, who=None) -> tuple[list[str], list[tuple]]:
    response = requests.post(f"{tap.url}/sync", timeout=60, headers=who.headers if who else {},
                             data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "ipac"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain;charset=utf-8"
    table = astropy_ascii.read(response.content.decode("utf-8"), format="ipac", guess=False)
    rows = [tuple(None if np.ma.is_masked(v) else v for v in row) for row in table.iterrows()]
    return table.colnames, rows


def database_rows(database: Database, sql: str, who=None) -> list[tuple]:
    requester = Requester(user_id=-1, username=who.username if who else None,
                          programs=who.programs if who else frozenset())
    with database.reading(requester) as connection:
        return connection.execute(sql).fetchall()


def same(read, stored) -> bool:
    """A cell as astropy read it against the value PostgreSQL returned."""
    if stored is None:
        return read is None
    if read is None:
        return False
    if isinstance(stored, dt.datetime):
        moment = stored.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(str(read), "us") == np.datetime64(moment, "us")
    if isinstance(stored, list):
        return [float(v) for v in str(read).split()] == [float(v) for v in stored]
    if isinstance(stored, float):
        value = float(read)
        return (math.isnan(value) and math.isnan(stored)) or value == stored
    if isinstance(stored, int):
        return int(read) == stored
    return str(read) == stored


def assert_same(tap, database, columns: str, table_sql: str, who=None) -> int:
    names, read = ipac_rows(tap, f"SELECT {columns} {table_sql}", who)
    stored = database_rows(database, f"SELECT {columns} {table_sql}", who)
    assert len(read) == len(stored)
    for got, want in zip(read, stored, strict=True):
        for name, a, b in zip(names, got, want, strict=True):
            assert same(a, b), (name, a, b)
    return len(stored)


def test_science_images_as_the_database_holds_them(tap, database) -> None:
    columns = ("pid, expid, obsjd, obsdate, nid, field, ccdid, qid, rcid, fid, filtercode,"
               " filefracday, exptime, airmass, seeing, maglimit, magzp, magzprms, infobits,"
               " astrom_rms, nsources, ra, dec, ra1, dec1, crval1, cd11, naxis1, rawid,"
               " bias_calid, pipeline_version, processed_at, programid")
    rows = assert_same(tap, database, columns,
                       "FROM survey.science_images WHERE field = 600 ORDER BY pid", tap.alice)
    assert rows >= 6  # the public exposures and program 2's, for its member


def test_nulls_and_arrays(tap, database) -> None:
    assert assert_same(tap, database, "designation, name, number, orbit_type, epoch_mjd, a, q,"
                       " e, incl, node, peri, mean_anomaly, tp_mjd, h, g, uncertainty",
                       "FROM survey.solar_system_objects WHERE source = 'tap-test'"
                       " ORDER BY designation") == 4
    assert_same(tap, database, "refid, programids, startobsdate",
                "FROM survey.reference_images WHERE field = 600 ORDER BY refid")


def test_long_values_and_unicode(tap, database) -> None:
    names, read = ipac_rows(tap, f"SELECT TOP 1 '{LONG_TEXT}' AS long_text,"
                            " 9223372036854775807 AS big, 5e-324 AS tiny,"
                            " 1.7976931348623157e308 AS huge, -2147483648 AS small"
                            " FROM survey.programs")
    stored = database_rows(database, f"SELECT '{LONG_TEXT}'::text, 9223372036854775807::bigint,"
                           " 5e-324::float8, 1.7976931348623157e308::float8, -2147483648")
    assert names == ["long_text", "big", "tiny", "huge", "small"]
    assert len(read) == 1
    for a, b in zip(read[0], stored[0], strict=True):
        assert same(a, b), (a, b)
    assert read[0][0] == LONG_TEXT
