"""Alert generation rate: a night of candidates to ZTF-format alert packets, end to end on one
core (issue 17's goal: 250 alerts/s, 20 times ZTF's ~1 million a night).

A synthetic night (ingest/synthetic.py: real FITS products, ``--size`` pixel quadrants, 88
candidates per difference image of which about a quarter are free of artefact flags, so ~22
alerts per difference image as in a ZTF night of ~1 million alerts from ~45,000 quadrant
images) follows an earlier night of the same fields, so each alert has upper limits in its
history. Both are ingested into a throwaway cluster; then, timed, the night's public-stream
alerts are built as the stream's requester (the SQL reads through row-level security,
history, stamps cut from the archived science, reference and difference images, gzipped
FITS) and written as the night's tar.gz archive.

Timed twice: with fp_hists (forced photometry on the earlier night's differences, the
default) and without (``AlertBuilder(fp_hists=False)``); the difference is fp_hists' cost.

Baselines in the same run: the fastavro serialisation of the same alerts alone, the reads
alone (the statements per batch, detections and upper limits apart; no stamps, no
serialisation), and the night's stamps two ways: section reads of files kept open (what
``StampCutter`` does) against whole images read once per file and sliced (what it did before).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.support import throwaway_cluster


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"


_WHOLE: dict[Path, tuple[object, np.ndarray]] = {}


def _whole_image_stamp(path: Path, ra: float, dec: float) -> bytes:
    """A stamp as StampCutter cut them before: the whole image read once per file (the last
    three kept), then sliced."""
    from skyvault.alerts.stamps import SIZE, fits_stamp, gzipped, stamp_box
    from skyvault.vo.cutout import PixelBox, open_image

    if path not in _WHOLE:
        if len(_WHOLE) >= 3:
            _WHOLE.pop(next(iter(_WHOLE)))
        with open_image(path) as image:
            _WHOLE[path] = (image, np.asarray(image.read_all(), dtype=np.float32))
            image.projection()
    image, pixels = _WHOLE[path]
    x, y = image.projection().world_to_pixel(np.array([ra]), np.array([dec]))
    box = stamp_box(float(x[0]), float(y[0]))
    stamp = np.full((SIZE, SIZE), np.nan, dtype=np.float32)
    inside = box.intersect(PixelBox(0, pixels.shape[1], 0, pixels.shape[0]))
    if not inside.is_empty:
        stamp[inside.y0 - box.y0:inside.y1 - box.y0, inside.x0 - box.x0:inside.x1 - box.x0] = \
            pixels[inside.y0:inside.y1, inside.x0:inside.x1]
    return gzipped(fits_stamp(image, stamp, box))


def load(dsn_admin: str, dsn_app: str, work: Path, size: int, exposures: int):
    """The two nights ingested: (database, the public stream, the later night's nid)."""
    from skyvault.alerts.streams import PUBLIC, stream_named
    from skyvault.db import Database, DatabaseUrls
    from skyvault.ingest import LocalFileStore, ingest_paths, synthetic

    synthetic.DIFF_CANDIDATES = 88
    database = Database(DatabaseUrls(dsn_admin, dsn_app))
    store = LocalFileStore(work / "store")
    nights = []
    for date in ("2026-11-10", "2026-11-12"):
        spec = synthetic.NightSpec(nightdate=date, exposures=exposures, ccds=(1, 2, 3, 4),
                                   quadrants=(1, 2, 3, 4), sources=200, size=size,
                                   programids=(1,))
        night = synthetic.write_night(work / f"products-{date}", spec)
        summary = ingest_paths([night.root], database=database, store=store,
                               quarantine_root=work / "quarantine")
        assert summary.ok, summary.lines()
        nights.append(spec.nid)
    with database.admin() as connection:
        stream = stream_named(connection, PUBLIC)
    return database, stream, nights[-1]


def run(dsn_admin: str, dsn_app: str, work: Path, size: int, exposures: int) -> list[str]:
    from skyvault.alerts import history
    from skyvault.alerts.archive import write_tar
    from skyvault.alerts.build import AlertBuilder, night_selection
    from skyvault.alerts.packet import packet_bytes
    from skyvault.alerts.stamps import StampCutter
    from skyvault.vo.cutout import OpenImages

    database, stream, nid = load(dsn_admin, dsn_app, work, size, exposures)
    locate = lambda path: work / "store" / path  # noqa: E731

    def end_to_end(fp_hists: bool) -> tuple[int, float, float]:
        builder = AlertBuilder(database, stream, locate=locate, fp_hists=fp_hists)
        started, cpu = time.perf_counter(), time.process_time()
        count, _ = write_tar(work / "night.tar.gz",
                             builder.alerts(night_selection(nid, stream)))
        return count, time.perf_counter() - started, time.process_time() - cpu

    lines = []
    per_alert = {}
    for fp_hists in (True, False):
        count, seconds, cpu_seconds = end_to_end(fp_hists)
        per_alert[fp_hists] = cpu_seconds / count
        lines.append(
            f"end to end (reads, history, {'fp_hists, ' if fp_hists else 'no fp_hists, '}"
            f"3 stamps, Avro, tar.gz): {count:,} alerts from {count // 22:,}-ish difference"
            f" images of {size} x {size} pixels in {seconds:.2f} s = {_rate(count, seconds)}"
            f" wall, {_rate(count, cpu_seconds)} per CPU second of this process")
    lines.append(f"fp_hists' cost: {(per_alert[True] - per_alert[False]) * 1000:.2f} CPU ms"
                 " per alert")

    alerts = list(AlertBuilder(database, stream, locate=locate).alerts(
        night_selection(nid, stream)))
    epochs = sum(len(alert["fp_hists"]) for alert in alerts)
    lines.append(f"fp_hists: {epochs / len(alerts):.1f} epochs per alert")
    started = time.perf_counter()
    for alert in alerts:
        packet_bytes(alert)
    serialise = time.perf_counter() - started
    lines.append(f"baseline, fastavro serialisation alone (one file per alert):"
                 f" {serialise:.2f} s = {_rate(len(alerts), serialise)}")

    with database.reading(stream.requester, user_query=True) as connection:
        started = time.perf_counter()
        rows = history.alert_rows(connection, night_selection(nid, stream).where,
                                  night_selection(nid, stream).params)
        alert_reads = time.perf_counter() - started
        detection_reads = limit_reads = 0.0
        for k in range(0, len(rows), 500):
            started = time.perf_counter()
            history.detections(connection, rows[k:k + 500])
            detection_reads += time.perf_counter() - started
            started = time.perf_counter()
            history.upper_limits(connection, rows[k:k + 500])
            limit_reads += time.perf_counter() - started
    reads = alert_reads + detection_reads + limit_reads
    lines.append(f"baseline, the reads alone: {reads:.2f} s = {_rate(len(rows), reads)}"
                 f" (alerts {alert_reads:.2f} s, detections {detection_reads:.2f} s,"
                 f" upper limits {limit_reads:.2f} s)")

    columns = ("science_path", "template_path", "difference_path")
    with OpenImages(keep=8) as images:
        cutter = StampCutter(images)
        started = time.process_time()
        for row in rows:
            for column in columns:
                cutter.stamp(locate(row[column]), row["ra"], row["dec"])
        sections = time.process_time() - started
    started = time.process_time()
    for row in rows:
        for column in columns:
            _whole_image_stamp(locate(row[column]), row["ra"], row["dec"])
    whole = time.process_time() - started
    lines.append(f"the night's stamps, section reads of open files: {sections:.2f} CPU s ="
                 f" {_rate(len(rows), sections)} packets; baseline, whole images read once"
                 f" per file (before): {whole:.2f} CPU s = {_rate(len(rows), whole)} packets")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="quadrant image side, pixels")
    parser.add_argument("--exposures", type=int, default=8)
    args = parser.parse_args()
    from skyvault.db import APP_ROLE
    from skyvault.schema.migrate import upgrade

    cluster, base = throwaway_cluster(prefix="bench-alerts-")
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-files-", dir="/tmp"))
    try:
        upgrade(cluster.url())
        for line in run(cluster.url(), cluster.url(user=APP_ROLE), work, args.size,
                        args.exposures):
            print(line, flush=True)
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
