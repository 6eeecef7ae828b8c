"""The moving-object search against the archive database: lookups, candidates, matches.

Every function takes a psycopg connection; request handlers pass the one from
``server.context.reading()``, so row-level security decides which exposures and images exist
(a match in an embargoed image is simply never found). Nothing here filters on embargo.

``search_images`` is the whole search (see ``search`` for the stages): exposures in the span
through the ``obsjd`` index (numbers only, binary COPY into numpy), their quadrants near the
path through the (expid, rcid, proc_version) index, then exact predictions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import psycopg
from numpy.typing import NDArray

from skyvault.geometry import inside_convex_polygon, radec_of, separation
from skyvault.tansip import TanSip
from skyvault.vo.votable import copy_batches

from .ephemeris import Ephemeris, predict
from .errors import SsoError
from .orbit_rows import COLUMNS, orbit_from_row
from .orbits import Orbit
from .search import (
    CAMERA_RADIUS_DEG,
    JD_MINUS_MJD,
    CoarsePath,
    coarse_path,
    mid_exposure_mjd,
    near_pointings,
    positional_uncertainty_arcsec,
)
from .search_batch import NightImages

SCIENCE_ITID = 1
MAX_EPHEMERIS_ROWS = 50_000
DEFAULT_OBSERVATORY = "I41"


class UnknownObjectError(SsoError, LookupError):
    """No orbit in survey.solar_system_objects answers to the name given."""


class AmbiguousObjectError(SsoError, LookupError):
    """Several orbits answer to the name given."""


class SearchRequestError(SsoError, ValueError):
    """Search criteria that cannot be served (an empty span, too many ephemeris rows)."""


# --------------------------------------------------------------------------- objects

_NUMBERED = re.compile(r"^\(?\s*(\d+)\s*\)?(?:\s+(.*))?$")
_COMET_LABEL = re.compile(r"^(\d+[PDI])\s*/\s*(.+)$", re.IGNORECASE)


def _select_orbits(connection: psycopg.Connection, where: str, params: tuple) -> list[Orbit]:
    rows = connection.execute(
        f"SELECT {', '.join(COLUMNS)} FROM survey.solar_system_objects WHERE {where}"
        " ORDER BY designation LIMIT 20",
        params,
    ).fetchall()
    return [orbit_from_row(row) for row in rows]


def find_orbit(connection: psycopg.Connection, text: str) -> Orbit:
    """The orbit of an object named as people write it: '433', '(433) Eros', 'Eros',
    '2004 PC112', '2P', '2P/Encke', 'Encke', 'C/2012 S1'. Case does not matter."""
    wanted = " ".join(text.split())
    if not wanted:
        raise UnknownObjectError("no object given")
    attempts: list[tuple[str, tuple]] = [("lower(designation) = lower(%s)", (wanted,))]
    numbered = _NUMBERED.match(wanted)
    if numbered:
        attempts.insert(0, ("number = %s AND orbit_type = 'asteroid'", (int(numbered.group(1)),)))
    comet = _COMET_LABEL.match(wanted)
    if comet:
        attempts.insert(0, ("lower(designation) = lower(%s)", (comet.group(1),)))
    attempts.append(("lower(name) = lower(%s)", (wanted,)))
    for where, params in attempts:
        found = _select_orbits(connection, where, params)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(orbit.label for orbit in found[:5])
            raise AmbiguousObjectError(
                f"{wanted!r} names several objects ({names}): give the designation"
            )
    raise UnknownObjectError(
        f"unknown object {wanted!r}: it is not in the archive's orbit table "
        "(survey.solar_system_objects); paste its MPC orbit line or give its elements"
    )


# --------------------------------------------------------------------------- criteria


@dataclass(frozen=True)
class SearchCriteria:
    """What to search: a span of mid-exposure times (MJD UTC; None = the archive's start or
    end) and optional filters on the images."""

    begin_mjd: float | None = None
    end_mjd: float | None = None
    filtercodes: tuple[str, ...] = ()
    programids: tuple[int, ...] = ()
    fields: tuple[int, ...] = ()
    observatory: str = DEFAULT_OBSERVATORY

    def sql_filters(self, alias: str) -> tuple[str, list]:
        clauses: list[str] = []
        params: list = []
        if self.filtercodes:
            clauses.append(f" AND {alias}.filtercode = ANY(%s::text[])")
            params.append(list(self.filtercodes))
        if self.programids:
            clauses.append(f" AND {alias}.programid = ANY(%s::smallint[])")
            params.append(list(self.programids))
        if self.fields:
            clauses.append(f" AND {alias}.field = ANY(%s::int[])")
            params.append(list(self.fields))
        return "".join(clauses), params


def archive_span(connection: psycopg.Connection) -> tuple[float, float] | None:
    """First and last mid-exposure MJD (UTC) of the science exposures the requester sees."""
    row = connection.execute(
        "SELECT (SELECT obsjd + coalesce(exptime, 0) / 172800.0 FROM survey.exposures"
        "        WHERE itid = %s ORDER BY obsjd LIMIT 1),"
        "       (SELECT obsjd + coalesce(exptime, 0) / 172800.0 FROM survey.exposures"
        "        WHERE itid = %s ORDER BY obsjd DESC LIMIT 1)",
        (SCIENCE_ITID, SCIENCE_ITID),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]) - JD_MINUS_MJD, float(row[1]) - JD_MINUS_MJD


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Exposures:
    expid: NDArray[np.int64]
    mid_mjd: NDArray[np.float64]
    telra: NDArray[np.float64]
    teldec: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.expid.size)

    def take(self, index: NDArray[np.intp]) -> Exposures:
        return Exposures(self.expid[index], self.mid_mjd[index], self.telra[index],
                         self.teldec[index])


def science_exposures(
    connection: psycopg.Connection, criteria: SearchCriteria
) -> Exposures:
    """Science exposures whose mid-time is in the criteria's span and that pass its filters."""
    sql = ("SELECT e.expid, e.obsjd, coalesce(e.exptime, 0)::float8, e.telra, e.teldec"
           " FROM survey.exposures e WHERE e.itid = %s")
    params: list = [SCIENCE_ITID]
    # obsjd is the start: a start up to a day before the span can still have its middle in it.
    if criteria.begin_mjd is not None:
        sql += " AND e.obsjd >= %s"
        params.append(criteria.begin_mjd + JD_MINUS_MJD - 1.0)
    if criteria.end_mjd is not None:
        sql += " AND e.obsjd <= %s"
        params.append(criteria.end_mjd + JD_MINUS_MJD)
    extra, extra_params = criteria.sql_filters("e")
    columns: list[list[np.ndarray]] = [[], [], [], [], []]
    with connection.cursor() as cursor:
        types = ["bigint", "double precision", "double precision", "double precision",
                 "double precision"]
        for batch in copy_batches(cursor, sql + extra, types, [*params, *extra_params]):
            for store, column in zip(columns, batch.columns, strict=True):
                store.append(column.values)
    expid, obsjd, exptime, telra, teldec = (
        np.concatenate(parts) if parts else np.empty(0) for parts in columns
    )
    mid = mid_exposure_mjd(obsjd, exptime)
    keep = np.ones(mid.size, dtype=bool)
    if criteria.begin_mjd is not None:
        keep &= mid >= criteria.begin_mjd
    if criteria.end_mjd is not None:
        keep &= mid <= criteria.end_mjd
    return Exposures(expid[keep].astype(np.int64), mid[keep], telra[keep], teldec[keep])


