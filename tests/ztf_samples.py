"""Where ZTF's alert reference data are (shared/ztf-alert: the schema's field guide and two real
public packets): beside the repository, or beside a folder above it (a worktree)."""

from __future__ import annotations

from pathlib import Path


def ztf_alert_folder() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "ztf-alert"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/ztf-alert is not beside the repository")


def sample_packets() -> list[Path]:
    return sorted((ztf_alert_folder() / "samples").glob("*.avro"))
