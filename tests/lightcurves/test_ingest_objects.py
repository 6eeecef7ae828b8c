"""Association at ingest and the ensemble step on synthetic nights: every detection gets an
object and is a light-curve point of it, re-runs and reprocessing (of a night in the sky cells
too) leave no duplicate epoch and no orphan object, crashes anywhere leave the archive
consistent, and a light curve by oid reads one sky cell once its nights are compacted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from skyvault.access import ANONYMOUS
from skyvault.crash import ENVIRONMENT_VARIABLE
from skyvault.db import Database
from skyvault.ingest import LocalFileStore, check_archive, ingest_paths
from skyvault.ingest.compact import SkyCell, compact_all, create_cell, sky_cells
from skyvault.ingest.q3c import cell_count, cell_of
from skyvault.ingest.synthetic import NightSpec, reprocess_exposure, write_night
from skyvault.ingest.testing import fresh_database
from skyvault.schema.objects_sql import OBJECT_REACH_ARCSEC
from skyvault.schema.tables import LIGHTCURVES

SPEC = NightSpec(nightdate="2026-10-02", exposures=3, quadrants=(1, 2), sources=60, seed=5)
SECOND = replace(SPEC, nightdate="2026-10-05")
"""The same sources again three nights later (the same seed draws the same catalogs): each
object of the first night gets a second epoch in another night."""


def _kw(base: Path, handle: Database) -> dict:
    return {"database": handle, "store": LocalFileStore(base / "store"),
            "quarantine_root": base / "quarantine"}


def _state(connection: psycopg.Connection) -> dict:
    """What association and the ensemble step must keep true, and the counts to compare."""
    detections = connection.execute(
        "SELECT count(*), count(oid), count(DISTINCT oid) FROM survey.psf_sources").fetchone()
    points = connection.execute("SELECT count(*) FROM survey.lightcurves").fetchone()[0]
    # Each detection with its object is one light-curve point with the same values, and back.
    point = "oid, sourceid, pid, expid, nid, ra, dec, mag, magerr, flags, obsjd, programid"
    unmatched = connection.execute(
        f"SELECT (SELECT count(*) FROM (SELECT {point} FROM survey.psf_sources"
        f"   EXCEPT SELECT {point} FROM survey.lightcurves) a)"
        f" + (SELECT count(*) FROM (SELECT {point} FROM survey.lightcurves"
        f"   EXCEPT SELECT {point} FROM survey.psf_sources) b)").fetchone()[0]
    objects = connection.execute("SELECT count(*) FROM survey.object_registry").fetchone()[0]
    duplicates = connection.execute(
        "SELECT count(*) FROM (SELECT oid, expid FROM survey.lightcurves GROUP BY oid, expid"
        " HAVING count(*) > 1) d").fetchone()[0]
    unknown = connection.execute(
        "SELECT count(*) FROM survey.lightcurves s WHERE NOT EXISTS"
        " (SELECT FROM survey.object_registry o WHERE o.oid = s.oid)").fetchone()[0]
    orphans = connection.execute(
        "SELECT count(*) FROM survey.object_registry o WHERE NOT EXISTS"
        " (SELECT FROM survey.lightcurves s WHERE s.oid = o.oid)").fetchone()[0]
    far = connection.execute(
        "SELECT count(*) FROM survey.lightcurves s JOIN survey.object_registry o USING (oid)"
        " WHERE q3c_dist(s.ra, s.dec, o.ra, o.dec) * 3600 > %s OR o.fid <> s.fid",
        (OBJECT_REACH_ARCSEC,)).fetchone()[0]
    waiting = connection.execute("SELECT (SELECT count(*) FROM archive.ensemble_pending)"
                                 " + (SELECT count(*) FROM archive.ensemble_dirty)"
                                 " + (SELECT count(*) FROM archive.released_stale)").fetchone()[0]
    return {"detections": detections[0], "with_oid": detections[1], "oids": detections[2],
            "points": points, "unmatched": unmatched, "objects": objects,
            "duplicates": duplicates, "unknown": unknown, "orphans": orphans, "far": far,
            "waiting": waiting}


def _sound(state: dict) -> None:
    assert state["with_oid"] == state["detections"] == state["points"] > 0
    assert state["oids"] == state["objects"]
    assert (state["unmatched"], state["duplicates"], state["unknown"], state["orphans"],
            state["far"], state["waiting"]) == (0, 0, 0, 0, 0, 0), state


@pytest.fixture(scope="module")
def night_archive(database: Database, tmp_path_factory) -> dict:
    handle = fresh_database(database.urls.admin, "objects_ingest")
    base = tmp_path_factory.mktemp("objects")
    night = write_night(base / "products", SPEC)
    summary = ingest_paths([night.root], **_kw(base, handle))
    second = ingest_paths([write_night(base / "products2", SECOND).root], **_kw(base, handle))
    # The first night in the sky cells, the second still a night partition: every test below
    # reads (and the reprocessing test supersedes) across both halves of the layout.
    with handle.admin(autocommit=True) as connection:
        compacted = compact_all(connection, keep_latest=1)
    assert {c.catalog for c in compacted} >= {"psf_sources", "lightcurves"}
    return {"db": handle, "base": base, "night": night, "summary": summary, "second": second}


def test_every_detection_joins_one_object_of_its_filter(night_archive: dict) -> None:
    """At ingest every PSF detection gets the oid of an object of its filter within reach of
    the object's position; the objects are exactly the oids used; nothing waits afterwards."""
    summary, second = night_archive["summary"], night_archive["second"]
    assert summary.ensemble is not None and summary.ok and second.ok
    with night_archive["db"].admin() as connection:
        state = _state(connection)
        _sound(state)
        logged = connection.execute(
            "SELECT sum(ndetections), sum(nnew) FROM archive.association_log").fetchone()
        first = connection.execute(
            "SELECT count(*) FROM survey.object_registry o JOIN LATERAL (SELECT ra, dec"
            " FROM survey.lightcurves s WHERE s.oid = o.oid ORDER BY obsjd LIMIT 1) f"
            " ON f.ra = o.ra AND f.dec = o.dec"
        ).fetchone()[0]
        epochs = connection.execute(
            "SELECT count(DISTINCT nid) FROM survey.lightcurves GROUP BY oid").fetchall()
    assert logged == (state["detections"], state["objects"])
    assert first == state["objects"]  # each object sits where its first detection was
    assert {row[0] for row in epochs} == {2}  # the second night found the first's objects
    assert check_archive(database=night_archive["db"], store=_kw(
        night_archive["base"], night_archive["db"])["store"], deep=True).clean