_QUADRANT_COLUMNS = (
    "pid", "expid", "obsjd", "exptime", "field", "ccdid", "qid", "rcid", "filtercode",
    "programid", "ra", "dec", "ra1", "dec1", "ra2", "dec2", "ra3", "dec3", "ra4", "dec4",
    "crval1", "crval2", "crpix1", "crpix2", "cd11", "cd12", "cd21", "cd22", "naxis1", "naxis2",
    "maglimit", "seeing", "obsdate",
)


@dataclass(frozen=True)
class Quadrants:
    """Candidate science images: one entry per column name of ``_QUADRANT_COLUMNS``."""

    rows: list[tuple]

    def column(self, name: str, dtype: type = float) -> np.ndarray:
        index = _QUADRANT_COLUMNS.index(name)
        values = [row[index] for row in self.rows]
        if dtype is float:
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.array(values, dtype=object)


def quadrants_near(
    connection: psycopg.Connection,
    exposures: Exposures,
    path_ra: NDArray[np.float64],
    path_dec: NDArray[np.float64],
    margin_deg: NDArray[np.float64],
) -> Quadrants:
    """Current science images of the given exposures whose footprint circle (centre to farthest
    corner) comes within ``margin`` of the path's position at that exposure."""
    if len(exposures) == 0:
        return Quadrants([])
    corner_distances = ", ".join(
        f"q3c_dist(i.ra, i.dec, i.ra{k}, i.dec{k})" for k in range(1, 5)
    )
    selected = ", ".join(f"i.{name}" for name in _QUADRANT_COLUMNS)
    # q3c_dist, not q3c_join: the per-exposure index on expid is the selective one here (a
    # cone over a year of survey would return every visit of the field).
    rows = connection.execute(
        f"SELECT {selected} FROM unnest(%s::bigint[], %s::float8[], %s::float8[],"
        " %s::float8[]) AS c(expid, ra, dec, margin)"
        " JOIN survey.science_images i ON i.expid = c.expid"
        " WHERE i.is_current = 1"
        f" AND q3c_dist(c.ra, c.dec, i.ra, i.dec) <= c.margin + greatest({corner_distances})"
        " ORDER BY i.obsjd, i.rcid",
        (exposures.expid.tolist(), path_ra.tolist(), path_dec.tolist(), margin_deg.tolist()),
    ).fetchall()
    return Quadrants(rows)


