"""Step 1 as a job: the bias and the flats of one readout quadrant for one night."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyvault.pipeline.camera import rcid as rcid_of
from skyvault.pipeline.manifest import CalibrationMeta
from skyvault.pipeline.naming import FILTERS, bias_path, flat_path, nid_of
from skyvault.pipeline.process import calibrate
from skyvault.pipeline.process.rawio import read_quadrant


@dataclass(frozen=True)
class CalibrationJob:
    product_dir: str
    nightdate: str
    ccdid: int
    qid: int
    bias_frames: tuple[tuple[int, float, str], ...]
    """(expid, obsjd, raw path relative to product_dir)."""
    flat_frames: dict[str, tuple[tuple[int, float, str], ...]]
    """filtercode -> frames."""
    programids: tuple[int, ...]


def _cards(job: CalibrationJob, kind: str, filtercode: str, frames) -> list:
    return [
        ("ORIGIN", "SkyVault pipeline", ""),
        ("CALTYPE", kind, "bias or hifreqflat"),
        ("NIGHTDAT", job.nightdate, "local evening date"),
        ("NIGHTID", nid_of(dt.date.fromisoformat(job.nightdate)), ""),
        ("CCD_ID", job.ccdid, ""),
        ("QID", job.qid, ""),
        ("RCID", rcid_of(job.ccdid, job.qid), ""),
        ("FILTCODE", filtercode, ""),
        ("STARTJD", min(f[1] for f in frames), "first frame, JD"),
        ("ENDJD", max(f[1] for f in frames), "last frame, JD"),
    ]


def make_calibration(job: CalibrationJob) -> list[CalibrationMeta]:
    """Write the bias and one flat per filter; return their metadata rows."""
    product_dir = Path(job.product_dir)
    nightdate = dt.date.fromisoformat(job.nightdate)
    nid = nid_of(nightdate)
    rows: list[CalibrationMeta] = []
    frames = [read_quadrant(product_dir / path, job.qid) for _, _, path in job.bias_frames]
    bias = calibrate.combine_bias(frames)
    target = bias_path(nightdate, job.ccdid, job.qid)
    (product_dir / target).parent.mkdir(parents=True, exist_ok=True)
    calibrate.write_bias(product_dir / target, bias, _cards(job, "bias", "00", job.bias_frames))
    rows.append(
        CalibrationMeta(
            caltype="bias",
            nid=nid,
            nightdate=job.nightdate,
            ccdid=job.ccdid,
            qid=job.qid,
            rcid=rcid_of(job.ccdid, job.qid),
            filtercode="00",
            fid=0,
            nframes=bias.nframes,
            startobsjd=min(f[1] for f in job.bias_frames),
            endobsjd=max(f[1] for f in job.bias_frames),
            input_expids=[f[0] for f in job.bias_frames],
            programids=list(job.programids),
            path=str(target),
            median=float(np.median(bias.image)),
            stddev=float(np.median(bias.rms)),
            nbadpix=int(np.count_nonzero(bias.noisy())),
        )
    )
    for filtercode, flat_frames in sorted(job.flat_frames.items()):
        frames = [read_quadrant(product_dir / path, job.qid) for _, _, path in flat_frames]
        flat = calibrate.combine_flat(frames, bias)
        target = flat_path(nightdate, filtercode, job.ccdid, job.qid)
        (product_dir / target).parent.mkdir(parents=True, exist_ok=True)
        calibrate.write_flat(
            product_dir / target, flat, _cards(job, "hifreqflat", filtercode, flat_frames)
        )
        rows.append(
            CalibrationMeta(
                caltype="hifreqflat",
                nid=nid,
                nightdate=job.nightdate,
                ccdid=job.ccdid,
                qid=job.qid,
                rcid=rcid_of(job.ccdid, job.qid),
                filtercode=filtercode,
                fid=FILTERS[filtercode],
                nframes=flat.nframes,
                startobsjd=min(f[1] for f in flat_frames),
                endobsjd=max(f[1] for f in flat_frames),
                input_expids=[f[0] for f in flat_frames],
                programids=list(job.programids),
                path=str(target),
                median=float(np.median(flat.image)),
                stddev=float(np.std(flat.image[flat.badpix == 0])),
                nbadpix=int(np.count_nonzero(flat.badpix)),
            )
        )
    return rows