def test_ingesting_again_changes_nothing(night_archive: dict) -> None:
    handle, base = night_archive["db"], night_archive["base"]
    with handle.admin() as connection:
        before = _state(connection)
        oids = connection.execute(
            "SELECT oid FROM survey.object_registry ORDER BY oid").fetchall()
    again = ingest_paths([night_archive["night"].root], **_kw(base, handle))
    assert again.ingested == 0 and again.new_versions == 0
    with handle.admin() as connection:
        assert _state(connection) == before
        assert connection.execute(
            "SELECT oid FROM survey.object_registry ORDER BY oid").fetchall() \
            == oids


def test_a_reprocessed_exposure_leaves_no_duplicate_and_no_orphan(night_archive: dict) -> None:
    """A rerun of exposure 1 with new catalog content: its old detections leave with their
    objects where no other detection holds them; its new ones join or create objects; no
    object has two epochs of one exposure."""
    handle, base, night = night_archive["db"], night_archive["base"], night_archive["night"]
    expid = SPEC.nid * 1000 + 101
    with handle.admin() as connection:
        old = {row[0] for row in connection.execute(
            "SELECT oid FROM survey.lightcurves WHERE expid = %s", (expid,))}
        shared = {row[0] for row in connection.execute(
            "SELECT oid FROM survey.lightcurves WHERE expid <> %s AND oid = ANY(%s)",
            (expid, list(old)))}
        in_sky = connection.execute(
            "SELECT count(*) FROM survey.lightcurves_sky WHERE expid = %s", (expid,)).fetchone()
    assert in_sky[0] == len(old)  # the superseded points are in the sky cells
    manifest = reprocess_exposure(night.root, SPEC, 1, seed=77)
    summary = ingest_paths([manifest], **_kw(base, handle))
    assert summary.reprocessed == 2 * len(SPEC.quadrants), summary.lines()
    assert summary.ensemble is not None and summary.ensemble.orphans_removed == \
        len(old - shared) - len((old - shared) & _oids_of(handle, expid))
    with handle.admin() as connection:
        _sound(_state(connection))
        stale = connection.execute(
            "SELECT count(*) FROM survey.lightcurves s JOIN survey.science_images i USING (pid)"
            " WHERE i.is_current = 0").fetchone()[0]
        released = connection.execute(
            "SELECT count(*) FROM survey.objects_released r WHERE NOT EXISTS"
            " (SELECT FROM survey.object_registry o WHERE o.oid = r.oid)").fetchone()[0]
    assert (stale, released) == (0, 0)


