"""A source catalog as HATS (HEALPix-partitioned Parquet, readable by LSDB), from the database.

The rows come from one COPY through the requester's connection (the export reads as the
public), so nothing the row-level security hides can be written.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from skyvault.releases.model import Release
from skyvault.schema.model import Table

SPATIAL_ORDER = 29
HISTOGRAM_ORDER = 8
BUCKET_ORDER = 2
DEFAULT_PARTITION_ROWS = 500_000


def _arrow_type(column) -> pa.DataType:
    pg = column.type.pg_type
    mapping = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(),
               "real": pa.float32(), "double precision": pa.float64(), "text": pa.string(),
               "timestamptz": pa.timestamp("us", tz="UTC"), "smallint[]": pa.list_(pa.int16())}
    if pg.startswith("char("):
        return pa.string()
    return mapping[pg]

def select_list(table: Table, alias: str = "s") -> str:
    """The columns of ``table`` as the writer reads them (timestamps in ISO 8601 UTC)."""
    return ", ".join(
        f"to_char({alias}.{c.name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        if c.type.pg_type == "timestamptz" else f"{alias}.{c.name}" for c in table.columns)


def _stream_batches(connection: psycopg.Connection, table: Table, query: str,
                    params: dict, schema: pa.Schema, spill: Path) -> Iterator[pa.RecordBatch]:
    """The rows of ``query`` (``select_list(table)`` of its rows) as Arrow batches.

    PostgreSQL writes them as CSV (COPY, one statement, hence one snapshot) into a spill file
    that Arrow's C++ reader parses into typed columns: some 20 times faster than building
    Arrow arrays from Python tuples.  Floats survive the trip exactly (PostgreSQL 12+ prints
    the shortest representation that reads back to the same double).
    """
    from pyarrow import csv as pacsv

    path = spill / f"{table.name}.csv"
    with connection.cursor() as cursor, path.open("wb") as out, cursor.copy(
            f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
        # psycopg hands over one row per block: gather megabytes before each write.
        pending = bytearray()
        for block in copy:
            pending += block
            if len(pending) >= 8 << 20:
                out.write(pending)
                pending.clear()
        out.write(pending)
    if path.stat().st_size == 0:
        path.unlink()
        return
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(column_names=list(table.column_names),
                                             block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema if f.name in table.column_names},
            strings_can_be_null=True, quoted_strings_can_be_null=False))
    try:
        yield from reader
    finally:
        reader.close()
        path.unlink()


class _HatsWriter:
    """Writes one catalog as HATS from row batches, in one pass over the database.

    Rows are spilled to coarse HEALPix buckets while a fine histogram is counted; the
    partitioning (hats' alignment) is then decided from the histogram, and each final pixel is
    cut from its buckets, sorted by the spatial index and written.
    """

    def __init__(self, table: Table, directory: Path, partition_rows: int) -> None:
        from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

        self.table = table
        self.directory = directory
        self.partition_rows = partition_rows
        self.index_column = SPATIAL_INDEX_COLUMN
        self.schema = pa.schema([pa.field(c.name, _arrow_type(c)) for c in table.columns]
                                + [pa.field(self.index_column, pa.int64())])
        self.spill = directory.parent / f".spill-{table.name}"
        self.spill.mkdir(parents=True)
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.histogram = np.zeros(12 * 4 ** HISTOGRAM_ORDER, dtype=np.int64)
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        from hats.pixel_math.spatial_index import compute_spatial_index

        ra = batch.column("ra").to_numpy(zero_copy_only=False)
        dec = batch.column("dec").to_numpy(zero_copy_only=False)
        index = compute_spatial_index(ra, dec, SPATIAL_ORDER).astype(np.int64)
        table = pa.Table.from_batches([batch]).append_column(self.index_column, pa.array(index))
        table = table.select(self.schema.names).cast(self.schema)
        np.add.at(self.histogram, index >> (2 * (SPATIAL_ORDER - HISTOGRAM_ORDER)), 1)
        buckets = index >> (2 * (SPATIAL_ORDER - BUCKET_ORDER))
        for bucket in np.unique(buckets):
            part = table.filter(pa.array(buckets == bucket))
            writer = self.writers.get(int(bucket))
            if writer is None:
                writer = pq.ParquetWriter(self.spill / f"{int(bucket)}.parquet", self.schema)
                self.writers[int(bucket)] = writer
            writer.write_table(part)
        self.rows += len(table)

    def finish(self, catalog_name: str, release: Release) -> int:
        from hats.catalog import PartitionInfo
        from hats.io import write_parquet_metadata
        from hats.pixel_math import HealpixPixel, generate_alignment

        for writer in self.writers.values():
            writer.close()
        dataset = self.directory / "dataset"
        dataset.mkdir(parents=True)
        pixels: list[tuple[int, int]] = []
        if self.rows:
            # A single fine pixel denser than the limit becomes its own partition.
            threshold = max(self.partition_rows, int(self.histogram.max()))
            alignment = generate_alignment(self.histogram, highest_order=HISTOGRAM_ORDER,
                                           lowest_order=0, threshold=threshold)
            pixels = sorted({(int(a[0]), int(a[1])) for a in alignment
                             if a is not None and a[2] > 0})
        cache: dict[int, pa.Table] = {}
        for order, pixel in pixels:
            self._write_pixel(dataset, order, pixel, cache)
        if not pixels:
            # An empty release still gets a readable (empty) schema.
            pq.write_table(self.schema.empty_table(), dataset / "_common_metadata")
        else:
            write_parquet_metadata(self.directory)
            PartitionInfo.from_healpix([HealpixPixel(o, p) for o, p in pixels]).write_to_file(
                catalog_path=self.directory)
        self._write_properties(catalog_name, release, pixels)
        shutil.rmtree(self.spill)
        return self.rows

    def _write_pixel(self, dataset: Path, order: int, pixel: int,
                     cache: dict[int, pa.Table]) -> None:
        if order >= BUCKET_ORDER:
            buckets = [pixel >> (2 * (order - BUCKET_ORDER))]
        else:
            span = 4 ** (BUCKET_ORDER - order)
            buckets = list(range(pixel * span, (pixel + 1) * span))
        parts = []
        for bucket in buckets:
            if bucket not in self.writers:
                continue
            if bucket not in cache:
                cache.clear()
                cache[bucket] = pq.read_table(self.spill / f"{bucket}.parquet")
            parts.append(cache[bucket])
        table = pa.concat_tables(parts)
        shift = 2 * (SPATIAL_ORDER - order)
        index = table[self.index_column].to_numpy()
        table = table.filter(pa.array((index >> shift) == pixel))
        keys = [self.index_column] + [c for c in ("sourceid", "pid") if c in table.column_names]
        table = table.sort_by([(key, "ascending") for key in keys])
        folder = dataset / f"Norder={order}" / f"Dir={pixel // 10000 * 10000}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"Npix={pixel}.parquet", row_group_size=100_000)

    def _write_properties(self, catalog_name: str, release: Release,
                          pixels: list[tuple[int, int]]) -> None:
        lines = [
            "#HATS catalog",
            f"obs_collection={catalog_name}",
            "dataproduct_type=object",
            f"hats_nrows={self.rows}",
            "hats_col_ra=ra",
            "hats_col_dec=dec",
            f"hats_col_healpix={self.index_column}",
            f"hats_col_healpix_order={SPATIAL_ORDER}",
            "hats_npix_suffix=.parquet",
            f"hats_max_rows={self.partition_rows}",
            f"hats_order={max((o for o, _ in pixels), default=0)}",
            "hats_builder=skyvault release export",
            # The release's own date, not the time of export: a rerun writes the same bytes.
            f"hats_creation_date={release.release_date.astimezone(UTC):%Y-%m-%dT%H:%MUTC}",
            f"hats_release_date={release.release_date.astimezone(UTC):%Y-%m-%d}",
            "hats_version=v1.0",
            f"obs_title={self.table.description} ({release.name})",
        ]
        text = "\n".join(lines) + "\n"
        (self.directory / "hats.properties").write_text(text)
        (self.directory / "properties").write_text(text)


def write_hats_catalog(connection: psycopg.Connection, table: Table, query: str, params: dict,
                       directory: Path, catalog_name: str, release: Release,
                       partition_rows: int = DEFAULT_PARTITION_ROWS) -> int:
    """Write the rows of ``query`` as the HATS catalog ``directory``; returns their number."""
    writer = _HatsWriter(table, directory, partition_rows)
    for batch in _stream_batches(connection, table, query, params, writer.schema, writer.spill):
        writer.add(batch)
    return writer.finish(catalog_name, release)
