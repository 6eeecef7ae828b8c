"""A source catalog as HATS (HEALPix-partitioned Parquet, readable by LSDB), from the database.

Why not LINCC's hats-import: it is a Dask pipeline over input *files* (map: histogram, split:
shards per destination pixel, reduce: one Parquet file per pixel), so an export would first
write the rows out of PostgreSQL into files and then read, shuffle and write them twice more;
measured on the same 1.6 million released rows (BENCHMARKS.md, "Embargo"), its pipeline alone
took longer than this whole export, database read included.  The same layout comes out of
one pass here, with hats' own functions for everything that defines the format (spatial
index, partitioning by histogram, partition info, metadata files):

1. PostgreSQL streams the rows through the requester's connection (the export reads as the
   public, so nothing the row-level security hides can be written): as a binary COPY in a
   fixed layout parsed by numpy in bulk (binary_rows.py) when every column has a fixed width,
   the source catalogs' case; otherwise as CSV into a pipe that Arrow's C++ reader parses into
   typed batches while the database is still producing them (floats survive exactly:
   PostgreSQL 12+ prints the shortest representation that reads back to the same double);
2. each batch gets its HEALPix order-29 index and is counted into a histogram; batches stay
   in memory up to ``MEMORY_ROWS`` rows; beyond, what is held is sorted by coarse bucket
   (order 2) and appended to each bucket's Arrow IPC spill file (sorted slices, no filters);
3. the partitioning is decided from the histogram (``generate_alignment``, as hats-import
   does); the rows (all of them, or each bucket read back memory-mapped) are sorted by
   (index, sourceid) and cut into the final pixels, which are contiguous ranges of the nested
   index, and written as Parquet, two at a time.  Dictionary encoding is kept for the text
   columns only: on the numeric ones it cost three quarters of the Parquet writing time for
   a file 3 % smaller.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skyvault.releases import binary_rows
from skyvault.releases.model import Release
from skyvault.schema.model import Table

SPATIAL_ORDER = 29
HISTOGRAM_ORDER = 8
BUCKET_ORDER = 2
DEFAULT_PARTITION_ROWS = 500_000
MEMORY_ROWS = 4_000_000
"""Rows held in memory before spilling to buckets (about 0.5 GB of a source catalog)."""
CSV_BLOCK = 16 << 20
PIPE_CHUNK = 4 << 20
THREADS = 2


def _arrow_type(column) -> pa.DataType:
    pg = column.type.pg_type
    mapping = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(),
               "real": pa.float32(), "double precision": pa.float64(), "text": pa.string(),
               "timestamptz": pa.timestamp("us", tz="UTC"), "smallint[]": pa.list_(pa.int16())}
    if pg.startswith("char("):
        return pa.string()
    return mapping[pg]


def select_list(table: Table, alias: str = "s") -> str:
    """The columns of ``table`` as the writer reads them: in binary with a NULL mask when all
    have a fixed width (binary_rows.py), otherwise as CSV (timestamps in ISO 8601 UTC)."""
    if binary_rows.fits(table):
        return binary_rows.select_list(table, alias)
    return ", ".join(
        f"to_char({alias}.{c.name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        if c.type.pg_type == "timestamptz" else f"{alias}.{c.name}" for c in table.columns)


def _stream_batches(connection: psycopg.Connection, table: Table, query: str,
                    params: dict, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The rows of ``query`` (``select_list(table)`` of its rows) as Arrow batches, parsed
    while PostgreSQL still sends them."""
    from pyarrow import csv as pacsv

    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def pump() -> None:
        # psycopg hands over one row per block: gather megabytes before each write.
        try:
            with os.fdopen(write_end, "wb", buffering=0) as out, connection.cursor() as cursor, \
                    cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params) as copy:
                pending = bytearray()
                for block in copy:
                    pending += block
                    if len(pending) >= PIPE_CHUNK:
                        out.write(pending)
                        pending.clear()
                out.write(pending)
        except BaseException as error:  # re-raised by the reading side
            failure.append(error)

    thread = threading.Thread(target=pump, name="release-export-copy", daemon=True)
    thread.start()
    source = os.fdopen(read_end, "rb", buffering=CSV_BLOCK)
    try:
        if not source.peek(1):
            return
        reader = pacsv.open_csv(
            pa.PythonFile(source, mode="r"),
            read_options=pacsv.ReadOptions(column_names=list(table.column_names),
                                           block_size=CSV_BLOCK),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in schema if f.name in table.column_names},
                strings_can_be_null=True, quoted_strings_can_be_null=False))
        yield from reader
    finally:
        # Drain what is left so that the COPY ends (a reader stopped early, an error).
        while source.read(PIPE_CHUNK):
            pass
        source.close()
        thread.join()
        if failure:
            raise failure[0]


