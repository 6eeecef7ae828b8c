"""The file store: where archived files live, reached through one small interface.

``FileStore`` is what the rest of SkyVault uses (ingest writes, the services and job executors
read); the local disk implementation is ``LocalFileStore`` and ``archive_store()`` is the one
this deployment is configured with. An object store (S3-compatible) can replace it here, in
one place, by implementing the same methods: ``put_many`` must leave each file either absent or
complete and verified, and ``local_path`` may answer None (readers then stream through
``open_file``; ``local_file`` is for the readers that still need a local path).

Paths are relative POSIX paths such as ``sci/2026/1120/123456/ztf_..._sciimg.fits``, the same
string that survey.files.path holds and that /files/ serves.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

from skyvault.config import settings
from skyvault.crash import crash_point

CHUNK = 4 << 20
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")
"""Temporary names: ``.<final name>.<writer pid>.tmp`` in the final folder, so the rename that
publishes a file never crosses a filesystem."""


class InvalidStorePath(ValueError):
    """A path that is not a plain relative path inside the store."""


class StoreError(RuntimeError):
    """The file store failed (disk full, permissions): the run stops, nothing is committed."""


class NotLocalStore(StoreError):
    """A reader that needs a local file met a store that has none (an object store)."""


class SourceRejected(Exception):
    """A file to place did not match what its placement promised (it vanished, or its size or
    SHA-256 differ): nothing of that ``put_many`` call is placed. Ingest reports it as the
    group's problem."""

    def __init__(self, source: Path, reason: str, product_type: str | None, *,
                 missing: bool) -> None:
        super().__init__(f"{source.name}: {reason}")
        self.source = source
        self.reason = reason
        self.product_type = product_type
        self.missing = missing


@dataclass(frozen=True)
class Placement:
    """A file to put into the store, with what the manifest promises about it."""

    path: str
    source: Path
    size: int
    sha256: str
    product_type: str | None = None


@runtime_checkable
class FileStore(Protocol):
    def put_many(self, placements: Sequence[Placement]) -> int:
        """Place every file atomically and durably, verifying size and SHA-256 of what was
        written; returns the bytes written (files already present and identical are skipped).
        Raises SourceRejected when a source does not match its promise."""

    def open_file(self, path: str) -> BinaryIO:
        """The stored file, opened for binary reading."""

    def local_path(self, path: str) -> Path | None:
        """A local filesystem path to the file (for X-Accel-Redirect, memory mapping), or None
        when the store is not a local disk."""

    def size(self, path: str) -> int | None:
        """Size in bytes, None when absent."""

    def sha256(self, path: str) -> str:
        """SHA-256 of the stored content, hexadecimal."""

    def delete(self, path: str) -> None:
        """Remove a file (orphans only; archived files are never deleted by ingest)."""

    def walk(self) -> Iterator[str]:
        """Every path in the store, temporary files included."""


def check_store_path(path: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or any(part in ("", ".", "..") for part in pure.parts):
        raise InvalidStorePath(path)
    return pure


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_temporary(path: str) -> bool:
    return TEMPORARY.match(PurePosixPath(path).name) is not None


class LocalFileStore:
    """Files under one folder of the local disk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalFileStore({str(self.root)!r})"

    def _full(self, path: str) -> Path:
        return self.root.joinpath(*check_store_path(path).parts)

    # -- reading ----------------------------------------------------------------------------

    def open_file(self, path: str) -> BinaryIO:
        return open(self._full(path), "rb")

    def local_path(self, path: str) -> Path | None:
        return self._full(path)

    def size(self, path: str) -> int | None:
        try:
            return self._full(path).stat().st_size
        except FileNotFoundError:
            return None

    def sha256(self, path: str) -> str:
        return sha256_of(self._full(path))

    def walk(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for folder, _, names in os.walk(self.root):
            base = Path(folder).relative_to(self.root)
            for name in names:
                yield (base / name).as_posix()

    def delete(self, path: str) -> None:
        full = self._full(path)
        full.unlink(missing_ok=True)
        _fsync_directory(full.parent)

    # -- writing ----------------------------------------------------------------------------

    def _already_there(self, target: Path, placement: Placement) -> bool:
        """An identical file at the target: left by an earlier run that died before its commit
        (an orphan this run adopts), so there is nothing to write."""
        try:
            if target.stat().st_size != placement.size:
                return False
        except FileNotFoundError:
            return False
        return sha256_of(target) == placement.sha256

    def _remove_stale_temporaries(self, target: Path) -> None:
        for candidate in target.parent.glob(f".{target.name}.*.tmp"):
            match = TEMPORARY.match(candidate.name)
            if match and match["name"] == target.name and not _process_alive(int(match["pid"])):
                candidate.unlink(missing_ok=True)

    def _write_temporary(self, placement: Placement, temporary: Path) -> int:
        digest = hashlib.sha256()
        written = 0
        if not placement.source.exists():
            raise SourceRejected(placement.source, "vanished before it was archived",
                                 placement.product_type, missing=True)
        with open(placement.source, "rb") as source, open(temporary, "wb") as out:
            while block := source.read(CHUNK):
                digest.update(block)
                out.write(block)
                written += len(block)
                if written >= placement.size // 2 and written - len(block) < placement.size // 2:
                    crash_point("place:write")
            out.flush()
        if written != placement.size or digest.hexdigest() != placement.sha256:
            temporary.unlink(missing_ok=True)
            raise SourceRejected(
                placement.source,
                f"changed while being archived: {written} bytes, sha256 {digest.hexdigest()}; "
                f"the manifest says {placement.size} bytes, sha256 {placement.sha256}",
                placement.product_type, missing=False)
        return written

    def put_many(self, placements: Sequence[Placement]) -> int:
        staged: list[tuple[Path, Path]] = []
        written = 0
        try:
            for placement in placements:
                target = self._full(placement.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                if self._already_there(target, placement):
                    continue
                self._remove_stale_temporaries(target)
                temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                staged.append((temporary, target))
                written += self._write_temporary(placement, temporary)
            # Data reach the disk before any name points at them: after a crash a final name
            # is either absent or names a complete file.
            for temporary, _ in staged:
                descriptor = os.open(temporary, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
            crash_point("place:before_rename")
            for temporary, target in staged:
                temporary.chmod(0o644)
                os.replace(temporary, target)
            crash_point("place:after_rename")
            for folder in {target.parent for _, target in staged}:
                _fsync_directory(folder)
        except OSError as error:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
            raise StoreError(f"cannot write to the store {self.root}: {error}") from error
        except SourceRejected:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
            raise
        return written


def archive_store() -> LocalFileStore:
    """The store this deployment is configured with (``SKYVAULT_STORE``)."""
    return LocalFileStore(settings().store_root)


def local_file(path: str) -> Path:
    """The local file behind a ``survey.files.path`` in the configured store, for readers that
    need one (FITS readers, ``send_file``); never outside the store (InvalidStorePath)."""
    found = archive_store().local_path(path)
    if found is None:
        raise NotLocalStore(f"the store holds {path!r} but not as a local file")
    return found
