"""Alert packets (issue 17) of the test survey's candidates, as ZTF's brokers read them, checked
against independent computations: the stamps against astropy's Cutout2D on the archived files,
the histories against a brute-force search of everything the stream's requester sees."""

from __future__ import annotations

import gzip
import io
import math
import os
import subprocess
import sys
import tarfile

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from ztf_samples import sample_packets

from skyvault.access import ANONYMOUS
from skyvault.alerts import fp_hists, history
from skyvault.alerts.archive import store_archive
from skyvault.alerts.build import AlertBuilder, night_selection
from skyvault.alerts.fp_hists import fp_hist_values, history_window
from skyvault.alerts.packet import read_alerts, record, write_alerts
from skyvault.alerts.schema import alert_schema, field_types
from skyvault.alerts.stamps import SIZE
from skyvault.alerts.streams import PUBLIC, streams
from skyvault.db import Database
from skyvault.forced_photometry import (
    find_epochs,
    forced_photometry_rows,
    forced_request,
    measure_epoch,
)
from skyvault.geometry import inside_convex_polygon, separation
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.testing import fresh_database
from skyvault.pipeline.process.candidates import ARTEFACT_FLAGS

RADIUS_ARCSEC = 1.5
DAYS = 30.0


@pytest.fixture(scope="module")
def archive(survey, database: Database, tmp_path_factory) -> dict:
    handle = fresh_database(database.urls.admin, "alerts_archive")
    base = tmp_path_factory.mktemp("alerts-archive")
    store = LocalFileStore(base / "store")
    summary = ingest_paths([survey.products], database=handle, store=store,
                           quarantine_root=base / "quarantine")
    assert summary.ok, summary.lines()
    with handle.admin() as connection:
        nid = connection.execute("SELECT max(nid) FROM survey.candidates").fetchone()[0]
        every = {s.name: s for s in streams(connection)}
    built = {}
    for name, stream in every.items():
        builder = AlertBuilder(handle, stream, locate=lambda path: base / "store" / path)
        built[name] = list(builder.alerts(night_selection(nid, stream)))
    return {"database": handle, "store": store, "root": base / "store", "nid": nid,
            "streams": every, "alerts": built}


def test_the_night_has_alerts_on_the_streams(archive) -> None:
    alerts = archive["alerts"]
    assert len(alerts[PUBLIC]) > 10
    assert all(a["candidate"]["programid"] == 1 for a in alerts[PUBLIC])
    for name, stream in archive["streams"].items():
        assert {a["candidate"]["programid"] for a in alerts[name]} <= stream.programs
    # Artefacts raise no alert; every clean candidate of the night does.
    with archive["database"].admin() as connection:
        clean = connection.execute(
            "SELECT count(*) FROM survey.candidates WHERE nid = %s AND flags & %s = 0",
            (archive["nid"], ARTEFACT_FLAGS)).fetchone()[0]
    assert sum(len(a) for a in alerts.values()) == clean


def test_alerts_validate_and_round_trip(archive) -> None:
    """Every packet validates against the 4.02 schema (fastavro's validation) and reads back
    equal through an Avro container file."""
    alerts = [a for stream in archive["alerts"].values() for a in stream]
    assert fastavro.validation.validate_many(alerts, alert_schema(), raise_errors=True)
    buffer = io.BytesIO()
    write_alerts(buffer, alerts)
    buffer.seek(0)
    assert list(read_alerts(buffer)) == alerts


def _types(record: dict) -> dict[str, type]:
    return {k: type(v) for k, v in record.items() if v is not None}


def test_the_same_reader_reads_ztf_packets_and_ours(archive) -> None:
    """Read as a broker reads ZTF's (fastavro.reader, the schema from the file): every field
    of schema 4.02 is there, and every field the real ZTF packets carry has the same type
    in ours (null aside: a nullable field may be null in either)."""
    ours = archive["alerts"][PUBLIC]
    buffer = io.BytesIO()
    write_alerts(buffer, ours)
    buffer.seek(0)
    read = list(read_alerts(buffer))
    samples = []
    for path in sample_packets():
        with path.open("rb") as stream:
            samples += list(read_alerts(stream))
    assert len(samples) == 2
    for alert in read:
        assert list(alert) == list(field_types("alert"))
        assert list(alert["candidate"]) == list(field_types("candidate"))
        for previous in alert["prv_candidates"]:
            assert list(previous) == list(field_types("prv_candidate"))
    with_history = [a for a in read if a["prv_candidates"]]
    assert with_history
    for sample in samples:
        for name, value in sample.items():
            assert name in read[0]
            if value is not None and not isinstance(value, (dict, list)):
                assert type(read[0][name]) is type(value), name
        for part in ("candidate",):
            theirs, mine = _types(sample[part]), _types(read[0][part])
            for name, kind in theirs.items():
                assert name in read[0][part]
                if name in mine:
                    assert mine[name] is kind, name
        mine = {}
        for alert in with_history:
            for previous in alert["prv_candidates"]:
                mine.update(_types(previous))
        for previous in sample["prv_candidates"]:
            for name, kind in _types(previous).items():
                if name in mine:
                    assert mine[name] is kind, name
        for stamp in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            assert set(sample[stamp]) == set(read[0][stamp])


