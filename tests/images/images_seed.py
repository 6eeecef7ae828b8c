"""The image services' test data: small real FITS images with TAN(-SIP) WCS in the file store,
and their rows (exposures, raw, calibration, science, reference and difference images, files,
sources) inserted through SQL, as ingest would leave them.

Identifiers live in a block nobody else uses (BASE); the night of the sources (NID) has its own
partition. Pixel values are distinct (row * 1000 + column + 0.5 for float images), so a cutout
pixel identifies the source pixel it came from.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import release_calendar
from astropy.io import fits
from astropy.wcs import WCS, Sip
from release_calendar import COADD_RELEASED, SESSION_START, jd

from skyvault.accounts import model as accounts
from skyvault.config import settings
from skyvault.db import Database
from skyvault.releases.dating import NIGHT_ZERO_JD

BASE = 770_000_000
NID = 77_770
STORE_FOLDER = "imagetest"
DID = "ivo://skyvault.archive/"
ARCSEC = 1 / 3600


@dataclass(frozen=True)
class Frame:
    """One image: where it points, its size, and what kind of file it is."""

    ra: float
    dec: float
    naxis1: int
    naxis2: int
    scale: float = 2 * ARCSEC
    rotation: float = 15.0
    sip: bool = False

    def wcs(self) -> WCS:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if self.sip else ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [self.ra, self.dec]
        w.wcs.crpix = [(self.naxis1 + 1) / 2, (self.naxis2 + 1) / 2]
        angle = math.radians(self.rotation)
        w.wcs.cd = self.scale * np.array([[-math.cos(angle), math.sin(angle)],
                                          [math.sin(angle), math.cos(angle)]])
        w.wcs.radesys = "ICRS"
        if self.sip:
            a = np.zeros((3, 3))
            b = np.zeros((3, 3))
            a[2, 0], a[1, 1], b[0, 2] = 2e-5, -1e-5, 1.5e-5
            w.sip = Sip(a, b, None, None, w.wcs.crpix)
        w.pixel_shape = (self.naxis1, self.naxis2)
        return w

    def corners(self) -> list[tuple[float, float]]:
        """(1,1), (n1,1), (n1,n2), (1,n2) in sky coordinates, as ingest records them."""
        x = np.array([1, self.naxis1, self.naxis1, 1], dtype=float)
        y = np.array([1, 1, self.naxis2, self.naxis2], dtype=float)
        ra, dec = self.wcs().all_pix2world(x, y, 1)
        return [(float(r) % 360.0, float(d)) for r, d in zip(ra, dec, strict=True)]


def spoly(corners: list[tuple[float, float]]) -> str:
    return "{" + ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in corners) + "}"


def pixel_values(naxis1: int, naxis2: int, offset: float = 0.0) -> np.ndarray:
    rows, columns = np.mgrid[0:naxis2, 0:naxis1]
    return (rows * 1000 + columns + 0.5 + offset).astype(np.float32)


def image_header(frame: Frame, **cards) -> fits.Header:
    header = frame.wcs().to_header(relax=True)
    for key, value in cards.items():
        header[key] = value
    return header


def write_fits(path: Path, hdus: fits.HDUList) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    hdus.writeto(path, overwrite=True)


@dataclass
class StoredFile:
    path: str
    product: str
    image_table: str
    image_id: int
    programids: list[int]
    obsjd: float | None
    """What the release rules date it by (a co-add's files: their ingested_at)."""
    content_type: str = "application/fits"

    @property
    def local(self) -> Path:
        return settings().store_root / self.path


@dataclass
class Seed:
    """What the tests refer to."""

    ids: dict[str, int] = field(default_factory=dict)
    frames: dict[str, Frame] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    member_token: str = ""
    outsider_token: str = ""

    def did(self, collection: str, name: str) -> str:
        return f"{DID}{collection}?{self.ids[name]}"

    def path(self, name: str) -> Path:
        return self.files[name].local


# Ninety days before the session: program 1 is in the session's release, program 2 within its
# proprietary period (tests/release_calendar.py).
OBSERVED = (SESSION_START - timedelta(days=90)).replace(hour=6, minute=0, second=0,
                                                          microsecond=0)
OBSJD = jd(OBSERVED)
OBSERVED_NIGHT = int(OBSJD - NIGHT_ZERO_JD)

# name: (frame, programid)
SCIENCE = {
    "sci_public": (Frame(150.0, 2.0, 240, 200, sip=True), 1),
    "sci_neighbour": (Frame(150.16, 2.0, 240, 200), 1),
    "sci_embargoed": (Frame(150.02, 2.01, 240, 200), 2),
    "sci_far": (Frame(10.0, -30.0, 240, 200), 1),
    "sci_wrap": (Frame(359.98, 5.0, 240, 200, rotation=0.0), 1),
    # Long and thin: its centre is near positions its footprint does not cover.
    "sci_thin": (Frame(152.0, 2.0, 1600, 20, rotation=0.0, scale=1 * ARCSEC), 1),
}


def _insert(connection: psycopg.Connection, table: str, values: dict) -> None:
    names = ", ".join(values)
    marks = ", ".join("%s::spoly" if name == "footprint" else "%s" for name in values)
    connection.execute(f"INSERT INTO survey.{table} ({names}) VALUES ({marks})",
                       list(values.values()))


def _corner_columns(frame: Frame) -> dict:
    values: dict = {}
    corners = frame.corners()
    for n, (ra, dec) in enumerate(corners, start=1):
        values[f"ra{n}"], values[f"dec{n}"] = ra, dec
    values["footprint"] = spoly(corners)
    return values


def _wcs_columns(frame: Frame) -> dict:
    w = frame.wcs()
    cd = w.wcs.cd
    return {"crval1": frame.ra, "crval2": frame.dec, "crpix1": w.wcs.crpix[0],
            "crpix2": w.wcs.crpix[1], "cd11": cd[0, 0], "cd12": cd[0, 1], "cd21": cd[1, 0],
            "cd22": cd[1, 1], "naxis1": frame.naxis1, "naxis2": frame.naxis2}


def _ensure_partitions(connection: psycopg.Connection) -> None:
    for table in ("psf_sources", "aperture_sources"):
        covered = connection.execute(f"""
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'survey.{table}_nights'::regclass
               AND (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
                    OR c.relname = '{table}_imagetest')""").fetchone()
        if not covered:
            connection.execute(f"CREATE TABLE survey.{table}_imagetest PARTITION OF"
                               f" survey.{table}_nights FOR VALUES FROM ({NID}) TO ({NID + 10})")


class Builder:
    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection
        self.seed = Seed()
        self.next_file = BASE + 9_000
        self.counter = 0
        self.now = datetime.now(UTC)

    def ident(self, name: str, block: int) -> int:
        self.counter += 1
        value = BASE + block * 100_000 + self.counter
        self.seed.ids[name] = value
        return value

    def file(self, name: str, path: str, product: str, table: str, image_id: int,
             programids: list[int], dated: float | None, hdus: fits.HDUList | None = None,
             content_type: str = "application/fits") -> None:
        stored = StoredFile(path, product, table, image_id, programids, dated, content_type)
        if hdus is not None:
            write_fits(stored.local, hdus)
        content = stored.local.read_bytes()
        self.next_file += 1
        _insert(self.connection, "files", {
            "file_id": self.next_file, "path": path, "product": product, "image_table": table,
            "image_id": image_id, "content_type": content_type, "size_bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(), "programids": programids,
            "obsjd": dated,
            **({"ingested_at": COADD_RELEASED} if table == "reference_images" else {})})
        self.seed.files[name] = stored

    def exposure(self, name: str, programid: int, frame: Frame,
                 filtercode: str = "zr", field_id: int = 700) -> int:
        expid = self.ident(name, 1)
        _insert(self.connection, "exposures", {
            "expid": expid, "obsjd": OBSJD, "obsdate": OBSERVED, "nid": NID, "field": field_id,
            "fid": {"zg": 1, "zr": 2, "zi": 3}[filtercode], "filtercode": filtercode,
            "exptime": 30.0, "telra": frame.ra, "teldec": frame.dec, "itid": 1,
            "imgtypecode": "o", "programid": programid})
        return expid

    def build(self) -> Seed:
        connection = self.connection
        _ensure_partitions(connection)
        for programid in (1, 2, 3):
            connection.execute(
                "INSERT INTO survey.programs (programid, name, release_rule, proprietary_days)"
                " VALUES (%s, %s, 'proprietary_period', 365) ON CONFLICT DO NOTHING",
                (programid, f"program {programid}"))
        folder = STORE_FOLDER
        for night, (name, (frame, programid)) in enumerate(SCIENCE.items()):
            self.seed.frames[name] = frame
            expid = self.exposure("exp_" + name, programid, frame)
            common = {"programid": programid}
            epoch = {"obsjd": OBSJD, "obsdate": OBSERVED, "nid": NID}
            band = {"fid": 2, "filtercode": "zr"}
            # Raw CCD frame: four quadrant HDUs with overscan, tile-compressed, no WCS.
            rawid = self.ident("raw_" + name, 2)
            raw_frame = Frame(frame.ra, frame.dec, frame.naxis1 + 12, frame.naxis2)
            _insert(connection, "raw_images", {
                "rawid": rawid, "expid": expid, **epoch, "field": 700, "ccdid": 5, **band,
                "exptime": 30.0, "ra": frame.ra, "dec": frame.dec,
                **_corner_columns(raw_frame), **common})
            quadrants = [fits.PrimaryHDU(header=fits.Header([("ORIGIN", "test camera")]))]
            for qid in range(1, 5):
                quadrants.append(fits.CompImageHDU(
                    pixel_values(raw_frame.naxis1, raw_frame.naxis2, qid).astype(np.int32),
                    fits.Header([("QID", qid)]), name=f"Q{qid}"))
            self.file("raw_" + name, f"{folder}/raw/{name}_c05_o.fits.fz", "raw",
                      "raw_images", rawid, [programid], OBSJD, fits.HDUList(quadrants))
            # Calibration frames used for the science image.
            calids = []
            for caltype in ("bias", "hifreqflat"):
                calid = self.ident(f"{caltype}_{name}", 3)
                calids.append(calid)
                _insert(connection, "calibration_images", {
                    "calid": calid, "caltype": caltype, "nid": OBSERVED_NIGHT + night,
                    "obsdate": OBSERVED, "ccdid": 5, "qid": 1, "rcid": 16, **band, "nframes": 5,
                    "programids": [programid]})
                self.file(f"{caltype}_{name}", f"{folder}/cal/{name}_{caltype}.fits", caltype,
                          "calibration_images", calid, [programid],
                          NIGHT_ZERO_JD + OBSERVED_NIGHT + night,
                          fits.HDUList([fits.PrimaryHDU(np.ones((8, 8), np.float32))]))
            pid = self.ident(name, 4)
            _insert(connection, "science_images", {
                "pid": pid, "expid": expid, **epoch, "field": 700, "ccdid": 5, "qid": 1,
                "rcid": 16, **band, "exptime": 30.0, "airmass": 1.2, "seeing": 2.1,
                "maglimit": 20.5, "ra": frame.ra, "dec": frame.dec,
                **_corner_columns(frame), **_wcs_columns(frame), "rawid": rawid,
                "bias_calid": calids[0], "flat_calid": calids[1], **common})
            header = image_header(frame, OBJECT=name, GAIN=6.2, EXPTIME=30.0)
            header["HISTORY"] = "made by the image services' tests"
            self.file(name, f"{folder}/sci/{name}_sciimg.fits", "sciimg", "science_images",
                      pid, [programid], OBSJD,
                      fits.HDUList([fits.PrimaryHDU(pixel_values(frame.naxis1, frame.naxis2),
                                                    header)]))
            self.file("msk_" + name, f"{folder}/sci/{name}_mskimg.fits", "mskimg",
                      "science_images", pid, [programid], OBSJD,
                      fits.HDUList([fits.PrimaryHDU(
                          np.zeros((frame.naxis2, frame.naxis1), np.int16), image_header(frame))]))
            for product in ("psfcat", "sexcat"):
                table = fits.BinTableHDU.from_columns([
                    fits.Column("ra", "D", array=np.array([frame.ra])),
                    fits.Column("dec", "D", array=np.array([frame.dec]))])
                self.file(f"{product}_{name}", f"{folder}/sci/{name}_{product}.fits", product,
                          "science_images", pid, [programid], OBSJD,
                          fits.HDUList([fits.PrimaryHDU(), table]))
            self._sources(name, pid, expid, frame, programid)
        self._reference_and_differences()
        self._people()
        return self.seed

    def _sources(self, name: str, pid: int, expid: int, frame: Frame, programid: int) -> None:
        # Three sources per image: the centre and two offsets, known positions for cones.
        for index, (dra, ddec) in enumerate(((0.0, 0.0), (0.01, 0.0), (0.0, -0.02))):
            source = self.ident(f"src_{name}_{index}", 8)
            values = {
                "sourceid": source, "pid": pid, "expid": expid, "nid": NID, "field": 700,
                "rcid": 16, "fid": 2, "filtercode": "zr", "ra": (frame.ra + dra) % 360.0,
                "dec": frame.dec + ddec, "x": 100.0, "y": 100.0, "mag": 18.0 + index,
                "magerr": 0.05, "flux": 1000.0, "fluxerr": 10.0, "flags": 0, "snr": 20.0,
                "obsjd": OBSJD, "programid": programid}
            _insert(self.connection, "psf_sources", values)
            aperture = {k: v for k, v in values.items() if k not in ("sharpness", "chi")}
            _insert(self.connection, "aperture_sources", aperture)

    def _reference_and_differences(self) -> None:
        folder = STORE_FOLDER
        frame = Frame(150.01, 2.0, 260, 220, rotation=10.0)
        self.seed.frames["ref"] = frame
        refid = self.ident("ref", 5)
        _insert(self.connection, "reference_images", {
            "refid": refid, "field": 700, "ccdid": 5, "qid": 1, "rcid": 16, "fid": 2,
            "filtercode": "zr", "nframes": 20, "startobsjd": OBSJD - 100,
            "endobsjd": OBSJD - 10, "seeing": 1.9, "maglimit": 21.5, "ra": frame.ra,
            "dec": frame.dec, **_corner_columns(frame), **_wcs_columns(frame),
            "programids": [1], "ingested_at": COADD_RELEASED})
        # Its epochs: the public and the embargoed science images' exposures (DataLink shows
        # each to whoever may see that image).
        self.connection.execute(
            "INSERT INTO archive.provenance (image_table, image_id, inputs)"
            " VALUES ('reference_images', %s, %s::jsonb)",
            (refid, json.dumps([{"role": "exposure", "expid": self.seed.ids["exp_" + name]}
                                for name in ("sci_public", "sci_embargoed")])))
        self.file("ref", f"{folder}/ref/ref_000700_zr_c05_q1_refimg.fits", "refimg",
                  "reference_images", refid, [1], None,
                  fits.HDUList([fits.PrimaryHDU(pixel_values(frame.naxis1, frame.naxis2, 0.25),
                                                image_header(frame, OBJECT="ref"))]))
        self.file("refpsfcat", f"{folder}/ref/ref_000700_zr_c05_q1_refpsfcat.fits",
                  "refpsfcat", "reference_images", refid, [1], None,
                  fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
                      [fits.Column("ra", "D", array=np.array([frame.ra]))])]))
        for science in ("sci_public", "sci_embargoed"):
            _, programid = SCIENCE[science]
            sci_frame = self.seed.frames[science]
            diff_frame = Frame(sci_frame.ra, sci_frame.dec, sci_frame.naxis1, sci_frame.naxis2,
                               rotation=sci_frame.rotation)
            name = "diff_" + science
            self.seed.frames[name] = diff_frame
            diffid = self.ident(name, 6)
            _insert(self.connection, "difference_images", {
                "diffid": diffid, "pid": self.seed.ids[science], "refid": refid,
                "expid": self.seed.ids["exp_" + science], "obsjd": OBSJD, "obsdate": OBSERVED,
                "nid": NID, "field": 700, "ccdid": 5, "qid": 1, "rcid": 16, "fid": 2,
                "filtercode": "zr", "exptime": 30.0, "maglimit": 20.8, "ra": diff_frame.ra,
                "dec": diff_frame.dec, **_corner_columns(diff_frame), "programid": programid})
            # Tile-compressed with square tiles, so a cutout decompresses only a few tiles;
            # lossless (GZIP_2, no quantisation), so pixel values compare exactly.
            hdu = fits.CompImageHDU(pixel_values(diff_frame.naxis1, diff_frame.naxis2, 0.125),
                                    image_header(diff_frame, OBJECT=name),
                                    compression_type="GZIP_2", tile_shape=(64, 64),
                                    quantize_level=0.0, quantize_method=-1)
            self.file(name, f"{folder}/diff/{science}_scimrefdiffimg.fits.fz", "diffimg",
                      "difference_images", diffid, [programid], OBSJD,
                      fits.HDUList([fits.PrimaryHDU(), hdu]))
            self.file("diffcat_" + science, f"{folder}/diff/{science}_diffcat.fits", "diffcat",
                      "difference_images", diffid, [programid], OBSJD,
                      fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
                          [fits.Column("ra", "D", array=np.array([diff_frame.ra]))])]))
            self.file("diffimgpsf_" + science, f"{folder}/diff/{science}_diffimgpsf.fits",
                      "diffimgpsf", "difference_images", diffid, [programid], OBSJD,
                      fits.HDUList([fits.PrimaryHDU(np.full((25, 25), 1 / 625, np.float32))]))

    def _people(self) -> None:
        for username, programs, attribute in (("img-member", [2], "member_token"),
                                              ("img-outsider", [3], "outsider_token")):
            existing = self.connection.execute(
                "SELECT 1 FROM archive.users WHERE username = %s", (username,)).fetchone()
            if not existing:
                accounts.create_user(self.connection, username, accounts.generate_password())
                accounts.grant_programs(self.connection, username, programs)
            setattr(self.seed, attribute, accounts.create_token(self.connection, username).token)


# Tables in the order rows can be deleted (files and sources before the images they point at).
TABLES = (("files", "file_id"), ("psf_sources", "sourceid"), ("aperture_sources", "sourceid"),
          ("difference_images", "diffid"), ("reference_images", "refid"),
          ("science_images", "pid"), ("calibration_images", "calid"),
          ("raw_images", "rawid"), ("exposures", "expid"))


def remove(connection: psycopg.Connection) -> None:
    connection.execute("DELETE FROM archive.provenance WHERE image_id BETWEEN %s AND %s",
                       (BASE, BASE + 99_999_999))
    for table, key in TABLES:
        connection.execute(f"DELETE FROM survey.{table} WHERE {key} BETWEEN %s AND %s",
                           (BASE, BASE + 99_999_999))


def seed(database: Database) -> Seed:
    with database.admin() as connection:
        remove(connection)
        built = Builder(connection).build()
    return built


def reset_world(connection: psycopg.Connection) -> None:
    """The session's release calendar, as the seed's states assume it."""
    release_calendar.prepare(connection)
