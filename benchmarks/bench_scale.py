"""Scale: what cones, lightcurves and the ingest of a night cost as the archive grows, for
today's layout (every night its own partition) and the sky layout (nights compacted into sky
cells, ``skyvault ingest compact``), in the same run.

    .venv/bin/python -m benchmarks.bench_scale [--sizes 1,30,365,1500] [--objects 100000]
        [--cones 100] [--http] [--export] [--home DIR] [--keep]

A synthetic survey: ``--objects`` fixed sources over a 1,500-square-degree block (RA 100-150,
Dec 0-30) cut into 60 fields of 5 x 5 degrees; each night observes a random two thirds of the
fields and detects every source in them (0.1" scatter): about 67,000 PSF-catalog rows a night
for 100,000 objects, one image per field, and about 1,000 epochs per object after 1,500
nights (100 million rows). Each night is laid out by ingest's own code (catalog_load: checked,
sorted by q3c pixel, binary COPY records), COPYed into its loading table and sealed, into
databases of one throwaway cluster: ``today`` keeps every night as a partition, ``sky``
compacts each night into the sky cells after its seal, and ``one`` holds the first night
alone: the 1-night baseline, measured again beside the others at every size, so that the
machine's load at that moment weighs on the baseline and on the large archive alike.

At each size in ``--sizes`` (nights), on every database, each cone run on all of them in turn:
- cones of 5", 1' and 30' at random positions in the block, p50/p90 over ``--cones`` cones
  (each run once to warm, then the best of three timed runs), rows returned; on the large
  archives also cones of the same radii divided by sqrt(nights), which return as many rows as
  the full radius does on the 1-night baseline: the goal compares those (cone p50 at 1,500
  nights within 1.5x of 1 night for the same rows), as ratios to the baseline of the round;
- the sky database twice: with the newest night sealed but not yet compacted, as it is between
  the morning's seal and compaction, then compacted;
- lightcurve by position: a 2" cone on a source's position (all its epochs);
- one more night: COPY rate, seal time, compaction time (sky), rows/s of load + seal;
- on the sky database, the declaration of a release of every row (one row written, issue 15
  item 2) and, with ``--export``, its HATS export's rate (item 3): ``CHECKPOINT_MEASURES``.
With ``--http``, at the largest size, 10" SCS and TAP /sync cones through ``skyvault serve``
(gunicorn) on each database. Disk: about 13 GB per 100 million rows per database (check
``df -h /tmp``); the cluster is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.support import throwaway_cluster
from skyvault.ingest.catalogs import catalog_load, set_image_values
from skyvault.ingest.compact import compact_night, sky_cells
from skyvault.ingest.copybinary import RecordBatch
from skyvault.ingest.load import copy_batches
from skyvault.ingest.partitions import partitions, seal, target_for_rows
from skyvault.releases.dating import night_jd
from skyvault.releases.declare import declare_release

CATALOG = "psf_sources"
RA_RANGE = (100.0, 150.0)
DEC_RANGE = (0.0, 30.0)
FIELD_DEG = 5.0
OBSERVED_FRACTION = 2 / 3
RADII = {'5"': 5 / 3600, "1'": 1 / 60, "30'": 0.5}
LIGHTCURVE_RADIUS = 2 / 3600
TIMED_RUNS = 3
RELEASED_THROUGH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
"""A public data release covers program 1 observed before this (night 1 is 2017-01-02, night
1,500 early 2021): every row is public, and the cones read as an anonymous user, under
row-level security."""
LAYOUTS = ("one", "today", "sky")
BASELINE = "1 night"


# -- the synthetic survey -------------------------------------------------------------------------

@dataclass
class Survey:
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    field: np.ndarray
    fields: int

    @classmethod
    def make(cls, objects: int, seed: int = 20261125) -> Survey:
        rng = np.random.default_rng(seed)
        ra = rng.uniform(*RA_RANGE, objects)
        sin_dec = rng.uniform(*np.sin(np.radians(DEC_RANGE)), objects)
        dec = np.degrees(np.arcsin(sin_dec))
        columns = int((RA_RANGE[1] - RA_RANGE[0]) / FIELD_DEG)
        rows = int((DEC_RANGE[1] - DEC_RANGE[0]) / FIELD_DEG)
        field_of = (((dec - DEC_RANGE[0]) // FIELD_DEG).astype(int) * columns
                    + ((ra - RA_RANGE[0]) // FIELD_DEG).astype(int))
        return cls(ra, dec, rng.uniform(15, 21, objects).astype(np.float32), field_of,
                   columns * rows)

    def night(self, nid: int) -> list[RecordBatch]:
        """The night's catalogs, one image per observed field, laid out as ingest does."""
        rng = np.random.default_rng(nid)
        observed = np.nonzero(rng.random(self.fields) < OBSERVED_FRACTION)[0]
        batches = []
        for field_id in observed:
            members = np.nonzero(self.field == field_id)[0]
            count = len(members)
            jitter = rng.normal(0, 0.1 / 3600, (2, count))
            dec = self.dec[members] + jitter[1]
            ra = (self.ra[members] + jitter[0] / np.cos(np.radians(dec))) % 360
            mag = self.mag[members] + rng.normal(0, 0.05, count).astype(np.float32)
            load = catalog_load(Path("bench"), "psfcat", {
                "ra": ra, "dec": dec, "mag": mag.astype(np.float32),
                "magerr": np.full(count, 0.05, np.float32),
                "sourceid": np.arange(1, count + 1, dtype=np.int64)})
            set_image_values(load, {
                "pid": nid * 100 + int(field_id) + 1, "expid": nid * 100 + int(field_id) + 1,
                "nid": nid, "field": int(field_id), "rcid": 0, "fid": 2, "filtercode": b"zr",
                "obsjd": night_jd(nid), "programid": 1})
            batches.append(load.batch)
        return batches