def _archived(root, path: str) -> tuple[np.ndarray, WCS]:
    with fits.open(root / path) as hdus:
        hdu = next(h for h in hdus if h.data is not None and h.data.ndim == 2)
        return np.asarray(hdu.data, dtype=np.float32), WCS(hdu.header)


def test_stamps_are_the_archived_pixels(archive) -> None:
    """Each stamp, opened with astropy, holds the archived image's pixels around the
    candidate (astropy's WCS and Cutout2D on the file in the store, partial stamps filled
    with NaN)."""
    alerts = archive["alerts"][PUBLIC][:40]
    with archive["database"].admin() as connection:
        paths = {(table, image_id): path for table, image_id, path in connection.execute(
            "SELECT image_table, image_id, path FROM survey.files"
            " WHERE product IN ('sciimg', 'refimg', 'diffimg')")}
        refids = dict(connection.execute("SELECT diffid, refid FROM survey.difference_images"))
    checked = 0
    for alert in alerts:
        candidate = alert["candidate"]
        diffid = candidate["candid"] // 1_000_000
        sources = {"cutoutScience": ("science_images", candidate["pid"]),
                   "cutoutTemplate": ("reference_images", refids[diffid]),
                   "cutoutDifference": ("difference_images", diffid)}
        for field, key in sources.items():
            stamp = alert[field]
            assert stamp["fileName"].startswith(f"candid{candidate['candid']}_pid")
            with fits.open(io.BytesIO(gzip.decompress(stamp["stampData"]))) as hdus:
                pixels = hdus[0].data
            assert pixels.shape == (SIZE, SIZE) and pixels.dtype.name == "float32"
            data, wcs = _archived(archive["root"], paths[key])
            x, y = wcs.world_to_pixel_values(candidate["ra"], candidate["dec"])
            expected = Cutout2D(data, (float(x), float(y)), SIZE, mode="partial",
                                fill_value=np.nan).data
            assert np.array_equal(pixels, expected, equal_nan=True), (field, candidate["candid"])
            checked += 1
    assert checked == 3 * len(alerts) > 0


def test_histories_equal_a_brute_force_search_as_the_stream(archive) -> None:
    """prv_candidates: every candidate within 1.5 arcsec over the 30 days before, and every
    difference image of those days that held the position without one, of the alert's
    program or a public-alert program, among the rows the stream's requester sees (one plain
    read of each table, numpy for the geometry)."""
    database = archive["database"]
    compared = 0
    for name, stream in archive["streams"].items():
        with database.reading(stream.requester, user_query=True) as connection:
            rows = connection.execute(
                "SELECT candid, diffid, ra, dec, jd, programid FROM survey.candidates").fetchall()
            images = connection.execute(
                "SELECT diffid, pid, obsjd, programid, ra1, dec1, ra2, dec2, ra3, dec3, ra4,"
                " dec4 FROM survey.difference_images WHERE is_current = 1").fetchall()
        candid, diffid, ra, dec, jd, program = (np.array(c) for c in zip(*rows, strict=True))
        for alert in archive["alerts"][name]:
            c = alert["candidate"]
            allowed = {c["programid"], *stream.public_alert_programs}
            near = separation(ra, dec, c["ra"], c["dec"]) * 3600 <= RADIUS_ARCSEC
            earlier = (jd >= c["jd"] - DAYS) & (jd < c["jd"])
            mine = np.isin(program, list(allowed))
            expected = set(candid[near & earlier & mine].tolist())
            history = alert["prv_candidates"]
            assert {p["candid"] for p in history if p["candid"] is not None} == expected
            detected_on = set(diffid[near].tolist())
            limits = set()
            for image in images:
                if not (c["jd"] - DAYS <= image[2] < c["jd"]) or image[3] not in allowed:
                    continue
                inside = inside_convex_polygon(c["ra"], c["dec"], np.array(image[4::2]),
                                               np.array(image[5::2]))
                if inside and image[0] not in detected_on:
                    limits.add(image[1])
            assert {p["pid"] for p in history if p["candid"] is None} == limits
            assert [p["jd"] for p in history] == sorted(p["jd"] for p in history)
            compared += len(history)
    assert compared > 0


