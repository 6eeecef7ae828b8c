"""Candidate fields that need more than one difference image: the step after ingest.

A difference image's own pixels give most of a candidate's fields (the pipeline writes them);
these need the archive:

- ``objectid``: a ZTF-style name (``ZTF`` + the two-digit year of the first detection + seven
  letters, ``ZTF26aaaaaaa``) shared by every candidate within 1.5 arcsec of each other: a new
  candidate takes the name of the nearest named one, the others are grouped (friends of
  friends) and named in order of first detection;
- ``ndethist``, ``jdstarthist``, ``jdendhist``: detections within 1.5 arcsec on the same field
  and readout channel up to this one (itself included), and the first and last of them;
  ``ncovhist``: difference images whose footprint held the position up to this one;
- ``ssdistnr``, ``ssnamenr``, ``ssmagnr``: the nearest known solar-system object within 30
  arcsec at mid-exposure, from the archive's orbits (``skyvault.sso``: the batch search finds
  which object is on which image, ``predict`` its position and magnitude).

Histories follow the public alert stream's rule (issue 17): a candidate of a program whose
alerts are public counts only such programs' detections; any other counts those and its own
program's. Runs as the archive's owner, night by night (``annotate_nights``); ingest calls it
for the nights it loaded, ``skyvault ingest annotate`` for any.

A night's candidates are in its night partition, in the sky cells once compacted, or in both
(rows that arrived after the compaction; see ingest/README.md). The statements name the
night's half (``NightRows``), so that annotating a night being observed reads its partition and
not every cell of the sky, which has no index on ``nid``.
"""

from __future__ import annotations

import string
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import psycopg
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from skyvault.ingest.partitions import night_lock_key, partitions
from skyvault.schema.model import SkyLayout

CATALOG = "candidates"
OBJECT_RADIUS_ARCSEC = 1.5
SOLAR_SYSTEM_RADIUS_ARCSEC = 30.0
NAME_LETTERS = 7
LOCK = zlib.crc32(b"skyvault.ingest.candidate_history") & 0x7FFFFFFF
JD_2000 = 2451544.5
"""2000-01-01 00:00 UTC: the year of a Julian date is counted from here (to a day)."""


def history_programs(row: str = "o", candidate: str = "c") -> str:
    """SQL: whether the row ``row`` (a candidate or an image) may be in the history of the
    candidate ``candidate`` (the public alert stream's rule): of its program or of a program
    whose alerts are public. The alert packets' histories (skyvault/alerts) use it too."""
    return (f"({row}.programid = {candidate}.programid OR {row}.programid IN"
            " (SELECT programid FROM survey.programs WHERE public_alerts = 1))")


HISTORY_PROGRAMS = history_programs()
"""Whose rows a candidate's history may count (the public alert stream's rule)."""


@dataclass
class AnnotationReport:
    nights: list[int] = field(default_factory=list)
    named: int = 0
    """Candidates given an objectid (an existing one or a new one)."""
    new_objects: int = 0
    histories: int = 0
    solar_system: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"candidates of nights {', '.join(map(str, self.nights)) or 'none'}:"
                f" {self.named} named ({self.new_objects} new objects), {self.histories}"
                f" histories, {self.solar_system} near a known solar-system object"
                f" ({self.seconds:.1f} s)")


@dataclass(frozen=True)
class NightRows:
    """A night's candidates and the halves of survey.candidates that hold them: its night
    partition (``SkyLayout.NIGHTS``), the sky cells (``SkyLayout.SKY``), or both."""

    nid: int
    placements: tuple[int, ...] = (SkyLayout.NIGHTS, SkyLayout.SKY)

    def where(self, alias: str = "") -> str:
        """SQL condition on ``alias``'s rows (a name of survey.candidates) that selects the
        night's candidates; the placement lets PostgreSQL prune the half that has none."""
        prefix = f"{alias}." if alias else ""
        return (f"{prefix}nid = {int(self.nid)} AND {prefix}{SkyLayout.PLACEMENT_COLUMN}"
                f" IN ({', '.join(str(int(p)) for p in self.placements)})")


def night_rows(connection: psycopg.Connection, nid: int) -> NightRows | None:
    """Where the night's queryable candidates are; None when it has none (not loaded, or still
    in a loading table, which the seal annotates). The sky holds some of them when fewer rows
    are in the night's partition than ingest loaded for the night (``archive.catalog_loads``;
    one statement, so one snapshot for both counts)."""
    current = partitions(connection, CATALOG, nid)
    in_partition = f"(SELECT count(*) FROM {current[0].qualified_name})" if current else "0"
    counted, loaded = connection.execute(
        f"SELECT {in_partition}, (SELECT coalesce(sum(nrows), 0) FROM archive.catalog_loads"
        "  WHERE catalog = %s AND nid = %s)", (CATALOG, nid)).fetchone()
    placements = ((SkyLayout.NIGHTS,) if current and current[0].attached else ()) \
        + ((SkyLayout.SKY,) if loaded > counted else ())
    return NightRows(nid, placements) if placements else None


