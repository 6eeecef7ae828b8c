"""Helpers for tests and benchmarks of ingest: a private archive database in the test cluster,
and the counts that must not move when nothing new arrives."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg

from skyvault.db import Database, DatabaseUrls
from skyvault.schema.migrate import upgrade

COUNTED = (
    "survey.exposures", "survey.raw_images", "survey.calibration_images",
    "survey.science_images", "survey.reference_images", "survey.difference_images",
    "survey.files", "survey.psf_sources", "survey.aperture_sources", "survey.candidates",
    "archive.provenance",
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
