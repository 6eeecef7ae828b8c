"""The leak suite's data: one product of every kind in every embargo state, and its requesters.

Each state is one exposure with its raw, calibration, science, reference and difference images,
their files (real FITS on disk, each carrying a marker card naming its state), PSF and
aperture sources (the science image's and the co-add's), and a difference-image candidate.
Identifiers live in a range nobody else uses, each kind in its own block, so that a hidden
identifier found in a response is a leak, and a "twin" identifier of the same shape is
guaranteed not to exist (the answer for a hidden item must equal the answer for its twin).
A state is made as production data are dated (skyvault/releases/dating.py): by the program
and the observation time, against the session's release calendar (tests/release_calendar.py),
relative to now; a co-add (and its catalogs) by when it was archived.  A candidate of a
program whose alerts are public (the public survey) is public at once, whatever its state
(issue 17): ``row_visible`` and ``secrets_of`` say so.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import release_calendar
from astropy.io import fits
from release_calendar import COADD_PENDING, COADD_RELEASED, jd

from skyvault.access import Requester
from skyvault.accounts import model as accounts
from skyvault.config import settings
from skyvault.db import Database
from skyvault.ingest.q3c import object_ids
from skyvault.pipeline.naming import filefracday
from skyvault.releases.dating import NIGHT_ZERO_JD

BASE = 990_000_000
BLOCK = {"expid": 1_000, "rawid": 2_000, "calid": 3_000, "pid": 4_000, "refid": 5_000,
         "diffid": 6_000, "file_id": 7_000, "sourceid": 8_000, "candid": 9_000}
TWIN_OFFSET = 900
NID = 99_990
"""Night of the seeded sources: far from any real night, so the partition created for it can
never collide with one ingest creates."""
CENTRE_RA, CENTRE_DEC = 201.0, 33.0
PIXEL_DEG = 1.0 / 3600
IMAGE_SIZE = 64
SOURCES_PER_IMAGE = 3
STORE_FOLDER = "leaktest"
ID_PREFIX = "ivo://skyvault.archive/"


@dataclass(frozen=True)
class State:
    key: str
    index: int
    programid: int
    public: bool
    """What the release calendar makes of the program and observation time: public now?"""
    observed_days_ago: float

    def ident(self, kind: str) -> int:
        return BASE + BLOCK[kind] + self.index

    def twin(self, kind: str) -> int:
        return BASE + BLOCK[kind] + TWIN_OFFSET + self.index

    def file_id(self, product_index: int) -> int:
        return BASE + BLOCK["file_id"] + 10 * self.index + product_index

    def source_ids(self) -> list[int]:
        return [BASE + BLOCK["sourceid"] + 10 * self.index + j for j in range(SOURCES_PER_IMAGE)]

    @property
    def ra(self) -> float:
        return CENTRE_RA + 0.25 * self.index

    @property
    def dec(self) -> float:
        return CENTRE_DEC

    @property
    def marker(self) -> str:
        return f"LEAKMARK-{self.key}-"

    def file_path(self, product: str) -> str:
        return f"{STORE_FOLDER}/{self.key}/{product}_{self.index}.fits"

    def twin_file_path(self, product: str) -> str:
        return f"{STORE_FOLDER}/{self.key}/{product}_{self.index + TWIN_OFFSET}.fits"


STATES = (
    State("released", 0, 1, True, 400),  # public survey, in the session's release
    State("waiting", 1, 1, False, 20),  # public survey, after every release's cutoff
    State("prop2", 2, 2, False, 20),  # partnership, within its 365 proprietary days
    State("prop3", 3, 3, False, 20),
    State("oldprop2", 4, 2, True, 370),  # partnership, proprietary period over
)
STATE = {state.key: state for state in STATES}

RELEASE_PROGRAM = 7
RELEASE_STATES = (
    State("dr-early", 5, RELEASE_PROGRAM, False, 100),
    State("dr-late", 6, RELEASE_PROGRAM, False, 10),
)
"""Rows of a program only the release tests use (released at data releases, like program 1),
so declaring releases for it changes no other test's rows."""

