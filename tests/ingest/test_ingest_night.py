"""A night through ingest: what lands where, idempotence, reprocessing, partitions, watch mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy.io import fits

from skyvault.access import ANONYMOUS
from skyvault.db import Database
from skyvault.ingest import LocalFileStore, check_archive, ingest_paths, watch
from skyvault.ingest.partitions import partitions
from skyvault.ingest.synthetic import (
    DIFF_CANDIDATES,
    SYNTHETIC_RB_VERSION,
    NightSpec,
    reprocess_exposure,
    write_night,
)
from skyvault.ingest.testing import fresh_database, table_counts
from skyvault.pipeline.manifest import read_manifest

SPEC = NightSpec(exposures=3, quadrants=(1, 2), sources=40)


@pytest.fixture(scope="module")
def archive(database: Database, tmp_path_factory) -> dict:
    """A private archive (database, store, quarantine) holding one ingested night."""
    handle = fresh_database(database.urls.admin, "ingest_night")
    base = tmp_path_factory.mktemp("night")
    night = write_night(base / "products", SPEC)
    store = LocalFileStore(base / "store")
    summary = ingest_paths([night.root], database=handle, store=store,
                           quarantine_root=base / "quarantine")
    return {"db": handle, "night": night, "store": store, "base": base, "summary": summary}


def _kw(archive: dict) -> dict:
    return {"database": archive["db"], "store": archive["store"],
            "quarantine_root": archive["base"] / "quarantine"}


def test_a_night_lands_in_the_store_and_catalog(archive: dict) -> None:
    summary = archive["summary"]
    assert summary.ok, summary.lines()
    assert (summary.ingested, summary.quarantined, summary.deferred) == (6, 0, 0)
    quadrants = SPEC.exposures * len(SPEC.quadrants)
    references = len(SPEC.ccds) * len(SPEC.quadrants)
    # Science catalogs, difference candidates and the references' two catalogs.
    assert summary.rows == 2 * quadrants * SPEC.sources + quadrants * DIFF_CANDIDATES \
        + 2 * references * SPEC.sources
    assert summary.reprocessed == 0  # first versions only
    with archive["db"].admin() as connection:
        counts = table_counts(connection)
        assert counts["survey.science_images"] == quadrants
        assert counts["survey.difference_images"] == quadrants
        assert counts["survey.exposures"] == SPEC.exposures + 2  # and a bias and a flat
        assert counts["survey.psf_sources"] == quadrants * SPEC.sources
        assert counts["survey.aperture_sources"] == quadrants * SPEC.sources
        assert counts["survey.candidates"] == quadrants * DIFF_CANDIDATES
        # Every PSF detection is a light-curve point of its object as well (ingest/objects.py).
        assert counts["survey.lightcurves"] == counts["survey.psf_sources"]
        # Every file row names a stored file with its checksum.
        paths = connection.execute(
            "SELECT path, product, content_type FROM survey.files").fetchall()
        assert {p for _, p, _ in paths} == {"raw", "bias", "hifreqflat", "sciimg", "mskimg",
                                             "psfcat", "sexcat", "refimg", "refunc",
                                             "refpsfcat", "refsexcat", "diffimg", "diffcat",
                                             "diffimgpsf"}
        assert all(c == "application/fits" for _, _, c in paths)
        assert any(p.startswith("sci/2026/1121/") and p.endswith("_sciimg.fits")
                   for p, _, _ in paths)
        assert any(p.startswith("diff/") and p.endswith("_scimrefdiffimg.fits.fz")
                   for p, _, _ in paths)
        # Catalog rows carry their image's keys, program and observation time (what the
        # release rules date them by).
        mismatched = connection.execute(
            "SELECT count(*) FROM survey.psf_sources s JOIN survey.science_images i"
            " USING (pid) WHERE s.obsjd <> i.obsjd OR s.programid <> i.programid"
            " OR s.expid <> i.expid OR s.rcid <> i.rcid OR s.nid <> i.nid").fetchone()[0]
        assert mismatched == 0
        # Candidates carry their difference image's keys, candid = diffid * 1e6 + row.
        candidates = connection.execute(
            "SELECT c.candid - d.diffid * 1000000, c.pid = d.pid AND c.jd = d.obsjd"
            " AND c.nid = d.nid AND c.programid = d.programid AND c.rcid = d.rcid,"
            " c.isdiffpos, c.rb_version FROM survey.candidates c JOIN survey.difference_images d"
            " USING (diffid)").fetchall()
        assert len(candidates) == quadrants * DIFF_CANDIDATES
        assert sorted({row[0] for row in candidates}) == list(range(1, DIFF_CANDIDATES + 1))
        assert all(row[1] for row in candidates)
        assert {row[2] for row in candidates} <= {"t", "f"}
        assert {row[3] for row in candidates} == {SYNTHETIC_RB_VERSION}
        # The science images point at their raw file, calibration and reference products.
        links = connection.execute(
            "SELECT count(*) FROM survey.science_images WHERE rawid IS NULL"
            " OR bias_calid IS NULL OR flat_calid IS NULL").fetchone()[0]
        assert links == 0
    report = check_archive(database=archive["db"], store=archive["store"], deep=True)
    assert report.clean, report.lines()
    assert report.files == counts["survey.files"]


def test_reference_catalogs_are_their_files_rows(archive: dict) -> None:
    """Every source of each reference's refpsfcat and refsexcat is a row of
    survey.reference_psf_sources / reference_aperture_sources with the file's values (read
    here with astropy), the co-add's keys, programs and ingested_at (what dates it)."""
    night = archive["night"]
    checked = 0
    with archive["db"].admin() as connection:
        for manifest_path in night.references:
            (meta,) = read_manifest(manifest_path).references
            ref = connection.execute(
                "SELECT refid, ingested_at, programids FROM survey.reference_images"
                " WHERE field = %s AND rcid = %s AND filtercode = %s AND is_current = 1",
                (meta.field, meta.rcid, meta.filtercode)).fetchone()
            for product, table, extra in (("refpsfcat", "reference_psf_sources", "chi"),
                                          ("refsexcat", "reference_aperture_sources", "fwhm")):
                expected = fits.getdata(night.root / meta.files[product])
                rows = connection.execute(
                    f"SELECT sourceid, ra, dec, mag, flux, {extra}, field, rcid, filtercode,"
                    f" ingested_at, programids FROM survey.{table} WHERE refid = %s"
                    " ORDER BY sourceid", (ref[0],)).fetchall()
                assert len(rows) == len(expected) == SPEC.sources
                order = np.argsort(expected["sourceid"])
                for name, column in (("sourceid", 0), ("ra", 1), ("dec", 2), ("mag", 3),
                                     ("flux", 4), (extra, 5)):
                    got = np.array([row[column] for row in rows], dtype=float)
                    want = np.asarray(expected[name], dtype=float)[order]
                    np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{table}.{name}")
                assert {(r[6], r[7], r[8]) for r in rows} == \
                    {(meta.field, meta.rcid, meta.filtercode)}
                assert {r[9] for r in rows} == {ref[1]}
                assert {tuple(r[10]) for r in rows} == {tuple(ref[2])}
                checked += 1
    assert checked == 2 * len(night.references)


