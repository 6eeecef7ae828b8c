"""Image access end to end over HTTP: SIA 2.0 queries over a million-image ObsCore, and SODA
cutouts of full-size quadrants, against the production server (`skyvault serve`: gunicorn).

    .venv/bin/python -m benchmarks.bench_images [--exposures 15625] [--queries 300]
        [--cutouts 200] [--keep | --home /tmp/skyvault-bench-images-...]

A throwaway SkyVault home under /tmp gets its own PostgreSQL cluster (the project's tuned
settings), migrated to head, and ``exposures`` x 64 science images (15,625 x 64 = 1,000,000 by
default) plus 16 raw CCD frames per exposure, each with its footprint, WCS and file row, over a
grid of 7-degree fields (about 26 visits per field; 20 % of exposures embargoed, so row-level
security has work to do). Then:

- SIA: ``POS=CIRCLE`` (r = 0.1 deg), CIRCLE with BAND and TIME, and a small POLYGON at random
  positions in the survey area; p50 / p90 latency of the whole HTTP request (keep-alive client,
  one request at a time), beside a trivial request to the same server (``/sia/availability``,
  which also touches the database) as the floor.
- SCS: Simple Cone Search 1.03 on ``science_images`` (by image centre) at random positions in
  the survey area, SR = 0.5 deg with the default columns (VERB=2) and SR = 1 deg with all of
  them (VERB=3, footprints included); p50 / p90 of the whole HTTP request beside the same floor.
- SODA: a 1 arcmin (diameter) CIRCLE cutout at random positions of a 3072 x 3080 float32
  quadrant: uncompressed, tile-compressed as the pipeline writes it (fitsio RICE, q = 16,
  128 x 128 tiles), and RICE with fpack's one tile per row; beside the time to read the whole file
  with fitsio and to download it whole over HTTP (/files).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.support import free_port, wait_for
from skyvault.pipeline.process.products import COMPRESSION_TILE

FIELD_SIZE = 7.0  # degrees on a side; 8 x 8 quadrants of 0.875 degrees
QUADRANT = FIELD_SIZE / 8
NAXIS1, NAXIS2 = 3072, 3080
PIXEL = 1.0 / 3600  # 1 arcsec
CUTOUT_RADIUS = 0.5 / 60  # 1 arcmin across
OBSJD0 = 2460000.5


def field_grid() -> list[tuple[int, float, float]]:
    """Field centres tiling the sky north of -30 deg (up to +80) with 7-degree fields."""
    fields = []
    dec = -30.0 + FIELD_SIZE / 2
    while dec <= 80:
        count = max(1, int(360 * math.cos(math.radians(dec)) / FIELD_SIZE))
        for i in range(count):
            fields.append((len(fields) + 1, (i + 0.5) * 360.0 / count, dec))
        dec += FIELD_SIZE
    return fields


LOAD_SQL = """
WITH e AS (
    SELECT e AS expid, f.field, f.ra AS fra, f.dec AS fdec,
           %(obsjd0)s + e * 0.0006 AS obsjd,
           CASE WHEN e %% 5 = 0 THEN 2 ELSE 1 END AS programid,
           (ARRAY['zg','zr','zi'])[1 + e %% 3] AS filtercode
      FROM generate_series(%(first)s::int, %(last)s::int) e
      JOIN bench_fields f ON f.field = 1 + (e %% %(nfields)s)
)
INSERT INTO {table}
SELECT {columns} FROM e, LATERAL (
    SELECT q, (q %% {per_row} - ({per_row} - 1) / 2.0) * {size} AS dx,
           (q / {per_row} - ({per_row} - 1) / 2.0) * {size} AS dy
      FROM generate_series(0, {count} - 1) q) quadrant,
LATERAL (SELECT fdec + dy AS dec,
                (fra + dx / cos(radians(fdec + dy)) + 360.0)::numeric %% 360 AS ra) c,
LATERAL (SELECT ((c.ra - {half} / cos(radians(c.dec)) + 360)::numeric %% 360)::float8 AS ra_lo,
                ((c.ra + {half} / cos(radians(c.dec)))::numeric %% 360)::float8 AS ra_hi) w
