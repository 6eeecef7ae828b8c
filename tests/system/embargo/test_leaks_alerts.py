"""Alerts (issue 17) as every kind of requester: the packets' histories and stamps, the night
archives and the alert API carry nothing a stream or a requester may not have.

The seeded "waiting" state (a public-survey candidate, its images unreleased) gets a
neighbourhood: earlier candidates and difference images of programs 1, 2 and 3 at its
position, and a later partnership candidate there (``P2_ALERT``). The public stream's alert of
the waiting candidate may hold program 1's rows only; the partnership's alert programs 1 and 2
(released or not), never program 3's; the API shows an alert exactly when its candidate is
visible, and answers a hidden one as it answers a candid that does not exist.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from embargo_seed import BASE, NID, STATE, _corner_columns, _insert, _wcs_header
from leak_probe import ANONYMOUS_WHO, get, twin_difference, who

from skyvault.alerts.archive import IMAGE_TABLE, archive_path, night_date, store_archive
from skyvault.alerts.build import AlertBuilder, night_selection
from skyvault.alerts.packet import read_alerts
from skyvault.alerts.streams import PUBLIC, stream_named
from skyvault.config import settings
from skyvault.db import Database
from skyvault.filestore import archive_store

WAITING = STATE["waiting"]
OFFSET = 50_000
DAY_OF_NIGHT = NID + WAITING.index
FOLDER = "leaktest-alerts"


@dataclass(frozen=True)
class Epoch:
    key: str
    number: int
    programid: int
    days: float
    """Days after the waiting candidate."""
    detected: bool

    def ident(self) -> int:
        return BASE + OFFSET + self.number

    @property
    def candid(self) -> int:
        return self.ident() * 1_000_000 + 1


EPOCHS = (
    Epoch("p1-detection", 1, 1, -5, True),
    Epoch("p2-detection", 2, 2, -3, True),
    Epoch("p3-detection", 3, 3, -2, True),
    Epoch("p1-limit", 4, 1, -4, False),
    Epoch("p2-limit", 5, 2, -6, False),
    Epoch("p3-limit", 6, 3, -7, False),
    Epoch("p1-too-old", 7, 1, -31, True),
    Epoch("p2-alert", 8, 2, 1, True),
)
EPOCH = {e.key: e for e in EPOCHS}
P2_ALERT = EPOCH["p2-alert"]
PUBLIC_ALERTS = [WAITING.ident("candid"), EPOCH["p1-detection"].candid,
                 EPOCH["p1-too-old"].candid]
"""The public stream's alerts of the night, in order of difference image."""


def _pixels(epoch: Epoch, product: str) -> np.ndarray:
    rng = np.random.default_rng(epoch.number * 10 + len(product))
    return rng.normal(100, 5, (64, 64)).astype(np.float32)


def _file(connection, epoch: Epoch, product: str, table: str, image_id: int, jd: float) -> None:
    path = f"{FOLDER}/{epoch.key}/{product}.fits"
    buffer = io.BytesIO()
    fits.PrimaryHDU(_pixels(epoch, product), _wcs_header(WAITING)).writeto(buffer)
    target = settings().store_root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    _insert(connection, "files", {
        "path": path, "product": product, "image_table": table, "image_id": image_id,
        "content_type": "application/fits", "size_bytes": len(buffer.getvalue()),
        "sha256": "0" * 64, "programids": [epoch.programid], "obsjd": jd})


