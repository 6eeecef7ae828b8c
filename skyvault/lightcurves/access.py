"""Reading objects and light curves as a requester sees them: what services call.

Every function takes a connection from ``skyvault.db.Database.reading(requester)`` (or the
convenience wrappers open one): row-level security on the detections decides which epochs
exist, so a light curve holds the requester's visible epochs only, an object none of whose
epochs are visible is not found, and statistics are those of the visible epochs. No function
here knows the embargo rule.

An object's points are read from survey.lightcurves by oid: one index range in the one sky cell
that holds the object (the table is filed under its objects), plus one in each night not yet
compacted.

    with database().reading(requester) as connection:
        objects = objects_in_cone(connection, 80.0, 60.0, 2 / 3600)
        curves = lightcurves(connection, [row["oid"] for row in objects])
        limits = upper_limits(connection, objects[0]["oid"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.releases.dating import released_sql
from skyvault.schema.model import Table
from skyvault.schema.objects_sql import GOOD_FLAGS_MASK, METRIC_NAMES
from skyvault.schema.tables import LIGHTCURVES, OBJECT_REGISTRY, OBJECTS, SCIENCE_IMAGES

MJD_OFFSET = 2400000.5
AT_RELEASE = "%(released_at)s::timestamptz"

LIGHTCURVE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("oid", "o.oid"),
    ("expid", "d.expid"),
    ("pid", "d.pid"),
    ("mjd", f"d.obsjd - {MJD_OFFSET}"),
    ("obsjd", "d.obsjd"),
    # Single-precision values as double precision: the exact values survey.objects computes
    # with (a real's shortest text form, read as a double, differs from it by up to 1e-6).
    ("mag", "(d.mag + coalesce(i.relphot_corr, 0))::double precision"),
    ("magerr", "d.magerr::double precision"),
    ("mag_uncorrected", "d.mag"),
    ("relphot_corr", "i.relphot_corr"),
    ("catflags", "d.flags"),
    ("filtercode", "d.filtercode"),
    ("fid", "d.fid"),
    ("ra", "d.ra"),
    ("dec", "d.dec"),
    ("chi", "d.chi"),
    ("sharp", "d.sharpness"),
    ("snr", "d.snr"),
    ("filefracday", "i.filefracday"),
    ("field", "i.field"),
    ("ccdid", "i.ccdid"),
    ("qid", "i.qid"),
    ("limitmag", "i.maglimit"),
    ("magzp", "i.magzp"),
    ("magzprms", "i.magzprms"),
    ("exptime", "i.exptime"),
    ("airmass", "i.airmass"),
    ("seeing", "i.seeing"),
    ("infobits", "i.infobits"),
    ("programid", "d.programid"),
)
"""A light-curve point: the columns of IRSA's ZTF light-curve service (mjd at the start of the
exposure; mag with the relative photometric correction applied, the pipeline's value kept in
mag_uncorrected), and the image's identifiers for links to it."""

UPPER_LIMIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("oid", "o.oid"),
    ("expid", "i.expid"),
    ("pid", "i.pid"),
    ("mjd", f"i.obsjd - {MJD_OFFSET}"),
    ("obsjd", "i.obsjd"),
    ("limitmag", "i.maglimit"),
    ("filtercode", "i.filtercode"),
    ("field", "i.field"),
    ("ccdid", "i.ccdid"),
    ("qid", "i.qid"),
    ("filefracday", "i.filefracday"),
    ("magzp", "i.magzp"),
    ("magzprms", "i.magzprms"),
    ("exptime", "i.exptime"),
    ("airmass", "i.airmass"),
    ("programid", "i.programid"),
)
OBJECT_COLUMNS = OBJECTS.column_names


def _epochs_sql(columns: Sequence[tuple[str, str]], extra: str = "") -> str:
    # OFFSET 0 keeps the lateral subquery apart: each object's points are read by its own
    # index range in its own cell, never by a join over whole partitions, which the planner
    # may prefer while the tables are small.
    select = ", ".join(f"{expression} AS {name}" for name, expression in columns)
    return f"""
SELECT {select}
  FROM {OBJECT_REGISTRY.qualified_name} o
  JOIN LATERAL (SELECT * FROM {LIGHTCURVES.qualified_name} s WHERE s.oid = o.oid
                OFFSET 0) d ON true
  JOIN survey.science_images i ON i.pid = d.pid
 WHERE o.oid = ANY(%(oids)s){extra}
 ORDER BY o.oid, d.obsjd"""


