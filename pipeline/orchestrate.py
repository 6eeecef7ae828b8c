"""Running a night on Dask: calibration, then every readout quadrant, then references.

The driver scans the raw folder, copies the raw files into the product folder, and submits one
task per quadrant's calibration and one per science quadrant (which depends on its
calibration). Tasks never raise: a failure comes back as a ``QuadrantFailure`` with its reason,
and the night goes on. Each finished quadrant leaves a state record under ``state/``; a rerun
reuses those whose files are all still there, so an interrupted night resumes where it
stopped. When an exposure's quadrants are done, those whose stars were too faint to measure
their PSF's wings are processed again with the exposure's PSF (``shared_psf``); then its
manifest is written, so ingest can follow the night as it is processed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import platform
import shutil
import time
import traceback
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from skyvault import __version__
from skyvault.pipeline.camera import QUADRANTS
from skyvault.pipeline.manifest import (
    CalibrationMeta,
    DifferenceMeta,
    ExposureMeta,
    Manifest,
    ProductFile,
    ProductType,
    Provenance,
    QuadrantFailure,
    RawImageMeta,
    ReferenceMeta,
    ScienceImageMeta,
    describe_file,
    from_plain,
    manifest_path,
    read_manifest,
    to_plain,
    write_atomic,
    write_manifest,
)
from skyvault.pipeline.naming import (
    FILTERS,
    IMAGE_TYPES,
    filefracday,
    isot,
    nid_of,
    nightdate_of,
    raw_path,
    reference_name,
)
from skyvault.pipeline.process.calibration_job import CalibrationJob, make_calibration
from skyvault.pipeline.process.rawio import RawFileError, read_primary

log = logging.getLogger(__name__)


class NightError(RuntimeError):
    """The raw folder cannot be processed as one night (empty, several nights, no biases)."""


# --- what the workers run ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceInput:
    name: str
    """Manifest name of the reference."""
    refimg: str
    """Relative to the product folder."""
    programids: tuple[int, ...]


@dataclass(frozen=True)
class QuadrantTask:
    product_dir: str
    nightdate: str
    expid: int
    ccdid: int
    qid: int
    raw_path: str
    bias_path: str
    flat_path: str
    refcat_path: str
    reference: ReferenceInput | None = None
    psf_shape: tuple[float, float] | None = None
    """The exposure's PSF (FWHM, beta), for a second pass of a quadrant with only faint stars."""


@dataclass
class QuadrantOutcome:
    expid: int
    ccdid: int
    qid: int
    science: ScienceImageMeta | None = None
    difference: DifferenceMeta | None = None
    files: list[ProductFile] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    failure: QuadrantFailure | None = None
    reference_name: str | None = None
    reused: bool = False
    psf_fwhm: float | None = None
    """Pixels, measured on the quadrant's own stars (None where too few made a default PSF)."""
    psf_beta: float | None = None
    flux_scale_uncertainty: float | None = None
    """Fractional, of the aperture correction (None where too few stars measured it)."""
    borrowed_psf: bool = False


@dataclass
class CalibrationOutcome:
    ccdid: int
    qid: int
    rows: list[CalibrationMeta] = field(default_factory=list)
    files: list[ProductFile] = field(default_factory=list)
    failure: str | None = None
    reused: bool = False


def _state_dir(product_dir: Path, nightdate: str) -> Path:
    return product_dir / "state" / nightdate.replace("-", "")


def _quadrant_state(product_dir: Path, nightdate: str, expid: int, ccdid: int, qid: int) -> Path:
    return _state_dir(product_dir, nightdate) / f"{expid}_c{ccdid:02d}_q{qid}.json"


def _calibration_state(product_dir: Path, nightdate: str, ccdid: int, qid: int) -> Path:
    return _state_dir(product_dir, nightdate) / f"cal_c{ccdid:02d}_q{qid}.json"


