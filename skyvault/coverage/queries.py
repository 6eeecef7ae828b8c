"""Every SQL statement of the coverage, viewer and quality-assurance pages, in one place.

Each function takes a connection the caller opened as the requester (the web service's
``context.reading()``, or ``skyvault.db.Database.reading(requester)`` for commands): row-level
security decides which rows exist, so nothing here filters on embargo, and the same function
gives the public, a member and the owner of a program each their own answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from skyvault.coverage.selection import CoverageSelection, night_of_nid
from skyvault.pipeline.naming import nid_of
from skyvault.releases.dating import released_sql
from skyvault.releases.model import get_release
from skyvault.schema.tables import SCIENCE_IMAGES
from skyvault.vo.moc import Polygon, TimedFootprints
from skyvault.vo.votable import pgsphere_degrees

SCIENCE_COLLECTION = "SkyVault/sci"
JD_MJD = 2400000.5


class UnknownRelease(LookupError):
    """The selection names a release that was never declared."""


def _released_at_release_date(connection: psycopg.Connection, name: str) -> tuple[str, list]:
    """SQL (and its value) true for the science images public at release ``name``'s date by
    the release rules: what the release holds, as its export reads it."""
    release = get_release(connection, name)
    if release is None:
        raise UnknownRelease(f"no data release is named {name!r}")
    assert SCIENCE_IMAGES.embargo is not None
    released = released_sql(SCIENCE_IMAGES.embargo, "%s::timestamptz", "s")
    return (f"image_id IN (SELECT s.pid FROM survey.science_images s WHERE {released})",
            [release.release_date])


def _outline(region: str | None) -> Polygon | None:
    values = pgsphere_degrees(region)
    if not values or len(values) < 6:
        return None
    return list(zip(values[0::2], values[1::2], strict=True))


def science_exposures(connection: psycopg.Connection, selection: CoverageSelection,
                      ) -> list[TimedFootprints]:
    """The footprints (ObsCore ``s_region``) of the science images the selection means, one
    group per exposure with its time span."""
    where = ["obs_collection = %s"]
    values: list[object] = [SCIENCE_COLLECTION]
    if selection.filtercode:
        where.append("filtercode = %s")
        values.append(selection.filtercode)
    if selection.night:
        # The survey's own night key (nid), as the QA pages count nights.
        where.append("image_id IN (SELECT pid FROM survey.science_images WHERE nid = %s)")
        values.append(nid_of(selection.night))
    if selection.release:
        # Row-level security still applies: before the release date, the public's answer
        # holds only what is public already.
        condition, condition_values = _released_at_release_date(connection, selection.release)
        where.append(condition)
        values += condition_values
    rows = connection.execute(
        "SELECT obs_id, t_min, t_max, s_region::text FROM ivoa.obscore"
        f" WHERE {' AND '.join(where)} ORDER BY t_min, obs_id", values).fetchall()
    groups: dict[str, tuple[float, float, list[Polygon]]] = {}
    for obs_id, t_min, t_max, region in rows:
        outline = _outline(region)
        if outline is None or t_min is None:
            continue
        start, end, polygons = groups.get(obs_id, (t_min, t_max or t_min, []))
        polygons.append(outline)
        groups[obs_id] = (min(start, t_min), max(end, t_max or t_min), polygons)
    return [TimedFootprints(start + JD_MJD, end + JD_MJD, polygons)
            for start, end, polygons in groups.values()]


# -- quality assurance ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageQuality:
    """One science image's quality figures."""

    pid: int
    expid: int
    obsjd: float
    filtercode: str
    programid: int
    field: int | None
    rcid: int | None
    seeing: float | None
    maglimit: float | None
    magzp: float | None
    magzprms: float | None
    astrom_rms: float | None
    infobits: int | None
    nsources: int | None


_IMAGE_QUALITY = ("pid, expid, obsjd, filtercode::text, programid, field, rcid, seeing, maglimit,"
                  " magzp, magzprms, astrom_rms, infobits, nsources")


def night_images(connection: psycopg.Connection, nid: int) -> list[ImageQuality]:
    return [ImageQuality(*row) for row in connection.execute(
        f"SELECT {_IMAGE_QUALITY} FROM survey.science_images"
        " WHERE nid = %s AND is_current = 1 ORDER BY obsjd, rcid", (nid,))]


@dataclass(frozen=True)
class ExposureCount:
    programid: int
    filtercode: str
    exposures: int


def night_exposures(connection: psycopg.Connection, nid: int) -> list[ExposureCount]:
    return [ExposureCount(*row) for row in connection.execute(
        "SELECT programid, coalesce(filtercode::text, '?'), count(*) FROM survey.exposures"
        " WHERE nid = %s AND itid = 1 GROUP BY 1, 2 ORDER BY 1, 2", (nid,))]


@dataclass(frozen=True)
class MissingQuadrants:
    """Quadrants of visible raw CCD images without a (current) science image: the pipeline
    failed on them, or left them out."""

    expid: int
    ccdid: int
    missing: int


def night_missing_quadrants(connection: psycopg.Connection, nid: int,
                            quadrants_per_ccd: int = 4) -> list[MissingQuadrants]:
    return [MissingQuadrants(*row) for row in connection.execute(
        "SELECT r.expid, r.ccdid, %s - count(s.pid) FROM survey.raw_images r"
        " LEFT JOIN survey.science_images s ON s.rawid = r.rawid AND s.is_current = 1"
        " WHERE r.nid = %s AND r.is_current = 1 GROUP BY r.expid, r.ccdid"
        " HAVING count(s.pid) < %s ORDER BY r.expid, r.ccdid",
        (quadrants_per_ccd, nid, quadrants_per_ccd))]