def _oids_of(handle: Database, expid: int) -> set[int]:
    with handle.admin() as connection:
        return {row[0] for row in connection.execute(
            "SELECT oid FROM survey.lightcurves WHERE expid = %s", (expid,))}


def _public_points(connection: psycopg.Connection, cutoff_jd: float | None
                   ) -> dict[int, tuple[int, list[int], list[float]]]:
    """Per object, its public points by the rule written out over the owner's rows: program 1
    (released at data releases) observed before ``cutoff_jd`` (a public release's cutoff;
    None: no release), program 2 once its proprietary period (read from survey.programs) is
    over. Returns nobs, the programs and each one's latest obsjd."""
    days = dict(connection.execute(
        "SELECT programid, proprietary_days FROM survey.programs").fetchall())
    now_jd = datetime.now(UTC).timestamp() / 86400.0 + 2440587.5
    rows = np.array(connection.execute(
        "SELECT oid, programid, obsjd FROM survey.lightcurves").fetchall(), dtype=object)
    oid, program, obsjd = rows[:, 0].astype(np.int64), rows[:, 1].astype(int), \
        rows[:, 2].astype(float)
    public = (program == 2) & (obsjd + (days[2] if days[2] is not None else np.inf) < now_jd)
    if cutoff_jd is not None:
        public |= (program == 1) & (obsjd < cutoff_jd)
    expected = {}
    for one in np.unique(oid[public]):
        mine = public & (oid == one)
        programs = sorted({int(p) for p in program[mine]})
        expected[int(one)] = (int(mine.sum()), programs,
                              [float(obsjd[mine & (program == p)].max()) for p in programs])
    return expected


def _released_as_public(handle: Database) -> dict[int, tuple[int, list[int], list[float]]]:
    with handle.reading(ANONYMOUS, user_query=True) as connection:
        return {row[0]: (row[1], row[2], row[3]) for row in connection.execute(
            "SELECT oid, nobs, programids, lastobsjds FROM survey.objects_released")}


def test_released_statistics_follow_the_release_horizons(night_archive: dict) -> None:
    """survey.objects_released holds an object exactly when one of its epochs is public, with
    nobs = its public epochs, compared with the rule written out over the owner's rows. A data
    release of program 1 through the first night and the end of program 2's proprietary
    period reach it at the ensemble step's next run, with no --all: the step finds the objects
    observed between the horizons of its last run and today's. When program 2's period is
    back, the rows holding its epochs are hidden from the public at once (objects with epochs
    of both programs: the policy's multi-program branch), and the next run computes them
    again from program 1's epochs."""
    from skyvault.lightcurves.ensemble import run_ensemble
    from skyvault.releases.declare import declare_release

    handle = night_archive["db"]
    cutoff = datetime(2026, 10, 4, tzinfo=UTC)  # between the two nights
    cutoff_jd = cutoff.timestamp() / 86400.0 + 2440587.5
    with handle.admin() as connection:
        assert _released_as_public(handle) == _public_points(connection, None)
    try:
        with handle.admin() as connection:
            declare_release(connection, "OBJDR", datetime.now(UTC) - timedelta(hours=1),
                            cutoff, [1])
            connection.execute("UPDATE survey.programs SET proprietary_days = 0"
                               " WHERE programid = 2")
        summary = run_ensemble(handle)
        with handle.admin() as connection:
            expected = _public_points(connection, cutoff_jd)
        # Marked: the objects with an epoch in the two windows, i.e. every public one now.
        assert summary.objects_with_epochs_released_or_withdrawn == len(expected) > 0
        assert _released_as_public(handle) == expected
        both = {oid for oid, (_, programs, _) in expected.items() if programs == [1, 2]}
        assert both and set(expected) - both  # both branches of the policy are read
        with handle.admin() as connection:
            connection.execute("UPDATE survey.programs SET proprietary_days = 365"
                               " WHERE programid = 2")
            stored = connection.execute("SELECT count(*) FROM survey.objects_released"
                                        ).fetchone()[0]
        assert stored == len(expected)
        assert _released_as_public(handle) == {
            oid: row for oid, row in expected.items() if row[1] == [1]}
        run_ensemble(handle)
        with handle.admin() as connection:
            assert _released_as_public(handle) == _public_points(connection, cutoff_jd)
    finally:
        with handle.admin() as connection:
            connection.execute("DELETE FROM survey.data_releases WHERE release_name = 'OBJDR'")
            connection.execute("UPDATE survey.programs SET proprietary_days = 365"
                               " WHERE programid = 2")
        run_ensemble(handle)
    with handle.admin() as connection:
        assert _released_as_public(handle) == _public_points(connection, None)


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
        "SELECT o.oid, o.ra, o.dec, count(s.*) FROM survey.object_registry o"
        " JOIN survey.lightcurves s USING (oid) GROUP BY o.oid ORDER BY o.oid").fetchall()
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
            "SELECT oid >> 16, q3c_ang2ipix(ra, dec) >> 16 FROM survey.object_registry"
        ).fetchall()
    assert rows and np.all(np.array(rows)[:, 0] == np.array(rows)[:, 1])