# -- loading --------------------------------------------------------------------------------------

@dataclass
class NightTiming:
    rows: int
    copy: float
    seal: float
    compact: float | None = None

    @property
    def rate(self) -> float:
        return self.rows / (self.copy + self.seal)


def load_night(connection: psycopg.Connection, url: str, nid: int,
               batches: list[RecordBatch]) -> NightTiming:
    """Load and seal one night as a bulk ingest run does (COPY per night, the two index
    builds side by side on connections of their own to ``url``)."""
    started = time.perf_counter()
    with connection.transaction():
        copy_batches(connection, target_for_rows(connection, CATALOG, nid, live=False), batches)
    copied = time.perf_counter()
    seal(connection, CATALOG, nid, connect=lambda: psycopg.connect(url, autocommit=True))
    return NightTiming(sum(b.rows for b in batches), copied - started,
                       time.perf_counter() - copied)


def compact(connection: psycopg.Connection, nid: int) -> float:
    started = time.perf_counter()
    done = compact_night(connection, CATALOG, nid)
    assert done is not None
    return time.perf_counter() - started


# -- measuring ------------------------------------------------------------------------------------

@dataclass
class Figures:
    p50: float
    p90: float
    rows: float | None

    def text(self) -> str:
        rows = f" ({self.rows:,.1f})" if self.rows is not None else ""
        return f"{self.p50:.2f}/{self.p90:.2f}{rows}"


def _percentiles(times: list[float], rows: list[int] | None) -> Figures:
    ordered = sorted(times)
    return Figures(statistics.median(ordered) * 1e3,
                   ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] * 1e3,
                   sum(rows) / len(rows) if rows else None)


def cone_figures(entries: dict[str, tuple[psycopg.Connection, float]],
                 centres: list[tuple[float, float]]) -> dict[str, Figures]:
    """Each cone on every entry (a connection and a radius) in turn, interleaved so that the
    machine's load falls on all alike: once to warm, then the best of ``TIMED_RUNS`` (on a
    machine shared with other work, the best run is the query's own cost; a preempted one is
    someone else's). The SQL is the cone search's (server/images/scs.py)."""
    sql = ("SELECT sourceid, pid, ra, dec, mag, magerr, obsjd FROM survey.psf_sources"
           " WHERE q3c_join(%s, %s, ra, dec, %s)")
    times: dict[str, list[float]] = {name: [] for name in entries}
    rows: dict[str, list[int]] = {name: [] for name in entries}
    for ra, dec in centres:
        for name, (connection, radius) in entries.items():
            connection.execute(sql, (ra, dec, radius)).fetchall()
            best = float("inf")
            for _ in range(TIMED_RUNS):
                started = time.perf_counter()
                found = connection.execute(sql, (ra, dec, radius)).fetchall()
                best = min(best, time.perf_counter() - started)
            times[name].append(best)
            rows[name].append(len(found))
    return {name: _percentiles(times[name], rows[name]) for name in entries}