@dataclass(frozen=True)
class NightSummary:
    nid: int
    exposures: int
    images: int
    filters: tuple[str, ...]
    seeing: float | None
    maglimit: float | None
    zp_scatter: float | None
    astrom_rms: float | None
    flagged: int
    first_jd: float | None
    last_jd: float | None

    @property
    def night(self) -> dt.date:
        return night_of_nid(self.nid)


def night_summaries(connection: psycopg.Connection) -> list[NightSummary]:
    """One row per night with visible science exposures: medians over its images."""
    rows = connection.execute("""
        WITH images AS (
            SELECT nid, count(*) AS images, array_agg(DISTINCT filtercode::text) AS filters,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY seeing) AS seeing,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY maglimit) AS maglimit,
                   stddev_samp(magzp) AS zp_scatter,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY astrom_rms) AS astrom_rms,
                   count(*) FILTER (WHERE infobits <> 0) AS flagged,
                   min(obsjd) AS first_jd, max(obsjd) AS last_jd
              FROM survey.science_images WHERE is_current = 1 GROUP BY nid),
        exposures AS (
            SELECT nid, count(*) AS exposures FROM survey.exposures WHERE itid = 1
             GROUP BY nid)
        SELECT coalesce(i.nid, e.nid), coalesce(e.exposures, 0), coalesce(i.images, 0),
               coalesce(i.filters, '{}'), i.seeing, i.maglimit, i.zp_scatter, i.astrom_rms,
               coalesce(i.flagged, 0), i.first_jd, i.last_jd
          FROM images i FULL JOIN exposures e ON e.nid = i.nid
         ORDER BY 1""").fetchall()
    return [NightSummary(row[0], row[1], row[2], tuple(sorted(row[3])), *row[4:])
            for row in rows]


def night_exists(connection: psycopg.Connection, nid: int) -> bool:
    return connection.execute(
        "SELECT EXISTS (SELECT 1 FROM survey.exposures WHERE nid = %s AND itid = 1)"
        " OR EXISTS (SELECT 1 FROM survey.science_images WHERE nid = %s)",
        (nid, nid)).fetchone()[0]


# -- the viewer -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochImages:
    """The images of one epoch of a quadrant: the science image, its reference and its
    difference, each None when the requester may not see it (or it does not exist)."""

    pid: int | None
    refid: int | None
    diffid: int | None


def epoch_images(connection: psycopg.Connection, collection: str,
                 image_id: int) -> EpochImages:
    """The science, reference and difference images that belong with an image."""
    if collection == "sci":
        row = connection.execute(
            "SELECT s.pid, (SELECT r.refid FROM survey.reference_images r"
            "   WHERE r.field = s.field AND r.rcid = s.rcid AND r.filtercode = s.filtercode"
            "     AND r.is_current = 1 ORDER BY r.refid DESC LIMIT 1),"
            " (SELECT d.diffid FROM survey.difference_images d WHERE d.pid = s.pid"
            "   AND d.is_current = 1 ORDER BY d.diffid DESC LIMIT 1)"
            " FROM survey.science_images s WHERE s.pid = %s", (image_id,)).fetchone()
    elif collection == "diff":
        row = connection.execute(
            "SELECT (SELECT pid FROM survey.science_images WHERE pid = d.pid),"
            " (SELECT refid FROM survey.reference_images WHERE refid = d.refid), d.diffid"
            " FROM survey.difference_images d WHERE d.diffid = %s", (image_id,)).fetchone()
    elif collection == "ref":
        row = connection.execute(
            "SELECT NULL::bigint, refid, NULL::bigint FROM survey.reference_images"
            " WHERE refid = %s", (image_id,)).fetchone()
    else:
        row = None
    return EpochImages(*row) if row else EpochImages(None, None, None)


def survey_centre(connection: psycopg.Connection) -> tuple[float, float] | None:
    """Where the sky viewer opens: the centre of the first science image the requester sees."""
    row = connection.execute(
        "SELECT ra, dec FROM survey.science_images WHERE is_current = 1 ORDER BY pid LIMIT 1"
    ).fetchone()
    return (float(row[0]), float(row[1])) if row else None


# -- HiPS -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceInput:
    """A reference co-add the HiPS is made of: its row and its image file."""

    refid: int
    filtercode: str
    path: str
    sha256: str
    corners: Polygon


def hips_inputs(connection: psycopg.Connection, filtercode: str) -> list[ReferenceInput]:
    """The current reference co-adds of a filter whose row and image file the connection's
    requester may see (the HiPS is built as the anonymous public)."""
    rows = connection.execute(
        "SELECT r.refid, r.filtercode::text, f.path, f.sha256, r.ra1, r.dec1, r.ra2, r.dec2,"
        " r.ra3, r.dec3, r.ra4, r.dec4 FROM survey.reference_images r"
        " JOIN survey.files f ON f.image_table = 'reference_images' AND f.image_id = r.refid"
        "  AND f.product = 'refimg' AND f.is_current = 1"
        " WHERE r.is_current = 1 AND r.filtercode = %s ORDER BY r.refid", (filtercode,))
    return [ReferenceInput(row[0], row[1], row[2], row[3].strip(),
                           list(zip(row[4::2], row[5::2], strict=True))) for row in rows]


def visible_references(connection: psycopg.Connection, refids: Sequence[int]) -> int:
    """How many of these reference co-adds, with their image files, the requester sees."""
    return connection.execute(
        "SELECT count(DISTINCT r.refid) FROM survey.reference_images r"
        " JOIN survey.files f ON f.image_table = 'reference_images' AND f.image_id = r.refid"
        "  AND f.product = 'refimg' AND f.is_current = 1"
        " WHERE r.refid = ANY(%s)", (list(refids),)).fetchone()[0]