def test_a_quadrant_without_detections_is_loaded(database: Database, tmp_path: Path) -> None:
    """An empty PSF catalog (a quadrant with no source) still gets its oid column (none), and
    its (empty) light-curve points can be sent too."""
    from skyvault.ingest.catalogs import catalog_load, set_image_values
    from skyvault.ingest.objects import QuadrantDetections, associate_exposure, lightcurve_points

    handle = fresh_database(database.urls.admin, "objects_empty")
    empty = catalog_load(tmp_path, "psfcat", {"ra": np.zeros(0), "dec": np.zeros(0)},
                         with_objects=True)
    set_image_values(empty, {"pid": 1, "expid": 1, "nid": 1, "field": 1, "rcid": 0, "fid": 2,
                             "filtercode": b"zr", "obsjd": 2460000.5, "programid": 1})
    with handle.admin() as connection, connection.transaction():
        result = associate_exposure(connection, [QuadrantDetections(
            1, 1, 1, 1, 0, 2, "zr", 2.0, 0.1, empty)])
    assert (result.detections, result.new_objects) == (0, 0)
    assert len(empty.batch.payload()) == 0  # every column set: the COPY can be sent
    assert len(lightcurve_points(empty).batch.payload()) == 0


def test_points_farther_than_the_margin_from_their_object_are_refused(tmp_path: Path) -> None:
    """The sky cells of survey.lightcurves are pruned by the oid ranges of a cone widened by
    the layout's margin: a point farther from its object would be missed by cones, so a batch
    holding one is refused (association never makes one); points go out in object order."""
    from skyvault.ingest.catalogs import catalog_load, set_image_values
    from skyvault.ingest.errors import GroupRejected
    from skyvault.ingest.objects import lightcurve_points
    from skyvault.ingest.q3c import object_ids

    def points(offset_arcsec: float):
        ra, dec = np.array([150.001, 150.0]), np.array([20.0, 20.0])
        load = catalog_load(tmp_path / "psfcat.fits", "psfcat", {"ra": ra, "dec": dec},
                            with_objects=True)
        set_image_values(load, {"pid": 1, "expid": 1, "nid": 1, "field": 1, "rcid": 0,
                                "fid": 2, "filtercode": b"zr", "obsjd": 2460000.5,
                                "programid": 1})
        positions = load.batch.values("ra"), load.batch.values("dec")
        load.batch.set("oid", object_ids(positions[0] + offset_arcsec / 3600
                                         / np.cos(np.radians(20.0)), positions[1], 2))
        return lightcurve_points(load)

    near = points(2.0)
    assert np.all(np.diff(near.batch.values("oid")) > 0)
    with pytest.raises(GroupRejected, match=r"farther than 2\.10"):
        points(2.2)


