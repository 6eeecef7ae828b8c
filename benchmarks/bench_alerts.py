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

The difference images carry the calibration the pipeline's carry (PSF, zero point, noise:
``synthetic.DIFF_CARDS``), so fp_hists run the PSF fit, and are compressed in the pipeline's
128 x 128 tiles (``--diff-tile 0`` for astropy's one row per tile).

Timed twice: with fp_hists (forced photometry on the earlier night's differences, the
default) and without (``AlertBuilder(fp_hists=False)``); the difference is fp_hists' cost.
"CPU" is this process's time plus the database cluster's (its backends' time: the reads run
there), both on one core each at a time.

Stages apart, each against what it replaced, in the same run (CPU seconds of this process;
the reads' also of the cluster): the reads (alerts, detections, previous images; before:
the upper-limits statement over the batch and find_epochs per alert), fp_hists' measurement
(each epoch at all its alerts' positions together; before: per alert and epoch), the stamps
(an image's stamps cut together from the tiles they touch; before: one stamp at a time; and
whole images read once per file), the records with fastavro's serialisation, and the archive's
gzip (level 1; before: 9). ``--ztf-stamps`` adds the stamps of 22 alerts on one ZTF-size
(3072 x 3080) difference in each tiling.

``--home PATH`` keeps the loaded cluster and files there (a second run with the same PATH
measures again without loading).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tarfile
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


def load(dsn_admin: str, dsn_app: str, work: Path, size: int, exposures: int,
         tile: tuple[int, int] | None):
    """The two nights ingested: (database, the public stream, the later night's nid)."""
    from skyvault.alerts.streams import PUBLIC, stream_named
    from skyvault.db import Database, DatabaseUrls
    from skyvault.ingest import LocalFileStore, ingest_paths, synthetic

    synthetic.DIFF_CANDIDATES = 88
    synthetic.DIFF_CARDS = DIFF_CALIBRATION
    synthetic.DIFF_TILE = tile
    database = Database(DatabaseUrls(dsn_admin, dsn_app))
    state = work / "state.json"
    if state.exists():
        nid = json.loads(state.read_text())["nid"]
    else:
        store = LocalFileStore(work / "store")
        for date in ("2026-11-10", "2026-11-12"):
            spec = synthetic.NightSpec(nightdate=date, exposures=exposures,
                                       ccds=(1, 2, 3, 4), quadrants=(1, 2, 3, 4), sources=200,
                                       size=size, programids=(1,))
            night = synthetic.write_night(work / f"products-{date}", spec)
            summary = ingest_paths([night.root], database=database, store=store,
                                   quarantine_root=work / "quarantine")
            assert summary.ok, summary.lines()
            nid = spec.nid
        state.write_text(json.dumps({"nid": nid}))
    with database.admin() as connection:
        stream = stream_named(connection, PUBLIC)
    return database, stream, nid


DIFF_CALIBRATION = {"PSFFWHM": 2.1, "PSFBETA": 2.5, "MAGZP": 26.0, "SKYRMS": 7.0,
                    "NOISECOR": 1.4, "MAGLIM": 20.5, "GAIN": 6.0, "PIXSCALE": 1.01}
"""What the pipeline writes into a difference's header (pipeline/process/difference.py) and
forced photometry measures with: without it every fp_hist was status 62 and no fit ran."""

BEFORE_UPPER_LIMITS = (
    "SELECT c.candid AS alert, d.diffid, d.pid, d.obsjd AS jd, d.fid, d.nid,"
    " d.rcid, d.field, d.programid, d.maglimit AS diffmaglim, p.name AS programpi,"
    " s.magzp AS magzpsci, s.magzprms AS magzpscirms"
    " FROM unnest(%(candid)s::bigint[], %(ra)s::float8[], %(dec)s::float8[],"
    " %(jd)s::float8[], %(programid)s::int2[]) AS c(candid, ra, dec, jd, programid)"
    " JOIN survey.difference_images d"
    " ON d.footprint @> spoint(radians(c.ra), radians(c.dec))"
    " AND d.obsjd >= c.jd - 30 AND d.obsjd < c.jd AND d.is_current = 1"
    " AND (d.programid = c.programid OR d.programid IN"
    "  (SELECT programid FROM survey.programs WHERE public_alerts = 1))"
    " JOIN survey.programs p ON p.programid = d.programid"
    " LEFT JOIN survey.science_images s ON s.pid = d.pid"
    " WHERE NOT EXISTS (SELECT FROM survey.candidates o WHERE o.diffid = d.diffid"
    "   AND q3c_join(c.ra, c.dec, o.ra, o.dec, %(radius)s))"
    " ORDER BY c.candid, d.obsjd, d.diffid")
"""The upper-limits statement before (main at 5bdeb72, its file column aside): a batch's
alerts joined to every difference image."""


class ClusterClock:
    """CPU seconds of a PostgreSQL cluster's processes (the postmaster, its children, and the
    children it reaped), from /proc: where the reads' work is done."""

    def __init__(self, pgdata: Path) -> None:
        self.postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, parent = int(entry.name), int(fields[1])
            if pid == self.postmaster:
                total += sum(int(v) for v in fields[11:15])
            elif parent == self.postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / self.tick


class Timer:
    def __init__(self, cluster: ClusterClock) -> None:
        self.cluster = cluster

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.db = self.cluster.seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.db = self.cluster.seconds() - self.db


def _row(what: str, count: int, timer: Timer, with_db: bool = False) -> str:
    total = timer.cpu + (timer.db if with_db else 0.0)
    db = f" + {timer.db:.2f} s database" if with_db else ""
    return (f"| {what} | {timer.wall:.2f} s wall, {timer.cpu:.2f} s CPU{db} |"
            f" {total / count * 1000:.3f} ms | {_rate(count, total)} |")


def run(database, stream, nid: int, work: Path, cluster: ClusterClock) -> list[str]:
    from skyvault.alerts import fp_hists as forced_histories
    from skyvault.alerts import history
    from skyvault.alerts.archive import write_tar
    from skyvault.alerts.build import BATCH, AlertBuilder, night_selection
    from skyvault.alerts.fp_hists import ForcedHistories, fp_hist_values, history_window
    from skyvault.alerts.packet import packet_bytes, record
    from skyvault.alerts.stamps import StampCutter
    from skyvault.forced_photometry import find_epochs, forced_request, measure_epoch
    from skyvault.vo.cutout import OpenImages

    locate = lambda path: work / "store" / path  # noqa: E731
    selection = night_selection(nid, stream)
    lines = ["| stage | time | per alert | alerts per CPU second |", "|---|---|---:|---:|"]
    per_alert = {}
    for fp_hists in (True, False):
        builder = AlertBuilder(database, stream, locate=locate, fp_hists=fp_hists)
        with Timer(cluster) as timer:
            count, _ = write_tar(work / "night.tar.gz", builder.alerts(selection))
        per_alert[fp_hists] = (timer.cpu + timer.db) / count
        lines.append(_row(f"**end to end, {'with' if fp_hists else 'without'} fp_hists**"
                          f" ({count:,} alerts)", count, timer, with_db=True))

    alerts = list(AlertBuilder(database, stream, locate=locate).alerts(selection))
    epochs = sum(len(alert["fp_hists"]) for alert in alerts)
    fitted = sum(fp["procstatus"] == "0" for a in alerts for fp in a["fp_hists"])
    with database.reading(stream.requester, user_query=True) as connection:
        rows = history.alert_rows(connection, selection.where, selection.params)
        batches = [rows[k:k + BATCH] for k in range(0, len(rows), BATCH)]
        with Timer(cluster) as timer:
            history.alert_rows(connection, selection.where, selection.params)
        lines.append(_row("reads: the alert candidates", len(rows), timer, True))
        with Timer(cluster) as timer:
            for batch in batches:
                history.detections(connection, batch)
        lines.append(_row("reads: detections", len(rows), timer, True))
        with Timer(cluster) as timer:
            previous = {}
            for batch in batches:
                previous.update(history.previous_images(connection, batch))
        lines.append(_row("reads: previous images (upper limits and fp_hists' epochs)",
                          len(rows), timer, True))
        with Timer(cluster) as timer:
            for batch in batches:
                connection.execute(BEFORE_UPPER_LIMITS, {
                    "candid": [a["candid"] for a in batch], "ra": [a["ra"] for a in batch],
                    "dec": [a["dec"] for a in batch], "jd": [a["jd"] for a in batch],
                    "programid": [a["programid"] for a in batch],
                    "radius": history.RADIUS_DEG}).fetchall()
        lines.append(_row("before: the upper-limits statement per batch", len(rows), timer,
                          True))
        with Timer(cluster) as timer:
            for row in rows:
                find_epochs(connection, forced_request(row["ra"], row["dec"],
                                                       *history_window(row["jd"])),
                            history_of_program=row["programid"])
        lines.append(_row("before: find_epochs per alert (fp_hists' epochs)", len(rows),
                          timer, True))

    found = [forced_histories.epochs(previous[row["candid"]]) for row in rows]
    with OpenImages(keep=64) as images, Timer(cluster) as timer:
        measure = ForcedHistories(locate, images)
        for k in range(0, len(rows), BATCH):
            measure(rows[k:k + BATCH], found[k:k + BATCH])
    lines.append(_row(f"fp_hists measured, each epoch at its alerts together"
                      f" ({epochs / len(rows):.1f} epochs per alert,"
                      f" {fitted / max(epochs, 1):.0%} fitted)", len(rows), timer))
    with OpenImages(keep=64) as images, Timer(cluster) as timer:
        for row, epochs_of_row in zip(rows, found, strict=True):
            for epoch in epochs_of_row:
                record("fp_hist", fp_hist_values(measure_epoch(
                    epoch, row["ra"] % 360.0, row["dec"], locate=locate, images=images), row))
    lines.append(_row("before: fp_hists measured per alert and epoch", len(rows), timer))

    columns = ("science_path", "template_path", "difference_path")
    with OpenImages(keep=8) as images, Timer(cluster) as timer:
        cutter = StampCutter(images)
        for k in range(0, len(rows), BATCH):
            batch = rows[k:k + BATCH]
            for column in columns:
                by_path: dict[str, list] = {}
                for row in batch:
                    by_path.setdefault(row[column], []).append((row["ra"], row["dec"]))
                for path, positions in by_path.items():
                    cutter.stamps(locate(path), positions)
    lines.append(_row("stamps, an image's cut together from the tiles they touch",
                      len(rows), timer))
    with OpenImages(keep=8) as images, Timer(cluster) as timer:
        cutter = StampCutter(images)
        for row in rows:
            for column in columns:
                cutter.stamp(locate(row[column]), row["ra"], row["dec"])
    lines.append(_row("before: stamps one at a time (section reads of open files)",
                      len(rows), timer))
    with Timer(cluster) as timer:
        for row in rows:
            for column in columns:
                _whole_image_stamp(locate(row[column]), row["ra"], row["dec"])
    lines.append(_row("baseline: stamps from whole images read once per file", len(rows),
                      timer))

    with Timer(cluster) as timer:
        packets = [packet_bytes(alert) for alert in alerts]
    lines.append(_row("fastavro serialisation alone (one container file per alert)",
                      len(alerts), timer))
    for level in (1, 9):
        with Timer(cluster) as timer, tarfile.open(work / "gz.tar.gz", "w:gz",
                                                   compresslevel=level) as tar:
            for alert, content in zip(alerts, packets, strict=True):
                member = tarfile.TarInfo(f"{alert['candid']}.avro")
                member.size = len(content)
                tar.addfile(member, io.BytesIO(content))
        lines.append(_row(f"{'before: ' if level == 9 else ''}the archive's tar.gz alone,"
                          f" level {level}", len(alerts), timer))
    lines.append(f"\nfp_hists' cost end to end: {(per_alert[True] - per_alert[False]) * 1000:.2f}"
                 " CPU ms per alert")
    return lines


def ztf_stamps(work: Path) -> list[str]:
    """22 alerts' stamps on one ZTF-size difference (3072 x 3080, RICE, q = 16) in each
    tiling: cut together from the tiles they touch, one at a time, and from the whole image."""
    import fitsio

    from skyvault.alerts.stamps import StampCutter
    from skyvault.vo.cutout import OpenImages

    rng = np.random.default_rng(17)
    data = rng.normal(0.0, 7.0, (3080, 3072)).astype(np.float32)
    header = [{"name": "CTYPE1", "value": "RA---TAN"}, {"name": "CTYPE2", "value": "DEC--TAN"},
              {"name": "CRVAL1", "value": 150.0}, {"name": "CRVAL2", "value": 2.0},
              {"name": "CRPIX1", "value": 1536.5}, {"name": "CRPIX2", "value": 1540.5},
              {"name": "CD1_1", "value": -1.0 / 3600}, {"name": "CD2_2", "value": 1.0 / 3600},
              {"name": "CD1_2", "value": 0.0}, {"name": "CD2_1", "value": 0.0}]
    x, y = rng.uniform(0, 3072, 22), rng.uniform(0, 3080, 22)
    ra = 150.0 - (x + 1 - 1536.5) / 3600 / np.cos(np.radians(2.0))
    dec = 2.0 + (y + 1 - 1540.5) / 3600
    positions = list(zip(ra.tolist(), dec.tolist(), strict=True))
    lines = ["| tiling | together (now) | one at a time | whole image |", "|---|---:|---:|---:|"]
    for name, tile in (("128 x 128 (the pipeline's)", [128, 128]),
                       ("one row (fpack's, astropy's)", [1, 3072])):
        path = work / f"ztf-{tile[0]}.fits.fz"
        with fitsio.FITS(str(path), "rw", clobber=True) as out:
            out.write(None)
            out.write(data, header=header, compress="RICE", qlevel=16.0,
                      qmethod="SUBTRACTIVE_DITHER_2", dither_seed=1, tile_dims=tile)
        figures = []
        for way in ("together", "alone", "whole"):
            _WHOLE.clear()
            repeats = 5
            started = time.process_time()
            for _ in range(repeats):
                with OpenImages() as images:
                    cutter = StampCutter(images)
                    if way == "together":
                        cutter.stamps(path, positions)
                    elif way == "alone":
                        for position in positions:
                            cutter.stamp(path, *position)
                    else:
                        _WHOLE.clear()
                        for position in positions:
                            _whole_image_stamp(path, *position)
            figures.append((time.process_time() - started) / repeats)
        lines.append(f"| {name} | " + " | ".join(f"{f * 1000:.0f} ms" for f in figures) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="quadrant image side, pixels")
    parser.add_argument("--exposures", type=int, default=8)
    parser.add_argument("--diff-tile", type=int, default=128,
                        help="difference images' square tile side; 0: one row per tile")
    parser.add_argument("--home", type=Path, help="keep (or reuse) the loaded data here")
    parser.add_argument("--ztf-stamps", action="store_true")
    args = parser.parse_args()
    from skyvault.db import APP_ROLE
    from skyvault.schema.migrate import upgrade

    home = args.home.resolve() if args.home else None
    cluster, base = throwaway_cluster(home=home, prefix="bench-alerts-")
    work = base / "files"
    work.mkdir(exist_ok=True)
    try:
        upgrade(cluster.url())
        tile = (args.diff_tile, args.diff_tile) if args.diff_tile else None
        database, stream, nid = load(cluster.url(), cluster.url(user=APP_ROLE), work,
                                     args.size, args.exposures, tile)
        for line in run(database, stream, nid, work, ClusterClock(base / "pgdata")):
            print(line, flush=True)
        if args.ztf_stamps:
            print()
            for line in ztf_stamps(work):
                print(line, flush=True)
    finally:
        if home is None:
            cluster.destroy()
            shutil.rmtree(base, ignore_errors=True)
        else:
            cluster.stop()


if __name__ == "__main__":
    main()
