"""Public data releases: declaring them, the release dates they set, and their bulk export.

Declaring a release (``skyvault release declare DR1 --date ... --cutoff ...``) records it in
``survey.data_releases`` and recomputes ``release_date`` of every row it concerns, in every
embargoed table, with ``archive.release_date_for``.  Nothing runs when the date arrives: the
row-level security policies compare ``release_date`` with ``now()`` at query time.

How rows are dated: the rules ingest applies (ingest/README.md, "Release dates"), restated
here so that a declaration gives every row the date ingest would give it now (DATING):

- exposures, raw and science images: ``release_date_for(programid, observed)``, observed being
  the start of the exposure;
- reference co-adds (``programids``): the *latest* of their programs' dates at the last epoch
  (``archive.release_date_for_programs``): a co-add holds pixels of every program;
- calibration products (``programids``): the *earliest* of their programs' dates on their
  night: they hold no sky pixels, and whoever may see a science image must get its calibration;
- difference images: their program's date, never before their reference's;
- catalog rows: their science image's date (rows whose program is not their image's are left
  alone rather than released with it); files: their image row's date, so a file is public
  exactly when its row is.

Exporting a release (``skyvault release export DR1``) reads as the anonymous public through the
same row-level security, once the release date has passed, and writes into one folder: the
manifests of every released file (size, SHA-256, URL), resumable wget and curl scripts, the
source catalogs as HATS (HEALPix-partitioned Parquet, readable by LSDB), and SHA256SUMS.  The
output depends only on the database's content, so a rerun writes the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from urllib.parse import quote, urlsplit

import click
import numpy as np
import psycopg
import psycopg.sql
import pyarrow as pa
import pyarrow.parquet as pq

from skyvault.access import ANONYMOUS
from skyvault.config import settings
from skyvault.db import Database, database
from skyvault.download_scripts import download_script
from skyvault.schema.model import Table
from skyvault.schema.tables import table_by_name

RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_EXPOSURE_START = "coalesce({t}obsdate, archive.jd_to_timestamp({t}obsjd))"
OWN_DATES: dict[str, tuple[str, str]] = {
    "survey.exposures": ("single", _EXPOSURE_START),
    "survey.raw_images": ("single", _EXPOSURE_START),
    "survey.science_images": ("single", _EXPOSURE_START),
    "survey.calibration_images": (
        "earliest",
        "coalesce({t}obsdate, timestamptz '2017-01-01 00:00+00' + {t}nid * interval '1 day')"),
    "survey.reference_images": (
        "latest", "coalesce({t}endobsdate, archive.jd_to_timestamp({t}endobsjd))"),
}
"""Tables dated by their own rows: how programs combine, and the SQL of the instant observed
(``{t}`` is the table alias and a dot, or nothing)."""

DATING: dict[str, str] = {
    **{name: f"own ({combine})" for name, (combine, _) in OWN_DATES.items()},
    "survey.difference_images": "own program, never before its reference",
    "survey.psf_sources": "its science image",
    "survey.aperture_sources": "its science image",
    "survey.lightcurves": "its science image (as the detection it repeats)",
    "survey.candidates": "at once for a program with public alerts, else its science image",
    "survey.files": "its image row",
}
"""How each embargoed table is dated; a test requires every embargoed table to be here."""

FILE_IMAGE_KEYS: dict[str, str] = {
    "raw_images": "rawid", "calibration_images": "calid", "science_images": "pid",
    "reference_images": "refid", "difference_images": "diffid",
}
"""``survey.files.image_table`` values and the key ``image_id`` refers to."""

CATALOG_TABLES = ("survey.psf_sources", "survey.aperture_sources")
"""Source catalogs exported as HATS with each release."""

SPATIAL_ORDER = 29
HISTOGRAM_ORDER = 8
BUCKET_ORDER = 2
DEFAULT_PARTITION_ROWS = 500_000


class ReleaseError(click.ClickException):
    """A release operation cannot be done; the message says why."""


@dataclass(frozen=True)
class Release:
    name: str
    release_date: datetime
    observation_cutoff: datetime
    programids: tuple[int, ...]
    notes: str | None

    @property
    def is_public(self) -> bool:
        return self.release_date <= datetime.now(UTC)

    def as_json(self) -> dict:
        return {"release_name": self.name, "release_date": self.release_date.isoformat(),
                "observation_cutoff": self.observation_cutoff.isoformat(),
                "programids": list(self.programids), "notes": self.notes}


def parse_instant(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 instant (UTC unless it says otherwise)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise ReleaseError(f"not a date: {text!r} (use YYYY-MM-DD or ISO 8601)") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _release_from_row(row) -> Release:
    return Release(row[0], row[1], row[2], tuple(row[3]), row[4])


_RELEASE_COLUMNS = "release_name, release_date, observation_cutoff, programids, notes"


def get_release(connection: psycopg.Connection, name: str) -> Release | None:
    row = connection.execute(f"SELECT {_RELEASE_COLUMNS} FROM survey.data_releases"
                             " WHERE release_name = %s", (name,)).fetchone()
    return _release_from_row(row) if row else None


def list_releases(connection: psycopg.Connection) -> list[Release]:
    rows = connection.execute(f"SELECT {_RELEASE_COLUMNS} FROM survey.data_releases"
                              " ORDER BY release_date, release_name").fetchall()
    return [_release_from_row(row) for row in rows]


# -- release dates ------------------------------------------------------------------------------


_COMBINE_SQL = {
    "single": "archive.release_date_for(d.program[1], d.observed)",
    "latest": "archive.release_date_for_programs(d.program, d.observed)",
    "earliest": ("(SELECT CASE WHEN count(*) = 0 OR bool_or(x IS NULL) THEN NULL ELSE min(x) END"
                 " FROM unnest(d.program) AS p(programid),"
                 " LATERAL archive.release_date_for(p.programid, d.observed) AS x)"),
}


def _own_statement(table: Table) -> str:
    combine, observed = OWN_DATES[table.qualified_name]
    assert table.embargo is not None
    column = table.embargo.program_column
    as_array = column if table.embargo.is_array else f"ARRAY[{column}]"
    t_array = f"t.{column}" if table.embargo.is_array else f"ARRAY[t.{column}]"
    concerned = (f"{column} && %(programs)s" if table.embargo.is_array
                 else f"{column} = ANY (%(programs)s)")
    # Dates are computed once per distinct (programs, observed) pair, not once per row.
    return f"""
