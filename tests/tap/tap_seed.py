"""A small, realistic slice of the survey for the TAP tests: two nights on one field.

Four exposures of field 600 (around RA 150.1, Dec +2.2), two readout quadrants each, with raw,
science, reference and difference images, their files, and PSF photometry of 40 stars seen on
every image (so that light curves exist). Two exposures are public (program 1), one is
embargoed for program 2 and one for program 3, so queries through TAP show what row-level
security lets through. Identifiers live in a block of their own (BASE), nights far from real
ones (NID), so nothing else in the test session collides with them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from release_calendar import COADD_RELEASED

from skyvault.db import Database
from skyvault.lightcurves.association import new_object_ids
from skyvault.lightcurves.ensemble import run_ensemble

BASE = 880_000_000
NID = 88_880
FIELD = 600
CENTRE_RA, CENTRE_DEC = 150.1, 2.2
QUADRANT_HALF = 0.1
"""Half the side of a readout quadrant's footprint, degrees."""
N_STARS = 40
FILTERS = {"zg": 1, "zr": 2, "zi": 3}


@dataclass(frozen=True)
class Exposure:
    index: int
    night: int
    filtercode: str
    programid: int
    public: bool

    @property
    def expid(self) -> int:
        return BASE + 1_000 + self.index

    def pid(self, rcid: int) -> int:
        return BASE + 2_000 + 10 * self.index + rcid

    def rawid(self) -> int:
        return BASE + 3_000 + self.index

    def diffid(self, rcid: int) -> int:
        return BASE + 4_000 + 10 * self.index + rcid


EXPOSURES = (
    Exposure(0, 0, "zg", 1, True),
    Exposure(1, 0, "zr", 1, True),
    Exposure(2, 1, "zr", 2, False),
    Exposure(3, 1, "zg", 3, False),
)
RCIDS = (0, 1)


def quadrant_centre(rcid: int) -> tuple[float, float]:
    return CENTRE_RA + (rcid - 0.5) * 2 * QUADRANT_HALF, CENTRE_DEC


def corners(ra: float, dec: float, half: float = QUADRANT_HALF) -> list[tuple[float, float]]:
    """Counter-clockwise seen from inside the sphere: east is towards larger RA."""
    d = half / math.cos(math.radians(dec))
    return [(ra - d, dec - half), (ra + d, dec - half), (ra + d, dec + half),
            (ra - d, dec + half)]


def spoly(points: list[tuple[float, float]]) -> str:
    return "{" + ",".join(f"({ra:.8f}d,{dec:.8f}d)" for ra, dec in points) + "}"


def stars() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions and mean magnitudes of the field's stars; the first is at the centre."""
    rng = np.random.default_rng(600)
    ra = CENTRE_RA + rng.uniform(-2 * QUADRANT_HALF, 2 * QUADRANT_HALF, N_STARS) * 0.95
    dec = CENTRE_DEC + rng.uniform(-QUADRANT_HALF, QUADRANT_HALF, N_STARS) * 0.95
    ra[0], dec[0] = CENTRE_RA + 0.0001, CENTRE_DEC
    mag = rng.uniform(14.0, 20.5, N_STARS)
    return ra, dec, mag


def star_oids(fid: int) -> np.ndarray:
    """The stars' object identifiers in a filter (skyvault/lightcurves/association.py)."""
    ra, dec, _ = stars()
    return new_object_ids(ra, dec, fid, np.zeros(0, dtype=np.int64))


def _insert(connection: psycopg.Connection, table: str, rows: list[dict]) -> None:
    for values in rows:
        names = ", ".join(values)
        marks = ", ".join("%s::spoly" if name == "footprint" else "%s" for name in values)
        connection.execute(f"INSERT INTO survey.{table} ({names}) VALUES ({marks})",
                           list(values.values()))


