"""Test data of the moving-object search service: a few science images placed around the
predicted path of 2P/Encke (its demo orbit), with real FITS files in the file store, and their
rows (exposures, science images, files) inserted as ingest would leave them.

Each image is built from where the prediction must fall in it: its WCS has the prediction as
CRVAL and the wanted pixel as CRPIX, so "inside", "outside but within the circle around the
centre" and "embargoed" are exact by construction. Identifiers live in a block of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import psycopg
from astropy.io import fits
from astropy.wcs import WCS
from release_calendar import ALWAYS_PUBLIC, NEVER_RELEASED

from skyvault.accounts import model as accounts
from skyvault.config import settings
from skyvault.sso.ephemeris import predict
from skyvault.sso.orbits import load_demo_orbits
from skyvault.sso.search import mid_exposure_mjd

BASE = 880_000_000
NID = 3625
STORE_FOLDER = "mosttest"
SIZE = 200
SCALE = 1.0 / 3600.0
EXPTIME = 30.0
T0 = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.UTC)
OBJECT = "Encke"
MEMBER = "most-member"


@dataclass(frozen=True)
class Placement:
    """One image: when (hours after T0), where the prediction falls (1-based pixel), which
    program and whether it is released, and whether the search must find it."""

    hours: float
    pixel: tuple[float, float]
    programid: int = ALWAYS_PUBLIC
    released: bool = True
    rotation: float = 20.0
    offset_deg: tuple[float, float] = (0.0, 0.0)
    """Shift of the whole image on the sky away from the prediction."""
    expected: bool = True
    placed_at_hours: float | None = None
    """Place the image where the object is at this time instead (default: ``hours``)."""


IMAGES: dict[str, Placement] = {
    "inside_a": Placement(0.0, (60.0, 140.0)),
    "inside_b": Placement(2.0, (150.5, 30.25), rotation=-35.0),
    # Outside the square but within the circle around its centre (half-diagonal 141 pixels):
    # a search by distance from the centre would take it.
    "near_miss": Placement(4.0, (SIZE + 20.0, SIZE / 2 + 0.5), rotation=0.0, expected=False),
    "embargoed": Placement(6.0, (90.0, 110.0), programid=NEVER_RELEASED, released=False),
    "far": Placement(1.0, (100.0, 100.0), offset_deg=(0.0, 1.0), expected=False),
    # Where the object was at T0, three days later: it has moved on.
    "later": Placement(72.0, (60.0, 140.0), expected=False, placed_at_hours=0.0),
}


@dataclass
class Seeded:
    pids: dict[str, int] = field(default_factory=dict)
    predictions: dict[str, tuple[float, float]] = field(default_factory=dict)
    mid_mjd: dict[str, float] = field(default_factory=dict)
    member_token: str = ""

    def expected(self, *, member: bool) -> set[int]:
        return {self.pids[name] for name, p in IMAGES.items()
                if p.expected and (p.released or member)}


def encke():
    return next(o for o in load_demo_orbits() if o.name == OBJECT)


def _wcs(crval: tuple[float, float], crpix: tuple[float, float], rotation: float) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix)
    angle = math.radians(rotation)
    w.wcs.cd = SCALE * np.array([[-math.cos(angle), math.sin(angle)],
                                 [math.sin(angle), math.cos(angle)]])
    w.wcs.radesys = "ICRS"
    return w


def _pixels(x: float, y: float, seed: int) -> np.ndarray:
    """Sky noise and a star-like blob where the object is (x, y 1-based)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(100.0, 5.0, (SIZE, SIZE)).astype(np.float32)
    yy, xx = np.mgrid[1:SIZE + 1, 1:SIZE + 1]
    data += (2000.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))).astype(np.float32)
    return data


def _insert(connection: psycopg.Connection, table: str, values: dict) -> None:
    names = ", ".join(values)
    marks = ", ".join("%s::spoly" if name == "footprint" else "%s" for name in values)
    connection.execute(f"INSERT INTO survey.{table} ({names}) VALUES ({marks})",
                       list(values.values()))


def remove(connection: psycopg.Connection) -> None:
    # Exactly this seed's identifier blocks (seed below): tests/tap/tap_seed.py shares BASE
    # with other blocks of the same tables, and may be seeded in the same session.
    for table, key, first in (("files", "file_id", BASE + 2000),
                              ("science_images", "pid", BASE + 1000),
                              ("exposures", "expid", BASE)):
        connection.execute(f"DELETE FROM survey.{table} WHERE {key} BETWEEN %s AND %s",
                           (first, first + 999))


