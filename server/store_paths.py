"""Where an archived file lives on this host: a ``survey.files.path`` turned into a path inside
the file store, never outside it. Flask-free, so that job executors use it too."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from skyvault.config import settings


class StorePathError(ValueError):
    """A path from the database that does not lead into the file store."""


def store_path(relative_path: str) -> Path:
    """The file behind a ``survey.files.path``, never outside the store."""
    relative = PurePosixPath(relative_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise StorePathError(relative_path)
    return settings().store_root / relative
