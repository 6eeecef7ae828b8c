"""``skyvault.ingest.load`` on its own: one small product group planned and loaded, its rows and
files checked against the products themselves (the FITS files and the manifest, read here with
astropy and hashlib), and a group rejected at the last step leaving nothing behind.

The loads run inside one transaction of the session's database that is rolled back (load_group
then works in a savepoint), so nothing stays in the archive the other tests see; the file store
is a folder of the test's own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy.io import fits

from skyvault.filestore import LocalFileStore
from skyvault.ingest.errors import ChecksumMismatch, GroupRejected
from skyvault.ingest.load import load_group
from skyvault.ingest.partitions import partitions
from skyvault.ingest.plan import plan_group
from skyvault.ingest.synthetic import NightFiles, NightSpec, write_night
from skyvault.ingest.testing import table_counts

# A night no seed of the session uses, one exposure of one quadrant, no co-adds.
SPEC = NightSpec(nightdate="2025-07-14", exposures=1, quadrants=(1,), sources=12,
                 references=False, programids=(2,), field=714, seed=14)


@pytest.fixture
def connection(rolled_back: psycopg.Connection) -> psycopg.Connection:
    return rolled_back  # tests/conftest.py: rolled back at the end


@pytest.fixture
def night(tmp_path: Path) -> NightFiles:
    return write_night(tmp_path / "products", SPEC)


def _manifest(path: Path) -> dict:
    return json.loads(path.read_text())


def _stored(store: LocalFileStore) -> set[str]:
    return {path for path in store.walk()}


def test_a_group_lands_with_its_files_and_rows(connection, night: NightFiles,
                                               tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "store")
    calibration = load_group(connection, store, plan_group(night.calibration))
    assert calibration.status == "ingested"
    (exposure_manifest,) = night.exposures
    promised = _manifest(exposure_manifest)
    result = load_group(connection, store, plan_group(exposure_manifest))

    assert result.status == "ingested"
    assert result.files == len(promised["files"])
    assert result.bytes == sum(entry["size"] for entry in promised["files"])
    # Every file is in the store, byte for byte, and has its row.
    rows = {row[0]: row[1:] for row in connection.execute(
        "SELECT path, size_bytes, sha256, programids FROM survey.files WHERE path = ANY(%s)",
        ([e["path"] for e in promised["files"]],))}
    assert set(rows) == {entry["path"] for entry in promised["files"]}
    for entry in promised["files"]:
        source = (night.root / entry["path"]).read_bytes()
        assert (store.root / entry["path"]).read_bytes() == source
        assert rows[entry["path"]][:2] == (len(source), hashlib.sha256(source).hexdigest())
        assert rows[entry["path"]][2] == [2]

    # The science image row says what the manifest says.
    (science,) = promised["science"]
    pid, programid, obsjd, nid, qid = connection.execute(
        "SELECT pid, programid, obsjd, nid, qid FROM survey.science_images"
        " WHERE expid = %s AND ccdid = %s AND qid = %s AND is_current = 1",
        (science["expid"], science["ccdid"], science["qid"])).fetchone()
    assert (programid, nid, qid) == (2, SPEC.nid, 1)
    assert obsjd == pytest.approx(science["obsjd"], abs=1e-9)

    # The PSF catalog's rows are the psfcat file's rows, dated and filed with their image.
    psfcat = next(e["path"] for e in promised["files"] if e["product_type"] == "psfcat")
    with fits.open(night.root / psfcat) as hdus:
        table = hdus[1].data
        expected = sorted(zip(np.asarray(table["ra"], float), np.asarray(table["dec"], float),
                              strict=True))
    # A bulk load fills the night's loading table, which the catalog shows once sealed.
    assert connection.execute("SELECT count(*) FROM survey.psf_sources WHERE pid = %s",
                              (pid,)).fetchone()[0] == 0
    (loading,) = partitions(connection, "psf_sources", SPEC.nid)
    loaded = connection.execute(
        f"SELECT ra, dec, programid, obsjd, nid FROM {loading.qualified_name} WHERE pid = %s"
        " ORDER BY ra, dec", (pid,)).fetchall()
    assert len(loaded) == len(expected) == SPEC.sources
    np.testing.assert_allclose([(r[0], r[1]) for r in loaded], expected, rtol=0, atol=1e-9)
    assert {(r[2], r[3], r[4]) for r in loaded} == {(2, obsjd, SPEC.nid)}
    assert result.rows >= len(expected)

    (recorded,) = connection.execute(
        "SELECT manifest_sha256 FROM archive.ingested_manifests WHERE manifest_name = %s",
        (promised["name"],)).fetchall()
    assert recorded[0] == hashlib.sha256(exposure_manifest.read_bytes()).hexdigest()

    # The same manifest again: skipped, nothing added.
    before = table_counts(connection)
    again = load_group(connection, store, plan_group(exposure_manifest))
    assert again.status == "skipped"
    assert table_counts(connection) == before


def test_a_group_rejected_at_the_last_step_leaves_nothing(connection, night: NightFiles,
                                                         tmp_path: Path) -> None:
    """A product changed after planning (its bytes no longer the manifest's) is found while
    the files are placed, after the group's rows were written: the group is rejected whole,
    no row of it stays and no file of it is in the store."""
    store = LocalFileStore(tmp_path / "store")
    load_group(connection, store, plan_group(night.calibration))
    before_rows = table_counts(connection)
    before_files = _stored(store)
    (exposure_manifest,) = night.exposures
    plan = plan_group(exposure_manifest)
    raw = next(night.root / e["path"] for e in _manifest(exposure_manifest)["files"]
               if e["product_type"] == "raw")
    flipped = bytearray(raw.read_bytes())
    flipped[-100] ^= 0x01  # same size, one bit: only the SHA-256 can tell
    raw.write_bytes(bytes(flipped))

    with pytest.raises(GroupRejected) as rejected:
        load_group(connection, store, plan)
    assert any(isinstance(p, ChecksumMismatch) for p in rejected.value.problems)
    assert table_counts(connection) == before_rows
    assert _stored(store) == before_files