"""

CORNERS = """
    w.ra_lo, c.dec - {half}, w.ra_hi, c.dec - {half}, w.ra_hi, c.dec + {half},
    w.ra_lo, c.dec + {half},
    format('{{(%%sd,%%sd),(%%sd,%%sd),(%%sd,%%sd),(%%sd,%%sd)}}',
           w.ra_lo, c.dec - {half}, w.ra_hi, c.dec - {half}, w.ra_hi, c.dec + {half},
           w.ra_lo, c.dec + {half})::spoly
"""


def load_images(admin_url: str, exposures: int) -> dict[str, float]:
    import psycopg

    fields = field_grid()
    timings = {}
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE bench_fields (field int, ra float8, dec float8)")
        with connection.cursor().copy("COPY bench_fields FROM STDIN") as copy:
            for row in fields:
                copy.write_row(row)
        # Program 1 public as soon as observed, program 2 (a fifth of the exposures) embargoed
        # for the whole run: the release rules read these at query time.
        connection.execute(
            "UPDATE survey.programs SET proprietary_days = CASE programid WHEN 1 THEN 0"
            " ELSE 36500 END WHERE programid IN (1, 2)")
        # Secondary indexes are built once after the load (as ingest's seal does for catalogs),
        # with the definitions the migrations gave them.
        secondary = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'survey'"
            " AND tablename IN ('science_images', 'raw_images', 'files')"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)").fetchall()
        for name, _ in secondary:
            connection.execute(f"DROP INDEX survey.{name}")
        start = time.perf_counter()
        connection.execute(f"""
            INSERT INTO survey.exposures (expid, obsjd, field, filtercode, exptime, telra,
                   teldec, programid)
            SELECT e, {OBSJD0} + e * 0.0006, 1 + (e % {len(fields)}),
                   (ARRAY['zg','zr','zi'])[1 + e % 3], 30, f.ra, f.dec,
                   CASE WHEN e % 5 = 0 THEN 2 ELSE 1 END
              FROM generate_series(1, {exposures}) e
              JOIN bench_fields f ON f.field = 1 + (e % {len(fields)})""")
        science_columns = f"""
            e.expid * 64 + q, e.expid, e.obsjd, e.field, 1 + q / 4, 1 + q %% 4, q,
            e.filtercode, 30, 2.0, 20.5, c.ra::float8, c.dec, e.programid,
            {CORNERS.format(half=QUADRANT / 2)}, {NAXIS1}, {NAXIS2}"""
        science = LOAD_SQL.format(
            table="survey.science_images (pid, expid, obsjd, field, ccdid, qid, rcid,"
                  " filtercode, exptime, seeing, maglimit, ra, dec, programid,"
                  " ra1, dec1, ra2, dec2, ra3, dec3, ra4, dec4, footprint, naxis1, naxis2)",
            columns=science_columns, per_row=8, size=QUADRANT, count=64, half=QUADRANT / 2)
        raw_columns = f"""
            e.expid * 16 + q, e.expid, e.obsjd, e.field, 1 + q, e.filtercode, 30,
            c.ra::float8, c.dec, e.programid,
            {CORNERS.format(half=QUADRANT)}"""
        raw = LOAD_SQL.format(
            table="survey.raw_images (rawid, expid, obsjd, field, ccdid, filtercode, exptime,"
                  " ra, dec, programid, ra1, dec1, ra2, dec2, ra3, dec3, ra4,"
                  " dec4, footprint)",
            columns=raw_columns, per_row=4, size=2 * QUADRANT, count=16, half=QUADRANT)
        step = 1000
        for first in range(1, exposures + 1, step):
            values = {"obsjd0": OBSJD0, "first": first, "last": min(exposures, first + step - 1),
                      "nfields": len(fields)}
            connection.execute(science, values)
            connection.execute(raw, values)
        timings["load images (s)"] = time.perf_counter() - start
        start = time.perf_counter()
        for table, key, product in (("science_images", "pid", "sciimg"),
                                    ("raw_images", "rawid", "raw")):
            connection.execute(f"""
                INSERT INTO survey.files (path, product, image_table, image_id, content_type,
                       size_bytes, sha256, programids, obsjd)
                SELECT '{product}/' || {key} || '.fits', '{product}', '{table}', {key},
                       'application/fits', 37847040, repeat('0', 64),
                       ARRAY[programid], obsjd
                  FROM survey.{table}""")
        timings["load file rows (s)"] = time.perf_counter() - start
        start = time.perf_counter()
        for _, definition in secondary:
            connection.execute(definition)
        timings["build indexes (s)"] = time.perf_counter() - start
        start = time.perf_counter()
        connection.execute("ANALYZE")
        timings["analyze (s)"] = time.perf_counter() - start
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM survey.science_images),"
            " (SELECT count(*) FROM survey.raw_images)").fetchone()
        timings["science images"] = counts[0]
        timings["raw images"] = counts[1]
    return timings


# -- the cutout files -----------------------------------------------------------------------------


def quadrant_header(ra: float, dec: float) -> list[dict]:
    cards = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
             "CRPIX1": (NAXIS1 + 1) / 2, "CRPIX2": (NAXIS2 + 1) / 2, "CD1_1": -PIXEL,
             "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": PIXEL, "RADESYS": "ICRS", "EXPTIME": 30.0,
             "GAIN": 6.2, "OBJECT": "bench"}
    return [{"name": k, "value": v} for k, v in cards.items()]


def write_quadrants(store: Path) -> dict[str, Path]:
    import fitsio

    rng = np.random.default_rng(1)
    data = rng.normal(150.0, 8.0, (NAXIS2, NAXIS1)).astype(np.float32)
    ys, xs = rng.integers(0, NAXIS2, 3000), rng.integers(0, NAXIS1, 3000)
    data[ys, xs] += rng.uniform(100, 5000, 3000).astype(np.float32)
    header = quadrant_header(200.0, 45.0)
    made = {"plain": store / "bench/quadrant.fits",
            "rice_rows": store / "bench/quadrant_rows.fits.fz",
            "rice_128": store / "bench/quadrant_128.fits.fz"}
    for path in made.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with fitsio.FITS(str(made["plain"]), "rw", clobber=True) as out:
        out.write(data, header=header)
    for name, tiles in (("rice_rows", None), ("rice_128", list(COMPRESSION_TILE))):
        with fitsio.FITS(str(made[name]), "rw", clobber=True) as out:
            out.write(None)
            extra = {"tile_dims": tiles} if tiles else {}
            out.write(data, header=header, compress="RICE", qlevel=16.0,
                      qmethod="SUBTRACTIVE_DITHER_2", dither_seed=1, **extra)
    return made


def register_quadrants(admin_url: str, store: Path, files: dict[str, Path]) -> dict[str, str]:
    """A science image (uncompressed) and two difference images (compressed) for the files."""
    import psycopg

    half_ra = NAXIS1 * PIXEL / 2 / math.cos(math.radians(45.0))
    half_dec = NAXIS2 * PIXEL / 2
    corners = [(200 - half_ra, 45 - half_dec), (200 + half_ra, 45 - half_dec),
               (200 + half_ra, 45 + half_dec), (200 - half_ra, 45 + half_dec)]
    spoly = "{" + ",".join(f"({r}d,{d}d)" for r, d in corners) + "}"
    dids = {}
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO survey.exposures (expid, obsjd, telra, teldec, programid,"
            " filtercode) VALUES (9000000, %s, 200, 45, 1, 'zr')", (OBSJD0,))
        connection.execute(
            "INSERT INTO survey.science_images (pid, expid, obsjd, rcid, ra, dec, footprint,"
            " programid, filtercode, ra1, dec1, ra3, dec3, naxis1, naxis2)"
            " VALUES (900000000, 9000000, %s, 0, 200, 45, %s::spoly, 1, 'zr', %s, %s, %s, %s,"
            " %s, %s)",
            (OBSJD0, spoly, *corners[0], *corners[2], NAXIS1, NAXIS2))
        for index in range(2):
            connection.execute(
                "INSERT INTO survey.reference_images (refid, field, rcid, filtercode, ra, dec,"
                " programids) VALUES (%s, 1, %s, 'zr', 200, 45, '{1}')",
                (900000000 + index, index))
            connection.execute(
                "INSERT INTO survey.difference_images (diffid, pid, refid, expid, obsjd, rcid,"
                " ra, dec, footprint, programid, filtercode, ra1, dec1, ra3,"
                " dec3) VALUES (%s, 900000000, %s, 9000000, %s, 0, 200, 45, %s::spoly,"
                " 1, 'zr', %s, %s, %s, %s)",
                (900000001 + index, 900000000 + index, OBSJD0, spoly, *corners[0],
                 *corners[2]))
        for name, (table, key, product) in {
            "plain": ("science_images", 900000000, "sciimg"),
            "rice_rows": ("difference_images", 900000001, "diffimg"),
            "rice_128": ("difference_images", 900000002, "diffimg"),
        }.items():
            content = files[name].read_bytes()
            connection.execute(
                "INSERT INTO survey.files (path, product, image_table, image_id, content_type,"
                " size_bytes, sha256, programids, obsjd) VALUES (%s, %s, %s, %s,"
                " 'application/fits', %s, %s, '{1}', %s)",
                (str(files[name].relative_to(store)), product, table, key, len(content),
                 hashlib.sha256(content).hexdigest(), OBSJD0))
            collection = "sci" if table == "science_images" else "diff"
            dids[name] = f"ivo://skyvault.archive/{collection}?{key}"
    return dids


# -- measuring ------------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def timed_get(session, url: str, params=None) -> tuple[float, int, int]:
    start = time.perf_counter()
    response = session.get(url, params=params, timeout=120)
    content = response.content
    elapsed = time.perf_counter() - start
    return elapsed, response.status_code, len(content)


def sia_queries(rng: np.random.Generator, count: int) -> dict[str, list[dict]]:
    fields = field_grid()
    kinds: dict[str, list[dict]] = {"CIRCLE r=0.1": [], "CIRCLE+BAND+TIME": [],
                                    "POLYGON 0.2 deg": []}
    for _ in range(count):
        _, fra, fdec = fields[rng.integers(len(fields))]
        dec = fdec + rng.uniform(-3, 3)
        ra = (fra + rng.uniform(-3, 3) / math.cos(math.radians(dec))) % 360
        kinds["CIRCLE r=0.1"].append({"POS": f"CIRCLE {ra:.5f} {dec:.5f} 0.1"})
        mjd = OBSJD0 - 2400000.5 + rng.uniform(0, 9)
        kinds["CIRCLE+BAND+TIME"].append({"POS": f"CIRCLE {ra:.5f} {dec:.5f} 0.1",
                                          "BAND": "6e-7", "TIME": f"{mjd} {mjd + 3}"})
        size = 0.1 / math.cos(math.radians(dec))
        kinds["POLYGON 0.2 deg"].append({"POS": f"POLYGON {ra - size:.5f} {dec - 0.1:.5f} "
                                                f"{ra + size:.5f} {dec - 0.1:.5f} "
                                                f"{ra:.5f} {dec + 0.1:.5f}"})
    return kinds


def database_only(queries: list[dict]) -> float:
    """p50 of the same queries' SQL run as the service runs it (app role, anonymous requester,
    binary results), without HTTP or VOTable writing."""
    from skyvault.access import ANONYMOUS
    from skyvault.db import database
    from skyvault.server.images.sia import sia_sql
    from skyvault.vo.dali import Parameters
    from skyvault.vo.sia import parse_sia_query

    samples = []
    for params in queries:
        sql, values = sia_sql(parse_sia_query(Parameters(params.items())),
                              "http://127.0.0.1/datalink/links?ID=")
        with database().reading(ANONYMOUS, statement_timeout_ms=120_000) as connection:
            start = time.perf_counter()
            connection.execute(sql, values, binary=True).fetchall()
            samples.append(time.perf_counter() - start)
    return percentiles(samples[10:])[0]


def bench_sia(base: str, count: int) -> None:
    import requests

    session = requests.Session()
    for _ in range(20):
        timed_get(session, f"{base}/sia/availability")
    floor = [timed_get(session, f"{base}/sia/availability")[0] for _ in range(200)]
    floor_p50, _ = percentiles(floor)
    print(f"  floor: GET /sia/availability p50 {floor_p50 * 1e3:.2f} ms")
    rng = np.random.default_rng(3)
    for kind, queries in sia_queries(rng, count).items():
        for params in queries[:10]:
            timed_get(session, f"{base}/sia/query", params)  # warm caches and connections
        samples, rows = [], []
        for params in queries:
            seconds, status, size = timed_get(session, f"{base}/sia/query", params)
            assert status == 200, status
            samples.append(seconds)
            rows.append(size)
        p50, p90 = percentiles(samples)
        response = session.get(f"{base}/sia/query", params=queries[0], timeout=60)
        typical_rows = response.text.count("<TR>")
        database_p50 = database_only(queries)
        print(f"  SIA {kind:18s} p50 {p50 * 1e3:7.2f} ms  p90 {p90 * 1e3:7.2f} ms  "
              f"({len(queries)} queries; first returned {typical_rows} rows, median "
              f"{statistics.median(rows) / 1024:.0f} KiB)  ratio to floor "
              f"{p50 / floor_p50:.1f}x; the SQL alone p50 {database_p50 * 1e3:.2f} ms")


def scs_cones(rng: np.random.Generator, count: int) -> dict[str, list[dict]]:
    fields = field_grid()
    kinds: dict[str, list[dict]] = {"SR=0.5 VERB=2": [], "SR=1 VERB=3": []}
    for _ in range(count):
        _, fra, fdec = fields[rng.integers(len(fields))]
        dec = fdec + rng.uniform(-3, 3)
        ra = (fra + rng.uniform(-3, 3) / math.cos(math.radians(dec))) % 360
        kinds["SR=0.5 VERB=2"].append({"RA": f"{ra:.5f}", "DEC": f"{dec:.5f}", "SR": "0.5"})
        kinds["SR=1 VERB=3"].append({"RA": f"{ra:.5f}", "DEC": f"{dec:.5f}", "SR": "1",
                                     "VERB": "3"})
    return kinds


def bench_scs(base: str, count: int) -> None:
    import requests

    session = requests.Session()
    for _ in range(20):
        timed_get(session, f"{base}/sia/availability")
    floor_p50, _ = percentiles([timed_get(session, f"{base}/sia/availability")[0]
                                for _ in range(200)])
    print(f"  floor: GET /sia/availability p50 {floor_p50 * 1e3:.2f} ms")
    url = f"{base}/scs/science_images"
    rng = np.random.default_rng(7)
    for kind, cones in scs_cones(rng, count).items():
        for params in cones[:10]:
            timed_get(session, url, params)  # warm caches and connections
        samples, sizes, rows = [], [], []
        for params in cones:
            start = time.perf_counter()
            response = session.get(url, params=params, timeout=120)
            content = response.content
            samples.append(time.perf_counter() - start)
            assert response.status_code == 200 and b'name="Error"' not in content, content[:300]
            sizes.append(len(content))
            rows.append(content.count(b"<TR>"))
        p50, p90 = percentiles(samples)
        print(f"  SCS {kind:14s} p50 {p50 * 1e3:7.2f} ms  p90 {p90 * 1e3:7.2f} ms  "
              f"({len(cones)} cones; median {statistics.median(rows):.0f} rows, "
              f"{statistics.median(sizes) / 1024:.0f} KiB)  ratio to floor {p50 / floor_p50:.1f}x")


def bench_cutouts(base: str, files: dict[str, Path], dids: dict[str, str],
                  count: int) -> None:
    import fitsio
    import requests

    session = requests.Session()
    rng = np.random.default_rng(5)
    half_ra = (NAXIS1 * PIXEL / 2 - 0.02) / math.cos(math.radians(45.0))
    half_dec = NAXIS2 * PIXEL / 2 - 0.02
    positions = [(200 + rng.uniform(-half_ra, half_ra), 45 + rng.uniform(-half_dec, half_dec))
                 for _ in range(count)]
    for name, did in dids.items():
        path = files[name]
        hdu = 0 if name == "plain" else 1
        reads = []
        for _ in range(5):
            start = time.perf_counter()
            with fitsio.FITS(str(path)) as handle:
                handle[hdu].read()
            reads.append(time.perf_counter() - start)
        full_read = statistics.median(reads)
        store = path.parent.parent
        file_url = f"{base}/files/{path.relative_to(store)}"
        downloads = [timed_get(session, file_url)[0] for _ in range(5)]
        full_http = statistics.median(downloads)
        for ra, dec in positions[:10]:
            timed_get(session, f"{base}/soda/sync",
                      {"ID": did, "CIRCLE": f"{ra} {dec} {CUTOUT_RADIUS}"})
        samples = []
        size = 0
        for ra, dec in positions:
            seconds, status, size = timed_get(session, f"{base}/soda/sync", {
                "ID": did, "CIRCLE": f"{ra:.6f} {dec:.6f} {CUTOUT_RADIUS}"})
            assert status == 200, status
            samples.append(seconds)
        p50, p90 = percentiles(samples)
        print(f"  SODA {name:10s} ({path.stat().st_size / 2**20:5.1f} MiB) p50 "
              f"{p50 * 1e3:6.2f} ms  p90 {p90 * 1e3:6.2f} ms  ({size / 1024:.0f} KiB cutout)  | "
              f"whole file: fitsio read {full_read * 1e3:7.1f} ms (ratio "
              f"{full_read / p50:5.1f}x), HTTP download {full_http * 1e3:7.1f} ms (ratio "
              f"{full_http / p50:5.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exposures", type=int, default=15_625)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--cutouts", type=int, default=200)
    parser.add_argument("--only", choices=("sia", "scs", "soda"), action="append",
                        help="measure only these services (default: all)")
    parser.add_argument("--keep", action="store_true", help="leave the home folder in place")
    parser.add_argument("--home", type=Path,
                        help="a home a --keep run left: measure again without loading")
    args = parser.parse_args()

    reuse = args.home is not None
    home = args.home or Path(tempfile.mkdtemp(prefix="skyvault-bench-images-", dir="/tmp"))
    home.chmod(0o755)
    http_port = free_port()
    pg_port = free_port()
    if reuse:
        settings_file = home / "pgdata" / "skyvault.conf"
        pg_port = int(next(line.split("=")[1] for line in settings_file.read_text().splitlines()
                           if line.startswith("port")))
    os.environ.update({"SKYVAULT_HOME": str(home), "SKYVAULT_PGPORT": str(pg_port),
                       "SKYVAULT_PORT": str(http_port)})
    for variable in ("SKYVAULT_DATABASE_URL", "SKYVAULT_PGDATA", "SKYVAULT_STORE",
                     "SKYVAULT_X_ACCEL_PREFIX", "SKYVAULT_BASE_URL"):
        os.environ.pop(variable, None)

    from skyvault.config import settings
    from skyvault.db import database_urls, embedded_cluster
    from skyvault.schema.migrate import upgrade

    cluster = embedded_cluster()
    server = None
    try:
        cluster.start()
        admin = database_urls().admin
        upgrade(admin)
        store = settings().store_root
        if reuse:
            files = {"plain": store / "bench/quadrant.fits",
                     "rice_rows": store / "bench/quadrant_rows.fits.fz",
                     "rice_128": store / "bench/quadrant_128.fits.fz"}
            dids = {"plain": "ivo://skyvault.archive/sci?900000000",
                    "rice_rows": "ivo://skyvault.archive/diff?900000001",
                    "rice_128": "ivo://skyvault.archive/diff?900000002"}
        else:
            print(f"Loading {args.exposures:,} exposures x 64 science images + 16 raw frames")
            for key, value in load_images(admin, args.exposures).items():
                print(f"  {key:24s} {value:14,.1f}")
            files = write_quadrants(store)
            dids = register_quadrants(admin, store, files)
        server = subprocess.Popen(
            [sys.executable, "-m", "skyvault", "serve", "--port", str(http_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{http_port}"
        wait_for(f"{base}/healthz", 180)
        print(f"Server: skyvault serve (gunicorn gthread, {os.cpu_count()} cores, "
              "default workers and threads), one client, keep-alive; load average "
              f"{os.getloadavg()[0]:.1f}")
        wanted = set(args.only or ("sia", "scs", "soda"))
        if "sia" in wanted:
            print(f"SIA 2.0 over ivoa.obscore ({args.queries} queries of each kind)")
            bench_sia(base, args.queries)
        if "scs" in wanted:
            print(f"SCS 1.03 on science_images ({args.queries} cones of each kind)")
            bench_scs(base, args.queries)
        if "soda" in wanted:
            print(f"SODA sync, 1 arcmin cutouts of a {NAXIS1} x {NAXIS2} float32 quadrant "
                  f"({args.cutouts} random positions)")
            bench_cutouts(base, files, dids, args.cutouts)
        print(f"Load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.keep or reuse:
            cluster.stop()
        else:
            cluster.destroy()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