# (product, image table, key kind, collection in publisher DIDs)
PRODUCTS = (
    ("raw", "raw_images", "rawid", "raw"),
    ("bias", "calibration_images", "calid", None),
    ("sciimg", "science_images", "pid", "sci"),
    ("refimg", "reference_images", "refid", "ref"),
    ("diffimg", "difference_images", "diffid", "diff"),
    ("psfcat", "science_images", "pid", None),
    ("refsexcat", "reference_images", "refid", None),
    ("diffimgpsf", "difference_images", "diffid", None),
)
PRODUCT_INDEX = {product[0]: i for i, product in enumerate(PRODUCTS)}
IMAGE_KEYS = {"raw_images": "rawid", "calibration_images": "calid", "science_images": "pid",
              "reference_images": "refid", "difference_images": "diffid"}


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    token: str
    programs: frozenset[int]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def requester(self) -> Requester:
        return Requester(user_id=-1, username=self.username, programs=self.programs)


PEOPLE_PROGRAMS = {"leak-p1": {1}, "leak-p2": {2}, "leak-p3": {3}, "leak-all": {1, 2, 3}}


PUBLIC_ALERT_PROGRAMS = frozenset({1})
"""Programs whose candidates are public at once (``survey.programs.public_alerts``, set for the
public survey by migration 0017)."""
ALERT_COLUMNS = ("candid", "diffid", "pid", "expid")
"""The state's identifiers a candidate row carries: public with a public alert."""


def visible(state: State, programs: frozenset[int] | set[int]) -> bool:
    return state.public or state.programid in programs


def row_visible(table: str, state: State, programs: frozenset[int] | set[int]) -> bool:
    """Whether a requester sees the state's rows of ``table`` (``survey.candidates`` follows
    the alert rule; every other table the state)."""
    if table == "survey.candidates" and state.programid in PUBLIC_ALERT_PROGRAMS:
        return True
    return visible(state, programs)


def hidden_states(programs: frozenset[int] | set[int]) -> list[State]:
    return [state for state in STATES if not visible(state, programs)]


def did(collection: str, ident: int) -> str:
    return f"{ID_PREFIX}{collection}?{ident}"


def secrets_of(state: State) -> list[str]:
    """Strings whose presence in a response reveals the state's rows or files.  The identifiers
    a public alert carries are not among them: they are public with the candidate (answers
    that must not show them, such as the state's image rows, are compared row by row)."""
    public = ALERT_COLUMNS if state.programid in PUBLIC_ALERT_PROGRAMS else ()
    values = [str(state.ident(kind)) for kind in BLOCK
              if kind not in ("file_id", "sourceid", *public)]
    values += [str(state.file_id(i)) for i in range(len(PRODUCTS))]
    values += [str(source) for source in state.source_ids()]
    values += [state.marker, f"{STORE_FOLDER}/{state.key}/"]
    return values


# -- files ---------------------------------------------------------------------------------------


def _wcs_header(state: State) -> fits.Header:
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = state.ra, state.dec
    header["CRPIX1"] = header["CRPIX2"] = (IMAGE_SIZE + 1) / 2
    header["CD1_1"], header["CD1_2"] = -PIXEL_DEG, 0.0
    header["CD2_1"], header["CD2_2"] = 0.0, PIXEL_DEG
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    return header


