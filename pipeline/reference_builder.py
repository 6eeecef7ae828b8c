"""Choosing epochs for references, building them on Dask, and writing their manifests.

A reference is built for every (field, ccdid, qid, filter) that has at least ``min_frames``
good science epochs in the product folder (any night) and no reference yet; it uses the
epochs with the best seeing, up to ``max_frames``. Built references are kept: later nights
difference against them.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from skyvault.pipeline.manifest import (
    Manifest,
    ProductFile,
    ReferenceMeta,
    describe_file,
    from_plain,
    manifest_path,
    write_atomic,
)
from skyvault.pipeline.naming import reference_name
from skyvault.pipeline.night_state import load_science_states, provenance
from skyvault.pipeline.process import photometry
from skyvault.pipeline.process.reference import ReferenceEpoch, ReferenceJob, make_reference

log = logging.getLogger(__name__)

UNFIT_FOR_REFERENCE = (
    photometry.INFO_ASTROMETRY_FAILED
    | photometry.INFO_ASTROMETRY_POOR
    | photometry.INFO_ZEROPOINT_FAILED
    | photometry.INFO_BAD_SEEING
    | photometry.INFO_PSF_DEFAULT
)


@dataclass
class ReferenceOutcome:
    name: str
    reference: ReferenceMeta | None = None
    files: list[ProductFile] = field(default_factory=list)
    failure: str | None = None


def reference_task(job: ReferenceJob) -> ReferenceOutcome:
    name = reference_name(job.field, job.filtercode, job.ccdid, job.qid)
    product_dir = Path(job.product_dir)
    try:
        meta = make_reference(job)
        files = [
            describe_file(
                product_dir,
                product_dir / path,
                kind,
                ccdid=meta.ccdid,
                qid=meta.qid,
                filtercode=meta.filtercode,
                field=meta.field,
            )
            for kind, path in meta.files.items()
        ]
        return ReferenceOutcome(name, meta, files)
    except Exception as error:
        log.debug("reference failed: %s", traceback.format_exc())
        return ReferenceOutcome(name, failure=f"{type(error).__name__}: {error}")


def plan_references(product_dir: Path, min_frames: int, max_frames: int, refcat_path: Path):
    groups: dict[tuple[int, str, int, int], list] = defaultdict(list)
    for state in load_science_states(product_dir):
        science = state.science
        if science is None or science.infobits & UNFIT_FOR_REFERENCE:
            continue
        groups[(science.field, science.filtercode, science.ccdid, science.qid)].append(science)
    jobs = []
    for (field_id, filtercode, ccdid, qid), rows in sorted(groups.items()):
        name = reference_name(field_id, filtercode, ccdid, qid)
        if (product_dir / "manifests" / "ref" / f"{name}.json").exists():
            continue
        if len(rows) < min_frames:
            continue
        chosen = sorted(rows, key=lambda s: (s.seeing, s.expid))[:max_frames]
        epochs = tuple(
            ReferenceEpoch(
                expid=s.expid,
                obsjd=s.obsjd,
                exptime=s.exptime,
                programid=s.programid,
                sciimg=s.files["sciimg"],
                mskimg=s.files["mskimg"],
            )
            for s in sorted(chosen, key=lambda s: s.obsjd)
        )
        jobs.append(
            ReferenceJob(
                str(product_dir), field_id, filtercode, ccdid, qid, epochs, str(refcat_path)
            )
        )
    return jobs


def build_references(
    product_dir: Path,
    client,
    *,
    min_frames: int = 3,
    max_frames: int = 10,
    refcat_path: Path,
    progress: bool = False,
) -> tuple[list[str], list[str]]:
    """Build the missing references; returns (manifest names written, failure messages)."""
    from distributed import as_completed
    from tqdm import tqdm

    jobs = plan_references(Path(product_dir), min_frames, max_frames, Path(refcat_path))
    built, failed = [], []
    if not jobs:
        return built, failed
    futures = [
        client.submit(
            reference_task,
            job,
            key=f"ref-{job.field}-{job.filtercode}-{job.ccdid}-{job.qid}",
            pure=False,
        )
        for job in jobs
    ]
    with tqdm(total=len(futures), desc="references", unit="quadrant", disable=not progress) as bar:
        for future in as_completed(futures):
            outcome: ReferenceOutcome = future.result()
            bar.update(1)
            if outcome.failure or outcome.reference is None:
                failed.append(f"{outcome.name}: {outcome.failure}")
                bar.write(f"reference failed: {outcome.name}: {outcome.failure}")
                continue
            reference = outcome.reference
            manifest = Manifest(
                kind="reference",
                name=outcome.name,
                provenance=provenance(reference.input_files, {"created_by": "build_references"}),
                references=[reference],
                files=outcome.files,
                depends_on=[f"exp_{expid}" for expid in reference.input_expids],
            )
            target = manifest_path(Path(product_dir), manifest)
            write_atomic(target, manifest.to_json().encode())
            built.append(outcome.name)
    return built, failed


def read_reference(product_dir: Path, name: str) -> ReferenceMeta | None:
    path = Path(product_dir) / "manifests" / "ref" / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return from_plain(ReferenceMeta, data["references"][0])


__all__ = ["build_references", "plan_references", "read_reference"]