def _insert_epoch(connection, epoch: Epoch, waiting_jd: float) -> None:
    ident, jd = epoch.ident(), waiting_jd + epoch.days
    common = {"programid": epoch.programid}
    band = {"fid": 2, "filtercode": "zr"}
    quadrant = {"field": 9_900 + WAITING.index, "ccdid": 1, "qid": 1, "rcid": 0}
    epoch_values = {"obsjd": jd, "nid": DAY_OF_NIGHT}
    _insert(connection, "exposures", {
        "expid": ident, **epoch_values, "field": quadrant["field"], **band, "itid": 1,
        "telra": WAITING.ra, "teldec": WAITING.dec, **common})
    wcs = {"crval1": WAITING.ra, "crval2": WAITING.dec, "crpix1": 32.5, "crpix2": 32.5,
           "naxis1": 64, "naxis2": 64}
    _insert(connection, "science_images", {
        "pid": ident, "expid": ident, **epoch_values, **quadrant, **band, "magzp": 26.0,
        "ra": WAITING.ra, "dec": WAITING.dec, **_corner_columns(WAITING), **wcs, **common})
    _insert(connection, "difference_images", {
        "diffid": ident, "pid": ident, "refid": WAITING.ident("refid"), "expid": ident,
        **epoch_values, **quadrant, **band, "maglimit": 20.0 + epoch.number / 10,
        "ra": WAITING.ra, "dec": WAITING.dec, **_corner_columns(WAITING), **common})
    if epoch.detected:
        _insert(connection, "candidates", {
            "candid": epoch.candid, "diffid": ident, "pid": ident, "expid": ident,
            "nid": DAY_OF_NIGHT, "jd": jd, **{k: quadrant[k] for k in ("field", "rcid")},
            **band, "ra": WAITING.ra + 0.0002, "dec": WAITING.dec + 0.0001 * epoch.number
            / 10, "xpos": 32.0, "ypos": 32.0, "isdiffpos": "t", "magpsf": 19.0,
            "sigmapsf": 0.05, "rb": 0.9, "rb_version": "rb-leaktest", "flags": 0,
            "objectid": "ZTF26leakalr", **common})
    if epoch is P2_ALERT:
        _file(connection, epoch, "sciimg", "science_images", ident, jd)
    # Every epoch's difference is a file: fp_hists measure on it.
    _file(connection, epoch, "diffimg", "difference_images", ident, jd)


def _remove(connection) -> None:
    idents = [e.ident() for e in EPOCHS]
    connection.execute("DELETE FROM survey.files WHERE path LIKE %s OR image_table = %s",
                       (f"{FOLDER}/%", IMAGE_TABLE))
    connection.execute("DELETE FROM survey.candidates WHERE diffid = ANY(%s)", (idents,))
    for table, key in (("difference_images", "diffid"), ("science_images", "pid"),
                       ("exposures", "expid")):
        connection.execute(f"DELETE FROM survey.{table} WHERE {key} = ANY(%s)", (idents,))


@pytest.fixture(scope="module")
def neighbourhood(database: Database, seeded_people) -> dict:
    with database.admin() as connection:
        _remove(connection)
        waiting_jd = connection.execute("SELECT jd FROM survey.candidates WHERE candid = %s",
                                        (WAITING.ident("candid"),)).fetchone()[0]
        # The seeded candidate follows no candid convention; the API finds a candidate by
        # its difference image (candid = diffid * 10^6 + n), so it gets a conventional twin.
        connection.execute("UPDATE survey.candidates SET objectid = 'ZTF26leakalr'"
                           " WHERE candid = %s", (WAITING.ident("candid"),))
        for epoch in EPOCHS:
            _insert_epoch(connection, epoch, waiting_jd)
    yield {"waiting_jd": waiting_jd}
    with database.admin() as connection:
        _remove(connection)
        connection.execute("UPDATE survey.candidates SET objectid = NULL WHERE candid = %s",
                           (WAITING.ident("candid"),))


def _alerts(database: Database, stream_name: str) -> dict[int, dict]:
    with database.admin() as connection:
        stream = stream_named(connection, stream_name)
    built = AlertBuilder(database, stream).alerts(night_selection(DAY_OF_NIGHT, stream))
    return {alert["candid"]: alert for alert in built}


def _history(alert: dict) -> tuple[set[int], set[int]]:
    detections = {p["candid"] for p in alert["prv_candidates"] if p["candid"] is not None}
    limits = {p["pid"] for p in alert["prv_candidates"] if p["candid"] is None}
    return detections, limits