def seed(connection: psycopg.Connection) -> Seeded:
    remove(connection)
    orbit = encke()
    seeded = Seeded()
    for index, (name, placement) in enumerate(IMAGES.items()):
        start = T0 + dt.timedelta(hours=placement.hours, seconds=-EXPTIME / 2)
        obsjd = start.timestamp() / 86400.0 + 2440587.5
        mid = float(mid_exposure_mjd(obsjd, EXPTIME))
        placed = mid
        if placement.placed_at_hours is not None:
            placed = mid + (placement.placed_at_hours - placement.hours) / 24.0
        ephemeris = predict(orbit, [mid, placed])
        seeded.predictions[name] = (float(ephemeris.ra[0]), float(ephemeris.dec[0]))
        seeded.mid_mjd[name] = mid
        ra, dec = float(ephemeris.ra[1]), float(ephemeris.dec[1])
        crval = ((ra + placement.offset_deg[0]) % 360.0, dec + placement.offset_deg[1])
        w = _wcs(crval, placement.pixel, placement.rotation)
        corners = w.all_pix2world(np.array([1, SIZE, SIZE, 1]), np.array([1, 1, SIZE, SIZE]), 1)
        centre = w.all_pix2world(np.array([(SIZE + 1) / 2]), np.array([(SIZE + 1) / 2]), 1)
        # Released or not by its program alone (tests/release_calendar.py), whatever the date.
        programid = placement.programid
        expid, pid, file_id = BASE + index, BASE + 1000 + index, BASE + 2000 + index
        seeded.pids[name] = pid
        _insert(connection, "exposures", {
            "expid": expid, "obsjd": obsjd, "obsdate": start, "nid": NID, "field": 800 + index,
            "fid": 2, "filtercode": "zr", "exptime": EXPTIME, "telra": float(centre[0][0]),
            "teldec": float(centre[1][0]), "itid": 1, "imgtypecode": "o",
            "programid": programid})
        corner_values: dict = {}
        for k in range(4):
            corner_values[f"ra{k + 1}"] = float(corners[0][k]) % 360.0
            corner_values[f"dec{k + 1}"] = float(corners[1][k])
        corner_values["footprint"] = "{" + ",".join(
            f"({float(corners[0][k]) % 360.0!r}d,{float(corners[1][k])!r}d)"
            for k in range(4)) + "}"
        _insert(connection, "science_images", {
            "pid": pid, "expid": expid, "obsjd": obsjd, "obsdate": start, "nid": NID,
            "field": 800 + index, "ccdid": 10, "qid": 2, "rcid": 37, "fid": 2,
            "filtercode": "zr", "exptime": EXPTIME, "seeing": 2.0, "maglimit": 20.5,
            "ra": float(centre[0][0]) % 360.0, "dec": float(centre[1][0]), **corner_values,
            "crval1": crval[0], "crval2": crval[1], "crpix1": placement.pixel[0],
            "crpix2": placement.pixel[1], "cd11": w.wcs.cd[0, 0], "cd12": w.wcs.cd[0, 1],
            "cd21": w.wcs.cd[1, 0], "cd22": w.wcs.cd[1, 1], "naxis1": SIZE, "naxis2": SIZE,
            "programid": programid})
        header = w.to_header()
        header["EXPTIME"] = EXPTIME
        path = f"{STORE_FOLDER}/sci/{name}_sciimg.fits"
        local = settings().store_root / path
        local.parent.mkdir(parents=True, exist_ok=True)
        fits.HDUList([fits.PrimaryHDU(_pixels(*placement.pixel, index), header)]).writeto(
            local, overwrite=True)
        content = local.read_bytes()
        _insert(connection, "files", {
            "file_id": file_id, "path": path, "product": "sciimg",
            "image_table": "science_images", "image_id": pid,
            "content_type": "application/fits", "size_bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(), "programids": [programid],
            "obsjd": obsjd})
    if not connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                              (MEMBER,)).fetchone():
        accounts.create_user(connection, MEMBER, accounts.generate_password())
        accounts.grant_programs(connection, MEMBER, [NEVER_RELEASED])
    seeded.member_token = accounts.create_token(connection, MEMBER).token
    return seeded