def calibration_task(job: CalibrationJob) -> CalibrationOutcome:
    product_dir = Path(job.product_dir)
    try:
        rows = make_calibration(job)
        files = [
            describe_file(
                product_dir,
                product_dir / row.path,
                row.caltype,
                ccdid=row.ccdid,
                qid=row.qid,
                filtercode=None if row.caltype == "bias" else row.filtercode,
            )
            for row in rows
        ]
        outcome = CalibrationOutcome(job.ccdid, job.qid, rows, files)
        state = _calibration_state(product_dir, job.nightdate, job.ccdid, job.qid)
        write_atomic(state, json.dumps(to_plain(outcome)).encode())
        return outcome
    except Exception as error:  # a task reports, it never takes the night down
        log.debug("calibration failed: %s", traceback.format_exc())
        return CalibrationOutcome(job.ccdid, job.qid, failure=f"{type(error).__name__}: {error}")


def science_task(task: QuadrantTask, calibration: CalibrationOutcome) -> QuadrantOutcome:
    from skyvault.pipeline.process.science import ScienceJob, process_science

    outcome = QuadrantOutcome(task.expid, task.ccdid, task.qid)
    if calibration.failure:
        outcome.failure = QuadrantFailure(
            task.expid, task.ccdid, task.qid, "calibration", calibration.failure
        )
        return outcome
    product_dir = Path(task.product_dir)
    step = "science"
    try:
        meta, timings, psf = process_science(
            ScienceJob(
                task.product_dir,
                task.raw_path,
                task.qid,
                task.bias_path,
                task.flat_path,
                task.refcat_path,
                task.psf_shape,
            )
        )
        outcome.science, outcome.timings = meta, timings
        outcome.borrowed_psf = psf.borrowed
        if psf.measured and not psf.borrowed:
            outcome.psf_fwhm, outcome.psf_beta = psf.fwhm, psf.beta
        if math.isfinite(psf.flux_scale_uncertainty):
            outcome.flux_scale_uncertainty = psf.flux_scale_uncertainty
        for kind, path in meta.files.items():
            outcome.files.append(_describe(product_dir, path, kind, meta))
        if task.reference is not None:
            step = "difference"
            from skyvault.pipeline.process.difference import make_difference

            clock = time.process_time()
            difference = make_difference(
                task.product_dir, meta, task.reference.refimg, list(task.reference.programids)
            )
            outcome.timings["difference"] = time.process_time() - clock
            outcome.difference = difference
            outcome.reference_name = task.reference.name
            for kind, path in difference.files.items():
                outcome.files.append(_describe(product_dir, path, kind, meta))
        state = _quadrant_state(product_dir, task.nightdate, task.expid, task.ccdid, task.qid)
        write_atomic(state, json.dumps(to_plain(outcome)).encode())
    except Exception as error:
        log.debug("quadrant failed: %s", traceback.format_exc())
        outcome.failure = QuadrantFailure(
            task.expid, task.ccdid, task.qid, step, f"{type(error).__name__}: {error}"
        )
    return outcome


def _describe(product_dir: Path, path: str, kind: str, meta: ScienceImageMeta) -> ProductFile:
    return describe_file(
        product_dir,
        product_dir / path,
        kind,
        expid=meta.expid,
        ccdid=meta.ccdid,
        qid=meta.qid,
        filtercode=meta.filtercode,
        field=meta.field,
    )


def _files_intact(product_dir: Path, files: list[ProductFile]) -> bool:
    for item in files:
        path = product_dir / item.path
        if not path.exists() or path.stat().st_size != item.size:
            return False
    return True