def test_the_public_streams_histories_hold_public_survey_data_only(database, neighbourhood
                                                                   ) -> None:
    alerts = _alerts(database, PUBLIC)
    waiting = alerts[WAITING.ident("candid")]
    # The night's public-survey candidates; the partnership's and Caltech's are not here.
    assert list(alerts) == PUBLIC_ALERTS
    detections, limits = _history(waiting)
    assert detections == {EPOCH["p1-detection"].candid}
    assert limits == {EPOCH["p1-limit"].ident()}
    assert {p["programid"] for p in waiting["prv_candidates"]} == {1}
    # Forced photometry on the 30 days before: program 1's images only.
    assert [fp["pid"] for fp in waiting["fp_hists"]] == [
        EPOCH[k].ident() for k in ("p1-detection", "p1-limit")]  # oldest first
    assert {fp["programid"] for fp in waiting["fp_hists"]} == {1}


def test_a_programs_histories_add_its_own_data_never_anothers(database, neighbourhood) -> None:
    alerts = _alerts(database, "partnership")
    alert = alerts[P2_ALERT.candid]
    detections, limits = _history(alert)
    assert detections == {EPOCH["p1-detection"].candid, EPOCH["p2-detection"].candid,
                          WAITING.ident("candid")}
    assert limits == {EPOCH["p1-limit"].ident(), EPOCH["p2-limit"].ident()}
    with database.admin() as connection:
        caltech = stream_named(connection, "caltech")
    assert 3 not in {p["programid"] for p in alert["prv_candidates"]}
    forced = {fp["pid"] for fp in alert["fp_hists"]}
    assert {EPOCH[k].ident() for k in ("p1-detection", "p1-limit", "p2-detection",
                                       "p2-limit")} <= forced
    assert not forced & {EPOCH[k].ident() for k in ("p3-detection", "p3-limit", "p1-too-old")}
    assert caltech.requester.programs == frozenset({1, 3})


def test_stamps_are_the_alerts_own_images(database, neighbourhood) -> None:
    alert = _alerts(database, "partnership")[P2_ALERT.candid]
    for field, product in (("cutoutScience", "sciimg"), ("cutoutDifference", "diffimg")):
        with fits.open(io.BytesIO(gzip.decompress(alert[field]["stampData"]))) as hdus:
            stamp = hdus[0].data
        # The file's pixels around the candidate, as astropy cuts them.
        x, y = WCS(_wcs_header(WAITING)).world_to_pixel_values(
            alert["candidate"]["ra"], alert["candidate"]["dec"])
        expected = Cutout2D(_pixels(P2_ALERT, product), (float(x), float(y)), 63,
                            mode="partial", fill_value=np.nan).data
        assert np.array_equal(stamp, expected, equal_nan=True)
    assert alert["cutoutTemplate"] is not None


def _requesters(world):
    return {"anonymous": ANONYMOUS_WHO, "p1": who(world["leak-p1"]),
            "p2": who(world["leak-p2"]), "p3": who(world["leak-p3"], basic=True)}


def test_the_api_shows_an_alert_exactly_with_its_candidate(live_server, world, neighbourhood
                                                           ) -> None:
    base = live_server
    hidden_values = [str(EPOCH[k].candid) for k in ("p2-detection", "p3-detection")] + [
        str(EPOCH[k].ident()) for k in ("p2-limit", "p3-limit", "p2-detection",
                                        "p3-detection")]
    for name, requester in _requesters(world).items():
        programs = requester.programs
        response = get(base, f"/alerts/candid/{P2_ALERT.candid}", requester)
        twin = P2_ALERT.candid + 5  # same difference image, no such candidate
        if 2 in programs:
            assert response.status_code == 200, response.text
            (alert,) = read_alerts(io.BytesIO(response.content))
            assert alert["candid"] == P2_ALERT.candid
        else:
            assert response.status_code == 404, name
            other = get(base, f"/alerts/candid/{twin}", requester)
            assert not twin_difference(response, str(P2_ALERT.candid), other, str(twin))
        # The object's alerts and the night's, in JSON: those whose candidates the requester
        # sees (the public survey's at once, the others to their members).
        visible = {WAITING.ident("candid")} | {
            e.candid for e in EPOCHS if e.detected and (e.programid == 1
                                                        or e.programid in programs)}
        for path in ("/alerts/object/ZTF26leakalr?format=json",
                     f"/alerts/night/{night_date(DAY_OF_NIGHT):%Y%m%d}?format=json"):
            response = get(base, path, requester)
            assert response.status_code == 200, (path, response.text)
            assert {a["candid"] for a in response.json()["alerts"]} == visible, (name, path)
        if not programs & {2, 3}:
            body = get(base, "/alerts/object/ZTF26leakalr", requester).content
            assert not [v for v in hidden_values if v.encode() in body], name