def image_paths(connection: psycopg.Connection, pids: list[int]) -> dict[int, str]:
    """The current science-image file of each image (only those the requester may see)."""
    if not pids:
        return {}
    rows = connection.execute(
        "SELECT image_id, path FROM survey.files WHERE image_table = 'science_images'"
        " AND image_id = ANY(%s::bigint[]) AND product = 'sciimg' AND is_current = 1"
        " ORDER BY proc_version",
        (pids,),
    ).fetchall()
    return {int(image_id): path for image_id, path in rows}


# --------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class ImageMatch:
    """One science image that holds the object at its mid-exposure time."""

    pid: int
    expid: int
    field: int | None
    ccdid: int | None
    qid: int | None
    rcid: int | None
    filtercode: str | None
    programid: int
    obsjd: float
    exptime: float
    mjd_mid: float
    obsdate_mid: dt.datetime
    ra: float
    dec: float
    ra_rate: float
    dec_rate: float
    x: float
    y: float
    centre_distance_deg: float
    r: float
    delta: float
    phase: float
    elong: float
    vmag: float
    uncertainty_arcsec: float
    naxis1: int | None
    naxis2: int | None
    maglimit: float | None
    seeing: float | None
    corners: tuple[tuple[float, float], ...]
    path: str | None


@dataclass(frozen=True)
class SearchStats:
    exposures: int = 0
    candidate_exposures: int = 0
    candidate_images: int = 0
    matches: int = 0


@dataclass(frozen=True)
class SearchResult:
    orbit: Orbit
    criteria: SearchCriteria
    matches: list[ImageMatch] = field(default_factory=list)
    path: CoarsePath | None = None
    stats: SearchStats = field(default_factory=SearchStats)