UPDATE {table.qualified_name} t SET release_date = m.release_date
  FROM (SELECT d.program, d.observed, {_COMBINE_SQL[combine]} AS release_date
          FROM (SELECT DISTINCT {as_array} AS program, {observed.format(t='')} AS observed
                  FROM {table.qualified_name} WHERE {concerned}) d) m
 WHERE {t_array} = m.program AND {observed.format(t='t.')} = m.observed
   AND m.release_date IS NOT NULL AND t.release_date IS DISTINCT FROM m.release_date"""


_DIFFERENCE_STATEMENT = f"""
UPDATE survey.difference_images t
   SET release_date = greatest(archive.release_date_for(t.programid, {
       _EXPOSURE_START.format(t='t.')}), r.release_date)
  FROM survey.reference_images r
 WHERE r.refid = t.refid
   AND (t.programid = ANY (%(programs)s) OR r.programids && %(programs)s)
   AND archive.release_date_for(t.programid, {_EXPOSURE_START.format(t='t.')}) IS NOT NULL
   AND t.release_date IS DISTINCT FROM greatest(archive.release_date_for(t.programid, {
       _EXPOSURE_START.format(t='t.')}), r.release_date)"""


def _catalog_tables(connection: psycopg.Connection, catalog: str) -> list[str]:
    """The partitioned catalog and the nights still loading outside it (an ingest run that
    has not sealed yet): their rows must follow a new release as well."""
    from skyvault.ingest.partitions import partitions

    loading = [p.qualified_name for p in partitions(connection, catalog) if not p.attached]
    return [f"survey.{catalog}", *loading]


def _catalog_statement(table: str) -> str:
    return f"""
