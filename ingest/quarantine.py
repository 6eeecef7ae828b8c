"""Bad input, set aside with its reason: never archived, never lost, never silently dropped.

A rejected group is copied, file by file, to ``<quarantine root>/<yyyymmdd>/<group>/`` next to
a ``.reason.txt`` per file, and recorded in archive.quarantine. Copied, not moved: the product
folder belongs to the pipeline, which may rerun and fix it; the original stays where it was.
Recording is idempotent (the same file with the same reason is recorded once while
unresolved), and a later successful ingest of the same group resolves the entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from skyvault.crash import crash_point
from skyvault.ingest.errors import Problem

GROUP_HELD = "group_held"


@dataclass(frozen=True)
class QuarantineEntry:
    quarantine_id: int
    detected_at: dt.datetime
    problem: str | None
    manifest_name: str | None
    product_type: str | None
    original_path: str
    quarantine_path: str
    reason: str
    resolved_at: dt.datetime | None


def _sha256(path: Path) -> tuple[str | None, int | None]:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            while block := stream.read(1 << 22):
                digest.update(block)
        return digest.hexdigest(), path.stat().st_size
    except OSError:
        return None, None


def _copy(source: Path, folder: Path, reason: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if source.exists():
        temporary = folder / f".{source.name}.{os.getpid()}.tmp"
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    (folder / f"{source.name}.reason.txt").write_text(reason + "\n")
    return target


def quarantine(connection: psycopg.Connection, root: Path, manifest_path: Path,
               manifest_name: str | None, problems: list[Problem]) -> int:
    """Set a rejected group aside; returns how many new entries were recorded."""
    group = manifest_name or manifest_path.stem
    folder = root / dt.datetime.now(dt.UTC).strftime("%Y%m%d") / group
    entries: list[tuple[Path, str, str, str | None]] = [
        (problem.path, problem.kind, problem.reason, problem.product_type) for problem in problems
    ]
    if all(problem.path != manifest_path for problem in problems):
        summary = "; ".join(str(problem) for problem in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        entries.append((manifest_path, GROUP_HELD,
                        f"group not archived because of {len(problems)} problem(s): "
                        f"{summary}{more}", "manifest"))
    recorded = 0
    for path, kind, reason, product_type in entries:
        sha256, size = _sha256(path)
        with connection.transaction():
            known = connection.execute(
                "SELECT 1 FROM archive.quarantine WHERE original_path = %s AND reason = %s"
                " AND sha256 IS NOT DISTINCT FROM %s AND resolved_at IS NULL",
                (str(path), reason, sha256)).fetchone()
            if known:
                continue
            target = _copy(path, folder, f"{kind}: {reason}")
            crash_point("quarantine:copied")
            connection.execute(
                "INSERT INTO archive.quarantine (original_path, quarantine_path, reason, sha256,"
                " size_bytes, manifest_name, product_type, problem)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (str(path), str(target), reason, sha256, size, manifest_name, product_type,
                 kind))
            recorded += 1
    return recorded


def entries(connection: psycopg.Connection, *, include_resolved: bool = False,
            limit: int | None = None) -> list[QuarantineEntry]:
    where = "" if include_resolved else "WHERE resolved_at IS NULL"
    rows = connection.execute(
        "SELECT quarantine_id, detected_at, problem, manifest_name, product_type,"
        " original_path, quarantine_path, reason, resolved_at FROM archive.quarantine"
        f" {where} ORDER BY quarantine_id" + (f" LIMIT {int(limit)}" if limit else ""),
    ).fetchall()
    return [QuarantineEntry(*row) for row in rows]