def candidate_nights(connection: psycopg.Connection) -> list[int]:
    """Every night ingest loaded candidates for, wherever they are now."""
    return [nid for (nid,) in connection.execute(
        "SELECT DISTINCT nid FROM archive.catalog_loads WHERE catalog = %s ORDER BY nid",
        (CATALOG,))]


def annotate_nights(connection: psycopg.Connection, nids: list[int]) -> AnnotationReport:
    """Fill the history fields of the candidates of these nights. ``connection`` is the
    owner's, in autocommit mode; each night is one transaction, holding the night's lock
    shared, so that a compaction does not move the night's rows while they are updated."""
    started = time.perf_counter()
    report = AnnotationReport()
    for nid in sorted(set(nids)):
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)",
                               night_lock_key(CATALOG, nid))
            night = night_rows(connection, nid)
            if night is None:
                continue
            report.nights.append(nid)
            named, new = assign_object_ids(connection, night)
            report.named += named
            report.new_objects += new
            report.histories += count_histories(connection, night)
            report.solar_system += tag_solar_system(connection, night)
    report.seconds = time.perf_counter() - started
    return report


# --- names --------------------------------------------------------------------------------


def object_name(year: int, number: int) -> str:
    """ZTF's form: 'ZTF', two digits of the year, seven lower-case letters counting in base
    26 from 'aaaaaaa'."""
    letters = []
    for _ in range(NAME_LETTERS):
        number, digit = divmod(number, 26)
        letters.append(string.ascii_lowercase[digit])
    if number:
        raise OverflowError(f"more than 26^{NAME_LETTERS} objects in {year}")
    return f"ZTF{year % 100:02d}{''.join(reversed(letters))}"


def name_number(name: str) -> int:
    number = 0
    for letter in name[5:]:
        number = number * 26 + string.ascii_lowercase.index(letter)
    return number


def year_of(jd: float) -> int:
    import datetime as dt

    return (dt.datetime(2000, 1, 1) + dt.timedelta(days=float(jd) - JD_2000)).year


def _night(night: NightRows | int) -> NightRows:
    return night if isinstance(night, NightRows) else NightRows(night)


def assign_object_ids(connection: psycopg.Connection,
                      night: NightRows | int) -> tuple[int, int]:
    """Name the night's unnamed candidates; returns (named, new objects)."""
    night = _night(night)
    radius = OBJECT_RADIUS_ARCSEC / 3600
    inherited = connection.execute(
        f"""UPDATE survey.candidates c SET objectid = m.objectid
             FROM (SELECT n.candid, n.diffid,
                          (SELECT o.objectid FROM survey.candidates o
                            WHERE o.objectid IS NOT NULL
                              AND q3c_join(n.ra, n.dec, o.ra, o.dec, %(radius)s)
                            ORDER BY q3c_dist(n.ra, n.dec, o.ra, o.dec), o.jd LIMIT 1)
                             AS objectid
                     FROM survey.candidates n WHERE {night.where("n")}
                      AND n.objectid IS NULL) m
            WHERE {night.where("c")} AND c.diffid = m.diffid AND c.candid = m.candid
              AND m.objectid IS NOT NULL""",
        {"radius": radius}).rowcount
    rows = connection.execute(
        f"SELECT candid, ra, dec, jd FROM survey.candidates WHERE {night.where()}"
        " AND objectid IS NULL ORDER BY jd, candid").fetchall()
    if not rows:
        return inherited, 0
    candid = np.array([r[0] for r in rows], dtype=np.int64)
    ra, dec, jd = (np.array([r[k] for r in rows], dtype=float) for k in (1, 2, 3))
    groups = _friends_of_friends(ra, dec, OBJECT_RADIUS_ARCSEC)
    first = {}
    for index, group in enumerate(groups):  # rows are in order of jd: first seen first
        first.setdefault(group, index)
    names = {}
    next_number: dict[int, int] = {}
    for group, index in sorted(first.items(), key=lambda item: item[1]):
        year = year_of(jd[index])
        if year not in next_number:
            last = connection.execute(
                "SELECT max(objectid) FROM survey.candidates WHERE objectid LIKE %s",
                (f"ZTF{year % 100:02d}%",)).fetchone()[0]
            next_number[year] = name_number(last) + 1 if last else 0
        names[group] = object_name(year, next_number[year])
        next_number[year] += 1
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE named (candid bigint, objectid text)"
                       " ON COMMIT DROP")
        with cursor.copy("COPY named (candid, objectid) FROM STDIN") as copy:
            for value, group in zip(candid.tolist(), groups.tolist(), strict=True):
                copy.write_row((value, names[group]))
        cursor.execute(
            "UPDATE survey.candidates c SET objectid = n.objectid FROM named n"
            f" WHERE {night.where('c')} AND c.candid = n.candid"
            " AND c.diffid = n.candid / 1000000")
    return inherited + len(rows), len(names)


