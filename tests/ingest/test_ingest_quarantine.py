"""Bad input is quarantined with its reason: never half-archived, never lost, never dropped."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skyvault.db import Database
from skyvault.ingest import LocalFileStore, check_archive, ingest_paths
from skyvault.ingest.quarantine import entries
from skyvault.ingest.synthetic import NightSpec, write_night
from skyvault.ingest.testing import fresh_database

SPEC = NightSpec(nightdate="2026-11-18", exposures=10, quadrants=(1,), sources=20,
                 references=False, seed=11)


def _edit(manifest: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(manifest.read_text())
    change(data)
    manifest.write_text(json.dumps(data, indent=1))


def _refresh(manifest: Path, root: Path, *types: str) -> None:
    """Make the manifest promise what the files now are (the pipeline wrote them so)."""
    def change(data: dict) -> None:
        for entry in data["files"]:
            if entry["product_type"] in types:
                content = (root / entry["path"]).read_bytes()
                entry["size"] = len(content)
                entry["sha256"] = hashlib.sha256(content).hexdigest()
    _edit(manifest, change)


def _file(manifest: Path, root: Path, product_type: str) -> Path:
    data = json.loads(manifest.read_text())
    return root / next(f["path"] for f in data["files"] if f["product_type"] == product_type)


def _rewrite_catalog(path: Path, change: Callable[[fits.FITS_rec], None]) -> None:
    with fits.open(path) as hdus:
        table = hdus[1].data.copy()
        change(table)
        fits.HDUList([fits.PrimaryHDU(header=hdus[0].header),
                      fits.BinTableHDU(table, header=hdus[1].header)]).writeto(path,
                                                                            overwrite=True)


def _set_program(manifest: Path, root: Path) -> None:
    def change(data: dict) -> None:
        for section in ("exposures", "science"):
            for item in data[section]:
                item["programid"] = 9
    _edit(manifest, change)
    for product_type in ("sciimg", "mskimg", "psfcat", "sexcat"):
        with fits.open(_file(manifest, root, product_type), mode="update",
                       checksum=True) as hdus:
            hdus[0].header["PROGRMID"] = 9
    _refresh(manifest, root, "sciimg", "mskimg", "psfcat", "sexcat")


def _break(night, root: Path) -> dict[int, tuple[str, str]]:
    """Break exposures 1..9 one way each; returns index -> (problem kind, product type)."""
    m = night.exposures
    expected: dict[int, tuple[str, str]] = {}

    psfcat = _file(m[1], root, "psfcat")
    psfcat.write_bytes(b"\x00garbage" * 360)
    _refresh(m[1], root, "psfcat")
    expected[1] = ("corrupt_fits", "psfcat")

    sciimg = _file(m[2], root, "sciimg")
    sciimg.write_bytes(sciimg.read_bytes()[:-2880])
    _refresh(m[2], root, "sciimg")
    expected[2] = ("corrupt_fits", "sciimg")

    sexcat = _file(m[3], root, "sexcat")
    (root / "sexcat.original").write_bytes(sexcat.read_bytes())
    sexcat.write_bytes(sexcat.read_bytes()[:-2880])  # manifest not told: sizes disagree
    expected[3] = ("checksum_mismatch", "sexcat")

    sciimg = _file(m[4], root, "sciimg")
    with fits.open(sciimg) as hdus:
        header = hdus[0].header.copy()
        data = hdus[0].data
    for keyword in ("CTYPE1", "CTYPE2", "CHECKSUM", "DATASUM"):
        del header[keyword]
    fits.PrimaryHDU(data, header=header).writeto(sciimg, overwrite=True)
    _refresh(m[4], root, "sciimg")
    expected[4] = ("missing_keyword", "sciimg")

    def too_north(data: dict) -> None:
        data["science"][0]["footprint"]["dec3"] = 95.0
    _edit(m[5], too_north)
    expected[5] = ("impossible_value", "sciimg")

    def nan_position(table) -> None:
        table["ra"][3] = np.nan
    _rewrite_catalog(_file(m[6], root, "psfcat"), nan_position)
    _refresh(m[6], root, "psfcat")
    expected[6] = ("impossible_value", "psfcat")

    _set_program(m[7], root)
    expected[7] = ("unknown_program", None)

    raw = _file(m[8], root, "raw")
    with fits.open(raw) as hdus:
        inside = hdus.fileinfo(len(hdus) - 1)["datLoc"] + 8  # compressed pixels, no CHECKSUM
    flipped = bytearray(raw.read_bytes())
    flipped[inside] ^= 0x01  # same size, one bit: only the manifest's SHA-256 can tell
    raw.write_bytes(bytes(flipped))
    expected[8] = ("checksum_mismatch", "raw")

    _file(m[9], root, "sexcat").unlink()
    expected[9] = ("missing_file", "sexcat")
    return expected


@pytest.fixture(scope="module")
def quarantined(database: Database, tmp_path_factory) -> dict:
    handle = fresh_database(database.urls.admin, "ingest_quarantine")
    base = tmp_path_factory.mktemp("bad")
    root = base / "products"
    night = write_night(root, SPEC)
    expected = _break(night, root)
    broken = root / "manifests" / SPEC.day / "exp_broken.json"
    broken.write_text('{"kind": "exposure", "name": ')
    originals = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    kwargs = {"database": handle, "store": LocalFileStore(base / "store"),
              "quarantine_root": base / "quarantine"}
    summary = ingest_paths([root], **kwargs)
    return {"db": handle, "night": night, "root": root, "summary": summary, "kw": kwargs,
            "expected": expected, "broken": broken, "originals": originals}


def test_every_bad_group_is_quarantined_and_nothing_of_it_archived(quarantined: dict) -> None:
    summary = quarantined["summary"]
    assert (summary.ingested, summary.quarantined, summary.deferred) == (2, 10, 0), \
        summary.lines()
    good = SPEC.nid * 1000 + 100
    with quarantined["db"].admin() as connection:
        science = [row[0] for row in connection.execute(
            "SELECT DISTINCT expid FROM survey.science_images")]
        exposures = {row[0] for row in connection.execute("SELECT expid FROM survey.exposures")}
        raws = {row[0] for row in connection.execute("SELECT expid FROM survey.raw_images")}
        rows = connection.execute("SELECT count(*) FROM survey.psf_sources").fetchone()[0]
    assert science == [good]
    assert exposures == {good, SPEC.nid * 1000 + 1, SPEC.nid * 1000 + 2}
    assert raws == exposures
    assert rows == SPEC.sources
    report = check_archive(database=quarantined["db"], store=quarantined["kw"]["store"],
                           deep=True)
    assert report.clean, report.lines()  # no orphan of a rejected group in the store


def test_each_problem_is_recorded_with_its_reason(quarantined: dict) -> None:
    with quarantined["db"].admin() as connection:
        found = entries(connection)
    by_group: dict[str, list] = {}
    for entry in found:
        by_group.setdefault(entry.manifest_name or Path(entry.original_path).stem,
                            []).append(entry)
    for index, (kind, product_type) in quarantined["expected"].items():
        name = f"exp_{SPEC.nid * 1000 + 100 + index}"
        problems = [e for e in by_group[name] if e.problem != "group_held"]
        assert any(e.problem == kind and (product_type is None or e.product_type == product_type)
                   for e in problems), (name, [(e.problem, e.reason) for e in problems])
        # The manifest is set aside too: held back with the group's problems, or itself the
        # problem (a value in it is impossible).
        manifests = [e for e in by_group[name] if e.original_path.endswith(f"{name}.json")]
        assert len(manifests) == 1
        assert manifests[0].problem in ("group_held", kind)
    unreadable = by_group["exp_broken"]
    assert [e.problem for e in unreadable] == ["bad_manifest"]
    reasons = {e.problem: e.reason for e in found}
    assert "programid 9" in reasons["unknown_program"]
    assert "+-90" in reasons["impossible_value"] or "non-finite" in reasons["impossible_value"]


def test_quarantine_keeps_copies_and_originals(quarantined: dict) -> None:
    with quarantined["db"].admin() as connection:
        found = entries(connection)
    for entry in found:
        copy = Path(entry.quarantine_path)
        assert Path(f"{copy}.reason.txt").read_text().strip().endswith(entry.reason)
        original = Path(entry.original_path)
        if original.exists():
            assert copy.read_bytes() == original.read_bytes()
    for path, content in quarantined["originals"].items():
        assert path.read_bytes() == content  # nothing in the product folder was touched


def test_quarantine_is_idempotent_and_resolved_by_a_good_rerun(quarantined: dict) -> None:
    with quarantined["db"].admin() as connection:
        before = connection.execute("SELECT count(*) FROM archive.quarantine").fetchone()[0]
    again = ingest_paths([quarantined["root"]], **quarantined["kw"])
    assert (again.quarantined, again.ingested) == (10, 0)
    with quarantined["db"].admin() as connection:
        assert connection.execute(
            "SELECT count(*) FROM archive.quarantine").fetchone()[0] == before
    # The pipeline reruns exposure 3 and writes its sexcat whole: the group goes in.
    manifest = quarantined["night"].exposures[3]
    _file(manifest, quarantined["root"], "sexcat").write_bytes(
        (quarantined["root"] / "sexcat.original").read_bytes())
    fixed = ingest_paths([manifest], **quarantined["kw"])
    assert fixed.ingested == 1, fixed.lines()
    with quarantined["db"].admin() as connection:
        name = manifest.stem
        open_entries = connection.execute(
            "SELECT count(*) FROM archive.quarantine WHERE manifest_name = %s"
            " AND resolved_at IS NULL", (name,)).fetchone()[0]
        assert open_entries == 0
        assert len(entries(connection)) < len(entries(connection, include_resolved=True))


def test_report_lists_the_quarantine(quarantined: dict) -> None:
    environment = {**os.environ, "SKYVAULT_DATABASE_URL": quarantined["db"].urls.admin}
    shown = subprocess.run([sys.executable, "-m", "skyvault", "ingest", "report"],
                           env=environment, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    for kind in ("corrupt_fits", "checksum_mismatch", "missing_keyword", "impossible_value",
                 "unknown_program", "missing_file", "bad_manifest"):
        assert kind in shown.stdout
    assert "programid 9 is not in survey.programs" in shown.stdout