@dataclass(frozen=True)
class EpochFilter:
    """Which points of a light curve to return (IRSA's TIME, BAD_CATFLAGS_MASK, BANDNAME)."""

    mjd_min: float | None = None
    mjd_max: float | None = None
    bad_catflags_mask: int | None = None
    """Points with any of these flag bits are left out."""
    filtercodes: tuple[str, ...] = ()
    released_at: datetime | None = None
    """Only the points a data release of this date holds (skyvault/releases/dating.py: public
    at that instant), besides what row-level security shows the requester."""

    def time_and_release(self, alias: str, table: Table) -> tuple[list[str], dict[str, Any]]:
        """The conditions of TIME and of the release on rows of ``table`` named ``alias``
        (points, or the images of upper limits), and their parameters."""
        parts: list[str] = []
        values: dict[str, Any] = {}
        if self.released_at is not None:
            assert table.embargo is not None
            parts.append(released_sql(table.embargo, AT_RELEASE, alias))
            values["released_at"] = self.released_at
        if self.mjd_min is not None:
            parts.append(f"{alias}.obsjd >= %(jd_min)s")
            values["jd_min"] = self.mjd_min + MJD_OFFSET
        if self.mjd_max is not None:
            parts.append(f"{alias}.obsjd <= %(jd_max)s")
            values["jd_max"] = self.mjd_max + MJD_OFFSET
        return parts, values

    def sql(self) -> tuple[str, dict[str, Any]]:
        parts, values = self.time_and_release("d", LIGHTCURVES)
        if self.bad_catflags_mask is not None:
            parts.append("(d.flags & %(bad_flags)s) = 0")
            values["bad_flags"] = self.bad_catflags_mask
        if self.filtercodes:
            parts.append("o.filtercode = ANY(%(filtercodes)s)")
            values["filtercodes"] = list(self.filtercodes)
        return "".join(f" AND {part}" for part in parts), values

    def keeps(self, obsjd: float, catflags: int | None, filtercode: str) -> bool:
        """Whether a point passes TIME, BAD_CATFLAGS_MASK and BANDNAME: ``sql``'s rules, on a
        point already read (the release's is not repeated: it was read with it)."""
        if self.mjd_min is not None and not obsjd >= self.mjd_min + MJD_OFFSET:
            return False
        if self.mjd_max is not None and not obsjd <= self.mjd_max + MJD_OFFSET:
            return False
        if self.bad_catflags_mask is not None and (int(catflags or 0)
                                                   & self.bad_catflags_mask):
            return False
        return not self.filtercodes or filtercode in self.filtercodes


def lightcurves(connection: psycopg.Connection, oids: Iterable[int],
                epochs: EpochFilter | None = None) -> dict[int, list[dict[str, Any]]]:
    """The visible points of each object's light curve, in time order (LIGHTCURVE_COLUMNS);
    objects with no visible point are absent."""
    extra, values = (epochs or EpochFilter()).sql()
    curves: dict[int, list[dict[str, Any]]] = {}
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.execute(_epochs_sql(LIGHTCURVE_COLUMNS, extra),
                       {"oids": [int(oid) for oid in oids], **values})
        for row in cursor:
            curves.setdefault(row["oid"], []).append(row)
    return curves


def lightcurve_arrays(connection: psycopg.Connection,
                      oids: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
    """The same points as numpy columns per object (mjd, mag, magerr, catflags, ra, dec, ...)."""
    out = {}
    for oid, points in lightcurves(connection, oids).items():
        out[oid] = {name: np.array([p[name] for p in points], dtype=float if name not in (
            "filtercode",) else object) for name, _ in LIGHTCURVE_COLUMNS}
    return out


def good_epochs(flags: np.ndarray, mag: np.ndarray, magerr: np.ndarray) -> np.ndarray:
    """The epochs statistics use (schema/objects_sql.py GOOD_FLAGS_MASK)."""
    flags = np.asarray(flags).astype(np.int64)
    return ((flags & GOOD_FLAGS_MASK) == 0) & np.isfinite(mag) & (np.asarray(magerr) > 0)


def objects_by_oid(connection: psycopg.Connection,
                   oids: Iterable[int]) -> list[dict[str, Any]]:
    """Rows of survey.objects (identity and statistics of the visible epochs)."""
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(f"SELECT * FROM {OBJECTS.qualified_name} WHERE oid = ANY(%s)"
                              " ORDER BY oid", ([int(oid) for oid in oids],)).fetchall()


def objects_in_cone(connection: psycopg.Connection, ra: float, dec: float, radius_deg: float,
                    *, filtercodes: Sequence[str] = (), nobs_min: int | None = None
                    ) -> list[dict[str, Any]]:
    """survey.objects whose position is within ``radius_deg`` of (ra, dec), nearest first,
    with ``distance_arcsec``; ``nobs_min`` counts visible epochs."""
    conditions = ["q3c_radial_query(ra, dec, %(ra)s, %(dec)s, %(radius)s)"]
    values: dict[str, Any] = {"ra": ra, "dec": dec, "radius": radius_deg}
    if filtercodes:
        conditions.append("filtercode = ANY(%(filtercodes)s)")
        values["filtercodes"] = list(filtercodes)
    if nobs_min is not None:
        conditions.append("nobs >= %(nobs_min)s")
        values["nobs_min"] = nobs_min
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"SELECT *, q3c_dist(ra, dec, %(ra)s, %(dec)s) * 3600 AS distance_arcsec"
            f" FROM {OBJECTS.qualified_name} WHERE {' AND '.join(conditions)}"
            f" ORDER BY distance_arcsec, oid", values).fetchall()