def test_ingest_writes_the_facts_the_release_rules_read(archive: dict) -> None:
    """No release date is stored (skyvault/releases/dating.py): every file carries its image's
    programs and the Julian date it is dated by (a calibration: the start of its night), a
    co-add's files the instant the co-add was archived."""
    with archive["db"].admin() as connection:
        by_table = dict(connection.execute("""
            SELECT f.image_table, bool_and(f.programids = i.programids
                                           AND f.obsjd IS NOT DISTINCT FROM i.obsjd)
              FROM survey.files f JOIN (
                SELECT 'raw_images'::text AS t, rawid AS id, ARRAY[programid] AS programids,
                       obsjd FROM survey.raw_images
                UNION ALL SELECT 'science_images', pid, ARRAY[programid], obsjd
                  FROM survey.science_images
                UNION ALL SELECT 'difference_images', diffid, ARRAY[programid], obsjd
                  FROM survey.difference_images
                UNION ALL SELECT 'calibration_images', calid, programids, 2457754.5 + nid
                  FROM survey.calibration_images
                UNION ALL SELECT 'reference_images', refid, programids, NULL
                  FROM survey.reference_images) i
                ON i.t = f.image_table AND i.id = f.image_id
             GROUP BY f.image_table""").fetchall())
        assert by_table == dict.fromkeys(["raw_images", "science_images", "difference_images",
                                          "calibration_images", "reference_images"], True)
        # The calibration's night start is its obsdate.
        nights = connection.execute(
            "SELECT bool_and(archive.timestamp_to_jd(obsdate) = 2457754.5 + nid)"
            " FROM survey.calibration_images").fetchone()[0]
        assert nights
        coadds = connection.execute(
            "SELECT bool_and(f.ingested_at = r.ingested_at) FROM survey.files f"
            " JOIN survey.reference_images r ON f.image_table = 'reference_images'"
            " AND f.image_id = r.refid").fetchone()[0]
        assert coadds
        stored = dict(connection.execute(
            "SELECT programid, count(*) FROM survey.candidates GROUP BY programid").fetchall())
    # Candidates (issue 17) are dated by the alert rule: the public survey's are public at
    # once (the public alert stream) while their images wait for a data release (this archive
    # has none); the partnership's are visible exactly when their science image is.
    with archive["db"].reading(ANONYMOUS, user_query=True) as connection:
        seen = {row[0]: row[1:] for row in connection.execute(
            "SELECT c.programid, count(*), count(i.pid) FROM survey.candidates c"
            " LEFT JOIN survey.science_images i USING (pid) GROUP BY c.programid")}
    assert stored[1] > 0 and stored[2] > 0
    assert seen[1] == (stored[1], 0)
    assert seen.get(2, (0, 0))[0] == seen.get(2, (0, 0))[1]