def _optional(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def exact_matches(orbit: Orbit, quadrants: Quadrants, observatory: str) -> list[ImageMatch]:
    """Predict at each candidate image's mid-exposure time; keep those whose four corners hold
    the prediction."""
    if not quadrants.rows:
        return []
    mid = mid_exposure_mjd(quadrants.column("obsjd"), quadrants.column("exptime"))
    times, inverse = np.unique(mid, return_inverse=True)
    ephemeris = predict(orbit, times, observatory)
    ra, dec = ephemeris.ra[inverse], ephemeris.dec[inverse]
    corners_ra = np.stack([quadrants.column(f"ra{k}") for k in range(1, 5)], axis=1)
    corners_dec = np.stack([quadrants.column(f"dec{k}") for k in range(1, 5)], axis=1)
    centre_ra, centre_dec = quadrants.column("ra"), quadrants.column("dec")
    inside = inside_convex_polygon(ra, dec, corners_ra, corners_dec)
    # The stored WCS is the linear TAN part (no SIP terms), one per image.
    wcs = TanSip(crval=(quadrants.column("crval1"), quadrants.column("crval2")),
                 crpix=(quadrants.column("crpix1"), quadrants.column("crpix2")),
                 cd=np.array([[quadrants.column("cd11"), quadrants.column("cd12")],
                              [quadrants.column("cd21"), quadrants.column("cd22")]]))
    x, y = wcs.world_to_pixel(ra, dec)
    distance = separation(ra, dec, centre_ra, centre_dec)
    uncertainty = positional_uncertainty_arcsec(
        orbit.uncertainty_u, orbit.epoch_mjd_tdb, mid, ephemeris.r[inverse],
        ephemeris.delta[inverse])
    matches = []
    for k in np.flatnonzero(inside):
        row = dict(zip(_QUADRANT_COLUMNS, quadrants.rows[k], strict=True))
        e = inverse[k]
        matches.append(ImageMatch(
            pid=int(row["pid"]), expid=int(row["expid"]), field=_optional_int(row["field"]),
            ccdid=_optional_int(row["ccdid"]), qid=_optional_int(row["qid"]),
            rcid=_optional_int(row["rcid"]), filtercode=row["filtercode"],
            programid=int(row["programid"]), obsjd=float(row["obsjd"]),
            exptime=float(row["exptime"] or 0.0), mjd_mid=float(mid[k]),
            obsdate_mid=mjd_to_datetime(float(mid[k])),
            ra=float(ra[k]), dec=float(dec[k]),
            ra_rate=float(ephemeris.ra_rate[e]), dec_rate=float(ephemeris.dec_rate[e]),
            x=float(x[k]), y=float(y[k]), centre_distance_deg=float(distance[k]),
            r=float(ephemeris.r[e]), delta=float(ephemeris.delta[e]),
            phase=float(ephemeris.phase[e]), elong=float(ephemeris.elong[e]),
            vmag=float(ephemeris.vmag[e]), uncertainty_arcsec=float(uncertainty[k]),
            naxis1=_optional_int(row["naxis1"]), naxis2=_optional_int(row["naxis2"]),
            maglimit=_optional(row["maglimit"]), seeing=_optional(row["seeing"]),
            corners=tuple((float(corners_ra[k, j]), float(corners_dec[k, j])) for j in range(4)),
            path=None,
        ))
    return matches


def mjd_to_datetime(mjd: float) -> dt.datetime:
    return dt.datetime(1858, 11, 17, tzinfo=dt.UTC) + dt.timedelta(days=mjd)


def search_images(
    connection: psycopg.Connection, orbit: Orbit, criteria: SearchCriteria
) -> SearchResult:
    """Every science image the requester may see that holds the object at mid-exposure."""
    exposures = science_exposures(connection, criteria)
    if len(exposures) == 0:
        return SearchResult(orbit, criteria)
    path = coarse_path(orbit, float(exposures.mid_mjd.min()), float(exposures.mid_mjd.max()),
                       criteria.observatory)
    near = near_pointings(path, exposures.mid_mjd, exposures.telra, exposures.teldec,
                          CAMERA_RADIUS_DEG)
    candidates = exposures.take(near)
    vectors, margin = path.at(candidates.mid_mjd)
    path_ra, path_dec = radec_of(vectors)
    quadrants = quadrants_near(connection, candidates, path_ra, path_dec, margin)
    matches = exact_matches(orbit, quadrants, criteria.observatory)
    paths = image_paths(connection, [m.pid for m in matches])
    matches = [_with_path(m, paths.get(m.pid)) for m in matches]
    matches.sort(key=lambda m: (m.mjd_mid, m.rcid or 0))
    stats = SearchStats(len(exposures), len(candidates), len(quadrants.rows), len(matches))
    return SearchResult(orbit, criteria, matches, path, stats)


def _with_path(match: ImageMatch, path: str | None) -> ImageMatch:
    from dataclasses import replace

    return replace(match, path=path)


# --------------------------------------------------------------------------- ephemeris table


def ephemeris_times(begin_mjd: float, end_mjd: float, step_days: float) -> NDArray[np.float64]:
    if not end_mjd >= begin_mjd:
        raise SearchRequestError("the end of the span is before its start")
    if not step_days > 0:
        raise SearchRequestError("the ephemeris step must be positive")
    count = int(np.floor((end_mjd - begin_mjd) / step_days + 1e-9)) + 1
    if count > MAX_EPHEMERIS_ROWS:
        raise SearchRequestError(
            f"the ephemeris would have {count} rows; at most {MAX_EPHEMERIS_ROWS}: "
            "choose a larger step or a shorter span"
        )
    return begin_mjd + step_days * np.arange(count)


def ephemeris_table(
    orbit: Orbit, begin_mjd: float, end_mjd: float, step_days: float,
    observatory: str = DEFAULT_OBSERVATORY,
) -> tuple[Ephemeris, NDArray[np.float64]]:
    """Predictions every ``step`` over [begin, end] and their 3-sigma uncertainty (arcsec)."""
    ephemeris = predict(orbit, ephemeris_times(begin_mjd, end_mjd, step_days), observatory)
    uncertainty = positional_uncertainty_arcsec(
        orbit.uncertainty_u, orbit.epoch_mjd_tdb, ephemeris.mjd_utc, ephemeris.r, ephemeris.delta)
    return ephemeris, uncertainty


# --------------------------------------------------------------------------- a whole night


def night_images(connection: psycopg.Connection, begin_mjd: float, end_mjd: float
                 ) -> tuple[NightImages, NDArray[np.int64]]:
    """Every current science image with its exposure between two MJDs (mid-exposure), as the
    batch search takes them, and the exposures' ids."""
    exposures = science_exposures(connection, SearchCriteria(begin_mjd, end_mjd))
    order = np.argsort(exposures.expid)
    expids = exposures.expid[order]
    sql = ("SELECT i.pid, i.expid, i.ra, i.dec, i.ra1, i.ra2, i.ra3, i.ra4, i.dec1, i.dec2,"
           " i.dec3, i.dec4 FROM survey.science_images i"
           " WHERE i.is_current = 1 AND i.expid = ANY(%s::bigint[])")
    types = ["bigint", "bigint", *["double precision"] * 10]
    columns: list[list[np.ndarray]] = [[] for _ in types]
    with connection.cursor() as cursor:
        for batch in copy_batches(cursor, sql, types, [expids.tolist()]):
            for store, column in zip(columns, batch.columns, strict=True):
                store.append(column.values)
    pid, expid, ra, dec, *corners = (
        np.concatenate(parts) if parts else np.empty(0) for parts in columns)
    exposure_index = np.searchsorted(expids, expid)
    images = NightImages(
        exposure_mid_mjd=exposures.mid_mjd[order], telra=exposures.telra[order],
        teldec=exposures.teldec[order], image_id=pid.astype(np.int64),
        image_exposure=exposure_index, centre_ra=ra, centre_dec=dec,
        corners_ra=np.stack(corners[:4], axis=1), corners_dec=np.stack(corners[4:], axis=1))
    return images, expids