def fits_bytes(state: State, product: str) -> bytes:
    rng = np.random.default_rng(state.index * 10 + PRODUCT_INDEX[product])
    if product in ("psfcat", "refsexcat"):
        columns = [fits.Column("sourceid", "K", array=np.array(state.source_ids())),
                   fits.Column("ra", "D", array=np.full(SOURCES_PER_IMAGE, state.ra)),
                   fits.Column("dec", "D", array=np.full(SOURCES_PER_IMAGE, state.dec))]
        primary = fits.PrimaryHDU()
        primary.header["LEAKMARK"] = state.marker + product
        hdus = fits.HDUList([primary, fits.BinTableHDU.from_columns(columns)])
    else:
        data = rng.normal(100, 5, (IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        header = _wcs_header(state) if product != "raw" else fits.Header()
        header["LEAKMARK"] = state.marker + product
        header["PROGRMID"] = state.programid
        hdus = fits.HDUList([fits.PrimaryHDU(data, header)])
    buffer = io.BytesIO()
    hdus.writeto(buffer)
    return buffer.getvalue()


def write_files(states=STATES + RELEASE_STATES) -> dict[str, bytes]:
    contents = {}
    for state in states:
        for product, *_ in PRODUCTS:
            path = settings().store_root / state.file_path(product)
            path.parent.mkdir(parents=True, exist_ok=True)
            content = fits_bytes(state, product)
            path.write_bytes(content)
            contents[state.file_path(product)] = content
    return contents


# -- rows ----------------------------------------------------------------------------------------


def _corners(state: State) -> list[tuple[float, float]]:
    half = IMAGE_SIZE / 2 * PIXEL_DEG
    cos_dec = np.cos(np.radians(state.dec))
    return [(state.ra - half / cos_dec, state.dec - half), (state.ra + half / cos_dec,
            state.dec - half), (state.ra + half / cos_dec, state.dec + half),
            (state.ra - half / cos_dec, state.dec + half)]


def _spoly(corners) -> str:
    return "{" + ",".join(f"({ra:.8f}d,{dec:.8f}d)" for ra, dec in corners) + "}"


def _corner_columns(state: State) -> dict:
    values = {}
    for n, (ra, dec) in enumerate(_corners(state), start=1):
        values[f"ra{n}"], values[f"dec{n}"] = ra, dec
    values["footprint"] = _spoly(_corners(state))
    return values


def _insert(connection: psycopg.Connection, table: str, values: dict) -> None:
    names = ", ".join(values)
    marks = ", ".join("%s::spoly" if name == "footprint" else "%s" for name in values)
    connection.execute(f"INSERT INTO survey.{table} ({names}) VALUES ({marks})",
                       list(values.values()))


CATALOGS = ("psf_sources", "aperture_sources", "candidates", "lightcurves")
REFERENCE_CATALOGS = ("reference_psf_sources", "reference_aperture_sources")
"""A co-add's catalogs: plain tables, no night partitions."""


def _ensure_partitions(connection: psycopg.Connection) -> None:
    for table in CATALOGS:
        covered = connection.execute(f"""
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'survey.{table}_nights'::regclass
               AND (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
                    OR c.relname = '{table}_leaktest')""").fetchone()
        if not covered:
            connection.execute(f"CREATE TABLE survey.{table}_leaktest PARTITION OF"
                               f" survey.{table}_nights FOR VALUES FROM ({NID}) TO ({NID + 10})")


def insert_rows(connection: psycopg.Connection, contents: dict[str, bytes]) -> None:
    _ensure_partitions(connection)
    connection.execute(
        "INSERT INTO survey.programs (programid, name, description, release_rule)"
        " VALUES (%s, 'Leak-suite survey', 'Test program of the release tests',"
        " 'data_release') ON CONFLICT DO NOTHING", (RELEASE_PROGRAM,))
    now = datetime.now(UTC)
    for state in STATES + RELEASE_STATES:
        observed = now - timedelta(days=state.observed_days_ago)
        obsjd = jd(observed)
        # A calibration is dated by its night; a co-add by when it was archived.
        night = int(obsjd - NIGHT_ZERO_JD)
        archived = COADD_RELEASED if state.public else COADD_PENDING
        common = {"programid": state.programid}
        epoch = {"obsjd": obsjd, "obsdate": observed, "nid": NID + state.index}
        band = {"fid": 2, "filtercode": "zr"}
        field = 9_900 + state.index
        _insert(connection, "exposures", {
            "expid": state.ident("expid"), **epoch, "field": field, **band, "exptime": 30.0,
            "telra": state.ra, "teldec": state.dec, "itid": 1, "imgtypecode": "o", **common})
        _insert(connection, "raw_images", {
            "rawid": state.ident("rawid"), "expid": state.ident("expid"), **epoch,
            "filefracday": filefracday(obsjd), "field": field, "ccdid": 1, **band,
            "exptime": 30.0, "ra": state.ra,
            "dec": state.dec, **_corner_columns(state), **common})
        _insert(connection, "calibration_images", {
            "calid": state.ident("calid"), "caltype": "bias", "nid": night,
            "obsdate": datetime.fromtimestamp((NIGHT_ZERO_JD + night - 2440587.5) * 86400, UTC),
            # A CCD of its own (9-15), so that each state's bias has a path of its own at IBE
            # (cal/<date>/bias/00/ccd<NN>/q1/...): states share nights.
            "ccdid": 9 + state.index, "qid": 1, "rcid": 4 * (8 + state.index), "fid": 0,
            "filtercode": "00", "nframes": 5, "programids": [state.programid]})
        wcs = {"crval1": state.ra, "crval2": state.dec, "crpix1": 32.5, "crpix2": 32.5,
               "cd11": -PIXEL_DEG, "cd12": 0.0, "cd21": 0.0, "cd22": PIXEL_DEG,
               "naxis1": IMAGE_SIZE, "naxis2": IMAGE_SIZE}
        quadrant = {"field": field, "ccdid": 1, "qid": 1, "rcid": 0}
        _insert(connection, "science_images", {
            "pid": state.ident("pid"), "expid": state.ident("expid"), **epoch, **quadrant,
            **band, "filefracday": filefracday(obsjd), "exptime": 30.0, "seeing": 2.0,
            "maglimit": 20.5, "magzp": 26.0,
            "infobits": 0, "nsources": SOURCES_PER_IMAGE, "ra": state.ra, "dec": state.dec,
            **_corner_columns(state), **wcs, "rawid": state.ident("rawid"),
            "bias_calid": state.ident("calid"), **common})
        _insert(connection, "reference_images", {
            "refid": state.ident("refid"), **quadrant, **band, "nframes": 15,
            "startobsdate": observed - timedelta(days=30), "endobsdate": observed,
            "startobsjd": obsjd - 30, "endobsjd": obsjd, "seeing": 1.8, "maglimit": 21.5,
            "ra": state.ra, "dec": state.dec, **_corner_columns(state), **wcs,
            "programids": [state.programid], "ingested_at": archived})
        _insert(connection, "difference_images", {
            "diffid": state.ident("diffid"), "pid": state.ident("pid"),
            "refid": state.ident("refid"), "expid": state.ident("expid"), **epoch, **quadrant,
            **band, "exptime": 30.0, "maglimit": 20.0, "ncandidates": 1, "ra": state.ra,
            "dec": state.dec, **_corner_columns(state), **common})
        dated = {"raw_images": obsjd, "calibration_images": NIGHT_ZERO_JD + night,
                 "science_images": obsjd, "reference_images": None,
                 "difference_images": obsjd}
        for number, (product, table, kind, _collection) in enumerate(PRODUCTS):
            path = state.file_path(product)
            content = contents[path]
            _insert(connection, "files", {
                "file_id": state.file_id(number), "path": path, "product": product,
                "image_table": table, "image_id": state.ident(kind),
                "content_type": "application/fits", "size_bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "programids": [state.programid], "obsjd": dated[table],
                **({"ingested_at": archived} if table == "reference_images" else {})})
        for catalog in ("psf_sources", "aperture_sources"):
            for j, sourceid in enumerate(state.source_ids()):
                _insert(connection, catalog, {
                    "sourceid": sourceid, "pid": state.ident("pid"),
                    "expid": state.ident("expid"), "nid": NID + state.index, "field": field,
                    "rcid": 0, **band, "ra": state.ra + 0.0005 * j, "dec": state.dec,
                    "x": 32.0, "y": 32.0, "mag": 18.0 + j, "magerr": 0.05, "flux": 1000.0,
                    "fluxerr": 10.0, "flags": 0, "snr": 20.0, "obsjd": obsjd, **common})
        # The co-add's own catalogs (ZTF's refpsfcat and refsexcat), dated as the co-add.
        for catalog in REFERENCE_CATALOGS:
            for j, sourceid in enumerate(state.source_ids()):
                _insert(connection, catalog, {
                    "sourceid": sourceid, "refid": state.ident("refid"), "field": field,
                    "rcid": 0, **band, "ra": state.ra + 0.0005 * j, "dec": state.dec,
                    "x": 32.0, "y": 32.0, "mag": 19.0 + j, "magerr": 0.03, "flux": 500.0,
                    "fluxerr": 5.0, "flags": 0, "snr": 100.0, "ingested_at": archived,
                    "programids": [state.programid]})
        # The PSF detections again as light-curve points, each its own object's.
        for j, sourceid in enumerate(state.source_ids()):
            position = (state.ra + 0.0005 * j, state.dec)
            _insert(connection, "lightcurves", {
                "oid": int(object_ids(np.array([position[0]]), np.array([position[1]]), 2)[0]),
                "sourceid": sourceid, "pid": state.ident("pid"),
                "expid": state.ident("expid"), "nid": NID + state.index, "field": field,
                "rcid": 0, **band, "ra": position[0], "dec": position[1], "mag": 18.0 + j,
                "magerr": 0.05, "flags": 0, "snr": 20.0, "obsjd": obsjd, **common})
        # Dated by the alert rule, like ingest's: the public survey's is public at once.
        _insert(connection, "candidates", {
            "candid": state.ident("candid"), "diffid": state.ident("diffid"),
            "pid": state.ident("pid"), "expid": state.ident("expid"),
            "nid": NID + state.index, "jd": obsjd, "field": field, "rcid": 0, **band,
            "ra": state.ra + 0.0002, "dec": state.dec, "xpos": 32.0, "ypos": 32.0,
            "isdiffpos": "t", "magpsf": 19.0, "sigmapsf": 0.05, "rb": 0.9,
            "rb_version": "rb-leaktest", "flags": 0, **common})


def reset_world(connection: psycopg.Connection) -> None:
    """Put the session's release calendar back (a test may have moved its release) and take
    back what ``release_now`` released (the release tests' own states are theirs to reset)."""
    release_calendar.prepare(connection)
    connection.execute("DELETE FROM survey.data_releases WHERE release_name = %s",
                       (PASSED_RELEASE,))
    for state in STATES:
        archive_coadd(connection, state, COADD_RELEASED if state.public else COADD_PENDING)


PASSED_RELEASE = "LEAKDR-PASSED"


def archive_coadd(connection: psycopg.Connection, state: State, when) -> None:
    connection.execute("UPDATE survey.reference_images SET ingested_at = %s WHERE refid = %s",
                       (when, state.ident("refid")))
    connection.execute("UPDATE survey.files SET ingested_at = %s WHERE image_table ="
                       " 'reference_images' AND image_id = %s", (when, state.ident("refid")))
    for catalog in REFERENCE_CATALOGS:
        connection.execute(f"UPDATE survey.{catalog} SET ingested_at = %s WHERE refid = %s",
                           (when, state.ident("refid")))


def release_now(connection: psycopg.Connection, states, public_from: str = "now()"
                ) -> None:
    """Release the states' products: a data release of their programs declared now, whose
    cutoff is a day ago and whose date is ``public_from`` (SQL), with their co-adds archived
    before it.  Nothing else is run, so when the date passes the products simply appear."""
    for state in states:
        archive_coadd(connection, state, COADD_RELEASED)
    programs = sorted({state.programid for state in states})
    connection.execute(
        "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
        f" programids) VALUES (%s, {public_from}, now() - interval '1 day', %s)"
        " ON CONFLICT (release_name) DO UPDATE SET release_date = EXCLUDED.release_date,"
        " programids = EXCLUDED.programids, declared_at = now()", (PASSED_RELEASE, programs))


def seed(database: Database) -> dict[str, Person]:
    """Write the files, insert the rows and create the requesters; returns them by name."""
    contents = write_files()
    people = {}
    with database.admin() as connection:
        insert_rows(connection, contents)
        for username, programs in PEOPLE_PROGRAMS.items():
            password = accounts.generate_password()
            accounts.create_user(connection, username, password)
            accounts.grant_programs(connection, username, programs)
            token = accounts.create_token(connection, username, "leak suite").token
            people[username] = Person(username, password, token, frozenset(programs))
    return people


def seed_path() -> Path:
    return settings().store_root / STORE_FOLDER
