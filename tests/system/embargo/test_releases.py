"""Public data releases: declare, what they open, the page, manifests, scripts and HATS.

The release tests use a program of their own (embargo_seed.RELEASE_PROGRAM), so declaring
releases changes no other test's rows.  A co-add is released by the first release declared
after it was archived: the seeded co-adds of the other states are archived after any release
(tests/release_calendar.py), those of this program are moved before where a test says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import requests
from embargo_seed import (
    BASE,
    CENTRE_DEC,
    CENTRE_RA,
    COADD_PENDING,
    PRODUCTS,
    RELEASE_PROGRAM,
    RELEASE_STATES,
    STATE,
    STATES,
    archive_coadd,
    reset_world,
    visible,
)

from skyvault.access import ANONYMOUS
from skyvault.db import Database
from skyvault.lightcurves.association import new_object_ids
from skyvault.releases.dating import release_date_sql
from skyvault.releases.export import export_release, released_catalog_count
from skyvault.releases.model import ReleaseError, get_release, releases_root
from skyvault.schema.tables import FILES

EARLY, LATE = RELEASE_STATES


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skyvault", *argv], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


@pytest.fixture
def releases(database: Database, world):
    """Declared releases of the test program are removed afterwards."""
    yield
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.data_releases WHERE %s = ANY (programids)"
                           " AND release_name LIKE 'LEAKDR%%'", (RELEASE_PROGRAM,))
        reset_world(connection)


def _visible_expids(database: Database) -> set[int]:
    with database.reading(ANONYMOUS, user_query=True) as connection:
        return {row[0] for row in connection.execute(
            "SELECT expid FROM survey.exposures WHERE expid = ANY (%s)",
            ([s.ident("expid") for s in RELEASE_STATES],))}


def _declare_public_release(name: str) -> datetime:
    now = datetime.now(UTC)
    date = now - timedelta(hours=1)
    result = _cli("release", "declare", name, "--date", _iso(date), "--cutoff",
                  _iso(now - timedelta(days=50)), "--programs", str(RELEASE_PROGRAM))
    assert result.returncode == 0, result.stderr
    assert f"programs [{RELEASE_PROGRAM}]" in result.stdout
    return date


def _row_versions(database: Database) -> dict[str, list]:
    """The physical version (xmin) of every seeded row of the release program: a rewritten
    row gets a new one."""
    ids = {"exposures": ("expid", [s.ident("expid") for s in RELEASE_STATES]),
           "science_images": ("pid", [s.ident("pid") for s in RELEASE_STATES]),
           "psf_sources": ("pid", [s.ident("pid") for s in RELEASE_STATES]),
           "files": ("image_id", [s.ident("pid") for s in RELEASE_STATES])}
    with database.admin() as connection:
        return {table: [row[0] for row in connection.execute(
            f"SELECT xmin::text FROM survey.{table} WHERE {key} = ANY (%s) ORDER BY 1",
            (values,))] for table, (key, values) in ids.items()}


def test_declare_rewrites_no_row_and_rows_appear_without_any_further_step(
        database: Database, releases) -> None:
    assert _visible_expids(database) == set()
    before = _row_versions(database)
    now = datetime.now(UTC)
    # Declared for a date still to come: nothing changes for the public yet...
    result = _cli("release", "declare", "LEAKDR1", "--date", _iso(now + timedelta(days=3)),
                  "--cutoff", _iso(now - timedelta(days=50)), "--programs",
                  str(RELEASE_PROGRAM), "--notes", "first release")
    assert result.returncode == 0, result.stderr
    assert "public from" in result.stdout
    assert _visible_expids(database) == set()
    assert _row_versions(database) == before
    with database.admin() as connection:
        # The date each row will be public (ObsCore's obs_release_date): the release's for
        # what was observed before the cutoff, none yet for what came after.
        early, late = (connection.execute(
            "SELECT archive.release_date_of(programid, obsjd) FROM survey.exposures"
            " WHERE expid = %s", (state.ident("expid"),)).fetchone()[0]
            for state in (EARLY, LATE))
        assert abs(early - (now + timedelta(days=3))) < timedelta(seconds=2)
        assert late is None
        # ...and when the date comes (here: moved into the past by the database clock),
        # the rows are there, with no command run.
        connection.execute("UPDATE survey.data_releases SET release_date = now()"
                           " WHERE release_name = 'LEAKDR1'")
    assert _visible_expids(database) == {EARLY.ident("expid")}
    assert _row_versions(database) == before
    listing = _cli("release", "list")
    assert "LEAKDR1" in listing.stdout and "public" in listing.stdout


def test_export_refuses_a_release_before_its_date(database: Database, releases) -> None:
    now = datetime.now(UTC)
    result = _cli("release", "declare", "LEAKDR9", "--date", _iso(now + timedelta(days=30)),
                  "--cutoff", _iso(now - timedelta(days=50)), "--programs",
                  str(RELEASE_PROGRAM))
    assert result.returncode == 0, result.stderr
    with pytest.raises(ReleaseError, match="becomes public"):
        export_release(database, "LEAKDR9")
    refused = _cli("release", "export", "LEAKDR9")
    assert refused.returncode != 0 and "becomes public" in refused.stderr
    assert not (releases_root() / "LEAKDR9").exists()


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


RELEASE_OBJECT_BLOCK = BASE + 12_000
MIXED_RELEASE_POSITION = (CENTRE_RA - 0.7, CENTRE_DEC)
MIXED_RELEASE_EPOCHS = ((EARLY, 17.5), (EARLY, 17.9), (LATE, 15.0), (STATE["prop2"], 14.0),
                        (STATE["waiting"], 13.0))
"""An object observed in the release (two epochs) and after it or under embargo (three)."""


def _mixed_release_oid() -> int:
    return int(new_object_ids(np.array([MIXED_RELEASE_POSITION[0]]),
                              np.array([MIXED_RELEASE_POSITION[1]]), 2,
                              np.zeros(0, dtype=np.int64))[0])


@pytest.fixture(scope="module")
def release_objects(database: Database, seeded_people):
    """Every seeded light-curve point's object in the registry (as ingest files them), and one
    object with epochs in and out of the release."""
    oid = _mixed_release_oid()
    sourceids = [RELEASE_OBJECT_BLOCK + k for k in range(len(MIXED_RELEASE_EPOCHS))]
    seeded = [sid for state in (*STATES, *RELEASE_STATES) for sid in state.source_ids()]
    with database.admin() as connection:
        for sourceid, (state, mag) in zip(sourceids, MIXED_RELEASE_EPOCHS, strict=True):
            connection.execute(
                "INSERT INTO survey.lightcurves (oid, sourceid, pid, expid, nid, field, rcid,"
                " fid, filtercode, ra, dec, mag, magerr, flags, snr, obsjd, programid)"
                " SELECT %s, %s, pid, expid, nid, field, rcid, 2, 'zr', %s, %s, %s, 0.03, 0,"
                " 40, obsjd + (%s - %s) * 0.001, programid FROM survey.science_images"
                " WHERE pid = %s", (oid, sourceid, *MIXED_RELEASE_POSITION, mag, sourceid,
                                     sourceids[0], state.ident("pid")))
        registered = [row[0] for row in connection.execute(
            "INSERT INTO survey.object_registry (oid, ra, dec, field, ccdid, qid, rcid, fid,"
            " filtercode) SELECT DISTINCT ON (oid) oid, ra, dec, field, 1, 1, rcid, fid,"
            " filtercode FROM survey.lightcurves WHERE sourceid = ANY(%s)"
            " ORDER BY oid, obsjd ON CONFLICT (oid) DO NOTHING RETURNING oid",
            (seeded + sourceids,))]
    yield oid, sourceids
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.lightcurves WHERE sourceid = ANY(%s)",
                           (sourceids,))
        connection.execute("DELETE FROM survey.object_registry WHERE oid = ANY(%s)",
                           (registered,))


@pytest.fixture(scope="module")
def exported(database: Database, seeded_people, live_server: str, release_objects):
    """LEAKPUB1, public since an hour, exported once for the module.  Both co-adds of the
    release program were archived before it was declared, so both are in it; the late
    state's science and difference images, observed after the cutoff, are not."""
    with database.admin() as connection:
        reset_world(connection)
        for state in RELEASE_STATES:
            archive_coadd(connection, state, datetime.now(UTC) - timedelta(hours=2))
    date = _declare_public_release("LEAKPUB1")
    result = _cli("release", "export", "LEAKPUB1", "--base-url", live_server,
                  "--partition-rows", "1000")
    assert result.returncode == 0, result.stderr
    yield date, releases_root() / "LEAKPUB1"
    with database.admin() as connection:
        connection.execute("DELETE FROM survey.data_releases WHERE release_name = 'LEAKPUB1'")
        for state in RELEASE_STATES:
            archive_coadd(connection, state, COADD_PENDING)