@dataclass(frozen=True)
class Output:
    """One HATS catalog written from the pixels' rows (all their columns, or ``columns``)."""

    directory: Path
    catalog_name: str
    title: str
    columns: tuple[str, ...] | None = None


PixelRows = Callable[[pa.Table], pa.Table]
"""Turns the rows of one pixel, sorted, into the rows written (e.g. one per object)."""


class _HatsWriter:
    """Writes one catalog as HATS from row batches, in one pass over the database.

    By default each row is written as it came; with ``pixel_rows`` and ``outputs``, each
    pixel's sorted rows are transformed (grouped into nested light curves, say) and written to
    several catalogs with the same partitioning."""

    def __init__(self, table: Table, directory: Path, partition_rows: int, *,
                 pixel_rows: PixelRows | None = None, outputs: list[Output] | None = None,
                 sort_keys: tuple[str, ...] | None = None, position: tuple[str, str] = ("ra", "dec")
                 ) -> None:
        from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

        self.table = table
        self.directory = directory
        self.partition_rows = partition_rows
        self.index_column = SPATIAL_INDEX_COLUMN
        self.schema = pa.schema([pa.field(c.name, _arrow_type(c)) for c in table.columns]
                                + [pa.field(self.index_column, pa.int64())])
        self.pixel_rows = pixel_rows
        self.outputs = outputs or [Output(directory, "", table.description)]
        self.position = position
        self.written = {output.directory: 0 for output in self.outputs}
        self.written_lock = threading.Lock()
        self.spill = directory.parent / f".spill-{table.name}"
        self.spill.mkdir(parents=True)
        self.writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self.held: list[pa.RecordBatch] = []
        self.held_rows = 0
        self.histogram = np.zeros(12 * 4 ** HISTOGRAM_ORDER, dtype=np.int64)
        self.rows = 0
        # A tie-breaker after the spatial index (unique in a catalog), so that a rerun writes
        # the same bytes whatever order the database sent the rows in.
        self.sort_keys = sort_keys if sort_keys is not None else (
            ("sourceid",) if "sourceid" in table.column_names else ())

    def _bucket_path(self, bucket: int) -> Path:
        return self.spill / f"{bucket}.arrows"

    def add(self, batch: pa.RecordBatch) -> None:
        from hats.pixel_math.spatial_index import compute_spatial_index

        ra = batch.column(self.position[0]).to_numpy(zero_copy_only=False)
        dec = batch.column(self.position[1]).to_numpy(zero_copy_only=False)
        index = compute_spatial_index(ra, dec, SPATIAL_ORDER).astype(np.int64)
        self.histogram += np.bincount(index >> (2 * (SPATIAL_ORDER - HISTOGRAM_ORDER)),
                                      minlength=self.histogram.size)
        arrays = [batch.column(name) for name in self.table.column_names] + [pa.array(index)]
        self.held.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.held_rows += batch.num_rows
        self.rows += batch.num_rows
        if self.held_rows > MEMORY_ROWS:
            self._spill()

    def _spill(self) -> None:
        """Append what is held to the buckets' spill files, sorted by bucket."""
        table = pa.Table.from_batches(self.held, self.schema).combine_chunks()
        self.held, self.held_rows = [], 0
        buckets = table[self.index_column].to_numpy() >> (2 * (SPATIAL_ORDER - BUCKET_ORDER))
        order = np.argsort(buckets, kind="stable")
        ordered = table.take(pa.array(order))
        sorted_buckets = buckets[order]
        present = np.unique(sorted_buckets)
        starts = np.searchsorted(sorted_buckets, present, side="left")
        stops = np.searchsorted(sorted_buckets, present, side="right")
        for bucket, start, stop in zip(present.tolist(), starts.tolist(), stops.tolist(),
                                       strict=True):
            writer = self.writers.get(bucket)
            if writer is None:
                writer = pa.ipc.new_stream(str(self._bucket_path(bucket)), self.schema)
                self.writers[bucket] = writer
            writer.write_table(ordered.slice(start, stop - start))

    def _order(self, table: pa.Table) -> np.ndarray:
        """Row numbers of ``table`` by (spatial index, tie-breaker): Arrow's multi-key sort,
        a fifth of numpy's lexsort time here."""
        keys = [(self.index_column, "ascending")]
        keys += [(key, "ascending") for key in self.sort_keys]
        return pc.sort_indices(table, keys).to_numpy()

    def _sorted(self, table: pa.Table) -> pa.Table:
        return table.take(self._order(table))

    def _sorted_bucket(self, bucket: int) -> pa.Table | None:
        if bucket not in self.writers:
            return None
        with pa.memory_map(str(self._bucket_path(bucket))) as source:
            return self._sorted(pa.ipc.open_stream(source).read_all())

    def _write_pixels(self, table: pa.Table, pixels: list[tuple[int, int]],
                      order: np.ndarray | None = None) -> None:
        """Write ``pixels`` from ``table``, sorted by the spatial index, or in the row order
        ``order`` (each pixel's rows are then taken here, in the writing thread)."""
        index = table[self.index_column].to_numpy()
        if order is not None:
            index = index[order]
        written = dict.fromkeys(self.written, 0)
        for level, pixel in pixels:
            shift = 2 * (SPATIAL_ORDER - level)
            start, stop = np.searchsorted(index, [pixel << shift, (pixel + 1) << shift])
            rows = (table.slice(int(start), int(stop - start)) if order is None
                    else table.take(order[start:stop]))
            if self.pixel_rows is not None:
                rows = self.pixel_rows(rows)
            for output in self.outputs:
                folder = (output.directory / "dataset" / f"Norder={level}"
                          / f"Dir={pixel // 10000 * 10000}")
                folder.mkdir(parents=True, exist_ok=True)
                chosen = rows if output.columns is None else rows.select(list(output.columns))
                pq.write_table(chosen, folder / f"Npix={pixel}.parquet",
                               row_group_size=100_000, use_dictionary=[
                                   name for name in chosen.column_names
                                   if pa.types.is_string(chosen.schema.field(name).type)])
                written[output.directory] += chosen.num_rows
        with self.written_lock:
            for directory, count in written.items():
                self.written[directory] += count

    def _write_group(self, buckets: list[int], pixels: list[tuple[int, int]]) -> None:
        """Write ``pixels`` (sorted, all within ``buckets``) from those buckets' rows."""
        parts = [t for t in (self._sorted_bucket(b) for b in buckets) if t is not None]
        if parts:
            self._write_pixels(pa.concat_tables(parts) if len(parts) > 1 else parts[0], pixels)

    def _groups(self, pixels: list[tuple[int, int]]) -> list[tuple[list[int], list]]:
        """Final pixels by the buckets that hold them: a bucket with its finer pixels, or the
        several buckets of one coarser pixel."""
        groups: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for order, pixel in pixels:
            if order >= BUCKET_ORDER:
                key: tuple[int, ...] = (pixel >> (2 * (order - BUCKET_ORDER)),)
            else:
                span = 4 ** (BUCKET_ORDER - order)
                key = tuple(range(pixel * span, (pixel + 1) * span))
            groups.setdefault(key, []).append((order, pixel))
        return [(list(key), sorted(members)) for key, members in sorted(groups.items())]

    def finish(self, catalog_name: str, release: Release) -> int:
        """Write the pixels and each output's metadata; returns the first output's rows."""
        from hats.catalog import PartitionInfo
        from hats.io import write_parquet_metadata
        from hats.pixel_math import HealpixPixel, generate_alignment

        for output in self.outputs:
            (output.directory / "dataset").mkdir(parents=True)
        pixels: list[tuple[int, int]] = []
        if self.rows:
            # A single fine pixel denser than the limit becomes its own partition.
            threshold = max(self.partition_rows, int(self.histogram.max()))
            level, histogram = _coarsest_histogram(self.histogram, threshold)
            alignment = generate_alignment(histogram, highest_order=level, lowest_order=0,
                                           threshold=threshold)
            pixels = sorted({(int(a[0]), int(a[1])) for a in alignment
                             if a is not None and a[2] > 0})
        with ThreadPoolExecutor(THREADS) as pool:
            if not self.writers:
                # Everything is in memory: one sort, then each thread takes its pixels' rows.
                table = pa.Table.from_batches(self.held, self.schema)
                self.held = []
                order = self._order(table)
                jobs = [pool.submit(self._write_pixels, table, pixels[k::THREADS], order)
                        for k in range(THREADS)]
            else:
                if self.held:
                    self._spill()
                for writer in self.writers.values():
                    writer.close()
                jobs = [pool.submit(self._write_group, buckets, members)
                        for buckets, members in self._groups(pixels)]
            for job in jobs:
                job.result()
        empty = self.schema.empty_table()
        if self.pixel_rows is not None:
            empty = self.pixel_rows(empty)
        for output in self.outputs:
            if not pixels:
                # An empty release still gets a readable (empty) schema.
                chosen = empty if output.columns is None else empty.select(list(output.columns))
                pq.write_table(chosen, output.directory / "dataset" / "_common_metadata")
            else:
                write_parquet_metadata(output.directory)
                PartitionInfo.from_healpix([HealpixPixel(o, p) for o, p in pixels]
                                           ).write_to_file(catalog_path=output.directory)
            self._write_properties(output, output.catalog_name or catalog_name, release, pixels)
        shutil.rmtree(self.spill)
        return self.written[self.outputs[0].directory]

    def _write_properties(self, output: Output, catalog_name: str, release: Release,
                          pixels: list[tuple[int, int]]) -> None:
        lines = [
            "#HATS catalog",
            f"obs_collection={catalog_name}",
            "dataproduct_type=object",
            f"hats_nrows={self.written[output.directory]}",
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
            f"obs_title={output.title} ({release.name})",
        ]
        text = "\n".join(lines) + "\n"
        (output.directory / "hats.properties").write_text(text)
        (output.directory / "properties").write_text(text)


