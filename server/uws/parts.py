"""Inline parameters kept with a job (UWS 1.1 2.2.3.1.1): the multipart parts a job-creating
POST sends along (TAP's ``UPLOAD=t,param:part``), stored in the job's folder under
``parameters/<part>``, listed as parameters by reference and read back by the job's executor.

Which parts a service keeps, and how large they may be, is its policy's decision
(``JobPolicy.keep_parts``); where they are kept and how they are named is decided here, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from skyvault.server.uws.store import job_directory

PART_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""Names a part may have: they become file names in the job's folder."""


def parts_folder(job_id: str) -> Path:
    return job_directory(job_id) / "parameters"


def part_names(job_id: str) -> list[str]:
    """The job's inline parts, in name order."""
    folder = parts_folder(job_id)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def part_path(job_id: str, part: str) -> Path | None:
    """The stored part, or None when the job has no part of that name."""
    if not PART_NAME.fullmatch(part):
        return None
    path = parts_folder(job_id) / part
    return path if path.is_file() else None


def save_part(job_id: str, part: str, data: bytes) -> None:
    """Keep one part (its name checked with ``PART_NAME`` by the caller, who words the error
    in its protocol's terms)."""
    folder = parts_folder(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / part).write_bytes(data)


def part_opener(job_id: str) -> Callable[[str], BinaryIO | None]:
    """For the job's executor: a function that opens a part by name, None if there is none."""

    def open_part(part: str) -> BinaryIO | None:
        path = part_path(job_id, part)
        return path.open("rb") if path is not None else None

    return open_part