def test_export_holds_exactly_the_released_rows_and_files_and_is_idempotent(
        database: Database, exported, live_server: str) -> None:
    import lsdb

    date, folder = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = {entry["path"] for entry in manifest["files"]}
    public_states = [s for s in STATES if visible(s, set())] + [EARLY]
    for state in public_states:
        for product, *_ in PRODUCTS:
            assert state.file_path(product) in paths, (state.key, product)
    for state in [s for s in STATES if not visible(s, set())]:
        assert not any(path.startswith(f"leaktest/{state.key}/") for path in paths), state.key
    # The late state's co-add and its catalog are in (archived before the release was
    # declared); its science and difference images are not (observed after the cutoff).
    late = {path for path in paths if path.startswith(f"leaktest/{LATE.key}/")}
    assert late == {LATE.file_path("refimg"), LATE.file_path("refsexcat")}
    with database.admin() as connection:
        assert FILES.embargo is not None
        released = {row[0] for row in connection.execute(
            f"SELECT f.path FROM survey.files f WHERE f.is_current = 1"
            f" AND {release_date_sql(FILES.embargo, 'f')} <= %s", (date,))}
    assert paths == released
    for entry in manifest["files"]:
        assert entry["url"].startswith(f"{live_server}/releases/LEAKPUB1/files/")
        assert len(entry["sha256"]) == 64 and entry["size_bytes"] > 0

    # LSDB reads the HATS catalogs; their row counts are the released rows in the database.
    with database.reading(ANONYMOUS) as connection:
        release = get_release(connection, "LEAKPUB1")
        for table in ("psf_sources", "aperture_sources"):
            expected = released_catalog_count(connection, f"survey.{table}", release)
            independent = connection.execute(
                f"SELECT count(*) FROM survey.{table} s JOIN survey.science_images i"
                f" USING (pid) WHERE i.is_current = 1"
                f" AND archive.release_date_of(s.programid, s.obsjd) <= %s",
                (release.release_date,)).fetchone()[0]
            assert expected == independent
            frame = lsdb.open_catalog(folder / "catalog" / table).compute()
            assert len(frame) == expected, table
            sources = set(frame["sourceid"])
            assert set(EARLY.source_ids()) <= sources
            for state in [s for s in STATES if not visible(s, set())] + [LATE]:
                assert not sources & set(state.source_ids()), (table, state.key)
            assert manifest["catalog_rows"][f"survey.{table}"] == expected

    checked = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    before = _digests(folder)
    again = _cli("release", "export", "LEAKPUB1", "--base-url", live_server,
                 "--partition-rows", "1000")
    assert again.returncode == 0, again.stderr
    assert _digests(folder) == before