def oids_in_cone(connection: psycopg.Connection, ra: float, dec: float, radius_deg: float,
                 filtercodes: Sequence[str] = ()) -> list[int]:
    """The identifiers of the objects within ``radius_deg`` whose epochs the requester may see
    (some of them), nearest first, without computing statistics: what a light-curve request
    by position needs before ``lightcurves``."""
    band = " AND filtercode = ANY(%(filtercodes)s)" if filtercodes else ""
    rows = connection.execute(
        f"SELECT oid FROM {OBJECT_REGISTRY.qualified_name}"
        " WHERE q3c_radial_query(ra, dec, %(ra)s, %(dec)s,"
        f" %(radius)s){band} ORDER BY q3c_dist(ra, dec, %(ra)s, %(dec)s), oid",
        {"ra": ra, "dec": dec, "radius": radius_deg, "filtercodes": list(filtercodes)})
    return [row[0] for row in rows]


def upper_limits(connection: psycopg.Connection, oid: int) -> list[dict[str, Any]]:
    """Images of the object's filter whose footprint holds its position and in which it was
    not detected (their 5-sigma limiting magnitude), visible ones only, in time order; none
    for an object the requester may not see."""
    return upper_limits_of(connection, [oid]).get(int(oid), [])


def upper_limits_of(connection: psycopg.Connection, oids: Iterable[int],
                    epochs: EpochFilter | None = None) -> dict[int, list[dict[str, Any]]]:
    """``upper_limits`` of several objects, within the filter's time range and (for a data
    release) among its images; objects without any are absent."""
    epochs = epochs or EpochFilter()
    select = ", ".join(f"{expression} AS {name}" for name, expression in UPPER_LIMIT_COLUMNS)
    parts, values = epochs.time_and_release("i", SCIENCE_IMAGES)
    values["oids"] = [int(oid) for oid in oids]
    extra = "".join(f" AND {part}" for part in parts)
    limits: dict[int, list[dict[str, Any]]] = {}
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f"""
SELECT {select}
  FROM {OBJECT_REGISTRY.qualified_name} o
  JOIN survey.science_images i
    ON i.footprint @> spoint(radians(o.ra), radians(o.dec)) AND i.fid = o.fid
       AND i.is_current = 1
 WHERE o.oid = ANY(%(oids)s){extra}
   AND NOT EXISTS (SELECT FROM {LIGHTCURVES.qualified_name} s
                    WHERE s.oid = o.oid AND s.pid = i.pid)
 ORDER BY o.oid, i.obsjd""", values)
        for row in cursor:
            limits.setdefault(row["oid"], []).append(row)
    return limits


# -- convenience for callers without a transaction of their own -------------------------------


def lightcurve(database: Database, oids: Iterable[int], requester: Requester = ANONYMOUS,
               epochs: EpochFilter | None = None) -> dict[int, list[dict[str, Any]]]:
    with database.reading(requester) as connection:
        return lightcurves(connection, oids, epochs)


def cone(database: Database, ra: float, dec: float, radius_deg: float,
         requester: Requester = ANONYMOUS) -> list[dict[str, Any]]:
    with database.reading(requester) as connection:
        return objects_in_cone(connection, ra, dec, radius_deg)


__all__ = ["LIGHTCURVE_COLUMNS", "METRIC_NAMES", "OBJECT_COLUMNS", "UPPER_LIMIT_COLUMNS",
           "EpochFilter", "cone", "good_epochs", "lightcurve", "lightcurve_arrays",
           "lightcurves", "objects_by_oid", "objects_in_cone", "oids_in_cone", "upper_limits",
           "upper_limits_of"]
