"""SkyVault ingest: pipeline products into the file store and the PostgreSQL catalog.

Idempotent, checksummed, crash-safe; bad input is quarantined. See ingest/README.md.

Public interface::

    ingest_paths(paths, *, database=None, store=None, ...) -> IngestSummary
    watch(directory, *, database=None, store=None, interval=5.0, ...) -> IngestSummary
    check_archive(*, database=None, store=None, quick=False, deep=False,
                  remove_orphans=False, repair=False) -> CheckReport
    FileStore (protocol), LocalFileStore(root), archive_store()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyvault.filestore import FileStore, LocalFileStore, archive_store

if TYPE_CHECKING:
    from skyvault.ingest.check import CheckReport, check_archive
    from skyvault.ingest.run import IngestSummary, ingest_paths, watch

__all__ = [
    "CheckReport",
    "FileStore",
    "IngestSummary",
    "LocalFileStore",
    "archive_store",
    "check_archive",
    "ingest_paths",
    "watch",
]

_LAZY = {
    "ingest_paths": "skyvault.ingest.run",
    "watch": "skyvault.ingest.run",
    "IngestSummary": "skyvault.ingest.run",
    "check_archive": "skyvault.ingest.check",
    "CheckReport": "skyvault.ingest.check",
}


def __getattr__(name: str) -> Any:
    # The services import the store interface only; the loader (astropy, fitsio) loads on use.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(name)