def _released_points(database: Database, date: datetime) -> dict[int, list[tuple]]:
    """Per object, its points public at ``date``, by the SQL dating function (independent of
    the export's query) over the owner's connection: (sourceid, obsjd, mag, programid)."""
    with database.admin() as connection:
        rows = connection.execute(
            "SELECT d.oid, d.sourceid, d.obsjd, d.mag, d.programid"
            " FROM survey.lightcurves d JOIN survey.object_registry o ON o.oid = d.oid"
            " WHERE archive.release_date_of(d.programid, d.obsjd) <= %s"
            " ORDER BY d.oid, d.obsjd, d.sourceid", (date,)).fetchall()
    points: dict[int, list[tuple]] = {}
    for oid, *point in rows:
        points.setdefault(oid, []).append(tuple(point))
    return points


def test_release_light_curves_hold_exactly_the_released_epochs(
        database: Database, exported, release_objects) -> None:
    """LSDB reads the release's nested light curves and its objects: per object, exactly the
    points a direct SQL query dates into the release, in time order, and statistics of those
    only; nothing observed after the cutoff or under a proprietary period is in either."""
    import lsdb

    date, folder = exported
    mixed_oid, mixed_sourceids = release_objects
    expected = _released_points(database, date)
    curves = lsdb.open_catalog(folder / "catalog" / "lightcurves").compute()
    got = {int(oid): [(int(p.sourceid), float(p.obsjd), float(p.mag), int(p.programid))
                      for p in curve.itertuples()]
           for oid, curve in zip(curves["oid"], curves["lightcurve"], strict=True)}
    assert set(got) == set(expected)
    for oid, points in expected.items():
        assert [(s, j, pytest.approx(m), p) for s, j, m, p in points] == got[oid], oid
    assert dict(zip(curves["oid"], curves["nobs"], strict=True)) == {
        oid: len(points) for oid, points in expected.items()}
    # The mixed object: its two release epochs, none of the three others.
    released = [sid for sid, (state, _) in zip(mixed_sourceids, MIXED_RELEASE_EPOCHS,
                                                strict=True) if state is EARLY]
    assert [point[0] for point in got[mixed_oid]] == released
    hidden = {sid for state in [s for s in STATES if not visible(s, set())] + [LATE]
              for sid in state.source_ids()} | (set(mixed_sourceids) - set(released))
    flat = curves["lightcurve"].nest.to_flat()
    assert not hidden & set(flat["sourceid"])
    assert not set(flat["obsjd"]) - {p[1] for pts in expected.values() for p in pts}

    objects = lsdb.open_catalog(folder / "catalog" / "objects").compute()
    by_oid = {int(row.oid): row for row in objects.itertuples()}
    assert set(by_oid) == set(expected)
    mixed = by_oid[mixed_oid]
    assert mixed.nobs == mixed.ngoodobs == 2
    assert mixed.meanmag == pytest.approx(17.7, abs=1e-5)
    assert mixed.minmag == pytest.approx(17.5) and mixed.maxmag == pytest.approx(17.9)
    assert mixed.ra == pytest.approx(MIXED_RELEASE_POSITION[0])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["catalog_rows"]["survey.objects"] == len(expected)
    assert manifest["catalog_rows"]["survey.lightcurves"] == sum(map(len, expected.values()))


