"""What the light-curve API answers (skyvault/lightcurves/irsa_request.py is its request): the
objects asked for, in the collection asked for, and their points, as rows.

A collection is the live archive (every epoch the requester may see now) or a data release:
exactly the points that release holds, the points public at its release date by the release
rules (skyvault/releases/dating.py, as a release's export selects them), read as the anonymous
public, so that nothing a requester's programs show can join a release's answer. Row-level
security on the points decides in both cases; the release adds its date's horizons.

An object exists in a collection when one of its points is in it. Objects found by position
are narrowed by their filter (BANDNAME) and, over all their points in the collection, by the
number of epochs (NOBS_MIN) and the median magnitude (MAG), with the definitions of
survey.objects (skyvault/lightcurves/metrics.py ``collapse``). TIME and BAD_CATFLAGS_MASK then
choose the points returned. Upper limits are the collection's images of the object's filter
that held its position without detecting it, in the TIME range, each a row with
``upperlimit`` true, the image's limiting magnitude and no magnitude.

hjd is the heliocentric Julian date of ``obsjd`` (the start of the exposure, as mjd) for the
detection's position (an upper limit's: its object's mean position).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from astropy import units as u
from astropy.coordinates import get_body_barycentric
from astropy.time import Time
from erfa import ErfaWarning

from skyvault.access import ANONYMOUS, Requester
from skyvault.db import Database
from skyvault.geometry import unit_vectors
from skyvault.lightcurves.access import (
    EpochFilter,
    good_epochs,
    lightcurves,
    oids_in_cone,
    upper_limits_of,
)
from skyvault.lightcurves.irsa_request import LightCurveRequest
from skyvault.lightcurves.metrics import Epochs, collapse
from skyvault.releases.model import Release, public_release

AU_LIGHT_SECONDS = float((1 * u.au).to_value(u.lightsecond))

POINT_COLUMNS = ("oid", "expid", "hjd", "mjd", "mag", "magerr", "catflags", "filtercode", "ra",
                 "dec", "chi", "sharp", "filefracday", "field", "ccdid", "qid", "limitmag",
                 "magzp", "magzprms", "exptime", "airmass", "programid", "upperlimit", "pid")
"""IRSA's columns, in IRSA's order, then ``upperlimit`` and the science image ``pid``."""


class UnknownCollection(LookupError):
    """COLLECTION names no data release that is public now."""


@dataclass(frozen=True)
class LightCurveAnswer:
    rows: list[dict[str, Any]]
    """POINT_COLUMNS, by object then time."""
    collection: str
    objects: int


def heliocentric_jd(obsjd: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Heliocentric Julian dates (UTC) of the instants for the positions: the light travel
    time along the direction of each position from the Earth's centre to the Sun's (ERFA's
    ephemeris through astropy). The observatory's 21 ms at most from the Earth's centre are
    left out: the topocentric term needs Earth-orientation tables (IERS), which this service
    does not download."""
    if len(obsjd) == 0:
        return np.zeros(0)
    times = Time(np.asarray(obsjd, dtype=float), format="jd", scale="utc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # dates past the leap-second table
        offset = (get_body_barycentric("earth", times)
                  - get_body_barycentric("sun", times)).xyz.to_value(u.au)
    direction = unit_vectors(ra, dec)
    seconds = np.einsum("ij,ji->i", direction, offset) * AU_LIGHT_SECONDS
    return np.asarray(obsjd, dtype=float) + seconds / 86400.0


def _statistics(points: list[dict[str, Any]]) -> dict[str, float | int]:
    arrays = {name: np.array([p[name] for p in points], dtype=float)
              for name in ("mjd", "mag", "magerr", "catflags", "ra", "dec")}
    good = good_epochs(arrays["catflags"], arrays["mag"], arrays["magerr"])
    return collapse(Epochs(arrays["mjd"], arrays["mag"], arrays["magerr"], good, arrays["ra"],
                           arrays["dec"]))


def _wanted(request: LightCurveRequest, points: list[dict[str, Any]]) -> bool:
    if request.nobs_min is None and request.mag is None:
        return True
    statistics = _statistics(points)
    if request.nobs_min is not None and statistics["nobs"] < request.nobs_min:
        return False
    if request.mag is not None:
        median = float(statistics["medianmag"])
        return bool(np.isfinite(median) and request.mag.lo <= median <= request.mag.hi)
    return True


def _point_row(point: dict[str, Any]) -> dict[str, Any]:
    row = {name: point.get(name) for name in POINT_COLUMNS}
    row.update(upperlimit=False, _obsjd=point["obsjd"], _ra=point["ra"], _dec=point["dec"])
    return row


def _limit_row(limit: dict[str, Any], position: tuple[float, float]) -> dict[str, Any]:
    row = {name: limit.get(name) for name in POINT_COLUMNS}
    row.update(upperlimit=True, _obsjd=limit["obsjd"], _ra=position[0], _dec=position[1])
    return row


def select_rows(connection: psycopg.Connection, request: LightCurveRequest,
                release: Release | None) -> LightCurveAnswer:
    """The answer, read on ``connection`` (as the requester for the live archive, as the
    public for a release)."""
    released_at = release.release_date if release is not None else None
    if request.circle is not None:
        circle = request.circle
        candidates = oids_in_cone(connection, circle.ra, circle.dec, circle.radius,
                                  request.filtercodes)
    else:
        candidates = list(request.oids)
    curves = lightcurves(connection, candidates, EpochFilter(released_at=released_at))
    chosen = [oid for oid in candidates if oid in curves and _wanted(request, curves[oid])]
    time = request.time
    points = EpochFilter(
        mjd_min=time.lo if time is not None and np.isfinite(time.lo) else None,
        mjd_max=time.hi if time is not None and np.isfinite(time.hi) else None,
        bad_catflags_mask=request.bad_catflags_mask, released_at=released_at)
    limits = upper_limits_of(connection, chosen, points) if request.upper_limits else {}
    rows: list[dict[str, Any]] = []
    for oid in chosen:
        curve = curves[oid]
        kept = [_point_row(p) for p in curve
                if points.keeps(p["obsjd"], p["catflags"], p["filtercode"])]
        position = (float(np.mean([p["ra"] for p in curve])),
                    float(np.mean([p["dec"] for p in curve])))
        kept += [_limit_row(limit, position) for limit in limits.get(oid, [])]
        kept.sort(key=lambda row: (row["mjd"], row["upperlimit"]))
        rows += kept
    _add_hjd(rows)
    return LightCurveAnswer(rows, release.name if release is not None else "ztf", len(chosen))


def _add_hjd(rows: list[dict[str, Any]]) -> None:
    """hjd from each row's instant and position (an upper limit's: its object's mean)."""
    taken = {name: np.array([row.pop(name) for row in rows], dtype=float)
             for name in ("_obsjd", "_ra", "_dec")}
    hjds = heliocentric_jd(taken["_obsjd"], taken["_ra"], taken["_dec"])
    for row, hjd in zip(rows, hjds.tolist(), strict=True):
        row["hjd"] = hjd


def answer(database: Database, requester: Requester,
           request: LightCurveRequest) -> LightCurveAnswer:
    """The rows for ``requester``; UnknownCollection when COLLECTION names no public release
    (a release not yet public is unknown, as on the releases' pages)."""
    if request.collection is None:
        with database.reading(requester) as connection:
            return select_rows(connection, request, None)
    with database.reading(ANONYMOUS) as connection:
        release = public_release(connection, request.collection)
        if release is None:
            raise UnknownCollection(
                f"COLLECTION {request.collection[:64]!r} is no public data release; name one"
                " of /releases, or ztf for the live archive")
        return select_rows(connection, request, release)
