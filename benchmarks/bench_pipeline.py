"""Processing full-size quadrants: CPU seconds per quadrant per core for each pipeline step.

    .venv/bin/python -m benchmarks.bench_pipeline [--exposures 2] [--ccd 6] [--keep DIR]
        [--markdown BENCHMARKS.md]

Simulates one full-size CCD (four 3072 x 3080 quadrants) for a few exposures of one field,
plus its bias and dome-flat frames, then runs every step in this process, one quadrant at a
time, timing each with the process CPU clock (so the figures are per core, and other load on
the machine does not inflate them):

1. calibration products (bias and flat per quadrant; per night, not per exposure)
2. instrumental calibration (overscan, bias, flat, mask, cosmic rays)
3. source extraction and aperture photometry (sep), PSF measurement and PSF-fit photometry
4. astrometric calibration (matching, TAN-SIP fit)
5. photometric calibration (zero point, limiting magnitude)
6. writing the products (sciimg, mskimg, psfcat, sexcat)

plus the reference co-add and one difference image. The goal is under 10 s per quadrant per
core for steps 2-6; ZTF's production pipeline took about 240 s per quadrant per core for its
whole chain (Masci et al. 2019). The baseline measured in the same run is the floor of any
step: reading one raw quadrant and writing one float32 quadrant image.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL_SECONDS = 10.0
ZTF_SECONDS = 240.0
STEPS = ("instrumental", "extract", "psf", "astrometry", "photometry", "write")
STEP_NAMES = {
    "instrumental": "2 instrumental calibration",
    "extract": "3a extraction + aperture photometry + PSF model",
    "psf": "3b PSF-fit photometry",
    "astrometry": "4 astrometric calibration",
    "photometry": "5 photometric calibration",
    "write": "6 write products",
}


def _cpu() -> float:
    return time.process_time()


def simulate(work: Path, exposures: int, ccd: int) -> tuple[Path, float, int]:
    from skyvault.pipeline.simulate.night import simulate_night
    from skyvault.pipeline.simulate.plan import PlanConfig

    raw_dir = work / "raw"
    config = PlanConfig(
        survey_fields=1,
        survey_visits=("zr",) * exposures,
        max_asteroids=0,
        bias_frames=3,
        flat_frames=3,
        flat_filters=("zr",),
    )
    clock = time.perf_counter()
    summary = simulate_night(
        dt.date(2026, 11, 20),
        raw_dir,
        seed=1,
        size="full",
        ccds=(ccd,),
        workers=1,
        with_asteroids=False,
        plan_config=config,
    )
    return raw_dir, time.perf_counter() - clock, summary.exposures


def baseline(raw_file: Path, out: Path) -> float:
    """CPU seconds to read one raw quadrant and write one float32 quadrant image."""
    import fitsio

    clock = _cpu()
    data = fitsio.read(str(raw_file), ext="Q1").astype(np.float32)
    fitsio.write(str(out), data, clobber=True)
    return _cpu() - clock


def run(exposures: int, ccd: int, keep: Path | None) -> dict:
    from skyvault.pipeline.naming import bias_path, flat_path
    from skyvault.pipeline.process.calibration_job import CalibrationJob, make_calibration
    from skyvault.pipeline.process.difference import make_difference
    from skyvault.pipeline.process.reference import ReferenceEpoch, ReferenceJob, make_reference
    from skyvault.pipeline.process.science import ScienceJob, process_science
    from skyvault.pipeline.raw_inventory import place_raw, scan_raw

    work = keep or Path(tempfile.mkdtemp(prefix="skyvault-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        raw_dir, simulate_seconds, n_exposures = simulate(work, exposures, ccd)
        products = work / "products"
        inventory = scan_raw(raw_dir)
        for raw in inventory:
            place_raw(raw, products)
        night = dt.date(2026, 11, 20)
        bias = tuple((r.expid, r.obsjd, r.relative) for r in inventory if r.code == "b")
        flats = tuple((r.expid, r.obsjd, r.relative) for r in inventory if r.code == "f")
        science = sorted((r for r in inventory if r.code == "o"), key=lambda r: r.expid)

        calibration = []
        for qid in (1, 2, 3, 4):
            clock = _cpu()
            make_calibration(
                CalibrationJob(
                    str(products), night.isoformat(), ccd, qid, bias, {"zr": flats}, (1,)
                )
            )
            calibration.append(_cpu() - clock)

        per_quadrant: list[dict[str, float]] = []
        metas = []
        for raw in science:
            for qid in (1, 2, 3, 4):
                job = ScienceJob(
                    str(products),
                    raw.relative,
                    qid,
                    str(bias_path(night, ccd, qid)),
                    str(flat_path(night, "zr", ccd, qid)),
                    str(raw_dir / "refcat.fits"),
                )
                meta, timings, _ = process_science(job)
                per_quadrant.append(timings)
                metas.append(meta)

        references = []
        for qid in (1, 2, 3, 4):
            epochs = tuple(
                ReferenceEpoch(
                    m.expid, m.obsjd, m.exptime, m.programid, m.files["sciimg"], m.files["mskimg"]
                )
                for m in metas
                if m.qid == qid
            )
            clock = _cpu()
            reference = make_reference(
                ReferenceJob(
                    str(products),
                    metas[0].field,
                    "zr",
                    ccd,
                    qid,
                    epochs,
                    str(raw_dir / "refcat.fits"),
                )
            )
            references.append((_cpu() - clock, reference))
        clock = _cpu()
        last = metas[-1]
        difference_steps: dict[str, float] = {}
        difference = make_difference(
            str(products), last, references[last.qid - 1][1].files["refimg"], [1],
            str(raw_dir / "refcat.fits"), difference_steps)
        difference_seconds = _cpu() - clock
        floor = baseline(products / science[0].relative, work / "baseline.fits")
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)

    steps = {step: float(np.mean([t.get(step, 0.0) for t in per_quadrant])) for step in STEPS}
    sources = int(np.mean([m.nsources_psf for m in metas]))
    return {
        "quadrants": len(per_quadrant),
        "exposures_simulated": n_exposures,
        "simulate_seconds_wall": simulate_seconds,
        "calibration_per_quadrant": float(np.mean(calibration)),
        "steps": steps,
        "steps_2_6": float(sum(steps.values())),
        "reference_per_quadrant": float(np.mean([s for s, _ in references])),
        "reference_frames": exposures,
        "difference_per_quadrant": difference_seconds,
        "difference_steps": difference_steps,
        "difference_candidates": difference.ndiffsources,
        "baseline": floor,
        "sources_per_quadrant": sources,
        "astrometric_rms": float(np.median([m.astrom_rms for m in metas
                                            if m.astrom_rms is not None])),
        "seeing": float(np.median([m.seeing for m in metas])),
    }


def report(figures: dict) -> str:
    lines = [
        f"Full-size quadrants (3072 x 3080), {figures['quadrants']} processed, "
        f"{figures['sources_per_quadrant']} sources per quadrant on average "
        f'(median seeing {figures["seeing"]:.2f}", astrometric rms '
        f'{figures["astrometric_rms"]:.3f}"). CPU seconds per quadrant per core:',
        "",
        "| step | s / quadrant / core | ratio to baseline |",
        "|---|---:|---:|",
        f"| 1 calibration products (bias + one flat, per night) | "
        f"{figures['calibration_per_quadrant']:.2f} | "
        f"{figures['calibration_per_quadrant'] / figures['baseline']:.1f}x |",
    ]
    for step in STEPS:
        seconds = figures["steps"][step]
        ratio = seconds / figures["baseline"]
        lines.append(f"| {STEP_NAMES[step]} | {seconds:.2f} | {ratio:.1f}x |")
    total = figures["steps_2_6"]
    lines += [
        f"| **steps 2-6** | **{total:.2f}** | {total / figures['baseline']:.1f}x |",
        f"| reference co-add of {figures['reference_frames']} epochs | "
        f"{figures['reference_per_quadrant']:.2f} | "
        f"{figures['reference_per_quadrant'] / figures['baseline']:.1f}x |",
        f"| difference image + candidates | {figures['difference_per_quadrant']:.2f} | "
        f"{figures['difference_per_quadrant'] / figures['baseline']:.1f}x |",
        *[f"| - difference: {name} | {seconds:.2f} | "
          f"{seconds / figures['baseline']:.1f}x |"
          for name, seconds in figures["difference_steps"].items()],
        f"| baseline: read one raw quadrant, write one float32 image | "
        f"{figures['baseline']:.2f} | 1.0x |",
        "",
        f"Steps 2-6: {total:.2f} s per quadrant per core against the goal of {GOAL_SECONDS:.0f} s "
        f"({total / GOAL_SECONDS:.2f} of it) and ZTF's ~{ZTF_SECONDS:.0f} s for its whole chain "
        f"({ZTF_SECONDS / max(total, 1e-9):.0f}x faster). Simulating the frames took "
        f"{figures['simulate_seconds_wall']:.0f} s wall. The difference held "
        f"{figures['difference_candidates']} candidates; their ZTF alert-candidate measurements, "
        "artefact flags and real/bogus scores are the 'candidates' step.",
    ]
    return "\n".join(lines)


SECTION_TITLE = "## Pipeline: full-size quadrants (`benchmarks/bench_pipeline.py`)"


def update_markdown(path: Path, body: str) -> None:
    """Replace (or append) this benchmark's section, leaving the others as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"{SECTION_TITLE}\n\n{body}\n"
    pattern = re.compile(re.escape(SECTION_TITLE) + r"\n.*?(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n"), text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exposures", type=int, default=2)
    parser.add_argument("--ccd", type=int, default=6)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the data in this folder.")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="Write the figures into this file's pipeline section.",
    )
    parser.add_argument("--json", action="store_true", help="Print the raw figures as JSON too.")
    args = parser.parse_args()
    figures = run(args.exposures, args.ccd, args.keep)
    body = report(figures)
    print(body)
    if args.json:
        print(json.dumps(figures, indent=1))
    if args.markdown:
        command = ".venv/bin/python -m benchmarks.bench_pipeline"
        update_markdown(
            args.markdown,
            f"Command: `{command} --markdown BENCHMARKS.md` "
            f"(measured {dt.date.today().isoformat()}).\n\n{body}",
        )


if __name__ == "__main__":
    main()