def test_partitions_are_sealed_secured_and_not_granted(archive: dict) -> None:
    handle = archive["db"]
    with handle.admin() as connection:
        found = partitions(connection)
        assert {(p.catalog, p.nid, p.attached) for p in found} == {
            ("psf_sources", SPEC.nid, True), ("aperture_sources", SPEC.nid, True),
            ("candidates", SPEC.nid, True), ("lightcurves", SPEC.nid, True)}
        for partition in found:
            name = partition.qualified_name
            secured = connection.execute(
                "SELECT c.relrowsecurity, (SELECT count(*) FROM pg_policy p"
                " WHERE p.polrelid = c.oid AND p.polname = 'embargo')"
                " FROM pg_class c WHERE c.oid = %s::regclass", (name,)).fetchone()
            assert secured == (True, 1)
            indexes = {row[0] for row in connection.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
                (name,))}
            assert any("q3c_ang2ipix(ra, " in i for i in indexes)
            key = {"candidates": "(diffid)", "lightcurves": "(oid)"}.get(partition.catalog,
                                                                         "(pid)")
            assert any(key in i for i in indexes)
            clustered = connection.execute(
                "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass AND indisclustered",
                (name,)).fetchone()[0]
            assert clustered == 1
            grants = connection.execute(
                "SELECT count(*) FROM information_schema.role_table_grants"
                " WHERE table_schema = %s AND table_name = %s AND grantee <> current_user",
                (partition.schema, partition.name)).fetchone()[0]
            assert grants == 0
        connection.execute("SET ROLE skyvault_reader")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(f"SELECT count(*) FROM {found[0].qualified_name}")
        connection.rollback()
        connection.execute("SET ROLE skyvault_reader")
        # Through the parent, the embargo policy applies: program 2 rows stay hidden, and
        # program 1 rows wait for a data release (none is defined here).
        visible = connection.execute("SELECT count(*) FROM survey.psf_sources").fetchone()[0]
        assert visible == 0
        # As the service does: who is asking is set before the switch to the reader, who may
        # not call set_config (migration 0009).
        connection.execute("RESET ROLE")
        connection.execute("SELECT set_config('skyvault.programs', '{2}', false)")
        connection.execute("SET ROLE skyvault_reader")
        member = connection.execute(
            "SELECT count(DISTINCT programid), count(*) FROM survey.psf_sources").fetchone()
        program_2 = sum(SPEC.programids[i % len(SPEC.programids)] == 2
                        for i in range(SPEC.exposures))
        assert member == (1, program_2 * len(SPEC.quadrants) * SPEC.sources)