UPDATE {table} s SET release_date = i.release_date
  FROM survey.science_images i
 WHERE i.pid = s.pid AND i.programid = ANY (%(programs)s) AND s.programid = i.programid
   AND s.release_date IS DISTINCT FROM i.release_date"""


def _candidates_statement(table: str) -> str:
    observed = _EXPOSURE_START.format(t="i.")
    return f"""
UPDATE {table} s SET release_date = d.release_date
  FROM survey.science_images i
  JOIN survey.programs p ON p.programid = i.programid,
       LATERAL (SELECT CASE WHEN p.public_alerts = 1 THEN {observed}
                            ELSE i.release_date END AS release_date) d
 WHERE i.pid = s.pid AND i.programid = ANY (%(programs)s) AND s.programid = i.programid
   AND s.release_date IS DISTINCT FROM d.release_date"""


def _files_statement() -> str:
    images = " UNION ALL ".join(
        f"SELECT '{name}'::text AS image_table, {key} AS image_id, release_date"
        f" FROM survey.{name}" for name, key in FILE_IMAGE_KEYS.items())
    return f"""
UPDATE survey.files f SET release_date = i.release_date
  FROM ({images}) i
 WHERE f.image_table = i.image_table AND f.image_id = i.image_id
   AND f.release_date IS DISTINCT FROM i.release_date"""


def recompute_release_dates(connection: psycopg.Connection,
                            programs: Iterable[int] | None = None) -> dict[str, int]:
    """Set ``release_date`` from the current rules for rows of ``programs`` (default: all).

    Runs as the owner (row-level security does not hide rows from it); returns the number of
    rows changed per table.  Order matters: references before differences, science images
    before their catalog rows, every image before the files. Compactions wait for the caller's
    transaction to end, or a night moved to the sky meanwhile would keep its old dates.
    """
    from skyvault.ingest.compact import hold_off_compaction

    hold_off_compaction(connection)
    if programs is None:
        programs = [row[0] for row in connection.execute("SELECT programid FROM survey.programs")]
    wanted = {"programs": sorted(set(int(p) for p in programs))}
    changed: dict[str, int] = {}
    for name in OWN_DATES:
        statement = _own_statement(table_by_name(name))
        changed[name] = connection.execute(statement, wanted).rowcount
    changed["survey.difference_images"] = connection.execute(_DIFFERENCE_STATEMENT,
                                                             wanted).rowcount
    for catalog in ("psf_sources", "aperture_sources", "lightcurves"):
        changed[f"survey.{catalog}"] = sum(
            connection.execute(_catalog_statement(table), wanted).rowcount
            for table in _catalog_tables(connection, catalog))
    changed["survey.candidates"] = sum(
        connection.execute(_candidates_statement(table), wanted).rowcount
        for table in _catalog_tables(connection, "candidates"))
    changed["survey.files"] = connection.execute(_files_statement()).rowcount
    return changed


def declare_release(connection: psycopg.Connection, name: str, release_date: datetime,
                    cutoff: datetime, programs: Iterable[int] | None = None,
                    notes: str | None = None) -> tuple[Release, dict[str, int]]:
    """Create or change a data release and recompute the release dates it affects."""
    if not RELEASE_NAME.match(name):
        raise ReleaseError(f"invalid release name {name!r}")
    if cutoff > release_date:
        raise ReleaseError("the observation cutoff must not be after the release date")
    previous = get_release(connection, name)
    if programs is None:
        chosen = list(previous.programids) if previous else [row[0] for row in connection.execute(
            "SELECT programid FROM survey.programs WHERE release_rule = 'data_release'")]
    else:
        chosen = sorted(set(int(p) for p in programs))
    known = {row[0] for row in connection.execute("SELECT programid FROM survey.programs")}
    if not chosen or not set(chosen) <= known:
        raise ReleaseError(f"programs {chosen} must be non-empty and in survey.programs "
                           f"(known: {sorted(known)})")
    connection.execute(
        "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
        " programids, notes) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (release_name) DO UPDATE SET release_date = EXCLUDED.release_date,"
        " observation_cutoff = EXCLUDED.observation_cutoff, programids = EXCLUDED.programids,"
        " notes = coalesce(EXCLUDED.notes, survey.data_releases.notes)",
        (name, release_date, cutoff, chosen, notes))
    affected = set(chosen) | set(previous.programids if previous else ())
    affected |= {row[0] for row in connection.execute(
        "SELECT programid FROM survey.programs WHERE release_name = %s", (name,))}
    changed = recompute_release_dates(connection, affected)
    release = get_release(connection, name)
    assert release is not None
    return release, changed


# -- export -------------------------------------------------------------------------------------


def releases_root() -> Path:
    return Path(os.environ.get("SKYVAULT_RELEASES", settings().home / "releases"))


def default_base_url() -> str:
    config = settings()
    return (config.base_url or f"http://127.0.0.1:{config.http_port}").rstrip("/")


def release_url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/releases/{name}"


def file_url(base_url: str, name: str, path: str) -> str:
    """Where a release's file is downloaded: within the release, checked like any file."""
    return f"{release_url(base_url, name)}/files/{quote(path)}"


