"""Helpers for tests and benchmarks of ingest: a private archive database in the test cluster,
and the counts that must not move when nothing new arrives."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg

from skyvault.db import Database, DatabaseUrls
from skyvault.schema.migrate import upgrade

COUNTED = (
    "survey.exposures", "survey.raw_images", "survey.calibration_images",
    "survey.science_images", "survey.reference_images", "survey.difference_images",
    "survey.files", "survey.psf_sources", "survey.aperture_sources",
    "survey.reference_psf_sources", "survey.reference_aperture_sources", "survey.candidates",
    "survey.lightcurves", "survey.object_registry", "archive.provenance",
    "archive.ingested_manifests", "archive.quarantine", "archive.catalog_loads",
)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def fresh_database(admin_url: str, name: str) -> Database:
    """A new, migrated database ``name`` next to the one ``admin_url`` names (dropped first if
    it exists), so a test owns every row of its archive."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    url = _with_database(admin_url, name)
    upgrade(url)
    return Database(DatabaseUrls(admin=url, app=url))


def table_counts(connection: psycopg.Connection) -> dict[str, int]:
    counts = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in COUNTED}
    counts["current versions"] = connection.execute(
        "SELECT count(*) FROM survey.science_images WHERE is_current = 1").fetchone()[0]
    return counts


def load_image_rows(connection: psycopg.Connection, catalog: str, nid: int, pid: int,
                    ra: np.ndarray, dec: np.ndarray, *, programid: int = 1,
                    seal_night: bool = True) -> None:
    """Rows at the given positions, as the catalog of image ``pid`` of night ``nid`` (for
    candidates, difference image ``diffid = pid``, rows ``candid = diffid * 1000000 + n``):
    laid out, COPYed into the night's loading table and sealed as ingest does (the image and
    its files are not made: for tests and benchmarks of the catalog layout). The rows are
    observed at the start of the night (``night_jd(nid)``): whether they are public is up to
    ``programid`` and the archive's releases (skyvault/releases/dating.py)."""
    from skyvault.ingest.catalogs import (
        CATALOG_TABLES,
        catalog_load,
        set_image_values,
        source_columns,
    )
    from skyvault.ingest.load import copy_batches
    from skyvault.ingest.partitions import seal, target_for_rows
    from skyvault.releases.dating import night_jd

    product = {table.name: product for product, table in CATALOG_TABLES.items()}[catalog]
    count = len(ra)
    # A catalog file's magnitude columns, under the archive's names for this catalog.
    magnitudes = {"mag": np.linspace(14, 21, count, dtype=np.float32),
                  "magerr": np.full(count, 0.05, dtype=np.float32)}
    named = {column: magnitudes[source] for column, source in
             source_columns(product, {name: name for name in magnitudes}).items()}
    load = catalog_load(Path("test"), product, {
        "ra": np.asarray(ra, dtype=np.float64), "dec": np.asarray(dec, dtype=np.float64),
        "sourceid": np.arange(1, count + 1, dtype=np.int64), **named})
    obsjd = night_jd(nid)
    set_image_values(load, {
        "pid": pid, "expid": pid, "nid": nid, "field": 1, "rcid": 0, "fid": 2,
        "filtercode": b"zr", "obsjd": obsjd, "jd": obsjd, "diffid": pid,
        "programid": programid})
    with connection.transaction():
        copy_batches(connection, target_for_rows(connection, catalog, nid, live=False),
                     [load.batch])
    if seal_night:
        seal(connection, catalog, nid)
