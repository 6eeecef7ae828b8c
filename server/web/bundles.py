"""What a selection of archive files is downloaded as: a resumable shell script (wget or curl)
or a zip or tar archive written while it is sent.

Pure apart from reading the files given. The archives are produced chunk by chunk (zipfile and
tarfile write to a sink that is emptied after every chunk), so memory stays flat whatever the
selection's size, and each starts with ``SHA256SUMS`` so the files can be checked with
``sha256sum -c SHA256SUMS`` after unpacking.
"""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from skyvault.download_scripts import SCRIPT_TOOLS as _SCRIPT_TOOLS
from skyvault.download_scripts import download_script as _download_script

CHUNK = 1 << 20
ARCHIVE_TYPES = {"zip": "application/zip", "tar": "application/x-tar"}


@dataclass(frozen=True)
class BundleFile:
    """One archived file: where it goes in the bundle and where it comes from."""

    path: str
    """Path in the file store (``survey.files.path``), kept in the bundle."""
    size: int
    sha256: str
    source: Path

    @property
    def url_path(self) -> str:
        return "/files/" + quote(self.path)


def checksums(files: Sequence[BundleFile]) -> bytes:
    return "".join(f"{f.sha256.strip()}  {f.path}\n" for f in files).encode()


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose content is taken away in pieces."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def zip_stream(files: Sequence[BundleFile], folder: str) -> Iterator[bytes]:
    """A zip archive (stored, not compressed: FITS pixels hardly compress) of the files."""
    sink = _Sink()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
        info = zipfile.ZipInfo(f"{folder}/SHA256SUMS", stamp)
        bundle.writestr(info, checksums(files))
        yield sink.take()
        for file in files:
            info = zipfile.ZipInfo(f"{folder}/{file.path}", stamp)
            info.file_size = file.size
            with bundle.open(info, "w", force_zip64=file.size > 0x7FFF0000) as member:
                for chunk in _read_chunks(file.source):
                    member.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def _tar_member(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_stream(files: Sequence[BundleFile], folder: str) -> Iterator[bytes]:
    """A POSIX (pax) tar archive of the files, written header by header: tarfile would copy a
    whole member in one call."""
    now = time.time()
    written = 0

    def member(name: str, size: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal written
        header = _tar_member(name, size, now)
        yield header
        sent = 0
        for chunk in chunks:
            chunk = chunk[:size - sent]  # a file that grew meanwhile must not break the tar
            sent += len(chunk)
            yield chunk
        if sent < size:
            raise OSError(f"{name} shrank while it was being sent")
        padding = b"\0" * (-size % tarfile.BLOCKSIZE)
        yield padding
        written += len(header) + size + len(padding)

    sums = checksums(files)
    yield from member(f"{folder}/SHA256SUMS", len(sums), iter([sums]))
    for file in files:
        size = file.source.stat().st_size
        yield from member(f"{folder}/{file.path}", size, _read_chunks(file.source))
    end = b"\0" * (2 * tarfile.BLOCKSIZE)
    written += len(end)
    yield end + b"\0" * (-written % tarfile.RECORDSIZE)


SCRIPT_TOOLS = _SCRIPT_TOOLS


def download_script(tool: str, files: Sequence[BundleFile], base_url: str, name: str) -> str:
    """A POSIX shell script that fetches the files with ``tool`` (wget or curl), resuming
    partial files, and verifies every SHA-256."""
    entries = [(f.sha256, f.size, f.path, f.url_path) for f in files]
    return _download_script(tool, entries, base_url, title="SkyVault files", name=name)