def _ensure_partitions(connection: psycopg.Connection) -> None:
    for table in ("psf_sources", "aperture_sources", "lightcurves"):
        exists = connection.execute(
            "SELECT 1 FROM pg_class WHERE oid = to_regclass(%s)",
            (f"survey.{table}_taptest",)).fetchone()
        if not exists:
            connection.execute(f"CREATE TABLE survey.{table}_taptest PARTITION OF"
                               f" survey.{table}_nights FOR VALUES FROM ({NID}) TO ({NID + 10})")


def remove(connection: psycopg.Connection) -> None:
    for table, key in (("files", "file_id"), ("difference_images", "diffid"),
                       ("reference_images", "refid"), ("science_images", "pid"),
                       ("raw_images", "rawid"), ("exposures", "expid")):
        connection.execute(f"DELETE FROM survey.{table} WHERE {key} BETWEEN %s AND %s",
                           (BASE, BASE + 99_999))
    seeded = [int(oid) for fid in FILTERS.values() for oid in star_oids(fid)]
    connection.execute("DELETE FROM survey.object_registry WHERE oid = ANY(%s)", (seeded,))
    connection.execute("DELETE FROM survey.objects_released WHERE oid = ANY(%s)", (seeded,))
    connection.execute("DROP TABLE IF EXISTS survey.psf_sources_taptest")
    connection.execute("DROP TABLE IF EXISTS survey.aperture_sources_taptest")
    connection.execute("DROP TABLE IF EXISTS survey.lightcurves_taptest")
    connection.execute("DELETE FROM survey.solar_system_objects WHERE source = 'tap-test'")


def _wcs(ra: float, dec: float) -> dict:
    pixel = 1.0 / 3600
    return {"crval1": ra, "crval2": dec, "crpix1": 1536.5, "crpix2": 1540.5,
            "cd11": -pixel, "cd12": 0.0, "cd21": 0.0, "cd22": pixel, "naxis1": 3072,
            "naxis2": 3080}