def test_the_night_archive_is_ztfs_layout_and_dated_as_its_alerts(archive) -> None:
    database, nid = archive["database"], archive["nid"]
    results = {}
    for name, stream in archive["streams"].items():
        results[name] = store_archive(database, archive["store"], stream, nid,
                                      archive["alerts"][name])
    public = results[PUBLIC]
    assert public.path.startswith("alerts/public/ztf_public_2026")
    with tarfile.open(archive["root"] / public.path) as tar:
        names = tar.getnames()
        assert names == [f"{a['candid']}.avro" for a in archive["alerts"][PUBLIC]]
        first = list(read_alerts(tar.extractfile(names[0])))
    assert first == [archive["alerts"][PUBLIC][0]]
    with database.reading(ANONYMOUS, user_query=True) as connection:
        visible = {row[0] for row in connection.execute(
            "SELECT path FROM survey.files WHERE image_table = 'alert_archives'")}
    # The public stream's archive is public at once; a program's waits for its data (the
    # survey's nights are in their proprietary year).
    assert visible == {public.path}
    assert len(results) > 1


def _f32(value: float | None) -> float | None:
    """What a nullable Avro float carries: 32 bits, NaN and None as null."""
    return None if value is None or math.isnan(value) else float(np.float32(value))


def test_fp_hists_are_the_forced_photometry_of_the_30_days_before(archive) -> None:
    """fp_hists: ``forced_photometry_rows`` at the alert's position over the 30 days before it,
    as the stream's requester, called on its own, field for field; its epochs are every
    difference image of those days whose footprint holds the position, of the alert's
    program or a public-alert program, among those the stream sees (numpy)."""
    database, root = archive["database"], archive["root"]
    compared = 0
    for name, stream in archive["streams"].items():
        with database.reading(stream.requester, user_query=True) as connection:
            images = connection.execute(
                "SELECT pid, obsjd, programid, ra1, dec1, ra2, dec2, ra3, dec3, ra4, dec4"
                " FROM survey.difference_images WHERE is_current = 1").fetchall()
        for alert in archive["alerts"][name][:12]:
            c = alert["candidate"]
            allowed = {c["programid"], *stream.public_alert_programs}
            covering = [image[0] for image in sorted(images, key=lambda i: (i[1], i[0]))
                        if c["jd"] - DAYS <= image[1] < c["jd"] and image[2] in allowed
                        and inside_convex_polygon(c["ra"], c["dec"], np.array(image[3::2]),
                                                  np.array(image[4::2]))]
            rows = forced_photometry_rows(
                stream.requester, c["ra"], c["dec"], jd_start=c["jd"] - DAYS,
                jd_end=math.nextafter(c["jd"], -math.inf), history_of_program=c["programid"],
                on=database, locate=lambda path: root / path)
            fp_hists = alert["fp_hists"]
            assert [fp["pid"] for fp in fp_hists] == [row.epoch.pid for row in rows] == covering
            for fp, row in zip(fp_hists, rows, strict=True):
                epoch = row.epoch
                assert (fp["field"], fp["rcid"], fp["fid"], fp["rfid"], fp["programid"],
                        fp["jd"]) == (epoch.field, epoch.rcid, epoch.fid, epoch.rfid,
                                      epoch.programid, epoch.jd)
                assert (fp["exptime"], fp["magzpsci"], fp["magzpscirms"], fp["diffmaglim"],
                        fp["sciinpseeing"]) == (
                    _f32(epoch.exptime), _f32(epoch.magzpsci), _f32(epoch.magzpscirms),
                    _f32(row.diffmaglim), _f32(row.sciinpseeing))
                assert fp["forcediffimflux"] == _f32(row.measured.flux)
                assert fp["forcediffimfluxunc"] == _f32(row.measured.fluxerr)
                assert fp["procstatus"] == str(row.procstatus)
                assert fp["distnr"] == c["distnr"] and fp["magnr"] == c["magnr"]
                compared += 1
    measured = [fp for stream in archive["alerts"].values() for alert in stream
                for fp in alert["fp_hists"] if fp["forcediffimflux"] is not None]
    assert compared > 0 and measured