def test_cone_search_uses_the_partition_index(archive: dict) -> None:
    with archive["db"].admin() as connection:
        ra, dec = connection.execute(
            "SELECT ra, dec FROM survey.psf_sources LIMIT 1").fetchone()
        plan = "\n".join(row[0] for row in connection.execute(
            "EXPLAIN SELECT * FROM survey.psf_sources WHERE q3c_radial_query(ra, dec, %s, %s,"
            " 0.001)", (ra, dec)))
        assert "q3c_idx" in plan
        found = connection.execute(
            "SELECT count(*) FROM survey.psf_sources WHERE q3c_radial_query(ra, dec, %s, %s,"
            " 0.00001)", (ra, dec)).fetchone()[0]
        assert found >= 1


def test_ingesting_the_night_again_changes_nothing(archive: dict) -> None:
    with archive["db"].admin() as connection:
        before = table_counts(connection)
    stored = sorted(archive["store"].walk())
    again = ingest_paths([archive["night"].root], **_kw(archive))
    assert (again.skipped, again.ingested, again.rows, again.files) == (6, 0, 0, 0)
    # A manifest rewritten with other bytes but the same products: a new manifest, no new data.
    manifest = archive["night"].exposures[0]
    text = manifest.read_text()
    manifest.write_text(text.replace('"synthetic-1"', '"synthetic-1" ', 1))
    rewritten = ingest_paths([manifest], **_kw(archive))
    assert (rewritten.unchanged, rewritten.new_versions, rewritten.files) == (1, 0, 0)
    with archive["db"].admin() as connection:
        after = table_counts(connection)
    assert {k: v for k, v in after.items() if k != "archive.ingested_manifests"} == \
        {k: v for k, v in before.items() if k != "archive.ingested_manifests"}
    assert after["archive.ingested_manifests"] == before["archive.ingested_manifests"] + 1
    assert sorted(archive["store"].walk()) == stored