def random_centres(count: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(RA_RANGE[0] + 1, RA_RANGE[1] - 1, count)
    dec = rng.uniform(DEC_RANGE[0] + 1, DEC_RANGE[1] - 1, count)
    return list(zip(ra.tolist(), dec.tolist(), strict=True))


@dataclass
class Checkpoint:
    """What a measure of CHECKPOINT_MEASURES is given at each size."""

    nights: int
    rows: int
    urls: dict[str, str]
    """Owner URL of each layout's database."""
    results: dict[str, str] = field(default_factory=dict)


CHECKPOINT_MEASURES: list[Callable[[Checkpoint], dict[str, str]]] = []
"""Extra figures per size, e.g. ``{"release declaration": "2.1 ms"}``: the release declaration
time (always) and the export rate (``--export``), issue 15 items 2 and 3."""


def _service(url: str):
    """The archive at ``url`` as the service sees it: reads as the app role, under row-level
    security."""
    from psycopg.conninfo import make_conninfo

    from skyvault.db import Database, DatabaseUrls

    return Database(DatabaseUrls(admin=url, app=make_conninfo(url, user="skyvault_app")))


def release_declaration(point: Checkpoint) -> dict[str, str]:
    """Issue 15 item 2 on the sky database: declaring a release writes one row, whatever the
    archive's size (benchmarks/bench_embargo.py ``time_declaration``)."""
    from benchmarks.bench_embargo import time_declaration

    handle = _service(point.urls["sky"])
    try:
        seconds = time_declaration(handle, name=f"SCALE{point.nights}", cutoff=RELEASED_THROUGH)
    finally:
        handle.close()
    return {"release declaration": f"{seconds * 1000:.1f} ms ({point.rows:,} rows released)"}


def release_export(point: Checkpoint) -> dict[str, str]:
    """Issue 15 item 3 on the sky database (``--export``): the release declared by
    ``release_declaration`` exported as HATS, read as the public through both halves."""
    import hats  # noqa: F401  (imported once per process, seconds; not the export's cost)

    from skyvault.releases.export import export_release

    handle = _service(point.urls["sky"])
    out = Path(tempfile.mkdtemp(prefix="skyvault-bench-scale-export-", dir="/tmp"))
    try:
        started = time.perf_counter()
        summary = export_release(handle, f"SCALE{point.nights}", out, "http://127.0.0.1:8000")
        seconds = time.perf_counter() - started
    finally:
        handle.close()
        shutil.rmtree(out, ignore_errors=True)
    rows = summary.catalog_rows[f"survey.{CATALOG}"]
    return {"release export": f"{rows:,} rows as HATS in {seconds:.1f} s"
                              f" ({rows / seconds:,.0f} rows/s)"}


CHECKPOINT_MEASURES.append(release_declaration)


def reader(url: str) -> psycopg.Connection:
    """A connection that reads as the service does: the app role, row-level security, an
    anonymous requester, read only."""
    connection = psycopg.connect(url, autocommit=True)
    connection.execute("SET ROLE skyvault_app")
    connection.execute("SET default_transaction_read_only = on")
    connection.execute("SELECT set_config('skyvault.programs', '', false)")
    return connection


# -- HTTP -----------------------------------------------------------------------------------------

def http_cones(url: str, home: Path, count: int) -> dict[str, Figures]:
    """10" cones through `skyvault serve` pointed at ``url``: SCS (rows counted in its
    TABLEDATA) and TAP /sync (BINARY2, as clients get it by default)."""
    import requests

    from benchmarks.bench_tap import Server
    from benchmarks.support import free_port

    os.environ["SKYVAULT_DATABASE_URL"] = url
    os.environ["SKYVAULT_HOME"] = str(home)
    server = Server(free_port(), home / "serve.log")
    base = server.url.removesuffix("/tap")
    radius = 10 / 3600
    figures = {}
    try:
        with requests.Session() as session:
            for name, request in (
                    ("SCS 10\"", lambda ra, dec: session.get(
                        f"{base}/scs/psf_sources", params={"RA": ra, "DEC": dec, "SR": radius})),
                    ("TAP 10\"", lambda ra, dec: session.get(f"{base}/tap/sync", params={
                        "LANG": "ADQL", "QUERY": "SELECT sourceid, ra, dec, mag, obsjd FROM"
                        " survey.psf_sources WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),"
                        f" CIRCLE('ICRS', {ra}, {dec}, {radius}))"}))):
                times, rows = [], []
                for ra, dec in random_centres(count, 7):
                    request(ra, dec).raise_for_status()
                    best = float("inf")
                    for _ in range(TIMED_RUNS):
                        started = time.perf_counter()
                        response = request(ra, dec)
                        best = min(best, time.perf_counter() - started)
                        response.raise_for_status()
                    times.append(best)
                    if name.startswith("SCS"):
                        rows.append(response.text.count("<TR>"))
                figures[name] = _percentiles(times, rows or None)
    finally:
        server.stop()
        os.environ.pop("SKYVAULT_DATABASE_URL", None)
    return figures


# -- the run --------------------------------------------------------------------------------------

def checkpoint(nights: int, survey: Survey, urls: dict[str, str], cones: int,
               out: list[str]) -> None:
    connections = {name: reader(url) for name, url in urls.items()}
    try:
        with psycopg.connect(urls["today"]) as admin:
            rows = admin.execute("SELECT count(*) FROM survey.psf_sources").fetchone()[0]
            night_partitions = len(partitions(admin, CATALOG))
        with psycopg.connect(urls["sky"], autocommit=True) as admin:
            cells = len(sky_cells(admin, CATALOG))
            waiting = [p.nid for p in partitions(admin, CATALOG) if p.attached]
        out.append(f"\n## {nights} nights: {rows:,} rows; today: {night_partitions} night"
                   f" partitions; sky: {cells} cells and {len(waiting)} night not compacted")
        centres = random_centres(cones, nights)
        scale = 1 / np.sqrt(nights)
        objects = np.random.default_rng(nights).choice(len(survey.ra), cones, replace=False)
        positions = list(zip(survey.ra[objects].tolist(), survey.dec[objects].tolist(),
                             strict=True))
        # Round 1: the sky database as it is after the morning's seal (newest night not
        # compacted yet), beside today's layout; round 2: the sky compacted. The 1-night
        # baseline runs in both rounds, each ratio is to the baseline of its round.
        rounds = [("today", "sky, newest night not compacted")] if waiting else [("today",)]
        rounds.append(("sky",))
        header = ["query, ms p50/p90 (rows)", BASELINE]
        lines: dict[str, list[str]] = {}
        for layouts in rounds:
            if layouts == ("sky",) and waiting:
                with psycopg.connect(urls["sky"], autocommit=True) as admin:
                    for nid in waiting:
                        compact(admin, nid)
            names = dict(zip(layouts, ("today", "sky") if len(layouts) == 2 else
                             (layouts[0],), strict=True))
            if header[-1] != BASELINE:
                header.append(BASELINE)
            header += [f"{layout} (x {BASELINE})" for layout in layouts]
            for radius_name, radius in RADII.items():
                for label, factor in ((f"cone {radius_name}", 1.0),
                                      (f"same rows as {radius_name} on 1 night", scale)):
                    entries = {BASELINE: (connections["one"], radius)}
                    entries |= {layout: (connections[names[layout]], radius * factor)
                                for layout in layouts}
                    figures = cone_figures(entries, centres)
                    lines.setdefault(label, []).append(_row(figures, layouts))
            entries = {BASELINE: (connections["one"], LIGHTCURVE_RADIUS)}
            entries |= {layout: (connections[names[layout]], LIGHTCURVE_RADIUS)
                        for layout in layouts}
            lines.setdefault('lightcurve 2"', []).append(
                _row(cone_figures(entries, positions), layouts))
        out.append(" | ".join(header))
        out += [f"{label} | " + " | ".join(cells) for label, cells in lines.items()]
        extra = Checkpoint(nights, rows, urls)
        for measure in CHECKPOINT_MEASURES:
            extra.results.update(measure(extra))
        out += [f"{key}: {value}" for key, value in extra.results.items()]
    finally:
        for connection in connections.values():
            connection.close()


def _row(figures: dict[str, Figures], layouts: tuple[str, ...]) -> str:
    base = figures[BASELINE]
    return " | ".join([base.text()] + [
        f"{figures[layout].text()} x{figures[layout].p50 / base.p50:.1f}" for layout in layouts])


def one_more_night(nid: int, survey: Survey, admins: dict[str, psycopg.Connection],
                   urls: dict[str, str], out: list[str]) -> None:
    batches = survey.night(nid)
    for name, admin in admins.items():
        timing = load_night(admin, urls[name], nid, batches)
        if name == "sky":
            timing.compact = compact(admin, nid)
        out.append(f"one more night on {name}: {timing.rows:,} rows, COPY "
                   f"{timing.rows / timing.copy:,.0f} rows/s, seal {timing.seal:.2f} s, load +"
                   f" seal {timing.rate:,.0f} rows/s"
                   + (f", compaction {timing.compact:.2f} s"
                      f" ({timing.rows / timing.compact:,.0f} rows/s)"
                      if timing.compact is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,30,365,1500",
                        help="nights at which to measure, ascending")
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--cones", type=int, default=100)
    parser.add_argument("--http", action="store_true",
                        help="also SCS and TAP cones over HTTP at the largest size")
    parser.add_argument("--min-free-gb", type=float, default=10.0,
                        help="stop growing when the disk has less free space (shared machines)")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--export", action="store_true",
                        help="also export the release of each size as HATS (rows/s)")
    arguments = parser.parse_args()
    if arguments.export:
        CHECKPOINT_MEASURES.append(release_export)
    sizes = sorted(int(size) for size in arguments.sizes.split(","))
    cluster, base = throwaway_cluster(arguments.home, prefix="skyvault-bench-scale-")
    from skyvault.schema.migrate import upgrade

    urls = {}
    with psycopg.connect(cluster.url(), autocommit=True) as connection:
        for name in LAYOUTS:
            connection.execute(f"DROP DATABASE IF EXISTS {name}")
            connection.execute(f"CREATE DATABASE {name}")
            urls[name] = cluster.url(database=name)
            upgrade(urls[name])
            with psycopg.connect(urls[name]) as owner:
                declare_release(owner, "SCALE", RELEASED_THROUGH, RELEASED_THROUGH, [1])
    survey = Survey.make(arguments.objects)
    out: list[str] = [f"# bench_scale: {arguments.objects:,} objects, sizes {sizes};"
                      f" load average {os.getloadavg()[0]:.1f}"]
    print(out[0], flush=True)
    admins = {name: psycopg.connect(url, autocommit=True) for name, url in urls.items()
              if name != "one"}
    growth: dict[str, list[NightTiming]] = {name: [] for name in admins}
    started = time.perf_counter()
    try:
        nid = 0
        for size in sizes:
            while nid < size:
                nid += 1
                batches = survey.night(nid)
                if nid == 1:
                    with psycopg.connect(urls["one"], autocommit=True) as baseline:
                        load_night(baseline, urls["one"], nid, batches)
                for name, admin in admins.items():
                    timing = load_night(admin, urls[name], nid, batches)
                    if name == "sky" and nid < size:  # the newest waits for the checkpoint
                        timing.compact = compact(admin, nid)
                    growth[name].append(timing)
                if nid % 100 == 0:
                    print(f"  {nid} nights loaded, {time.perf_counter() - started:.0f} s",
                          flush=True)
                if nid % 20 == 0:
                    free = shutil.disk_usage(base).free / 2**30
                    if free < arguments.min_free_gb:
                        raise SystemExit(f"stopped at {nid} nights: {free:.1f} GB free on"
                                         f" the disk, under --min-free-gb")
            lines: list[str] = []
            checkpoint(size, survey, urls, arguments.cones, lines)
            nid += 1
            one_more_night(nid, survey, admins, urls, lines)
            recent = [t.compact for t in growth["sky"][-20:] if t.compact is not None]
            if recent:
                lines.append(f"compaction of a night while growing to {size} (last "
                             f"{len(recent)}): mean {statistics.mean(recent):.2f} s")
            print("\n".join(lines), flush=True)
            out += lines
        if arguments.http:
            lines = [f"\n## over HTTP at {sizes[-1]} nights (skyvault serve, gunicorn),"
                     " ms p50/p90 (rows)"]
            for name in LAYOUTS:
                for label, figures in http_cones(urls[name], base, arguments.cones).items():
                    lines.append(f"{name} {label}: {figures.text()}")
            print("\n".join(lines), flush=True)
            out += lines
    finally:
        for admin in admins.values():
            admin.close()
        print(f"\nload average at the end {os.getloadavg()[0]:.1f};"
              f" {time.perf_counter() - started:.0f} s in all", flush=True)
        if not arguments.keep:
            cluster.stop()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
