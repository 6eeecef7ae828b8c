"""Exporting a public release for bulk download (``skyvault release export DR1``).

The export reads as the anonymous public through the same row-level security, once the release
date has passed, and keeps what the release holds: rows and files public at the release date
by the rules of skyvault/releases/dating.py (what later releases or passing proprietary
periods open is not in it).  It writes into one folder: the manifests of every released file
(size, SHA-256, URL), resumable wget and curl scripts, the source catalogs as HATS
(HEALPix-partitioned Parquet, readable by LSDB), the release's objects and nested light curves
as HATS (skyvault/releases/lightcurves.py), and SHA256SUMS.  The output depends only on
the database's content, so a rerun writes the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg

from skyvault.access import ANONYMOUS
from skyvault.config import settings
from skyvault.db import Database
from skyvault.download_scripts import download_script
from skyvault.releases.dating import released_sql
from skyvault.releases.hats_writer import (
    DEFAULT_PARTITION_ROWS,
    select_list,
    write_hats_catalog,
)
from skyvault.releases.lightcurves import write_release_lightcurves
from skyvault.releases.model import Release, ReleaseError, get_release, releases_root
from skyvault.schema.model import Table
from skyvault.schema.tables import (
    APERTURE_SOURCES,
    FILES,
    LIGHTCURVES,
    OBJECTS,
    PSF_SOURCES,
    table_by_name,
)

EXPORTED_CATALOGS: tuple[Table, ...] = (PSF_SOURCES, APERTURE_SOURCES)
"""Source catalogs exported as HATS with each release."""

AT_RELEASE = "%(release_date)s::timestamptz"


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _released_files(connection: psycopg.Connection, release: Release) -> list[dict]:
    assert FILES.embargo is not None
    rows = connection.execute(
        "SELECT f.path, f.size_bytes, f.sha256, f.product, f.content_type FROM survey.files f"
        f" WHERE f.is_current = 1 AND {released_sql(FILES.embargo, AT_RELEASE, 'f')}"
        " ORDER BY f.path", {"release_date": release.release_date}).fetchall()
    return [{"path": r[0], "size_bytes": r[1], "sha256": r[2].strip(), "product": r[3],
             "content_type": r[4]} for r in rows]


def catalog_sql(table: Table, columns: str | None = None) -> str:
    """The release's rows of a catalog (parameter ``release_date``)."""
    assert table.embargo is not None
    columns = columns or ", ".join(f"s.{name}" for name in table.column_names)
    # Catalog tables hold the sources of current processings only (ingest deletes those of a
    # superseded science image in the transaction that supersedes it; ``ingest check --deep``
    # proves it), so no join with the images is needed (it tripled the database's time).
    return (f"SELECT {columns} FROM {table.qualified_name} s"
            f" WHERE {released_sql(table.embargo, AT_RELEASE, 's')}")


def released_catalog_count(connection: psycopg.Connection, table_name: str,
                           release: Release) -> int:
    table = table_by_name(table_name)
    sql = f"SELECT count(*) FROM ({catalog_sql(table)}) rows"
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
            for table in EXPORTED_CATALOGS:
                summary.catalog_rows[table.qualified_name] = write_hats_catalog(
                    connection, table, catalog_sql(table, select_list(table, "s")),
                    {"release_date": release.release_date},
                    staging / "catalog" / table.name, f"skyvault_{name}_{table.name}", release,
                    partition_rows)
            (summary.catalog_rows[OBJECTS.qualified_name],
             summary.catalog_rows[LIGHTCURVES.qualified_name]) = write_release_lightcurves(
                connection, staging / "catalog", release,
                {"release_date": release.release_date}, AT_RELEASE, partition_rows)
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
    digests: dict[str, str] = {}  # each file is read once: SHA256SUMS reuses the manifest's
    for path in sorted(p for p in (staging / "catalog").rglob("*") if p.is_file()):
        relative = path.relative_to(staging).as_posix()
        digests[relative] = _sha256(path)
        catalog.append({"path": relative, "size_bytes": path.stat().st_size,
                        "sha256": digests[relative], "url": f"{here}/{relative}"})
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
        relative = path.relative_to(staging).as_posix()
        sums.append(f"{digests.get(relative) or _sha256(path)}  {relative}\n")
    (staging / "SHA256SUMS").write_text("".join(sums))


def _replace(staging: Path, final: Path) -> None:
    """Put the new export in place with renames, so a reader never sees half of one."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