def test_a_reprocessed_exposure_becomes_a_new_version(archive: dict) -> None:
    night = archive["night"]
    handle = archive["db"]
    with handle.admin() as connection:
        before = table_counts(connection)
        old = connection.execute(
            "SELECT pid, rcid FROM survey.science_images WHERE expid = %s ORDER BY rcid",
            (SPEC.nid * 1000 + 101,)).fetchall()
    manifest = reprocess_exposure(night.root, SPEC, 1, seed=99)
    summary = ingest_paths([manifest], **_kw(archive))
    # science and difference image of each quadrant, each a new version of an archived one
    assert (summary.ingested, summary.new_versions, summary.reprocessed) == \
        (1, 2 * len(SPEC.quadrants), 2 * len(SPEC.quadrants)), summary.lines()
    with handle.admin() as connection:
        after = table_counts(connection)
        rows = connection.execute(
            "SELECT rcid, proc_version, is_current, pid FROM survey.science_images"
            " WHERE expid = %s ORDER BY rcid, proc_version", (SPEC.nid * 1000 + 101,)).fetchall()
        assert [(r[0], r[1], r[2]) for r in rows] == [(0, 1, 0), (0, 2, 1), (1, 1, 0),
                                                      (1, 2, 1)]
        # The raw file did not change: one raw version still.
        assert after["survey.raw_images"] == before["survey.raw_images"]
        assert after["current versions"] == before["current versions"]
        # Catalog tables hold the current detections only; the old catalogs stay as files.
        assert after["survey.psf_sources"] == before["survey.psf_sources"]
        old_pids = [pid for pid, _ in old]
        left = connection.execute("SELECT count(*) FROM survey.psf_sources WHERE pid = ANY(%s)",
                                  (old_pids,)).fetchone()[0]
        assert left == 0
        files = connection.execute(
            "SELECT path, is_current, proc_version FROM survey.files WHERE image_table ="
            " 'science_images' AND image_id = ANY(%s) ORDER BY path",
            ([r[3] for r in rows],)).fetchall()
        assert {(c, v) for _, c, v in files} == {(0, 1), (1, 2)}
        assert all("_v2_" in p for p, c, _ in files if c == 1)
        provenance = connection.execute(
            "SELECT supersedes, proc_version, pipeline_version FROM archive.provenance"
            " WHERE image_table = 'science_images' AND image_id = ANY(%s) AND supersedes"
            " IS NOT NULL ORDER BY supersedes", ([r[3] for r in rows],)).fetchall()
        assert provenance == [(pid, 2, "synthetic-1") for pid in old_pids]
        diffs = connection.execute(
            "SELECT count(*) FROM survey.difference_images d JOIN survey.science_images s"
            " USING (pid) WHERE d.is_current = 1 AND s.is_current = 0").fetchone()[0]
        assert diffs == 0
        # Candidates of a superseded difference image leave the table with it.
        assert after["survey.candidates"] == before["survey.candidates"]
        stale = connection.execute(
            "SELECT count(*) FROM survey.candidates c JOIN survey.difference_images d"
            " USING (diffid) WHERE d.is_current = 0").fetchone()[0]
        assert stale == 0
    assert check_archive(database=handle, store=archive["store"], deep=True).clean
    again = ingest_paths([manifest], **_kw(archive))
    assert again.skipped == 1 and again.new_versions == 0


def test_watch_makes_each_exposure_queryable_at_commit(archive: dict, tmp_path: Path) -> None:
    spec = NightSpec(nightdate="2026-11-23", exposures=2, quadrants=(3,), sources=25, seed=7)
    night = write_night(tmp_path / "products", spec)
    summary = watch(night.root, interval=0.2, idle_exit=0.5, **_kw(archive))
    assert (summary.ingested, summary.quarantined, summary.deferred) == (4, 0, 0)
    with archive["db"].admin() as connection:
        found = partitions(connection, nid=spec.nid)
        assert found and all(p.attached for p in found)  # no sealing step was needed
        rows = connection.execute("SELECT count(*) FROM survey.psf_sources WHERE nid = %s",
                                  (spec.nid,)).fetchone()[0]
    assert rows == 2 * 25
    assert check_archive(database=archive["db"], store=archive["store"], deep=True).clean


