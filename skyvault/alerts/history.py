"""What an alert is made of, read from the archive through one connection: the stream
requester's (``Stream.requester`` through ``Database.reading``), so row-level security decides
what exists, and every history is held to the stream's rule in SQL (``history_programs``).

- ``alert_rows``: the alert candidates with their program, science image (zero point,
  exposure time), reference co-add (``rfid``, its epochs) and the store paths of the three
  images the stamps are cut from;
- ``detections``: each alert's previous candidates within 1.5 arcsec over 30 days;
- ``previous_images``: each alert's previous difference images over 30 days whose footprint
  holds the position; ``upper_limit_rows`` those with no candidate within 1.5 arcsec of it
  (ZTF's non-detections: the image's 5-sigma limit); ``fp_hists`` measures on them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from skyvault.geometry import radec_of, separation, unit_vectors
from skyvault.ingest.candidate_history import OBJECT_RADIUS_ARCSEC, history_programs
from skyvault.pipeline.process.candidates import ARTEFACT_FLAGS
from skyvault.schema.tables import CANDIDATES

HISTORY_DAYS = 30.0
RADIUS_DEG = OBJECT_RADIUS_ARCSEC / 3600
CANDIDATE_COLUMNS = tuple(column.name for column in CANDIDATES.columns)
CLEAN = f"(c.flags & {int(ARTEFACT_FLAGS)}) = 0"
"""An alert is raised for a candidate without artefact flags (pipeline/process/candidates.py)."""


def _file(table: str, key: str, product: str, alias: str) -> str:
    return (f"(SELECT f.path FROM survey.files f WHERE f.image_table = '{table}'"
            f" AND f.image_id = {key} AND f.product = '{product}' AND f.is_current = 1"
            f" ORDER BY f.proc_version DESC LIMIT 1) AS {alias}")


ALERT_SELECT = (
    "SELECT " + ", ".join(f"c.{name}" for name in CANDIDATE_COLUMNS)
    + ", p.name AS programpi, d.refid, r.startobsjd AS jdstartref, r.endobsjd AS jdendref,"
    " r.nframes AS nframesref, s.magzp AS magzpsci, s.magzprms AS magzpscirms,"
    " s.exptime, "
    + ", ".join([_file("science_images", "c.pid", "sciimg", "science_path"),
                 _file("reference_images", "d.refid", "refimg", "template_path"),
                 _file("difference_images", "c.diffid", "diffimg", "difference_path")])
    + " FROM survey.candidates c JOIN survey.programs p ON p.programid = c.programid"
    " LEFT JOIN survey.difference_images d ON d.diffid = c.diffid"
    " LEFT JOIN survey.reference_images r ON r.refid = d.refid"
    " LEFT JOIN survey.science_images s ON s.pid = c.pid")


def alert_rows(connection: psycopg.Connection, where: str, params: dict[str, Any],
               limit: int | None = None) -> list[dict[str, Any]]:
    """Alert candidates matching ``where`` (SQL on ``c``, survey.candidates), clean ones
    only, in order of difference image (the stamps read each image once)."""
    sql = f"{ALERT_SELECT} WHERE {CLEAN} AND ({where}) ORDER BY c.diffid, c.candid"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql, params).fetchall()


NEIGHBOURHOOD = (
    "SELECT " + ", ".join(f"o.{name}" for name in CANDIDATE_COLUMNS)
    + " FROM (SELECT %(programid)s::int2 AS programid) AS c JOIN survey.candidates o"
    " ON q3c_radial_query(o.ra, o.dec, %(ra)s, %(dec)s, %(reach)s)"
    " AND o.jd >= %(jd0)s AND o.jd < %(jd1)s"
    f" AND {history_programs('o', 'c')}"
    " ORDER BY o.jd, o.candid")
IMAGES_OF = (
    "SELECT s.pid, s.magzp AS magzpsci, s.magzprms AS magzpscirms, p.name AS programpi, "
    + _file("difference_images", "d.diffid", "diffimg", "difference_path")
    + " FROM survey.difference_images d JOIN survey.science_images s ON s.pid = d.pid"
    " JOIN survey.programs p ON p.programid = d.programid WHERE d.diffid = ANY(%(diffids)s)")
"""What a history's detections carry from their images (only those matched are read)."""
"""The candidates a group of alerts' histories are drawn from: within reach of the group's
centre, over the group's 30-day span, of the programs the rule allows (the group's alerts
share a program: they are on one difference image)."""


