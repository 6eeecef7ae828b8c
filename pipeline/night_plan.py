"""Planning a night: from the raw inventory to the calibration jobs and quadrant tasks to run.

Pure of Dask: the plan says, for every calibration quadrant and science quadrant, either the
finished state a rerun reuses or the job to submit. The orchestrator runs it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from skyvault.pipeline.camera import QUADRANTS
from skyvault.pipeline.manifest import read_manifest
from skyvault.pipeline.naming import bias_path, flat_path, nightdate_of, reference_name
from skyvault.pipeline.night_state import (
    CalibrationOutcome,
    QuadrantOutcome,
    calibration_state,
    load_state,
    quadrant_state,
)
from skyvault.pipeline.process.calibration_job import CalibrationJob
from skyvault.pipeline.process.rawio import RawFileError
from skyvault.pipeline.raw_inventory import RawFile, scan_raw
from skyvault.pipeline.tasks import QuadrantTask, ReferenceInput


class NightError(RuntimeError):
    """The raw folder cannot be processed as one night (empty, several nights, no biases)."""


@dataclass
class NightInventory:
    """One night's raw files, sorted by kind."""

    nightdate: str
    files: list[RawFile]
    science: dict[int, list[RawFile]]
    """Science exposures' CCD files by expid."""
    bias_frames: list[RawFile]
    flat_frames: list[RawFile]

    @property
    def programids(self) -> tuple[int, ...]:
        return tuple(sorted({int(f[0].header["PROGRMID"]) for f in self.science.values()}))

    @property
    def ccdids(self) -> list[int]:
        return sorted({r.ccdid for r in self.files})

    @property
    def quadrants(self) -> int:
        return sum(len(files) * len(QUADRANTS) for files in self.science.values())


def take_inventory(raw_dir: Path) -> NightInventory:
    """The night in ``raw_dir``; raises NightError if it is not exactly one night with biases."""
    try:
        files = scan_raw(raw_dir)
    except RawFileError as error:
        raise NightError(str(error)) from error
    if not files:
        raise NightError(f"no raw files under {raw_dir}")
    nights = {nightdate_of(raw.obsjd).isoformat() for raw in files}
    if len(nights) != 1:
        raise NightError(f"{raw_dir} holds several nights: {', '.join(sorted(nights))}")
    by_expid: dict[int, list[RawFile]] = defaultdict(list)
    for raw in files:
        by_expid[raw.expid].append(raw)
    inventory = NightInventory(
        nightdate=nights.pop(),
        files=files,
        science={e: rows for e, rows in by_expid.items() if rows[0].code == "o"},
        bias_frames=sorted((r for r in files if r.code == "b"), key=lambda r: r.obsjd),
        flat_frames=sorted((r for r in files if r.code == "f"), key=lambda r: r.obsjd),
    )
    if not inventory.bias_frames:
        raise NightError("the night has no bias frames")
    return inventory


@dataclass
class NightPlan:
    """What a run does: reused outcomes, and the jobs left to run."""

    calibrations_done: dict[tuple[int, int], CalibrationOutcome] = field(default_factory=dict)
    calibration_jobs: dict[tuple[int, int], CalibrationJob] = field(default_factory=dict)
    quadrants_done: dict[int, list[QuadrantOutcome]] = field(default_factory=dict)
    quadrant_tasks: dict[tuple[int, int, int], QuadrantTask] = field(default_factory=dict)
    """By (expid, ccdid, qid), in the order to submit them."""


def _frames(rows: list[RawFile], ccdid: int) -> tuple[tuple[int, float, str], ...]:
    return tuple((r.expid, r.obsjd, r.relative) for r in rows if r.ccdid == ccdid)


def plan_night(inventory: NightInventory, product_dir: Path, refcat_path: Path) -> NightPlan:
    plan = NightPlan()
    nightdate = inventory.nightdate
    flats: dict[str, list[RawFile]] = defaultdict(list)
    for raw in inventory.flat_frames:
        flats[str(raw.header["FILTCODE"])].append(raw)
    for ccdid in inventory.ccdids:
        for qid in QUADRANTS:
            state = load_state(
                calibration_state(product_dir, nightdate, ccdid, qid),
                CalibrationOutcome,
                product_dir,
            )
            if state is not None:
                plan.calibrations_done[(ccdid, qid)] = state
                continue
            plan.calibration_jobs[(ccdid, qid)] = CalibrationJob(
                product_dir=str(product_dir),
                nightdate=nightdate,
                ccdid=ccdid,
                qid=qid,
                bias_frames=_frames(inventory.bias_frames, ccdid),
                flat_frames={fc: _frames(rows, ccdid) for fc, rows in flats.items()},
                programids=inventory.programids,
            )

    cal_night = dt.date.fromisoformat(nightdate)
    for expid, files in sorted(inventory.science.items()):
        header = files[0].header
        band = str(header["FILTCODE"])
        field_id = int(header["FIELDID"])
        plan.quadrants_done[expid] = []
        for raw in sorted(files, key=lambda r: r.ccdid):
            for qid in QUADRANTS:
                state = load_state(
                    quadrant_state(product_dir, nightdate, expid, raw.ccdid, qid),
                    QuadrantOutcome,
                    product_dir,
                )
                # A finished quadrant stays finished: a reference built after it (at the end
                # of its own night) serves later nights, not this one.
                if state is not None:
                    plan.quadrants_done[expid].append(state)
                    continue
                plan.quadrant_tasks[(expid, raw.ccdid, qid)] = QuadrantTask(
                    product_dir=str(product_dir),
                    nightdate=nightdate,
                    expid=expid,
                    ccdid=raw.ccdid,
                    qid=qid,
                    raw_path=raw.relative,
                    bias_path=str(bias_path(cal_night, raw.ccdid, qid)),
                    flat_path=str(flat_path(cal_night, band, raw.ccdid, qid)),
                    refcat_path=str(refcat_path),
                    reference=reference_for(product_dir, field_id, band, raw.ccdid, qid),
                )
    return plan


def reference_for(
    product_dir: Path, field_id: int, filtercode: str, ccdid: int, qid: int
) -> ReferenceInput | None:
    """The reference a quadrant is differenced against: one whose manifest is written."""
    name = reference_name(field_id, filtercode, ccdid, qid)
    path = product_dir / "manifests" / "ref" / f"{name}.json"
    if not path.exists():
        return None
    try:
        manifest = read_manifest(path)
    except ValueError:
        return None
    if not manifest.references:
        return None
    reference = manifest.references[0]
    return ReferenceInput(name, reference.files["refimg"], tuple(reference.programids))