def test_the_command_line_ingests_checks_and_reports(archive: dict, tmp_path: Path) -> None:
    spec = NightSpec(nightdate="2026-11-25", exposures=1, quadrants=(4,), sources=10, seed=3,
                     references=False)
    night = write_night(tmp_path / "products", spec)
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": archive["db"].urls.admin,
                   "SKYVAULT_STORE": str(archive["store"].root),
                   "SKYVAULT_QUARANTINE": str(archive["base"] / "quarantine")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "skyvault", "ingest", *args],
                              env=environment, capture_output=True, text=True, timeout=300)

    first = run(str(night.root), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "ingested 2" in first.stdout and "rows/s" in first.stdout
    assert run("check", "--deep").returncode == 0
    report = run("report")
    assert report.returncode == 0 and "no unresolved quarantine" in report.stdout
    orphan = archive["store"].root / "sci" / "orphan.fits"
    orphan.write_bytes(b"x")
    dirty = run("check")
    assert dirty.returncode == 1 and "sci/orphan.fits" in dirty.stdout
    assert run("check", "--remove-orphans").returncode == 0
    assert not orphan.exists()
    shutil.rmtree(night.root)


def test_check_finds_missing_and_damaged_files_and_unsealed_nights(archive: dict,
                                                                     tmp_path: Path) -> None:
    store = archive["store"]
    with archive["db"].admin() as connection:
        gone, damaged = [row[0] for row in connection.execute(
            "SELECT path FROM survey.files WHERE product = 'sciimg' ORDER BY path LIMIT 2")]
    saved = {path: store.local_path(path).read_bytes() for path in (gone, damaged)}
    store.local_path(gone).unlink()
    content = bytearray(saved[damaged])
    content[-1] ^= 0xFF
    store.local_path(damaged).write_bytes(bytes(content))
    spec = NightSpec(nightdate="2026-11-26", exposures=1, quadrants=(2,), sources=5, seed=9,
                     references=False)
    night = write_night(tmp_path / "products", spec)
    loaded = ingest_paths([night.root], seal=False, **_kw(archive))
    assert loaded.ingested == 2 and not loaded.sealed
    try:
        report = check_archive(database=archive["db"], store=store, deep=True)
        assert report.missing == [gone]
        assert [m.split(":")[0] for m in report.mismatched] == [damaged]
        assert {u.rsplit(".", 1)[1] for u in report.unsealed} == {
            f"psf_sources_n{spec.nid}", f"aperture_sources_n{spec.nid}",
            f"lightcurves_n{spec.nid}"}  # no reference: no
        # difference, no candidates
        assert not report.catalog_problems  # rows in a loading table count
        assert not report.clean
        assert check_archive(database=archive["db"], store=store, quick=True).mismatched == []
    finally:
        for path, data in saved.items():
            store.local_path(path).write_bytes(data)
    repaired = check_archive(database=archive["db"], store=store, deep=True, repair=True)
    assert sorted(repaired.sealed) == [f"aperture_sources_n{spec.nid}",
                                       f"lightcurves_n{spec.nid}", f"psf_sources_n{spec.nid}"]
    assert repaired.clean, repaired.lines()


CATALOGS = ("aperture_sources", "lightcurves", "psf_sources")
"""The catalogs a night without references loads (light-curve points with the PSF sources)."""


def test_a_release_reaches_nights_still_loading(archive: dict, tmp_path: Path) -> None:
    """A release declared while a night's catalog rows wait in loading tables (a bulk run not
    yet sealed) opens them when they are sealed: no row holds a date to update."""
    from skyvault.releases.declare import declare_release

    spec = NightSpec(nightdate="2026-11-27", exposures=1, quadrants=(1,), sources=5, seed=12,
                     references=False)
    loaded = ingest_paths([write_night(tmp_path / "products", spec).root], seal=False,
                          **_kw(archive))
    assert loaded.ingested == 2 and not loaded.sealed
    night = f"nid = {spec.nid}"
    with archive["db"].admin() as connection:
        loading = [p.name for p in partitions(connection, nid=spec.nid) if not p.attached]
        assert sorted(loading) == [f"{catalog}_n{spec.nid}" for catalog in CATALOGS]
        programs = [row[0] for row in connection.execute(
            f"SELECT DISTINCT programid FROM archive.psf_sources_n{spec.nid}")]
        assert programs == [1]
        declare_release(connection, "NIGHTDR", datetime.now(UTC) - timedelta(hours=1),
                        datetime(2026, 11, 29, tzinfo=UTC), [1])
    repaired = check_archive(database=archive["db"], store=archive["store"], repair=True)
    assert repaired.clean
    with archive["db"].reading(ANONYMOUS, user_query=True) as connection:
        for catalog in CATALOGS:
            seen = connection.execute(
                f"SELECT count(*) FROM survey.{catalog} WHERE {night}").fetchone()[0]
            assert seen == spec.sources, catalog
    with archive["db"].admin() as connection:
        connection.execute("DELETE FROM survey.data_releases WHERE release_name = 'NIGHTDR'")
