"""Association at ingest and the ensemble step on synthetic nights: every detection gets an
object, re-runs and reprocessing leave no duplicate epoch and no orphan object, crashes
anywhere leave the archive consistent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, ingest_paths
from skyvault.ingest.crash import ENVIRONMENT_VARIABLE
from skyvault.ingest.synthetic import NightSpec, reprocess_exposure, write_night
from skyvault.ingest.testing import fresh_database
from skyvault.schema.objects_sql import OBJECT_REACH_ARCSEC

SPEC = NightSpec(nightdate="2026-10-02", exposures=3, quadrants=(1, 2), sources=60, seed=5)


def _kw(base: Path, handle: Database) -> dict:
    return {"database": handle, "store": LocalFileStore(base / "store"),
            "quarantine_root": base / "quarantine"}


def _state(connection: psycopg.Connection) -> dict:
    """What association and the ensemble step must keep true, and the counts to compare."""
    detections = connection.execute(
        "SELECT count(*), count(oid), count(DISTINCT oid) FROM survey.psf_sources").fetchone()
    objects = connection.execute("SELECT count(*) FROM archive.objects").fetchone()[0]
    duplicates = connection.execute(
        "SELECT count(*) FROM (SELECT oid, expid FROM survey.psf_sources GROUP BY oid, expid"
        " HAVING count(*) > 1) d").fetchone()[0]
    unknown = connection.execute(
        "SELECT count(*) FROM survey.psf_sources s WHERE NOT EXISTS"
        " (SELECT FROM archive.objects o WHERE o.oid = s.oid)").fetchone()[0]
    orphans = connection.execute(
        "SELECT count(*) FROM archive.objects o WHERE NOT EXISTS"
        " (SELECT FROM survey.psf_sources s WHERE s.oid = o.oid)").fetchone()[0]
    far = connection.execute(
        "SELECT count(*) FROM survey.psf_sources s JOIN archive.objects o USING (oid)"
        " WHERE q3c_dist(s.ra, s.dec, o.ra, o.dec) * 3600 > %s OR o.fid <> s.fid",
        (OBJECT_REACH_ARCSEC,)).fetchone()[0]
    waiting = connection.execute("SELECT (SELECT count(*) FROM archive.ensemble_pending)"
                                 " + (SELECT count(*) FROM archive.ensemble_dirty)"
                                 " + (SELECT count(*) FROM archive.released_stale)").fetchone()[0]
    return {"detections": detections[0], "with_oid": detections[1], "oids": detections[2],
            "objects": objects, "duplicates": duplicates, "unknown": unknown,
            "orphans": orphans, "far": far, "waiting": waiting}


def _sound(state: dict) -> None:
    assert state["with_oid"] == state["detections"] > 0
    assert state["oids"] == state["objects"]
    assert (state["duplicates"], state["unknown"], state["orphans"], state["far"],
            state["waiting"]) == (0, 0, 0, 0, 0), state


@pytest.fixture(scope="module")
def night_archive(database: Database, tmp_path_factory) -> dict:
    handle = fresh_database(database.urls.admin, "objects_ingest")
    base = tmp_path_factory.mktemp("objects")
    night = write_night(base / "products", SPEC)
    summary = ingest_paths([night.root], **_kw(base, handle))
    return {"db": handle, "base": base, "night": night, "summary": summary}


def test_every_detection_joins_one_object_of_its_filter(night_archive: dict) -> None:
    """At ingest every PSF detection gets the oid of an object of its filter within reach of
    the object's position; the objects are exactly the oids used; nothing waits afterwards."""
    summary = night_archive["summary"]
    assert summary.ensemble is not None and summary.ok
    with night_archive["db"].admin() as connection:
        state = _state(connection)
        _sound(state)
        logged = connection.execute(
            "SELECT sum(ndetections), sum(nnew) FROM archive.association_log").fetchone()
        first = connection.execute(
            "SELECT count(*) FROM archive.objects o JOIN survey.psf_sources s"
            " ON s.pid = o.first_pid AND s.oid = o.oid AND s.ra = o.ra AND s.dec = o.dec"
        ).fetchone()[0]
    assert logged == (state["detections"], state["objects"])
    assert first == state["objects"]  # each object sits where its first detection was


def test_ingesting_again_changes_nothing(night_archive: dict) -> None:
    handle, base = night_archive["db"], night_archive["base"]
    with handle.admin() as connection:
        before = _state(connection)
        oids = connection.execute("SELECT oid FROM archive.objects ORDER BY oid").fetchall()
    again = ingest_paths([night_archive["night"].root], **_kw(base, handle))
    assert again.ingested == 0 and again.new_versions == 0
    with handle.admin() as connection:
        assert _state(connection) == before
        assert connection.execute("SELECT oid FROM archive.objects ORDER BY oid").fetchall() \
            == oids