@dataclass
class ExportSummary:
    release: Release
    directory: Path
    files: int = 0
    file_bytes: int = 0
    catalog_rows: dict[str, int] = field(default_factory=dict)


def _arrow_type(column) -> pa.DataType:
    pg = column.type.pg_type
    mapping = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(),
               "real": pa.float32(), "double precision": pa.float64(), "text": pa.string(),
               "timestamptz": pa.timestamp("us", tz="UTC"), "smallint[]": pa.list_(pa.int16())}
    if pg.startswith("char("):
        return pa.string()
    return mapping[pg]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stream_batches(connection: psycopg.Connection, table: Table, release: Release,
                    schema: pa.Schema, spill: Path) -> Iterator[pa.RecordBatch]:
    """The release's rows of a catalog as Arrow batches.

    PostgreSQL writes them as CSV (COPY, one statement, hence one snapshot) into a spill file
    that Arrow's C++ reader parses into typed columns: some 20 times faster than building
    Arrow arrays from Python tuples.  Floats survive the trip exactly (PostgreSQL 12+ prints
    the shortest representation that reads back to the same double).
    """
    from pyarrow import csv as pacsv

    columns = [
        f"to_char(s.{c.name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        if c.type.pg_type == "timestamptz" else f"s.{c.name}" for c in table.columns]
    query = _catalog_sql(table, ", ".join(columns))
    path = spill / f"{table.name}.csv"
    literal = psycopg.sql.Literal(release.release_date).as_string(connection)
    with connection.cursor() as cursor, path.open("wb") as out, cursor.copy(
            f"COPY ({query.replace('%(release_date)s', literal)}) TO STDOUT (FORMAT csv)"
    ) as copy:
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


def _released_files(connection: psycopg.Connection, release: Release) -> list[dict]:
    rows = connection.execute(
        "SELECT path, size_bytes, sha256, product, content_type FROM survey.files"
        " WHERE is_current = 1 AND release_date <= %s ORDER BY path",
        (release.release_date,)).fetchall()
    return [{"path": r[0], "size_bytes": r[1], "sha256": r[2].strip(), "product": r[3],
             "content_type": r[4]} for r in rows]


def _catalog_sql(table: Table, columns: str | None = None) -> str:
    columns = columns or ", ".join(f"s.{name}" for name in table.column_names)
    # Sources of superseded processings are not part of a release.
    return (f"SELECT {columns} FROM {table.qualified_name} s"
            " WHERE s.release_date <= %(release_date)s AND EXISTS (SELECT 1 FROM"
            " survey.science_images i WHERE i.pid = s.pid AND i.is_current = 1)")


def released_catalog_count(connection: psycopg.Connection, table_name: str,
                           release: Release) -> int:
    table = table_by_name(table_name)
    sql = f"SELECT count(*) FROM ({_catalog_sql(table)}) rows"
    return connection.execute(sql, {"release_date": release.release_date}).fetchone()[0]


def export_release(handle: Database, name: str, root: Path | None = None,
                   base_url: str | None = None,
                   partition_rows: int = DEFAULT_PARTITION_ROWS) -> ExportSummary:
    """Write release ``name``'s manifests, scripts and HATS catalogs; idempotent.

    Reads as the anonymous public, so nothing the row-level security hides can be written.
    """
    base = (base_url or default_base_url()).rstrip("/")
    root = root or releases_root()
    with handle.reading(ANONYMOUS) as connection:
        release = get_release(connection, name)
        if release is None:
            raise ReleaseError(f"no data release {name!r}; declare it first")
        public = connection.execute("SELECT %s <= now()", (release.release_date,)).fetchone()[0]
        if not public:
            raise ReleaseError(f"{name} becomes public on {release.release_date:%Y-%m-%d %H:%M}"
                               " UTC; it can be exported from then on")
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".{name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        summary = ExportSummary(release, root / name)
        try:
            files = _released_files(connection, release)
            for table_name in CATALOG_TABLES:
                table = table_by_name(table_name)
                writer = _HatsWriter(table, staging / "catalog" / table.name, partition_rows)
                for batch in _stream_batches(connection, table, release, writer.schema,
                                             writer.spill):
                    writer.add(batch)
                summary.catalog_rows[table_name] = writer.finish(
                    f"skyvault_{name}_{table.name}", release)
            _write_manifests(staging, release, base, files, summary)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    summary.files = len(files)
    summary.file_bytes = sum(f["size_bytes"] for f in files)
    _replace(staging, root / name)
    return summary


def _write_manifests(staging: Path, release: Release, base: str, files: list[dict],
                     summary: ExportSummary) -> None:
    here = release_url(base, release.name)
    url_path = f"/releases/{release.name}"
    catalog = []
    for path in sorted(p for p in (staging / "catalog").rglob("*") if p.is_file()):
        relative = path.relative_to(staging).as_posix()
        catalog.append({"path": relative, "size_bytes": path.stat().st_size,
                        "sha256": _sha256(path), "url": f"{here}/{relative}"})
    data = [{**f, "url": file_url(base, release.name, f["path"])} for f in files]
    (staging / "files.sha256").write_text(
        "".join(f"{f['sha256']}  files/{f['path']}\n" for f in files))
    manifest = {**release.as_json(), "base_url": base,
                "catalog_rows": summary.catalog_rows,
                "files": data, "catalog_files": catalog}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["kind", "path", "size_bytes", "sha256", "url"])
    for f in data:
        out.writerow(["file", f"files/{f['path']}", f["size_bytes"], f["sha256"], f["url"]])
    for c in catalog:
        out.writerow(["catalog", c["path"], c["size_bytes"], c["sha256"], c["url"]])
    (staging / "manifest.csv").write_text(buffer.getvalue())
    (staging / "release.json").write_text(json.dumps(
        {**release.as_json(), "catalog_rows": summary.catalog_rows, "files": len(files),
         "file_bytes": sum(f["size_bytes"] for f in files)}, indent=1, sort_keys=True) + "\n")

    entries = [(f["sha256"], f["size_bytes"], f"files/{f['path']}",
                urlsplit(f["url"]).path) for f in data]
    entries += [(c["sha256"], c["size_bytes"], c["path"], f"{url_path}/{quote(c['path'])}")
                for c in catalog]
    for extra in ("manifest.json", "manifest.csv", "release.json", "files.sha256"):
        path = staging / extra
        entries.append((_sha256(path), path.stat().st_size, extra, f"{url_path}/{extra}"))
    for tool in ("wget", "curl"):
        script = staging / f"download-{tool}.sh"
        script.write_text(download_script(tool, entries, base, title=f"release {release.name}",
                                              name=script.name))
        script.chmod(0o755)
    sums = []
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        sums.append(f"{_sha256(path)}  {path.relative_to(staging).as_posix()}\n")
    (staging / "SHA256SUMS").write_text("".join(sums))