def insert(connection: psycopg.Connection) -> None:
    """Insert the slice (as the owner, who bypasses row-level security)."""
    remove(connection)
    _ensure_partitions(connection)
    now = datetime.now(UTC).replace(microsecond=0)
    nights = [now - timedelta(days=400), now - timedelta(days=20)]
    star_ra, star_dec, star_mag = stars()
    objects: dict[int, tuple] = {}
    rng = np.random.default_rng(2024)
    sourceid = BASE + 10_000
    refs: dict[tuple[int, str], int] = {}
    for filtercode in ("zg", "zr"):
        for rcid in RCIDS:
            refid = BASE + 5_000 + 10 * FILTERS[filtercode] + rcid
            refs[(rcid, filtercode)] = refid
            ra, dec = quadrant_centre(rcid)
            points = corners(ra, dec)
            _insert(connection, "reference_images", [{
                "refid": refid, "field": FIELD, "ccdid": 1, "qid": rcid + 1, "rcid": rcid,
                "fid": FILTERS[filtercode], "filtercode": filtercode, "nframes": 24,
                "startobsdate": now - timedelta(days=900), "endobsdate": now - timedelta(days=600),
                "startobsjd": 2459000.5, "endobsjd": 2459300.5, "seeing": 1.8,
                "maglimit": 22.1, "magzp": 26.3, "magzprms": 0.02, "infobits": 0,
                "ra": ra, "dec": dec,
                **{f"ra{n}": p[0] for n, p in enumerate(points, 1)},
                **{f"dec{n}": p[1] for n, p in enumerate(points, 1)},
                "footprint": spoly(points), **_wcs(ra, dec), "pipeline_version": "1.0",
                "programids": [1], "ingested_at": COADD_RELEASED}])
    file_id = BASE + 50_000
    for exposure in EXPOSURES:
        observed = nights[exposure.night] + timedelta(minutes=37 * exposure.index)
        obsjd = observed.timestamp() / 86400.0 + 2440587.5
        # Program 1 400 days ago is in the session's release; programs 2 and 3 20 days ago
        # are proprietary (tests/release_calendar.py).
        common = {"programid": exposure.programid}
        epoch = {"obsjd": obsjd, "obsdate": observed, "nid": NID + exposure.night}
        band = {"fid": FILTERS[exposure.filtercode], "filtercode": exposure.filtercode}
        _insert(connection, "exposures", [{
            "expid": exposure.expid, **epoch, "field": FIELD, **band, "exptime": 30.0,
            "telra": CENTRE_RA, "teldec": CENTRE_DEC, "airmass": 1.21, "moonillf": 0.3,
            "itid": 1, "imgtypecode": "o", **common}])
        raw_points = corners(CENTRE_RA, CENTRE_DEC, 2 * QUADRANT_HALF)
        _insert(connection, "raw_images", [{
            "rawid": exposure.rawid(), "expid": exposure.expid, **epoch, "field": FIELD,
            "ccdid": 1, **band, "exptime": 30.0, "filefracday": 20240101123456,
            "ra": CENTRE_RA, "dec": CENTRE_DEC,
            **{f"ra{n}": p[0] for n, p in enumerate(raw_points, 1)},
            **{f"dec{n}": p[1] for n, p in enumerate(raw_points, 1)},
            "footprint": spoly(raw_points), **common}])
        for rcid in RCIDS:
            ra, dec = quadrant_centre(rcid)
            points = corners(ra, dec)
            pid = exposure.pid(rcid)
            seeing = 1.6 + 0.3 * exposure.index + 0.1 * rcid
            maglimit = 20.8 - 0.2 * exposure.index + 0.05 * rcid
            geometry = {**{f"ra{n}": p[0] for n, p in enumerate(points, 1)},
                        **{f"dec{n}": p[1] for n, p in enumerate(points, 1)},
                        "footprint": spoly(points)}
            _insert(connection, "science_images", [{
                "pid": pid, "expid": exposure.expid, **epoch, "field": FIELD, "ccdid": 1,
                "qid": rcid + 1, "rcid": rcid, **band, "filefracday": 20240101123456,
                "exptime": 30.0, "airmass": 1.21, "seeing": seeing, "maglimit": maglimit,
                "magzp": 26.2, "magzprms": 0.03, "infobits": 0, "astrom_rms": 0.08,
                "nsources": 0, "ra": ra, "dec": dec, **geometry, **_wcs(ra, dec),
                "rawid": exposure.rawid(), "pipeline_version": "1.0",
                "processed_at": observed + timedelta(hours=1), **common}])
            _insert(connection, "difference_images", [{
                "diffid": exposure.diffid(rcid), "pid": pid,
                "refid": refs[(rcid, exposure.filtercode)], "expid": exposure.expid, **epoch,
                "field": FIELD, "ccdid": 1, "qid": rcid + 1, "rcid": rcid, **band,
                "exptime": 30.0, "maglimit": maglimit - 0.3, "ncandidates": 3,
                "ra": ra, "dec": dec, **geometry, **common}])
            for product, content_type in (("sciimg", "image/fits"), ("psfcat", "image/fits")):
                path = f"taptest/{exposure.expid}/{product}_{rcid}.fits"
                _insert(connection, "files", [{
                    "file_id": file_id, "path": path, "product": product,
                    "image_table": "science_images", "image_id": pid,
                    "content_type": content_type, "size_bytes": 37_000_000,
                    "sha256": hashlib.sha256(path.encode()).hexdigest(),
                    "programids": [exposure.programid], "obsjd": obsjd}])
                file_id += 1
            inside = np.abs(star_ra - ra) < QUADRANT_HALF
            rows = []
            oids = star_oids(band["fid"])
            for star in np.flatnonzero(inside):
                objects.setdefault(int(oids[star]), (star, rcid, band))
                mag = float(star_mag[star] + rng.normal(0, 0.03))
                rows.append((sourceid, pid, exposure.expid, NID + exposure.night, FIELD, rcid,
                             band["fid"], exposure.filtercode,
                             float(star_ra[star] + rng.normal(0, 1e-5)),
                             float(star_dec[star] + rng.normal(0, 1e-5)),
                             1500.0 + 100 * star, 1500.0 + 50 * star, mag,
                             0.01 + 0.02 * max(0.0, mag - 16), 10 ** (0.4 * (26.2 - mag)),
                             50.0, 0.0, 1.0, 0, 10 ** (0.4 * (21 - mag)), obsjd,
                             exposure.programid, int(oids[star])))
                sourceid += 1
            with connection.cursor().copy(
                "COPY survey.psf_sources (sourceid, pid, expid, nid, field, rcid, fid, "
                "filtercode, ra, dec, x, y, mag, magerr, flux, fluxerr, sharpness, chi, flags, "
                "snr, obsjd, programid, oid) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            # The same detections as light-curve points (ingest/objects.py lightcurve_points).
            with connection.cursor().copy(
                "COPY survey.lightcurves (oid, sourceid, pid, expid, nid, field, rcid, fid,"
                " filtercode, ra, dec, mag, magerr, sharpness, chi, flags, snr, obsjd,"
                " programid) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row((row[22], *row[:10], *row[12:14], *row[16:22]))
    for oid, (star, rcid, band) in objects.items():
        connection.execute(
            "INSERT INTO survey.object_registry (oid, ra, dec, field, ccdid, qid, rcid, fid,"
            " filtercode) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (oid, float(star_ra[star]), float(star_dec[star]), FIELD, rcid // 4 + 1,
             rcid % 4 + 1, rcid, band["fid"], band["filtercode"]))
        connection.execute("INSERT INTO archive.ensemble_dirty (oid) VALUES (%s)", (oid,))
    _insert(connection, "solar_system_objects", [
        {"designation": "tap-1", "name": "Ceres", "number": 1, "orbit_type": "asteroid",
         "epoch_mjd": 60600.0, "a": 2.7666, "q": 2.5468, "e": 0.0795, "incl": 10.588,
         "node": 80.25, "peri": 73.30, "mean_anomaly": 145.8, "h": 3.34, "g": 0.12,
         "uncertainty": 0, "source": "tap-test"},
        {"designation": "tap-99942", "name": "Apophis", "number": 99942, "orbit_type": "asteroid",
         "epoch_mjd": 60600.0, "a": 0.9224, "q": 0.7461, "e": 0.1911, "incl": 3.34,
         "node": 203.96, "peri": 126.6, "mean_anomaly": 142.9, "h": 19.09, "g": 0.24,
         "uncertainty": 0, "source": "tap-test"},
        {"designation": "tap-433", "name": "Eros", "number": 433, "orbit_type": "asteroid",
         "epoch_mjd": 60600.0, "a": 1.458, "q": 1.133, "e": 0.2229, "incl": 10.83,
         "node": 304.3, "peri": 178.9, "mean_anomaly": 310.5, "h": 10.39, "g": 0.46,
         "uncertainty": 0, "source": "tap-test"},
        {"designation": "tap-1P", "name": "Halley", "number": None, "orbit_type": "comet",
         "epoch_mjd": 46480.0, "a": 17.83, "q": 0.586, "e": 0.9671, "incl": 162.26,
         "node": 58.42, "peri": 111.33, "mean_anomaly": None, "tp_mjd": 46470.9,
         "h": None, "g": None, "uncertainty": None, "source": "tap-test"},
    ])
    connection.execute("ANALYZE survey.psf_sources_taptest")
    connection.execute("ANALYZE survey.lightcurves_taptest")


def seed(database: Database) -> None:
    with database.admin() as connection:
        insert(connection)
    run_ensemble(database)  # the seeded objects' released statistics


def unseed(database: Database) -> None:
    with database.admin() as connection:
        remove(connection)


def visible_exposures(programs: set[int] | frozenset[int]) -> list[Exposure]:
    return [e for e in EXPOSURES if e.public or e.programid in programs]