def _coarsest_histogram(histogram: np.ndarray, threshold: int) -> tuple[int, np.ndarray]:
    """The histogram summed to the coarsest order at which no pixel exceeds ``threshold``.

    hats' alignment then gives the same partitions as at ``HISTOGRAM_ORDER`` (no pixel needs
    splitting below that order), and its cost, which grows with the number of pixels (0.8 s
    at order 8 whatever the row count), falls to nothing for a small or sparse release."""
    level = HISTOGRAM_ORDER
    counts = histogram
    levels = [(level, counts)]
    while level > 0:
        level -= 1
        counts = counts.reshape(-1, 4).sum(axis=1)
        levels.append((level, counts))
    return next((lv, c) for lv, c in reversed(levels) if c.max() <= threshold)


def write_hats_catalog(connection: psycopg.Connection, table: Table, query: str, params: dict,
                       directory: Path, catalog_name: str, release: Release,
                       partition_rows: int = DEFAULT_PARTITION_ROWS, **options) -> int:
    """Write the rows of ``query`` as the HATS catalog ``directory`` (or as ``options``'s
    outputs, see ``_HatsWriter``); returns the number of rows written (of the first)."""
    writer = _HatsWriter(table, directory, partition_rows, **options)
    stream = binary_rows.stream if binary_rows.fits(table) else _stream_batches
    try:
        for batch in stream(connection, table, query, params, writer.schema.remove(
                writer.schema.get_field_index(writer.index_column))):
            writer.add(batch)
    except BaseException:
        for stream in writer.writers.values():
            stream.close()
        raise
    return writer.finish(catalog_name, release)