def test_night_archives_are_served_as_their_stream(live_server, database, world,
                                                   neighbourhood) -> None:
    store = archive_store()
    paths = {}
    for name in (PUBLIC, "partnership"):
        alerts = _alerts(database, name)
        with database.admin() as connection:
            stream = stream_named(connection, name)
        result = store_archive(database, store, stream, DAY_OF_NIGHT, alerts.values())
        assert result.path == archive_path(stream, DAY_OF_NIGHT)
        paths[name] = result.path
    try:
        for name, requester in _requesters(world).items():
            public = get(live_server, f"/files/{paths[PUBLIC]}", requester)
            assert public.status_code == 200
            with tarfile.open(fileobj=io.BytesIO(public.content)) as tar:
                assert tar.getnames() == [f"{candid}.avro" for candid in PUBLIC_ALERTS]
            partnership = get(live_server, f"/files/{paths['partnership']}", requester)
            assert partnership.status_code == (200 if 2 in requester.programs else 404), name
            if partnership.status_code == 404:
                twin = get(live_server, "/files/alerts/partnership/ztf_partnership_19990101"
                           ".tar.gz", requester)
                assert not twin_difference(partnership, paths["partnership"], twin,
                                           "alerts/partnership/ztf_partnership_19990101.tar.gz")
    finally:
        for path in paths.values():
            (settings().store_root / path).unlink(missing_ok=True)


def test_bad_requests_get_json_errors(live_server) -> None:
    for path in ("/alerts/candid/abc", "/alerts/candid/99999999999999999999999",
                 "/alerts/object/nope", "/alerts/night/2026-13-45",
                 "/alerts/night/20261120?rb_min=nan", "/alerts/night/20261120?ra=10",
                 "/alerts/night/20261120?ra=10&dec=10&radius=0",
                 "/alerts/night/20261120?ss_clear_arcsec=60",
                 "/alerts/night/20261120?format=xml", "/alerts/night/20261120?maxrec=0",
                 "/alerts/night/20261120?fid=9", "/alerts/night/20261120?isdiffpos=x"):
        response = get(live_server, path, ANONYMOUS_WHO)
        assert response.status_code == 400, (path, response.status_code)
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["message"]


def test_fp_hists_epochs_are_held_to_the_history_programs_in_sql(database, neighbourhood
                                                                  ) -> None:
    """Row-level security aside (the owner sees every epoch, released or not), the epochs an
    alert's fp_hists are measured on are its program's and the public-alert programs'
    (``find_epochs(history_of_program=...)``), as its prv_candidates: a public alert carries
    no partnership epoch even once the partnership's data are released."""
    from skyvault.forced_photometry import find_epochs, forced_request

    jd = neighbourhood["waiting_jd"]
    request = forced_request(WAITING.ra, WAITING.dec, jd - 30, jd)
    ours = {e.ident(): e.programid for e in EPOCHS}
    with database.admin() as connection:
        found = {program: {e.pid for e in find_epochs(connection, request,
                                                      history_of_program=program)} & set(ours)
                 for program in (None, 1, 2, 3)}
    expected_all = {EPOCH[k].ident() for k in ("p1-detection", "p2-detection", "p3-detection",
                                               "p1-limit", "p2-limit", "p3-limit")}
    assert found[None] == expected_all
    for program, allowed in ((1, {1}), (2, {1, 2}), (3, {1, 3})):
        assert found[program] == {pid for pid in expected_all if ours[pid] in allowed}
