"""The release export's HATS writer, without a database: every row lands once, in the file of
the HEALPix pixel that holds it (checked with healpy, not the writer's arithmetic), sorted; the
spilled path (a release larger than memory) writes the same bytes as the in-memory one; LSDB
reads the result."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import healpy
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skyvault.releases import hats_writer
from skyvault.releases.hats_writer import _HatsWriter
from skyvault.releases.model import Release
from skyvault.schema.tables import PSF_SOURCES

RELEASE = Release("DRTEST", datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                  (1,), None, datetime(2026, 12, 2, tzinfo=UTC))


def _batches(rows: int = 30_000, size: int = 7_000) -> list[pa.RecordBatch]:
    """Sources over the whole sky and a dense cluster (deeper partitions there), in a shuffled
    order, as the database could send them."""
    rng = np.random.default_rng(3)
    dense = rows // 3
    ra = np.concatenate([rng.uniform(0, 360, rows - dense), rng.normal(120, 0.2, dense) % 360])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, rows - dense))),
                          np.clip(rng.normal(-30, 0.2, dense), -90, 90)])
    sourceid = rng.permutation(rows).astype(np.int64) + 1
    schema = pa.schema([pa.field(c.name, hats_writer._arrow_type(c))
                        for c in PSF_SOURCES.columns])
    columns = {f.name: pa.nulls(rows, f.type) for f in schema}
    columns.update(sourceid=pa.array(sourceid), pid=pa.array(sourceid // 10),
                   ra=pa.array(ra), dec=pa.array(dec), nid=pa.array(np.full(rows, 5, np.int32)),
                   obsjd=pa.array(np.full(rows, 2461000.5)),
                   programid=pa.array(np.ones(rows, np.int16)),
                   filtercode=pa.array(np.where(sourceid % 2, "zg", "zr")),
                   mag=pa.array(rng.uniform(14, 21, rows).astype(np.float32)))
    table = pa.table([columns[f.name] for f in schema], schema=schema)
    return table.to_batches(max_chunksize=size)


def _write(directory: Path) -> int:
    writer = _HatsWriter(PSF_SOURCES, directory, partition_rows=2_000)
    for batch in _batches():
        writer.add(batch)
    return writer.finish("skyvault_test_psf_sources", RELEASE)


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hats") / "psf_sources"
    assert _write(directory) == 30_000
    return directory


def test_every_row_is_in_the_file_of_its_pixel_once_and_sorted(written: Path) -> None:
    seen = []
    files = sorted(written.glob("dataset/Norder=*/Dir=*/Npix=*.parquet"))
    orders = set()
    for path in files:
        order = int(path.parts[-3].split("=")[1])
        pixel = int(path.stem.split("=")[1])
        orders.add(order)
        table = pq.read_table(path)
        assert table.num_rows <= 2_000 or order == 8
        ra, dec = table["ra"].to_numpy(), table["dec"].to_numpy()
        assert np.all(healpy.ang2pix(2 ** order, ra, dec, nest=True, lonlat=True) == pixel)
        index = table["_healpix_29"].to_numpy()
        assert np.all(np.diff(index) >= 0)
        seen.append(table["sourceid"].to_numpy())
    ids = np.concatenate(seen)
    assert len(ids) == 30_000 and len(np.unique(ids)) == 30_000
    assert len(orders) > 1  # the dense cluster is split deeper than the rest of the sky


def test_a_release_larger_than_memory_is_written_the_same(written: Path, tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setattr(hats_writer, "MEMORY_ROWS", 5_000)
    spilled = tmp_path / "psf_sources"
    assert _write(spilled) == 30_000
    assert _digests(spilled) == _digests(written)


def test_lsdb_reads_the_catalog(written: Path) -> None:
    import lsdb

    frame = lsdb.open_catalog(written).compute()
    assert len(frame) == 30_000
    assert set(frame["sourceid"]) == set(range(1, 30_001))
