"""A night's manifests (the contract with ingest), written from its raw files and outcomes.

The calibration manifest comes first (exposure manifests depend on it); each exposure's is
written as soon as its quadrants are done, so ingest can follow the night as it goes. A
manifest whose content did not change is left alone (see ``write_if_changed``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from skyvault.pipeline.manifest import (
    Manifest,
    Provenance,
    QuadrantFailure,
    manifest_path,
    read_manifest,
    to_plain,
    write_manifest,
)
from skyvault.pipeline.night_state import CalibrationOutcome, QuadrantOutcome, provenance
from skyvault.pipeline.raw_inventory import RawFile, exposure_meta, raw_meta


def write_if_changed(product_dir: Path, manifest: Manifest) -> Path:
    """Leave an existing manifest alone when only its creation time would change."""
    target = manifest_path(product_dir, manifest)
    if target.exists():
        try:
            old = read_manifest(target)
            same_time = Provenance(
                **{**to_plain(manifest.provenance), "created": old.provenance.created}
            )
            candidate = Manifest(**{**manifest.__dict__, "provenance": same_time})
            if candidate == old:
                return target
        except ValueError:
            pass
    return write_manifest(product_dir, manifest)


def write_calibration_manifest(
    product_dir: Path,
    nightdate: str,
    inventory: list[RawFile],
    outcomes: dict[tuple[int, int], CalibrationOutcome],
) -> str:
    calibration_raws = [r for r in inventory if r.code in ("b", "f")]
    by_expid: dict[int, list[RawFile]] = defaultdict(list)
    for raw in calibration_raws:
        by_expid[raw.expid].append(raw)
    exposures = [
        exposure_meta(rows[0].header, [r.ccdid for r in rows])
        for _, rows in sorted(by_expid.items())
    ]
    raw_rows, files = [], []
    for raw in sorted(calibration_raws, key=lambda r: (r.expid, r.ccdid)):
        meta, described = raw_meta(raw, product_dir)
        raw_rows.append(meta)
        files.append(described)
    calibrations, failures = [], []
    for (ccdid, qid), outcome in sorted(outcomes.items()):
        if outcome.failure:
            failures.append(QuadrantFailure(0, ccdid, qid, "calibration", outcome.failure))
            continue
        calibrations.extend(outcome.rows)
        files.extend(outcome.files)
    name = f"cal_{nightdate.replace('-', '')}"
    manifest = Manifest(
        kind="calibration",
        name=name,
        nightdate=nightdate,
        provenance=provenance([r.relative for r in calibration_raws]),
        exposures=exposures,
        raw=raw_rows,
        calibrations=calibrations,
        failures=failures,
        files=files,
    )
    write_if_changed(product_dir, manifest)
    return name


def write_exposure_manifest(
    product_dir: Path,
    nightdate: str,
    raws: list[RawFile],
    outcomes: list[QuadrantOutcome],
    calibration_name: str,
    refcat_path: Path,
) -> str:
    raws = sorted(raws, key=lambda r: r.ccdid)
    exposure = exposure_meta(raws[0].header, [r.ccdid for r in raws])
    raw_rows, files = [], []
    for raw in raws:
        meta, described = raw_meta(raw, product_dir)
        raw_rows.append(meta)
        files.append(described)
    science, differences, failures = [], [], []
    depends = [calibration_name]
    inputs = [r.relative for r in raws]
    for outcome in sorted(outcomes, key=lambda o: (o.ccdid, o.qid)):
        if outcome.failure:
            failures.append(outcome.failure)
            continue
        assert outcome.science is not None
        science.append(outcome.science)
        inputs.extend(outcome.science.calibration_files.values())
        files.extend(outcome.files)
        if outcome.difference is not None:
            differences.append(outcome.difference)
            inputs.append(outcome.difference.reference_path)
            if outcome.reference_name and outcome.reference_name not in depends:
                depends.append(outcome.reference_name)
    name = f"exp_{exposure.expid}"
    manifest = Manifest(
        kind="exposure",
        name=name,
        nightdate=nightdate,
        provenance=provenance(inputs, {"refcat": refcat_path.name}),
        exposures=[exposure],
        raw=raw_rows,
        science=science,
        differences=differences,
        failures=failures,
        files=files,
        depends_on=depends,
    )
    write_if_changed(product_dir, manifest)
    return name
