"""What an alert is made of, read from the archive through one connection: the stream
requester's (``Stream.requester`` through ``Database.reading``), so row-level security decides
what exists, and every history is held to the stream's rule in SQL (``history_programs``).

- ``alert_rows``: the alert candidates with their program, science image (zero point,
  exposure time), reference co-add (``rfid``, its epochs) and the store paths of the three
  images the stamps are cut from;
- ``detections``: each alert's previous candidates within 1.5 arcsec over 30 days;
- ``upper_limits``: each alert's previous difference images over 30 days whose footprint holds
  the position and which have no candidate within 1.5 arcsec of it (ZTF's non-detections:
  the image's 5-sigma limit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

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


def _alerts_table(alerts: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    return ("unnest(%(candid)s::bigint[], %(ra)s::float8[], %(dec)s::float8[],"
            " %(jd)s::float8[], %(programid)s::int2[]) AS c(candid, ra, dec, jd, programid)",
            {"candid": [a["candid"] for a in alerts], "ra": [a["ra"] for a in alerts],
             "dec": [a["dec"] for a in alerts], "jd": [a["jd"] for a in alerts],
             "programid": [a["programid"] for a in alerts], "radius": RADIUS_DEG,
             "days": HISTORY_DAYS})


def _by_alert(connection: psycopg.Connection, sql: str,
              params: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Rows of a statement whose first column, ``alert``, names the alert they belong to."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    with connection.cursor(row_factory=dict_row) as cursor:
        for row in cursor.execute(sql, params):
            found[row.pop("alert")].append(row)
    return found


def detections(connection: psycopg.Connection,
               alerts: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each alert's previous detections (any flags: ZTF's histories keep them), oldest
    first, with the difference image's file for ``pdiffimfilename``."""
    if not alerts:
        return {}
    table, params = _alerts_table(alerts)
    sql = ("SELECT c.candid AS alert, "
           + ", ".join(f"o.{name}" for name in CANDIDATE_COLUMNS)
           + ", p.name AS programpi, s.magzp AS magzpsci, s.magzprms AS magzpscirms, "
           + _file("difference_images", "o.diffid", "diffimg", "difference_path")
           + f" FROM {table} JOIN survey.candidates o"
           " ON q3c_join(c.ra, c.dec, o.ra, o.dec, %(radius)s)"
           " AND o.jd >= c.jd - %(days)s AND o.jd < c.jd"
           f" AND {history_programs('o', 'c')}"
           " JOIN survey.programs p ON p.programid = o.programid"
           " LEFT JOIN survey.science_images s ON s.pid = o.pid"
           " ORDER BY c.candid, o.jd, o.candid")
    return _by_alert(connection, sql, params)


def upper_limits(connection: psycopg.Connection,
                 alerts: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each alert's previous difference images that held its position without detecting
    it, oldest first."""
    if not alerts:
        return {}
    table, params = _alerts_table(alerts)
    sql = ("SELECT c.candid AS alert, d.diffid, d.pid, d.obsjd AS jd, d.fid, d.nid,"
           " d.rcid, d.field, d.programid, d.maglimit AS diffmaglim, p.name AS programpi,"
           " s.magzp AS magzpsci, s.magzprms AS magzpscirms, "
           + _file("difference_images", "d.diffid", "diffimg", "difference_path")
           + f" FROM {table} JOIN survey.difference_images d"
           " ON d.footprint @> spoint(radians(c.ra), radians(c.dec))"
           " AND d.obsjd >= c.jd - %(days)s AND d.obsjd < c.jd AND d.is_current = 1"
           f" AND {history_programs('d', 'c')}"
           " JOIN survey.programs p ON p.programid = d.programid"
           " LEFT JOIN survey.science_images s ON s.pid = d.pid"
           " WHERE NOT EXISTS (SELECT FROM survey.candidates o WHERE o.diffid = d.diffid"
           "   AND q3c_join(c.ra, c.dec, o.ra, o.dec, %(radius)s))"
           " ORDER BY c.candid, d.obsjd, d.diffid")
    return _by_alert(connection, sql, params)