def test_a_reprocessed_exposure_leaves_no_duplicate_and_no_orphan(night_archive: dict) -> None:
    """A rerun of exposure 1 with new catalog content: its old detections leave with their
    objects where no other detection holds them; its new ones join or create objects; no
    object has two epochs of one exposure."""
    handle, base, night = night_archive["db"], night_archive["base"], night_archive["night"]
    expid = SPEC.nid * 1000 + 101
    with handle.admin() as connection:
        old = {row[0] for row in connection.execute(
            "SELECT oid FROM survey.psf_sources WHERE expid = %s", (expid,))}
        shared = {row[0] for row in connection.execute(
            "SELECT oid FROM survey.psf_sources WHERE expid <> %s AND oid = ANY(%s)",
            (expid, list(old)))}
    manifest = reprocess_exposure(night.root, SPEC, 1, seed=77)
    summary = ingest_paths([manifest], **_kw(base, handle))
    assert summary.reprocessed == 2 * len(SPEC.quadrants), summary.lines()
    assert summary.ensemble is not None and summary.ensemble.orphans_removed == \
        len(old - shared) - len((old - shared) & _oids_of(handle, expid))
    with handle.admin() as connection:
        _sound(_state(connection))
        stale = connection.execute(
            "SELECT count(*) FROM survey.psf_sources s JOIN survey.science_images i USING (pid)"
            " WHERE i.is_current = 0").fetchone()[0]
        released = connection.execute(
            "SELECT count(*) FROM survey.objects_released r WHERE NOT EXISTS"
            " (SELECT FROM archive.objects o WHERE o.oid = r.oid)").fetchone()[0]
    assert (stale, released) == (0, 0)


def _oids_of(handle: Database, expid: int) -> set[int]:
    with handle.admin() as connection:
        return {row[0] for row in connection.execute(
            "SELECT oid FROM survey.psf_sources WHERE expid = %s", (expid,))}


def test_released_statistics_use_only_public_epochs(night_archive: dict) -> None:
    """survey.objects_released holds an object exactly when one of its epochs is public, with
    nobs = its public epochs; counted here by the owner from the rows' programs and dates."""
    with night_archive["db"].admin() as connection:
        expected = dict(connection.execute(
            "SELECT oid, count(*) FROM survey.psf_sources WHERE release_date <= now()"
            " GROUP BY oid").fetchall())
        released = dict(connection.execute(
            "SELECT oid, nobs FROM survey.objects_released").fetchall())
    assert released == expected


def _run(module_args: list[str], environment: dict, expected: int) -> None:
    run = subprocess.run([sys.executable, "-m", "skyvault.ingest", *module_args],
                         env=environment, capture_output=True, text=True, timeout=600)
    assert run.returncode == expected, run.stdout + run.stderr


@pytest.mark.parametrize("point", ["associate:registered:2", "ensemble:relphot:1",
                                   "ensemble:released:1"])
def test_killed_anywhere_then_run_again_is_sound(database: Database, tmp_path: Path,
                                                 point: str) -> None:
    """SIGKILL inside association (new objects written, detections not yet) and inside the
    ensemble step (corrections written; released rows of a chunk written), then a clean run:
    the same objects, corrections and released rows as a run never killed."""
    handle = fresh_database(database.urls.admin, "objects_crash")
    night = write_night(tmp_path / "products", SPEC)
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": handle.urls.admin,
                   "SKYVAULT_STORE": str(tmp_path / "store"),
                   "SKYVAULT_QUARANTINE": str(tmp_path / "quarantine"),
                   ENVIRONMENT_VARIABLE: point}
    _run(["run", "--no-progress", str(night.root)], environment, -9)
    clean = {k: v for k, v in environment.items() if k != ENVIRONMENT_VARIABLE}
    _run(["run", "--no-progress", str(night.root)], clean, 0)
    _run(["ensemble"], clean, 0)
    with handle.admin() as connection:
        _sound(_state(connection))
        got = _fingerprint(connection)
    reference = fresh_database(database.urls.admin, "objects_crash_reference")
    ingest_paths([night.root], **_kw(tmp_path / "reference", reference))
    with reference.admin() as connection:
        assert _fingerprint(connection) == got


def _fingerprint(connection: psycopg.Connection) -> tuple:
    objects = connection.execute(
        "SELECT o.oid, o.ra, o.dec, count(s.*) FROM archive.objects o JOIN survey.psf_sources s"
        " USING (oid) GROUP BY o.oid ORDER BY o.oid").fetchall()
    corrections = connection.execute(
        "SELECT expid, rcid, relphot_corr, relphot_nstars FROM survey.science_images"
        " WHERE is_current = 1 ORDER BY expid, rcid").fetchall()
    released = connection.execute(
        "SELECT oid, nobs, ngoodobs, meanmag FROM survey.objects_released ORDER BY oid"
    ).fetchall()
    rounded = [(e, r, None if c is None else round(c, 5), n) for e, r, c, n in corrections]
    return objects, rounded, [(o, n, g, None if m is None else round(m, 4))
                              for o, n, g, m in released]


def test_new_objects_sort_by_position(night_archive: dict) -> None:
    """Identifiers are ordered as q3c orders positions (their high bits are the pixel)."""
    with night_archive["db"].admin() as connection:
        rows = connection.execute(
            "SELECT oid >> 16, q3c_ang2ipix(ra, dec) >> 16 FROM archive.objects").fetchall()
    assert rows and np.all(np.array(rows)[:, 0] == np.array(rows)[:, 1])


def test_a_quadrant_without_detections_is_loaded(database: Database, tmp_path: Path) -> None:
    """An empty PSF catalog (a quadrant with no source) still gets its oid column (none)."""
    from skyvault.ingest.catalogs import catalog_load
    from skyvault.ingest.objects import QuadrantDetections, associate_exposure

    handle = fresh_database(database.urls.admin, "objects_empty")
    empty = catalog_load(tmp_path, "psfcat", {"ra": np.zeros(0), "dec": np.zeros(0)})
    with handle.admin() as connection, connection.transaction():
        result = associate_exposure(connection, [QuadrantDetections(
            1, 1, 1, 1, 0, 2, "zr", 2.0, 0.1, empty)])
    assert (result.detections, result.new_objects) == (0, 0)
    assert len(empty.batch.payload()) == 0  # every column set: the COPY can be sent
