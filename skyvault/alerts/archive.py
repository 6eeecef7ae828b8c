"""A night's alert archive per stream, in the layout of ZTF's public alert archive: a tar.gz of
``<candid>.avro`` files (one alert each), named ``ztf_<stream>_<YYYYMMDD>.tar.gz`` after the
night's date, in the file store under ``alerts/<stream>/`` and in ``survey.files``.

The archive is served like any archived file (``/files/<path>``, only when its row is
visible): its row has ``image_table = 'alert_archives'``, the stream's first program in
``programids``, and the Julian date of its last alert as ``obsjd``, and the file policy dates
such a row as its alerts (skyvault/releases/dating.py): the public stream's at once, a
program's with its data. Writing an archive again (more candidates ingested since) replaces
the file and its row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyvault.alerts.packet import packet_bytes
from skyvault.alerts.streams import Stream
from skyvault.db import Database
from skyvault.filestore import FileStore, Placement
from skyvault.releases.dating import ALERT_ARCHIVES, night_jd

IMAGE_TABLE = ALERT_ARCHIVES
PRODUCT = "alertarchive"
CONTENT_TYPE = "application/gzip"
NID_EPOCH = dt.date(2017, 1, 1)


@dataclass(frozen=True)
class ArchiveResult:
    path: str
    alerts: int
    size_bytes: int
    sha256: str


def night_date(nid: int) -> dt.date:
    return NID_EPOCH + dt.timedelta(days=nid)


def archive_name(stream: Stream, nid: int) -> str:
    return f"ztf_{stream.name}_{night_date(nid):%Y%m%d}.tar.gz"


def archive_path(stream: Stream, nid: int) -> str:
    return f"alerts/{stream.name}/{archive_name(stream, nid)}"


def archive_id(stream: Stream, nid: int) -> int:
    """``survey.files.image_id`` of the archive: the night and the stream's first program."""
    return nid * 1000 + min(stream.programs)


TAR_GZIP_LEVEL = 1
"""The archive's gzip level: its members are mostly gzipped stamps already, so level 9 (tarfile's
default) made it 2% smaller than level 1 at 1.4 times the time, 0.4 ms per alert
(benchmarks/bench_alerts.py)."""


def write_tar(target: Path, alerts: Iterable[dict[str, Any]]) -> tuple[int, float | None]:
    """The alerts as ``<candid>.avro`` members of a tar.gz; returns (count, last jd)."""
    count, last = 0, None
    with tarfile.open(target, "w:gz", compresslevel=TAR_GZIP_LEVEL) as tar:
        for alert in alerts:
            content = packet_bytes(alert)
            member = tarfile.TarInfo(f"{alert['candid']}.avro")
            member.size = len(content)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(content))
            count += 1
            jd = alert["candidate"]["jd"]
            last = jd if last is None else max(last, jd)
    return count, last


def store_archive(database: Database, store: FileStore, stream: Stream, nid: int,
                  alerts: Iterable[dict[str, Any]]) -> ArchiveResult:
    """Write the night's archive of the stream into the store and ``survey.files`` (as the
    archive's owner: ingest's writer)."""
    path = archive_path(stream, nid)
    with tempfile.TemporaryDirectory(prefix="skyvault-alerts-") as folder:
        local = Path(folder) / archive_name(stream, nid)
        count, last_jd = write_tar(local, alerts)
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        size = local.stat().st_size
        store.put_many([Placement(path, local, size, digest, PRODUCT)])
    obsjd = last_jd if last_jd is not None else night_jd(nid)
    with database.admin() as connection:
        connection.execute(
            "INSERT INTO survey.files (path, product, image_table, image_id, content_type,"
            " size_bytes, sha256, proc_version, is_current, programids, obsjd)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 1, 1, %s::smallint[], %s)"
            " ON CONFLICT (path) DO UPDATE SET size_bytes = EXCLUDED.size_bytes,"
            " sha256 = EXCLUDED.sha256, obsjd = EXCLUDED.obsjd, ingested_at = now()",
            (path, PRODUCT, IMAGE_TABLE, archive_id(stream, nid), CONTENT_TYPE, size, digest,
             [min(stream.programs)], obsjd))
    return ArchiveResult(path, count, size, digest)