def _groups(alerts: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Alerts by difference image (consecutive: ``alert_rows`` orders them so)."""
    return [list(group) for _, group in
            itertools.groupby(alerts, key=lambda a: (a["diffid"], a["programid"]))]


def _neighbourhood(group: list[dict[str, Any]]) -> dict[str, Any]:
    ra = np.array([a["ra"] for a in group], dtype=float)
    dec = np.array([a["dec"] for a in group], dtype=float)
    jd = np.array([a["jd"] for a in group], dtype=float)
    centre_ra, centre_dec = radec_of(unit_vectors(ra, dec).sum(axis=0))
    reach = float(separation(ra, dec, centre_ra, centre_dec).max()) + RADIUS_DEG * 1.01
    return {"programid": group[0]["programid"], "ra": float(centre_ra),
            "dec": float(centre_dec), "reach": reach, "jd0": float(jd.min()) - HISTORY_DAYS,
            "jd1": float(jd.max())}


def detections(connection: psycopg.Connection,
               alerts: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each alert's previous detections within 1.5 arcsec over 30 days (any flags: ZTF's
    histories keep them), oldest first, with the difference image's file for
    ``pdiffimfilename``.

    The database finds each difference image's neighbourhood (one statement per image, with
    constants, so the q3c index answers it; the rule on programs and row-level security
    apply there), and numpy picks each alert's own rows from it. One statement joining all
    the alerts to the candidates was planned as a scan of every candidate per alert (the
    planner cannot estimate q3c's ranges): quadratic in a night's size
    (benchmarks/bench_alerts.py)."""
    found: dict[int, list[dict[str, Any]]] = {a["candid"]: [] for a in alerts}
    groups = _groups(alerts)
    if not groups:
        return found
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.executemany(NEIGHBOURHOOD, [_neighbourhood(g) for g in groups], returning=True)
        for group in groups:
            rows = cursor.fetchall()
            cursor.nextset()
            if not rows:
                continue
            ra = np.array([r["ra"] for r in rows], dtype=float)
            dec = np.array([r["dec"] for r in rows], dtype=float)
            jd = np.array([r["jd"] for r in rows], dtype=float)
            for alert in group:
                near = ((separation(ra, dec, alert["ra"], alert["dec"]) <= RADIUS_DEG)
                        & (jd >= alert["jd"] - HISTORY_DAYS) & (jd < alert["jd"]))
                found[alert["candid"]] = [rows[k] for k in np.flatnonzero(near)]
    matched = {row["diffid"] for history in found.values() for row in history}
    if matched:
        with connection.cursor(row_factory=dict_row) as cursor:
            images = {row.pop("pid"): row for row in cursor.execute(
                IMAGES_OF, {"diffids": sorted(matched)})}
        for history in found.values():
            for row in history:
                row.update(images.get(row["pid"], {}))
    return found


PREVIOUS_IMAGES = (
    "WITH near AS MATERIALIZED ("
    " SELECT d.diffid, d.pid, d.expid, d.refid, d.obsjd, d.nid, d.field, d.ccdid, d.qid,"
    " d.rcid, d.fid, d.filtercode, d.programid, d.exptime, d.maglimit, d.footprint"
    " FROM (SELECT %(programid)s::int2 AS programid) AS c JOIN survey.difference_images d"
    " ON d.footprint && scircle(spoint(radians(%(ra)s), radians(%(dec)s)), radians(%(reach)s))"
    " AND d.obsjd >= %(jd0)s AND d.obsjd < %(jd1)s AND d.is_current = 1"
    f" AND {history_programs('d', 'c')}),"
    " detected AS MATERIALIZED ("
    " SELECT o.diffid, array_agg(o.ra) AS ra, array_agg(o.dec) AS dec"
    " FROM survey.candidates o WHERE o.diffid IN (SELECT diffid FROM near)"
    " AND q3c_radial_query(o.ra, o.dec, %(ra)s, %(dec)s, %(reach)s) GROUP BY o.diffid)"
    " SELECT a.candid AS alert, n.diffid, n.pid, n.expid, n.refid, n.obsjd AS jd, n.nid,"
    " n.field, n.ccdid, n.qid, n.rcid, n.fid, n.filtercode, n.programid, n.exptime,"
    " n.maglimit AS diffmaglim, p.name AS programpi, s.magzp AS magzpsci,"
    " s.magzprms AS magzpscirms, s.seeing, s.infobits, r.startobsjd, r.endobsjd, "
    + _file("difference_images", "n.diffid", "diffimg", "difference_path")
    + ", EXISTS (SELECT FROM unnest(o.ra, o.dec) AS o(ra, dec)"
    "   WHERE q3c_sindist(a.ra, a.dec, o.ra, o.dec) < pow(sin(radians(%(radius)s) / 2), 2))"
    " AS detected"
    " FROM unnest(%(candids)s::bigint[], %(ras)s::float8[], %(decs)s::float8[],"
    " %(jds)s::float8[]) AS a(candid, ra, dec, jd)"
    " JOIN near n ON n.footprint @> spoint(radians(a.ra), radians(a.dec))"
    " AND n.obsjd >= a.jd - %(days)s AND n.obsjd < a.jd"
    " JOIN survey.programs p ON p.programid = n.programid"
    " LEFT JOIN survey.science_images s ON s.pid = n.pid"
    " LEFT JOIN survey.reference_images r ON r.refid = n.refid"
    " LEFT JOIN detected o ON o.diffid = n.diffid"
    " ORDER BY a.candid, n.obsjd, n.diffid")
"""A group of alerts' previous difference images (one difference image's alerts: they share a
program), oldest first: ``near`` is every image of the group's programs over its 30-day span
whose footprint meets the circle round the group (the footprints' GiST index, with constants),
``detected`` the candidates on those images within that circle (the q3c index); then each
alert's own: the images whose footprint holds it in its 30 days, and whether one of them has a
candidate within 1.5 arcsec of it (q3c_join's own distance test, without its index ranges,
which a scan of a few hundred rows does not need and which cost 0.3 ms per image and alert).
The rule on programs and row-level security apply in both.
One statement joining a batch's alerts to every difference image tested each footprint against
each alert, and scanned every candidate for the anti-join: 1.7 s per 500 alerts on a two-night
archive, growing with the archive (benchmarks/bench_alerts.py)."""

UPPER_LIMIT_KEYS = ("diffid", "pid", "jd", "fid", "nid", "rcid", "field", "programid",
                    "diffmaglim", "programpi", "magzpsci", "magzpscirms", "difference_path")
"""What an upper limit carries into its prv_candidate record."""


def previous_images(connection: psycopg.Connection,
                    alerts: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each alert's previous difference images over 30 days whose footprint holds its
    position, oldest first (``PREVIOUS_IMAGES``): its upper limits (``upper_limit_rows``) and
    its fp_hists' epochs (``fp_hists.epochs``) are drawn from them."""
    found: dict[int, list[dict[str, Any]]] = {a["candid"]: [] for a in alerts}
    groups = _groups(alerts)
    if not groups:
        return found
    params = [{**_neighbourhood(group), "radius": RADIUS_DEG, "days": HISTORY_DAYS,
               "candids": [a["candid"] for a in group], "ras": [a["ra"] for a in group],
               "decs": [a["dec"] for a in group], "jds": [a["jd"] for a in group]}
              for group in groups]
    with connection.cursor(row_factory=dict_row) as cursor:
        cursor.executemany(PREVIOUS_IMAGES, params, returning=True)
        while True:
            for row in cursor.fetchall():
                found[row.pop("alert")].append(row)
            if not cursor.nextset():
                break
    return found


def upper_limit_rows(images: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The previous images of an alert that hold no candidate within 1.5 arcsec of it (ZTF's
    non-detections: the image's 5-sigma limit)."""
    return [{key: image[key] for key in UPPER_LIMIT_KEYS} for image in images
            if not image["detected"]]


def upper_limits(connection: psycopg.Connection,
                 alerts: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each alert's previous difference images that held its position without detecting
    it, oldest first."""
    return {candid: upper_limit_rows(images)
            for candid, images in previous_images(connection, alerts).items()}