def _replace(staging: Path, final: Path) -> None:
    """Put the new export in place with renames, so a reader never sees half of one."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


# -- the CLI ------------------------------------------------------------------------------------


@click.group("release")
def release_cli() -> None:
    """Public data releases: declare them, list them, export them for bulk download."""


@release_cli.command("declare")
@click.argument("name")
@click.option("--date", "release_date", required=True, help="When it becomes public.")
@click.option("--cutoff", required=True, help="Observations before this are in the release.")
@click.option("--programs", help="Programs it releases, e.g. 1,2 (default: the programs whose "
              "rule is 'data_release', or the release's current ones).")
@click.option("--notes")
def declare(name: str, release_date: str, cutoff: str, programs: str | None,
            notes: str | None) -> None:
    """Declare (or change) a data release and recompute the release dates it affects."""
    wanted = None
    if programs:
        try:
            wanted = [int(p) for p in programs.replace(" ", "").split(",") if p]
        except ValueError as error:
            raise click.BadParameter("expected comma-separated program ids") from error
    with database().admin() as connection:
        release, changed = declare_release(connection, name, parse_instant(release_date),
                                           parse_instant(cutoff), wanted, notes)
    click.echo(f"{release.name}: public from {release.release_date:%Y-%m-%d %H:%M %Z}, "
               f"observations before {release.observation_cutoff:%Y-%m-%d %H:%M %Z}, "
               f"programs {list(release.programids)}")
    for table, count in changed.items():
        if count:
            click.echo(f"  {table}: {count} release dates changed")


@release_cli.command("recompute")
@click.option("--programs", help="Only these programs (default: all).")
def recompute(programs: str | None) -> None:
    """Recompute release dates after a program's rule changed."""
    wanted = [int(p) for p in programs.split(",")] if programs else None
    with database().admin() as connection:
        changed = recompute_release_dates(connection, wanted)
    for table, count in changed.items():
        click.echo(f"{table}: {count} release dates changed")


