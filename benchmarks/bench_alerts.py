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

Baselines in the same run: the fastavro serialisation of the same alerts alone, the stamps
alone (three per alert, from images already in memory) and the reads alone (the three
statements per batch, no stamps, no serialisation).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.support import throwaway_cluster


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"


def run(dsn_admin: str, dsn_app: str, work: Path, size: int, exposures: int) -> list[str]:
    from skyvault.alerts import history
    from skyvault.alerts.archive import write_tar
    from skyvault.alerts.build import AlertBuilder, night_selection
    from skyvault.alerts.packet import packet_bytes
    from skyvault.alerts.stamps import StampCutter
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
    nid = nights[-1]
    locate = lambda path: work / "store" / path  # noqa: E731

    builder = AlertBuilder(database, stream, locate=locate)
    started, cpu = time.perf_counter(), time.process_time()
    count, _ = write_tar(work / "night.tar.gz", builder.alerts(night_selection(nid, stream)))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    lines = [f"night: {count:,} alerts from {count // 22:,}-ish difference images of"
             f" {size} x {size} pixels",
             f"end to end (reads, history, 3 stamps, Avro, tar.gz): {seconds:.2f} s ="
             f" {_rate(count, seconds)} wall, {_rate(count, cpu_seconds)} per CPU second of"
             " this process"]

    alerts = list(AlertBuilder(database, stream, locate=locate).alerts(
        night_selection(nid, stream)))
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
        for k in range(0, len(rows), 500):
            history.detections(connection, rows[k:k + 500])
            history.upper_limits(connection, rows[k:k + 500])
        reads = time.perf_counter() - started
    lines.append(f"baseline, the reads alone (alerts, detections, upper limits):"
                 f" {reads:.2f} s = {_rate(len(rows), reads)}")

    cutter = StampCutter()
    row = rows[0]
    for column in ("science_path", "template_path", "difference_path"):
        cutter.image(locate(row[column]))
    repeats = 2000
    started = time.perf_counter()
    for _ in range(repeats):
        for column in ("science_path", "template_path", "difference_path"):
            cutter.stamp(locate(row[column]), row["ra"], row["dec"])
    stamps = time.perf_counter() - started
    lines.append(f"baseline, one packet's three stamps (images in memory, gzipped FITS):"
                 f" {stamps / repeats * 1000:.2f} ms = {_rate(repeats, stamps)} packets")
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