def _friends_of_friends(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """Group label of each position: linked when within the radius, transitively."""
    r, d = np.radians(ra), np.radians(dec)
    vectors = np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
    chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
    pairs = cKDTree(vectors).query_pairs(chord, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                       shape=(ra.size, ra.size)) if len(pairs) else coo_matrix((ra.size, ra.size))
    return connected_components(graph, directed=False)[1]


# --- histories ----------------------------------------------------------------------------


def count_histories(connection: psycopg.Connection, night: NightRows | int) -> int:
    """ndethist, jdstarthist, jdendhist and ncovhist of the night's candidates."""
    night = _night(night)
    radius = OBJECT_RADIUS_ARCSEC / 3600
    detections = connection.execute(
        f"""UPDATE survey.candidates t SET ndethist = h.n, jdstarthist = h.first,
                   jdendhist = h.last
              FROM (SELECT c.candid, c.diffid, count(*) AS n, min(o.jd) AS first,
                           max(o.jd) AS last
                      FROM survey.candidates c JOIN survey.candidates o
                        ON q3c_join(c.ra, c.dec, o.ra, o.dec, %(radius)s)
                       AND o.jd <= c.jd AND o.field = c.field AND o.rcid = c.rcid
                       AND {HISTORY_PROGRAMS}
                     WHERE {night.where("c")} GROUP BY c.candid, c.diffid) h
             WHERE {night.where("t")} AND t.diffid = h.diffid AND t.candid = h.candid""",
        {"radius": radius}).rowcount
    # Its own image always covered it (a candidate half a pixel outside the footprint's
    # corner pixels still counts it), plus every other image whose footprint holds it.
    connection.execute(
        f"""UPDATE survey.candidates t SET ncovhist = h.n
              FROM (SELECT c.candid, c.diffid, 1 + count(o.diffid) AS n
                      FROM survey.candidates c LEFT JOIN survey.difference_images o
                        ON o.footprint @> spoint(radians(c.ra), radians(c.dec))
                       AND o.obsjd <= c.jd AND o.is_current = 1 AND o.diffid <> c.diffid
                       AND {HISTORY_PROGRAMS}
                     WHERE {night.where("c")} GROUP BY c.candid, c.diffid) h
             WHERE {night.where("t")} AND t.diffid = h.diffid AND t.candid = h.candid""")
    return detections


# --- known solar-system objects -----------------------------------------------------------


def tag_solar_system(connection: psycopg.Connection, night: NightRows | int) -> int:
    """The nearest known object within 30 arcsec of each candidate of the night, at its
    exposure's mid-time; returns how many candidates have one."""
    night = _night(night)
    from skyvault.sso.ephemeris import predict
    from skyvault.sso.errors import SsoError
    from skyvault.sso.orbit_rows import COLUMNS, orbit_from_row
    from skyvault.sso.search_batch import search_night
    from skyvault.sso.search_db import night_images

    span = connection.execute(
        f"SELECT min(jd), max(jd) FROM survey.candidates WHERE {night.where()}").fetchone()
    orbits = [orbit_from_row(row) for row in connection.execute(
        f"SELECT {', '.join(COLUMNS)} FROM survey.solar_system_objects"
        " ORDER BY designation").fetchall()]
    if span[0] is None or not orbits:
        return 0
    begin, end = span[0] - 2400000.5 - 0.01, span[1] - 2400000.5 + 0.01
    try:
        images, _ = night_images(connection, begin, end)
        matches = search_night(orbits, images)
    except SsoError:
        return 0
    tagged: dict[int, tuple[float, str, float]] = {}
    for orbit_index in np.unique(matches.orbit_index):
        mine = np.flatnonzero(matches.orbit_index == orbit_index)
        pids = images.image_id[matches.image_index[mine]]
        times = images.exposure_mid_mjd[images.image_exposure[matches.image_index[mine]]]
        orbit = orbits[int(orbit_index)]
        ephemeris = predict(orbit, times)
        for k, pid in enumerate(pids.tolist()):
            near = connection.execute(
                "SELECT candid, q3c_dist(ra, dec, %s, %s) * 3600 FROM survey.candidates"
                f" WHERE {night.where()} AND pid = %s"
                " AND q3c_radial_query(ra, dec, %s, %s, %s)",
                (ephemeris.ra[k], ephemeris.dec[k], pid, ephemeris.ra[k],
                 ephemeris.dec[k], SOLAR_SYSTEM_RADIUS_ARCSEC / 3600)).fetchall()
            for candid, distance in near:
                if candid not in tagged or distance < tagged[candid][0]:
                    tagged[candid] = (float(distance), orbit.name or orbit.designation,
                                      float(ephemeris.vmag[k]))
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE survey.candidates SET ssdistnr = %s, ssnamenr = %s, ssmagnr = %s"
            f" WHERE {night.where()} AND candid = %s AND diffid = %s",
            [(distance, name, magnitude if np.isfinite(magnitude) else None, candid,
              candid // 1_000_000)
             for candid, (distance, name, magnitude) in tagged.items()])
    return len(tagged)