@release_cli.command("list")
def list_command() -> None:
    """Releases, their dates and whether they are public and exported."""
    with database().reading() as connection:
        releases = list_releases(connection)
    root = releases_root()
    for release in releases:
        state = "public" if release.is_public else "scheduled"
        exported = "exported" if (root / release.name / "manifest.json").exists() else ""
        click.echo(f"{release.name}\t{release.release_date:%Y-%m-%d}\t"
                   f"cutoff {release.observation_cutoff:%Y-%m-%d}\t"
                   f"programs {list(release.programids)}\t{state}\t{exported}".rstrip())


@release_cli.command("export")
@click.argument("name")
@click.option("--out", "root", type=click.Path(path_type=Path),
              help="Folder of the exports (default: $SKYVAULT_HOME/releases).")
@click.option("--base-url", help="Public URL of the service, for the manifests' links.")
@click.option("--partition-rows", type=click.IntRange(min=1000),
              default=DEFAULT_PARTITION_ROWS, show_default=True,
              help="Most rows in one HATS partition.")
def export(name: str, root: Path | None, base_url: str | None, partition_rows: int) -> None:
    """Write the release's manifests, download scripts and HATS catalogs (idempotent)."""
    summary = export_release(database(), name, root, base_url, partition_rows)
    click.echo(f"{name}: {summary.files} files ({summary.file_bytes} bytes) in the manifest")
    for table, rows in summary.catalog_rows.items():
        click.echo(f"  {table}: {rows} rows as HATS")
    click.echo(f"written to {summary.directory}")