def test_a_light_curve_by_oid_reads_one_sky_cell(night_archive: dict) -> None:
    """Issue 15's point, for light curves: once its nights are compacted, an object's light
    curve (two nights here) and its survey.objects row (its existence check included) read one
    index range in the one sky cell that holds the object, whatever the number of nights; the
    answers are those the object's detections give."""
    handle = night_archive["db"]
    with handle.admin(autocommit=True) as connection:
        compact_all(connection)
        oid, expected = connection.execute(
            "SELECT oid, array_agg(sourceid ORDER BY obsjd) FROM survey.psf_sources"
            " GROUP BY oid ORDER BY count(*) DESC, oid LIMIT 1").fetchone()
        # Cells elsewhere on the sky (empty), so that a plan reading one cell shows pruning.
        depth = LIGHTCURVES.sky_layout.depth
        own = cell_of(oid, depth)
        for number in {(own + step) % cell_count(depth) for step in (-1, 1, 768)}:
            if number not in {cell.number for cell in sky_cells(connection, LIGHTCURVES)}:
                with connection.transaction():
                    create_cell(connection, SkyCell(LIGHTCURVES, depth, number))
    queries = {
        "points": f"SELECT sourceid FROM survey.lightcurves WHERE oid = {oid} ORDER BY obsjd",
        "object": f"SELECT nobs FROM survey.objects WHERE oid = {oid}",
    }
    with handle.reading(ANONYMOUS, user_query=True) as connection:
        connection.execute("SET LOCAL enable_seqscan = off")
        for name, sql in queries.items():
            # Executed, not only planned: survey.objects reads the points for each registry
            # row, so its cells are pruned when the oid is known, at run time.
            plan = [row[0] for row in connection.execute(
                f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}")]
            read = {cell for line in plan if "never executed" not in line
                    for cell in re.findall(r" on (lightcurves_c\d+_\d+)\b", line)}
            assert len(read) == 1, (name, "\n".join(plan))
            assert not any("lightcurves_n" in line for line in plan), plan
    with handle.admin() as connection:
        found = [row[0] for row in connection.execute(queries["points"])]
        nobs = connection.execute(queries["object"]).fetchone()[0]
    assert found == expected and nobs == len(expected) >= 2


def test_a_cone_search_on_the_points_prunes_the_sky_cells(night_archive: dict) -> None:
    """SCS on survey.lightcurves (vo.scs.cone_select): the points in a cone are those numpy
    finds among all of them, and the cells read are only those the objects' key ranges around
    the cone (widened by the layout's margin) reach: the points are filed under their objects,
    not their own positions, so q3c_join alone would prune none."""
    from skyvault.schema.tables import SURVEY_SCHEMA
    from skyvault.vo.scs import Cone, catalogs, cone_select, value_expression

    handle = night_archive["db"]
    catalog = catalogs(SURVEY_SCHEMA)["lightcurves"]
    with handle.admin(autocommit=True) as connection:
        compact_all(connection)
        points = np.array(connection.execute(
            "SELECT sourceid, pid, ra, dec FROM survey.lightcurves").fetchall())
        ra0, dec0 = float(np.median(points[:, 2])), float(np.median(points[:, 3]))
        depth = LIGHTCURVES.sky_layout.depth
        own = cell_of(int(connection.execute(
            "SELECT oid FROM survey.lightcurves ORDER BY q3c_dist(ra, dec, %s, %s) LIMIT 1",
            (ra0, dec0)).fetchone()[0]), depth)
        for number in {(own + step) % cell_count(depth) for step in (-1, 1, 768)}:
            if number not in {cell.number for cell in sky_cells(connection, LIGHTCURVES)}:
                with connection.transaction():
                    create_cell(connection, SkyCell(LIGHTCURVES, depth, number))
        radius = 30 / 3600
        sql, values = cone_select(catalog, Cone(ra0, dec0, radius, 1, 100_000),
                                  select_list=", ".join(
                                      value_expression(catalog, column)
                                      for column in catalog.columns(1)))
        found = {(int(row[0]), round(row[1], 9)) for row in connection.execute(sql, values)}
        plan = [row[0] for row in connection.execute(
            f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}", values)]
    ra, dec = np.radians(points[:, 2].astype(float)), np.radians(points[:, 3].astype(float))
    cos_distance = (np.sin(dec) * np.sin(np.radians(dec0)) + np.cos(dec) * np.cos(
        np.radians(dec0)) * np.cos(ra - np.radians(ra0)))
    inside = np.degrees(np.arccos(np.clip(cos_distance, -1, 1))) <= radius
    expected = {(int(p[0]), round(float(p[2]), 9)) for p in points[inside]}
    assert found == expected and len(expected) > 0
    read = {cell for line in plan if "never executed" not in line
            for cell in re.findall(r" on (lightcurves_c\d+_\d+)\b", line)}
    assert read == {f"lightcurves_c{depth}_{own}"}, "\n".join(plan)