def test_release_page_and_artefacts_over_http(exported, live_server: str) -> None:
    _date, folder = exported
    page = requests.get(f"{live_server}/releases/LEAKPUB1", timeout=30)
    assert page.status_code == 200 and "download-curl.sh" in page.text
    listing = requests.get(f"{live_server}/releases.json", timeout=30).json()["releases"]
    entry = next(r for r in listing if r["release_name"] == "LEAKPUB1")
    assert entry["public"] and entry["manifest"].endswith("/releases/LEAKPUB1/manifest.json")
    for name in ("manifest.json", "manifest.csv", "SHA256SUMS", "files.sha256",
                 "download-wget.sh", "catalog/psf_sources/hats.properties"):
        response = requests.get(f"{live_server}/releases/LEAKPUB1/{name}", timeout=30)
        assert response.status_code == 200, name
        assert response.content == (folder / name).read_bytes(), name
    missing = requests.get(f"{live_server}/releases/LEAKPUB1/nothing-here", timeout=30)
    escape = requests.get(f"{live_server}/releases/LEAKPUB1/..%2F..%2Fpgdata", timeout=30)
    assert missing.status_code == escape.status_code == 404


def test_scheduled_release_shows_no_data(database: Database, releases,
                                         live_server: str) -> None:
    now = datetime.now(UTC)
    result = _cli("release", "declare", "LEAKDR8", "--date", _iso(now + timedelta(days=30)),
                  "--cutoff", _iso(now - timedelta(days=50)), "--programs",
                  str(RELEASE_PROGRAM))
    assert result.returncode == 0, result.stderr
    page = requests.get(f"{live_server}/releases/LEAKDR8", timeout=30)
    assert page.status_code == 200 and "scheduled" in page.text
    early_file = EARLY.file_path("sciimg")
    hidden = requests.get(f"{live_server}/releases/LEAKDR8/files/{early_file}", timeout=30)
    absent = requests.get(f"{live_server}/releases/NOSUCHDR/files/{early_file}", timeout=30)
    manifest = requests.get(f"{live_server}/releases/LEAKDR8/manifest.json", timeout=30)
    assert (hidden.status_code, hidden.text) == (absent.status_code, absent.text) == (
        manifest.status_code, manifest.text)


def test_release_files_are_served_only_when_public_and_in_the_release(
        exported, live_server: str) -> None:
    early = requests.get(f"{live_server}/releases/LEAKPUB1/files/{EARLY.file_path('raw')}",
                         timeout=30)
    assert early.status_code == 200 and EARLY.marker.encode() in early.content
    coadd = requests.get(f"{live_server}/releases/LEAKPUB1/files/{LATE.file_path('refimg')}",
                         timeout=30)
    assert coadd.status_code == 200 and LATE.marker.encode() in coadd.content
    for state in (LATE, STATE["waiting"], STATE["prop2"]):
        for person_headers in ({},):
            hidden = requests.get(
                f"{live_server}/releases/LEAKPUB1/files/{state.file_path('raw')}",
                headers=person_headers, timeout=30)
            twin = requests.get(
                f"{live_server}/releases/LEAKPUB1/files/{state.twin_file_path('raw')}",
                headers=person_headers, timeout=30)
            assert (hidden.status_code, hidden.content) == (twin.status_code, twin.content)
            assert hidden.status_code == 404


def _run_script(tool: str, folder: Path, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(folder / f"download-{tool}.sh")], cwd=workdir,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("tool", ["curl", "wget"])
def test_download_scripts_fetch_resume_and_verify(exported, tmp_path: Path, tool: str) -> None:
    _date, folder = exported
    first = _run_script(tool, folder, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "verified" in first.stdout
    target = tmp_path / "files" / EARLY.file_path("sciimg")
    assert EARLY.marker.encode() in target.read_bytes()
    # An interrupted download: a truncated file is resumed, a missing one fetched again.
    content = target.read_bytes()
    target.write_bytes(content[: len(content) // 3])
    (tmp_path / "catalog" / "psf_sources" / "hats.properties").unlink()
    second = _run_script(tool, folder, tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert target.read_bytes() == content
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        fetched = tmp_path / "files" / entry["path"]
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == entry["sha256"]
    for entry in manifest["catalog_files"]:
        fetched = tmp_path / entry["path"]
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == entry["sha256"]
