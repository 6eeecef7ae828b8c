"""A release's objects and nested light curves, without a database: each object's points land
in one row, in time order, with statistics of exactly those points (checked against numpy);
objects and light curves share the partitioning; a release larger than memory writes the same
bytes; LSDB reads the nested column."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skyvault.releases import hats_writer
from skyvault.releases import lightcurves as release_lightcurves
from skyvault.releases.model import Release

RELEASE = Release("DRTEST", datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                  (1,), None, datetime(2026, 12, 2, tzinfo=UTC))
OBJECTS = 300
SCHEMA = pa.schema([pa.field(c.name, hats_writer._arrow_type(c))
                    for c in release_lightcurves.POINTS.columns])


def _points() -> pa.Table:
    """Points of OBJECTS objects over the sky (a few epochs flagged), in shuffled order."""
    rng = np.random.default_rng(7)
    epochs = rng.integers(1, 40, OBJECTS)
    owner = np.repeat(np.arange(OBJECTS), epochs)
    rows = len(owner)
    obj_ra = rng.uniform(0, 360, OBJECTS)
    obj_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, OBJECTS)))
    columns = {f.name: pa.nulls(rows, f.type) for f in SCHEMA}
    columns.update(
        obj_oid=pa.array(owner.astype(np.int64) * 4 + 2), obj_ra=pa.array(obj_ra[owner]),
        obj_dec=pa.array(obj_dec[owner]), obj_fid=pa.array(np.full(rows, 2, np.int16)),
        obj_filtercode=pa.array(["zr"] * rows), sourceid=pa.array(np.arange(rows) + 1),
        ra=pa.array(obj_ra[owner] + rng.normal(0, 1e-5, rows)), dec=pa.array(obj_dec[owner]),
        obsjd=pa.array(2460000.5 + rng.uniform(0, 300, rows)),
        mag=pa.array(rng.normal(18, 0.3, rows).astype(np.float32)),
        magerr=pa.array(np.full(rows, 0.05, np.float32)),
        flags=pa.array(np.where(rng.uniform(size=rows) < 0.1, 4, 0).astype(np.int32)),
        programid=pa.array(np.ones(rows, np.int16)),
        relphot_corr=pa.array(rng.normal(0, 0.01, rows).astype(np.float32)))
    table = pa.table([columns[f.name] for f in SCHEMA], schema=SCHEMA)
    return table.take(rng.permutation(rows))


def _write(catalog: Path) -> int:
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

    outputs = [
        hats_writer.Output(catalog / "objects", "objects", "objects",
                           (*release_lightcurves.OBJECTS.column_names, SPATIAL_INDEX_COLUMN)),
        hats_writer.Output(catalog / "lightcurves", "lightcurves", "light curves",
                           (*release_lightcurves.IDENTITY, SPATIAL_INDEX_COLUMN, "nobs",
                            "lightcurve"))]
    writer = hats_writer._HatsWriter(
        release_lightcurves.POINTS, catalog / "lightcurves", 1_500,
        pixel_rows=release_lightcurves.nest, outputs=outputs,
        sort_keys=("obj_oid", "obsjd", "sourceid"), position=("obj_ra", "obj_dec"))
    for batch in _points().to_batches(max_chunksize=1_000):
        writer.add(batch)
    return writer.finish("unused", RELEASE)


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    catalog = tmp_path_factory.mktemp("release") / "catalog"
    assert _write(catalog) == OBJECTS
    return catalog


def test_each_object_is_one_row_with_its_points_in_time_order(written: Path) -> None:
    import lsdb

    points = _points().to_pandas()
    curves = lsdb.open_catalog(written / "lightcurves").compute()
    objects = lsdb.open_catalog(written / "objects").compute().set_index("oid")
    assert len(curves) == len(objects) == OBJECTS
    for oid, nobs, curve in zip(curves["oid"], curves["nobs"], curves["lightcurve"],
                                strict=True):
        mine = points[points["obj_oid"] == oid].sort_values("obsjd")
        assert list(curve["sourceid"]) == list(mine["sourceid"]) and nobs == len(mine)
        good = mine[(mine["flags"] & 23) == 0]
        mags = good["mag"].to_numpy(np.float64) + good["relphot_corr"].to_numpy(np.float64)
        row = objects.loc[oid]
        assert row["nobs"] == len(mine) and row["ngoodobs"] == len(good)
        if len(good):
            assert row["meanmag"] == pytest.approx(mags.mean(), abs=1e-5)
            assert row["maxmag"] == pytest.approx(mags.max(), abs=1e-5)
        if len(good) > 1:
            assert row["magrms"] == pytest.approx(mags.std(ddof=1), rel=1e-4)
    # Both catalogs have the same partitions.
    assert sorted(p.relative_to(written / "objects").as_posix() for p in
                  (written / "objects").glob("dataset/Norder=*/Dir=*/*.parquet")) == sorted(
        p.relative_to(written / "lightcurves").as_posix() for p in
        (written / "lightcurves").glob("dataset/Norder=*/Dir=*/*.parquet"))
    assert len(list((written / "objects").glob("dataset/Norder=*/Dir=*/*.parquet"))) > 1
    assert pq.read_metadata(next((written / "objects").glob(
        "dataset/Norder=*/Dir=*/*.parquet"))).num_rows > 0


def test_a_release_larger_than_memory_is_written_the_same(written: Path, tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setattr(hats_writer, "MEMORY_ROWS", 2_000)
    spilled = tmp_path / "catalog"
    assert _write(spilled) == OBJECTS
    for name in ("objects", "lightcurves"):
        assert _digests(spilled / name) == _digests(written / name)