def test_previous_images_equal_the_per_alert_statements(archive) -> None:
    """The previous images found for a whole difference image's alerts in one statement give
    every alert the epochs ``find_epochs`` finds for it alone over its 30 days (the statement
    fp_hists used per alert), field for field, and the upper limits are those of them without
    a candidate within 1.5 arcsec (q3c_join, as the statement the limits used per batch)."""
    database = archive["database"]
    compared = 0
    for stream in archive["streams"].values():
        selection = night_selection(archive["nid"], stream)
        with database.reading(stream.requester, user_query=True) as connection:
            rows = history.alert_rows(connection, selection.where, selection.params)
            previous = history.previous_images(connection, rows)
            for row in rows:
                request = forced_request(row["ra"], row["dec"], *history_window(row["jd"]))
                alone = find_epochs(connection, request, history_of_program=row["programid"])
                assert fp_hists.epochs(previous[row["candid"]]) == alone
                near = {diffid for (diffid,) in connection.execute(
                    "SELECT DISTINCT diffid FROM survey.candidates o"
                    " WHERE q3c_join(%s, %s, o.ra, o.dec, %s)",
                    (row["ra"], row["dec"], RADIUS_ARCSEC / 3600))}
                limits = history.upper_limit_rows(previous[row["candid"]])
                assert [limit["diffid"] for limit in limits] == [
                    image["diffid"] for image in previous[row["candid"]]
                    if image["diffid"] not in near]
                compared += len(alone)
    assert compared > 0


def test_fp_hists_measured_together_equal_each_alert_measured_alone(archive) -> None:
    """fp_hists measure each epoch at all its alerts' positions together; every alert of the
    night's busiest difference images gets the records measuring its epochs one by one gives
    (``measure_epoch``, the per-alert path), value for value."""
    database, root = archive["database"], archive["root"]
    alerts = archive["alerts"][PUBLIC]
    per_image: dict[int, list[dict]] = {}
    for alert in alerts:
        per_image.setdefault(alert["candid"] // 1_000_000, []).append(alert)
    busiest = sorted(per_image.values(), key=len, reverse=True)[:2]
    assert len(busiest[0]) > 1
    stream = archive["streams"][PUBLIC]
    compared = 0
    with database.reading(stream.requester, user_query=True) as connection:
        for group in busiest:
            for alert in group:
                c = alert["candidate"]
                request = forced_request(c["ra"], c["dec"], *history_window(c["jd"]))
                epochs = find_epochs(connection, request, history_of_program=c["programid"])
                alone = [record("fp_hist", fp_hist_values(
                    measure_epoch(epoch, request.ra, request.dec,
                                  locate=lambda path: root / path), c)) for epoch in epochs]
                assert alert["fp_hists"] == alone
                compared += len(alone)
    assert compared > 0


def test_fields_take_their_schema_types_and_missing_values_their_nulls() -> None:
    """Each field's value as the schema types it, a missing one (None, NaN) as null where the
    schema allows it and ZTF's sentinels where not; floats rounded to the 32 bits the packet
    carries (numpy's rounding, overflow to infinity included)."""
    values = {"jd": np.float64(2461357.25), "fid": np.int16(2), "pid": 7.0,
              "programid": None, "isdiffpos": None, "ra": 10, "dec": float("nan"),
              "magpsf": 19.123456789, "sigmapsf": float("nan"), "ranr": None,
              "diffmaglim": 1e40, "sgscore1": np.float32(0.25), "ssnamenr": 12345,
              "drb": float("nan"), "magap": -0.0}
    made = record("candidate", values)
    assert list(made) == list(field_types("candidate"))
    expected = {"jd": 2461357.25, "fid": 2, "pid": 7, "programid": -999, "isdiffpos": "",
                "ra": 10.0, "dec": -999, "magpsf": float(np.float32(19.123456789)),
                "sigmapsf": -999, "ranr": -999, "diffmaglim": float("inf"),
                "sgscore1": 0.25, "ssnamenr": "12345", "drb": None, "magap": -0.0}
    for name, value in expected.items():
        assert made[name] == value and type(made[name]) is type(value), name
    assert math.copysign(1.0, made["magap"]) == -1.0
    assert made["magpsf"] != 19.123456789
    assert all(made[name] is None for name in field_types("candidate")
               if name not in values and isinstance(field_types("candidate")[name], list))


def test_a_packets_header_is_the_same_bytes_in_every_process() -> None:
    """The container header (the schema's JSON) does not depend on the process's string
    hashing: the same alert is the same bytes whichever process wrote it (archives are
    checksummed; fastavro ordered a field's keys by iterating a set)."""
    program = ("import hashlib; from skyvault.alerts.packet import _container_header;"
               " print(hashlib.sha256(_container_header()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", program], check=True, text=True,
                              capture_output=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
               for seed in (1, 2, 3)}
    assert len(digests) == 1