def _load_state(path: Path, cls, product_dir: Path):
    """A finished task's record, if it is there and its files are intact."""
    if not path.exists():
        return None
    try:
        state = from_plain(cls, json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    if getattr(state, "failure", None) or not _files_intact(product_dir, state.files):
        return None
    state.reused = True
    return state


WELL_MEASURED_FLUX_SCALE = 0.005
"""A quadrant whose aperture correction is known better than this (fractional) has stars
bright enough to show the PSF's wings; the others borrow the exposure's PSF."""


def shared_psf(outcomes: list[QuadrantOutcome]) -> tuple[float, float] | None:
    """The exposure's PSF (FWHM, beta): medians over the quadrants that measured their wings
    well (the seeing is the same across an exposure's quadrants), or None if fewer than two
    did."""
    shapes = [
        (o.psf_fwhm, o.psf_beta)
        for o in outcomes
        if o.psf_fwhm is not None
        and o.psf_beta is not None
        and o.flux_scale_uncertainty is not None
        and o.flux_scale_uncertainty < WELL_MEASURED_FLUX_SCALE
    ]
    if len(shapes) < 2:
        return None
    fwhm, beta = np.median(np.array(shapes, dtype=float), axis=0)
    return float(fwhm), float(beta)


def needs_shared_psf(outcome: QuadrantOutcome) -> bool:
    """A quadrant processed in this run whose own stars left its flux scale uncertain. A reused
    one stays as it is: a reference built since would change more than its PSF."""
    poorly_known = (
        outcome.flux_scale_uncertainty is None
        or outcome.flux_scale_uncertainty >= WELL_MEASURED_FLUX_SCALE
    )
    return (
        outcome.science is not None
        and outcome.failure is None
        and not outcome.reused
        and not outcome.borrowed_psf
        and poorly_known
    )


# --- the raw inventory ------------------------------------------------------------------------


@dataclass(frozen=True)
class RawFile:
    source: Path
    relative: str
    """Where it goes in the product folder."""
    header: dict

    @property
    def expid(self) -> int:
        return int(self.header["EXPID"])

    @property
    def ccdid(self) -> int:
        return int(self.header["CCD_ID"])

    @property
    def obsjd(self) -> float:
        return float(self.header["OBSJD"])

    @property
    def code(self) -> str:
        return str(self.header["IMGTYPCD"])


def scan_raw(raw_dir: Path) -> list[RawFile]:
    found = []
    for path in sorted(Path(raw_dir).rglob("*.fits.fz")):
        if path.name.startswith("."):
            continue
        header = read_primary(path)
        relative = raw_path(
            filefracday(float(header["OBSJD"])),
            int(header["FIELDID"]),
            str(header["FILTCODE"]),
            int(header["CCD_ID"]),
            str(header["IMGTYPCD"]),
        )
        found.append(RawFile(path, str(relative), header))
    return found


def _place_raw(raw: RawFile, product_dir: Path) -> None:
    """Hard-link (or copy) a raw file into the product folder, once."""
    target = product_dir / raw.relative
    if target.exists() and target.stat().st_size == raw.source.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    if temporary.exists():
        temporary.unlink()
    try:
        os.link(raw.source.resolve(), temporary)
    except OSError:
        shutil.copy2(raw.source.resolve(), temporary)
    os.replace(temporary, target)


def exposure_meta(header: dict, ccdids: list[int]) -> ExposureMeta:
    obsjd = float(header["OBSJD"])
    nightdate = nightdate_of(obsjd)
    imgtype = str(header["IMGTYP"])
    return ExposureMeta(
        expid=int(header["EXPID"]),
        nid=int(header.get("NIGHTID", nid_of(nightdate))),
        nightdate=nightdate.isoformat(),
        obsjd=obsjd,
        obsdate=isot(obsjd),
        filefracday=filefracday(obsjd),
        field=int(header["FIELDID"]),
        filtercode=str(header["FILTCODE"]),
        fid=int(header["FILTERID"]),
        exptime=float(header["EXPTIME"]),
        programid=int(header["PROGRMID"]),
        itid=int(header.get("ITID", IMAGE_TYPES.get(imgtype, (0, ""))[0])),
        imgtype=imgtype,
        imgtypecode=str(header["IMGTYPCD"]),
        telra=float(header["TELRA"]),
        teldec=float(header["TELDEC"]),
        airmass=float(header["AIRMASS"]),
        moonillf=float(header.get("MOONILLF", 0.0)),
        moonra=float(header.get("MOONRA", 0.0)),
        moondec=float(header.get("MOONDEC", 0.0)),
        azimuth=float(header.get("AZIMUTH", 0.0)),
        elevation=float(header.get("ELVATION", 90.0)),
        ccdids=sorted(ccdids),
    )


def _raw_meta(raw: RawFile, product_dir: Path) -> tuple[RawImageMeta, ProductFile]:
    import fitsio

    try:
        with fitsio.FITS(str(product_dir / raw.relative)) as fits:
            names = [hdu.get_extname() for hdu in fits[1:]]
            dims = fits[1].get_dims() if len(fits) > 1 else [0, 0]
    except (OSError, ValueError):  # a damaged file is still archived as what arrived
        names, dims = [], [0, 0]
    meta = RawImageMeta(
        expid=raw.expid,
        ccdid=raw.ccdid,
        path=raw.relative,
        imgtypecode=raw.code,
        nquadrants=len(names),
        naxis1=int(dims[1]),
        naxis2=int(dims[0]),
    )
    field_id = int(raw.header["FIELDID"])
    filtercode = str(raw.header["FILTCODE"])
    return meta, describe_file(
        product_dir,
        product_dir / raw.relative,
        ProductType.RAW,
        expid=raw.expid,
        ccdid=raw.ccdid,
        filtercode=filtercode if filtercode in FILTERS else None,
        field=field_id or None,
    )


# --- the night --------------------------------------------------------------------------------


@dataclass
class NightReport:
    nightdate: str
    exposures: int = 0
    quadrants: int = 0
    processed: int = 0
    reused: int = 0
    failures: list[QuadrantFailure] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    reference_failures: list[str] = field(default_factory=list)
    differences: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Total seconds per step over the quadrants processed in this run."""


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "skyvault": __version__}
    for package in ("numpy", "scipy", "astropy", "sep", "fitsio", "dask", "distributed"):
        try:
            module = __import__(package)
            versions[package] = str(getattr(module, "__version__", "unknown"))
        except ImportError:
            continue
    return versions


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator:
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _progress(total: int, enabled: bool, description: str):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=description, unit="quadrant", disable=not enabled, dynamic_ncols=True
    )


def _reference_for(product_dir: Path, field_id: int, filtercode: str, ccdid: int, qid: int):
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


def _write_if_changed(product_dir: Path, manifest: Manifest) -> Path:
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_night(
    raw_dir: Path,
    product_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    refcat: Path | None = None,
    progress: bool = True,
    references: bool = True,
    min_reference_frames: int = 3,
    client=None,
) -> NightReport:
    """Process one night of raw files into ``product_dir`` (see pipeline/README.md)."""
    started = time.perf_counter()
    raw_dir, product_dir = Path(raw_dir).resolve(), Path(product_dir).resolve()
    refcat_path = Path(refcat).resolve() if refcat else raw_dir / "refcat.fits"
    if not refcat_path.exists():
        raise NightError(f"no reference catalog at {refcat_path}")
    try:
        inventory = scan_raw(raw_dir)
    except RawFileError as error:
        raise NightError(str(error)) from error
    if not inventory:
        raise NightError(f"no raw files under {raw_dir}")
    nights = {nightdate_of(raw.obsjd).isoformat() for raw in inventory}
    if len(nights) != 1:
        raise NightError(f"{raw_dir} holds several nights: {', '.join(sorted(nights))}")
    nightdate = nights.pop()
    product_dir.mkdir(parents=True, exist_ok=True)
    for raw in inventory:
        _place_raw(raw, product_dir)

    by_expid: dict[int, list[RawFile]] = defaultdict(list)
    for raw in inventory:
        by_expid[raw.expid].append(raw)
    science = {e: files for e, files in by_expid.items() if files[0].code == "o"}
    bias_frames = sorted((r for r in inventory if r.code == "b"), key=lambda r: r.obsjd)
    flat_frames = sorted((r for r in inventory if r.code == "f"), key=lambda r: r.obsjd)
    if not bias_frames:
        raise NightError("the night has no bias frames")
    programids = tuple(sorted({int(files[0].header["PROGRMID"]) for files in science.values()}))
    ccdids = sorted({r.ccdid for r in inventory})
    report = NightReport(nightdate=nightdate, exposures=len(science))
    provenance_inputs = [r.relative for r in inventory]

    def frames(rows: list[RawFile], ccdid: int) -> tuple[tuple[int, float, str], ...]:
        return tuple((r.expid, r.obsjd, r.relative) for r in rows if r.ccdid == ccdid)

    with dask_client(workers, scheduler) if client is None else _borrowed(client) as dask:
        calibration_futures = {}
        calibration_outcomes: dict[tuple[int, int], CalibrationOutcome] = {}
        for ccdid in ccdids:
            for qid in QUADRANTS:
                state = _load_state(
                    _calibration_state(product_dir, nightdate, ccdid, qid),
                    CalibrationOutcome,
                    product_dir,
                )
                if state is not None:
                    calibration_outcomes[(ccdid, qid)] = state
                    calibration_futures[(ccdid, qid)] = state
                    continue
                flats: dict[str, list[RawFile]] = defaultdict(list)
                for r in flat_frames:
                    flats[str(r.header["FILTCODE"])].append(r)
                job = CalibrationJob(
                    product_dir=str(product_dir),
                    nightdate=nightdate,
                    ccdid=ccdid,
                    qid=qid,
                    bias_frames=frames(bias_frames, ccdid),
                    flat_frames={fc: frames(rows, ccdid) for fc, rows in flats.items()},
                    programids=programids,
                )
                calibration_futures[(ccdid, qid)] = dask.submit(
                    calibration_task, job, key=f"cal-{nightdate}-{ccdid}-{qid}", pure=False
                )

        pending: dict[int, int] = {}
        outcomes: dict[int, list[QuadrantOutcome]] = defaultdict(list)
        futures = []
        tasks: dict[tuple[int, int, int], QuadrantTask] = {}
        for expid, files in sorted(science.items()):
            header = files[0].header
            band = str(header["FILTCODE"])
            field_id = int(header["FIELDID"])
            pending[expid] = 0
            for raw in sorted(files, key=lambda r: r.ccdid):
                for qid in QUADRANTS:
                    pending[expid] += 1
                    reference = _reference_for(product_dir, field_id, band, raw.ccdid, qid)
                    state = _load_state(
                        _quadrant_state(product_dir, nightdate, expid, raw.ccdid, qid),
                        QuadrantOutcome,
                        product_dir,
                    )
                    # A finished quadrant stays finished: a reference built after it (at the end
                    # of its own night) serves later nights, not this one.
                    if state is not None:
                        outcomes[expid].append(state)
                        pending[expid] -= 1
                        continue
                    cal_night = dt.date.fromisoformat(nightdate)
                    from skyvault.pipeline.naming import bias_path, flat_path

                    task = QuadrantTask(
                        product_dir=str(product_dir),
                        nightdate=nightdate,
                        expid=expid,
                        ccdid=raw.ccdid,
                        qid=qid,
                        raw_path=raw.relative,
                        bias_path=str(bias_path(cal_night, raw.ccdid, qid)),
                        flat_path=str(flat_path(cal_night, band, raw.ccdid, qid)),
                        refcat_path=str(refcat_path),
                        reference=reference,
                    )
                    tasks[(expid, raw.ccdid, qid)] = task
                    calibration = calibration_futures[(raw.ccdid, qid)]
                    futures.append(
                        dask.submit(
                            science_task,
                            task,
                            calibration,
                            key=f"sci-{expid}-{raw.ccdid}-{qid}",
                            pure=False,
                        )
                    )
        report.quadrants = sum(len(files) * len(QUADRANTS) for files in science.values())
        report.reused = report.quadrants - len(futures)

        # The calibration manifest first: exposure manifests depend on it.
        for key, value in list(calibration_futures.items()):
            if not isinstance(value, CalibrationOutcome):
                calibration_outcomes[key] = value.result()
        cal_name = _write_calibration_manifest(
            product_dir, nightdate, inventory, calibration_outcomes, provenance_inputs
        )
        report.manifests.append(cal_name)

        def finish(expid: int) -> None:
            name = _write_exposure_manifest(
                product_dir, nightdate, science[expid], outcomes[expid], cal_name, refcat_path
            )
            report.manifests.append(name)

        from distributed import as_completed

        running = as_completed(futures)

        def second_pass(expid: int) -> int:
            """Resubmit the exposure's quadrants that could not tell their PSF's wings with the
            exposure's PSF; returns how many."""
            shape = shared_psf(outcomes[expid])
            weak = [o for o in outcomes[expid] if needs_shared_psf(o)] if shape else []
            for outcome in weak:
                outcomes[expid].remove(outcome)
                report.processed -= 1
                task = replace(tasks[(expid, outcome.ccdid, outcome.qid)], psf_shape=shape)
                running.add(
                    dask.submit(
                        science_task,
                        task,
                        calibration_futures[(outcome.ccdid, outcome.qid)],
                        key=f"sci-{expid}-{outcome.ccdid}-{outcome.qid}-shared-psf",
                        pure=False,
                    )
                )
            pending[expid] += len(weak)
            return len(weak)

        for expid in sorted(science):
            if pending[expid] == 0:
                finish(expid)

        with _progress(len(futures), progress, f"night {nightdate}") as bar:
            for future in running:
                outcome: QuadrantOutcome = future.result()
                bar.update(1)
                outcomes[outcome.expid].append(outcome)
                pending[outcome.expid] -= 1
                if outcome.failure:
                    bar.write(
                        f"failed: exposure {outcome.expid} ccd {outcome.ccdid} "
                        f"q{outcome.qid} [{outcome.failure.step}] {outcome.failure.reason}"
                    )
                else:
                    report.processed += 1
                    for step, seconds in outcome.timings.items():
                        report.timings[step] = report.timings.get(step, 0.0) + seconds
                if pending[outcome.expid] == 0 and second_pass(outcome.expid) == 0:
                    finish(outcome.expid)
        for expid in science:
            for outcome in outcomes[expid]:
                if outcome.failure:
                    report.failures.append(outcome.failure)
                elif outcome.difference is not None:
                    report.differences += 1

        if references:
            from skyvault.pipeline.reference_builder import build_references

            built, failed = build_references(
                product_dir,
                dask,
                min_frames=min_reference_frames,
                refcat_path=refcat_path,
                progress=progress,
            )
            report.references.extend(built)
            report.reference_failures.extend(failed)
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _borrowed(client) -> Iterator:
    yield client


def _provenance(inputs: list[str], parameters: dict | None = None) -> Provenance:
    return Provenance(
        pipeline_version=__version__,
        created=_now(),
        software=software_versions(),
        input_files=sorted(set(inputs)),
        parameters=parameters or {},
    )


def _write_calibration_manifest(
    product_dir: Path,
    nightdate: str,
    inventory: list[RawFile],
    outcomes: dict[tuple[int, int], CalibrationOutcome],
    inputs: list[str],
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
        meta, described = _raw_meta(raw, product_dir)
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
        provenance=_provenance([r.relative for r in calibration_raws]),
        exposures=exposures,
        raw=raw_rows,
        calibrations=calibrations,
        failures=failures,
        files=files,
    )
    _write_if_changed(product_dir, manifest)
    return name


def _write_exposure_manifest(
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
        meta, described = _raw_meta(raw, product_dir)
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
        provenance=_provenance(inputs, {"refcat": refcat_path.name}),
        exposures=[exposure],
        raw=raw_rows,
        science=science,
        differences=differences,
        failures=failures,
        files=files,
        depends_on=depends,
    )
    _write_if_changed(product_dir, manifest)
    return name


def load_science_states(product_dir: Path) -> list[QuadrantOutcome]:
    """Every finished science quadrant of every night in the product folder."""
    found = []
    for path in sorted((Path(product_dir) / "state").glob("*/*_c*_q*.json")):
        if path.name.startswith("cal_"):
            continue
        state = _load_state(path, QuadrantOutcome, Path(product_dir))
        if state is not None and state.science is not None:
            found.append(state)
    return found


__all__ = [
    "NightError",
    "NightReport",
    "ReferenceMeta",
    "load_science_states",
    "run_night",
    "scan_raw",
]
