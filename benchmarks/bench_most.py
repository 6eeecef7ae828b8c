"""Moving-object search on a synthetic year of survey metadata.

    .venv/bin/python -m benchmarks.bench_most [--nights 365] [--objects 10000]
        [--home DIR] [--dsn URL] [--repeat 5] [--guard-only]

A ZTF-like year (sso/synthetic.py: a fixed field grid, fields near the meridian taken twice a
night, 30 s exposures back to back for 9 hours, 30% of nights lost to weather, 64 readout
quadrants per exposure: about 13 million science images) is written into survey.exposures
and survey.science_images of a throwaway database (binary COPY into a staging table, then one
INSERT that adds the pgsphere footprints; secondary indexes built after the load, as ingest's
seal does). Programs 1-3 are spread over the exposures, a third of them still embargoed.

Then, through the service's role with row-level security (a member of every program):

1. one object over the whole year: ``search_images`` for real orbits (main-belt, near-Earth,
   comet) and synthetic ones; seconds, cold (first) and warm (median of --repeat), by stage.
   Baseline of the same run: the obvious SQL, one q3c cone per night around the object's
   position (radius: a quadrant plus a night's motion) within that night's obsjd range,
   candidates only (no exact check).
2. a batch of --objects synthetic orbits against one night: ``search_batch.search_night`` on
   the night's images read once (``night_images``); objects per minute. Baseline: the
   per-object search restricted to that night, for a sample of the objects.
3. the cost of the integration guard (``sso.isolation``: ASSIST runs in a child process, so a
   crash cannot take the server with it): the year searches and the batch with the guard and
   with it switched off (``SKYVAULT_SSO_ISOLATION=off``), alternating, in the same run; and the
   start of the guard's processes (the first guarded call of a process).

``--home DIR`` keeps the cluster (and its data) in DIR: a second run skips the load. Without
it (and without --dsn) the cluster is made under /tmp and removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.support import throwaway_cluster
from skyvault.access import Requester
from skyvault.db import Database, DatabaseUrls
from skyvault.geometry import radec_of
from skyvault.ingest.copybinary import CopyColumn, RecordBatch
from skyvault.ingest.load import copy_batches
from skyvault.schema.migrate import upgrade
from skyvault.sso.ephemeris import predict
from skyvault.sso.isolation import ISOLATION_VARIABLE, POOL_SIZE, shutdown, warm_up
from skyvault.sso.orbits import load_demo_orbits
from skyvault.sso.search import CAMERA_RADIUS_DEG, coarse_path, near_pointings
from skyvault.sso.search_batch import search_night
from skyvault.sso.search_db import (
    SearchCriteria,
    exact_matches,
    night_images,
    quadrants_near,
    science_exposures,
    search_images,
)
from skyvault.sso.synthetic import EXPTIME_S, camera_quadrants, random_orbits, survey_nights

FIRST_MJD = 61041.0  # 2026-01-01
EVERYONE = Requester(user_id=1, username="bench", programs=frozenset({1, 2, 3}))
STAGING = "public.most_staging"
QUADRANT_COLUMNS = (
    ("pid", "bigint"), ("expid", "bigint"), ("obsjd", "double precision"), ("nid", "integer"),
    ("field", "integer"), ("ccdid", "smallint"), ("qid", "smallint"), ("rcid", "smallint"),
    ("fid", "smallint"), ("filtercode", "char(2)"), ("exptime", "real"), ("seeing", "real"),
    ("maglimit", "real"), ("ra", "double precision"), ("dec", "double precision"),
    *[(f"{axis}{k}", "double precision") for k in range(1, 5) for axis in ("ra", "dec")],
    ("crval1", "double precision"), ("crval2", "double precision"),
    ("crpix1", "double precision"), ("crpix2", "double precision"),
    ("cd11", "double precision"), ("cd12", "double precision"),
    ("cd21", "double precision"), ("cd22", "double precision"),
    ("naxis1", "integer"), ("naxis2", "integer"), ("programid", "smallint"),
)
EXPOSURE_COLUMNS = (
    ("expid", "bigint"), ("obsjd", "double precision"), ("nid", "integer"),
    ("field", "integer"), ("fid", "smallint"), ("filtercode", "char(2)"), ("exptime", "real"),
    ("telra", "double precision"), ("teldec", "double precision"), ("itid", "smallint"),
    ("imgtypecode", "char(1)"), ("programid", "smallint"),
)
SECONDARY_INDEXES = ("science_images_q3c_idx", "science_images_footprint_idx",
                     "science_images_obsjd_idx", "science_images_field_idx",
                     "science_images_nid_idx", "exposures_q3c_idx", "exposures_obsjd_idx")


# --------------------------------------------------------------------------- the year


def load_year(connection: psycopg.Connection, nights: int, seed: int = 2026) -> int:
    rng = np.random.default_rng(seed)
    connection.execute("SET session_replication_role = replica")  # no FK checks in the load
    saved = connection.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'survey'"
        " AND indexname = ANY(%s)", (list(SECONDARY_INDEXES),)).fetchall()
    for name, _ in saved:
        connection.execute(f"DROP INDEX survey.{name}")
    connection.execute(f"DROP TABLE IF EXISTS {STAGING}")
    connection.execute(f"CREATE UNLOGGED TABLE {STAGING} AS SELECT "
                       + ", ".join(name for name, _ in QUADRANT_COLUMNS)
                       + " FROM survey.science_images WITH NO DATA")
    connection.commit()
    quadrant_columns = [CopyColumn(n, t) for n, t in QUADRANT_COLUMNS]
    exposure_columns = [CopyColumn(n, t) for n, t in EXPOSURE_COLUMNS]
    started = time.perf_counter()
    expid_next, pid_next, images = 1, 1, 0
    for plan in survey_nights(FIRST_MJD, nights, rng, weather_loss=0.3):
        n = plan.mjd_start.size
        expid = np.arange(expid_next, expid_next + n, dtype=np.int64)
        expid_next += n
        obsjd = plan.mjd_start + 2400000.5
        programid = rng.choice(np.array([1, 2, 3], dtype=np.int16), n, p=[0.5, 0.35, 0.15])
        fid = np.array([{"zg": 1, "zr": 2, "zi": 3}[c] for c in plan.filtercode], np.int16)
        codes = np.array([c.encode() for c in plan.filtercode], dtype="S2")
        exposures = RecordBatch(exposure_columns, n)
        for name, value in (("expid", expid), ("obsjd", obsjd),
                            ("nid", np.full(n, plan.nid, np.int32)), ("field", plan.field),
                            ("fid", fid), ("filtercode", codes),
                            ("exptime", np.full(n, EXPTIME_S, np.float32)),
                            ("telra", plan.telra), ("teldec", plan.teldec),
                            ("itid", np.ones(n, np.int16)), ("imgtypecode", b"o"),
                            ("programid", programid)):
            exposures.set(name, value)
        copy_batches(connection, "survey.exposures", [exposures])
        q = camera_quadrants(plan.telra, plan.teldec)
        rows = n * 64
        batch = RecordBatch(quadrant_columns, rows)
        per_image = {
            "pid": np.arange(pid_next, pid_next + rows, dtype=np.int64),
            "expid": np.repeat(expid, 64), "obsjd": np.repeat(obsjd, 64),
            "nid": np.full(rows, plan.nid, np.int32), "field": np.repeat(plan.field, 64),
            "ccdid": np.tile(q.ccdid, n), "qid": np.tile(q.qid, n), "rcid": np.tile(q.rcid, n),
            "fid": np.repeat(fid, 64), "filtercode": np.repeat(codes, 64),
            "exptime": np.full(rows, EXPTIME_S, np.float32),
            "seeing": rng.uniform(1.5, 3.0, rows).astype(np.float32),
            "maglimit": rng.uniform(19.5, 21.0, rows).astype(np.float32),
            "ra": q.centre_ra.ravel(), "dec": q.centre_dec.ravel(),
            "crval1": q.centre_ra.ravel(), "crval2": q.centre_dec.ravel(),
            "crpix1": np.full(rows, 1536.5), "crpix2": np.full(rows, 1540.5),
            "cd11": np.full(rows, q.cd[0, 0]), "cd12": np.zeros(rows),
            "cd21": np.zeros(rows), "cd22": np.full(rows, q.cd[1, 1]),
            "naxis1": np.full(rows, 3072, np.int32), "naxis2": np.full(rows, 3080, np.int32),
            "programid": np.repeat(programid, 64),
        }
        for k in range(4):
            per_image[f"ra{k + 1}"] = q.corners_ra[:, :, k].ravel()
            per_image[f"dec{k + 1}"] = q.corners_dec[:, :, k].ravel()
        for name, value in per_image.items():
            batch.set(name, value)
        copy_batches(connection, STAGING, [batch])
        pid_next += rows
        images += rows
        connection.commit()
    print(f"  staged {images:,} images in {time.perf_counter() - started:,.0f} s")
    started = time.perf_counter()
    names = ", ".join(name for name, _ in QUADRANT_COLUMNS)
    corners = " || ',' || ".join(
        f"'(' || ra{k} || 'd,' || dec{k} || 'd)'" for k in range(1, 5))
    connection.execute(
        f"INSERT INTO survey.science_images ({names}, obsdate, footprint)"
        f" SELECT {names}, archive.jd_to_timestamp(obsjd), ('{{' || {corners} || '}}')::spoly"
        f" FROM {STAGING} ORDER BY pid")
    connection.execute(f"DROP TABLE {STAGING}")
    connection.commit()
    print(f"  inserted with footprints in {time.perf_counter() - started:,.0f} s")
    started = time.perf_counter()
    for _, definition in saved:
        connection.execute(definition)
        connection.commit()
    connection.execute("SET session_replication_role = origin")
    connection.commit()
    connection.autocommit = True
    connection.execute("VACUUM ANALYZE survey.exposures")
    connection.execute("VACUUM ANALYZE survey.science_images")
    connection.autocommit = False
    print(f"  indexes and statistics in {time.perf_counter() - started:,.0f} s")
    return images


# --------------------------------------------------------------------------- measurements


def timed(function, repeat: int) -> tuple[float, float, object]:
    started = time.perf_counter()
    result = function()
    cold = time.perf_counter() - started
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return cold, statistics.median(times) if times else cold, result


def stages(database: Database, orbit) -> dict[str, float]:
    """The search's stages timed one by one (warm), as search_images runs them."""
    spent: dict[str, float] = {}
    with database.reading(EVERYONE) as connection:
        t = time.perf_counter()
        exposures = science_exposures(connection, SearchCriteria())
        spent["exposures (COPY)"] = time.perf_counter() - t
        t = time.perf_counter()
        path = coarse_path(orbit, float(exposures.mid_mjd.min()), float(exposures.mid_mjd.max()))
        spent["coarse path"] = time.perf_counter() - t
        t = time.perf_counter()
        near = near_pointings(path, exposures.mid_mjd, exposures.telra, exposures.teldec,
                              CAMERA_RADIUS_DEG)
        candidates = exposures.take(near)
        vectors, margin = path.at(candidates.mid_mjd)
        spent["candidate exposures"] = time.perf_counter() - t
        t = time.perf_counter()
        ra, dec = radec_of(vectors)
        quadrants = quadrants_near(connection, candidates, ra, dec, margin)
        spent["candidate images (SQL)"] = time.perf_counter() - t
        t = time.perf_counter()
        exact_matches(orbit, quadrants, "I41")
        spent["exact predictions + corners"] = time.perf_counter() - t
    return spent


def per_night_cones(database: Database, orbit) -> tuple[float, int]:
    """Baseline: one q3c cone per night over science_images, within the night's obsjd."""
    started = time.perf_counter()
    with database.reading(EVERYONE) as connection:
        first, last = connection.execute(
            "SELECT min(obsjd), max(obsjd) FROM survey.exposures").fetchone()
        nights = np.arange(np.floor(first - 2400000.5), np.ceil(last - 2400000.5) + 1)
        ephemeris = predict(orbit, nights + 0.5)
        speed = np.hypot(ephemeris.ra_rate, ephemeris.dec_rate) * 24 / 3600  # deg/day
        found = 0
        for k, night in enumerate(nights):
            radius = 0.65 + 0.5 * float(speed[k])
            found += connection.execute(
                "SELECT count(*) FROM survey.science_images WHERE obsjd BETWEEN %s AND %s"
                " AND q3c_radial_query(ra, dec, %s, %s, %s)",
                (night + 2400000.5, night + 2400001.5, float(ephemeris.ra[k]),
                 float(ephemeris.dec[k]), radius)).fetchone()[0]
    return time.perf_counter() - started, found


def bench_year(database: Database, repeat: int) -> None:
    demo = {orbit.label: orbit for orbit in load_demo_orbits()}
    rng = np.random.default_rng(7)
    synthetic = random_orbits(2, FIRST_MJD + 180, rng, near_earth_fraction=0.5)
    objects = [demo["(4) Vesta"], demo["(433) Eros"], demo["2P/Encke"], *synthetic]
    print("One object over the whole year (service role, member of every program)")
    print(f"  {'object':24s} {'cold s':>8s} {'warm s':>8s} {'matches':>8s} {'exposures':>10s}"
          f" {'cand. exp.':>10s} {'cand. img':>10s}")
    for orbit in objects:
        cold, warm, result = timed(lambda orbit=orbit: search_all(database, orbit), repeat)
        s = result.stats
        print(f"  {orbit.label[:24]:24s} {cold:8.3f} {warm:8.3f} {s.matches:8d} "
              f"{s.exposures:10,d} {s.candidate_exposures:10,d} {s.candidate_images:10,d}")
    print("  stages (warm), (4) Vesta:")
    for name, seconds in stages(database, demo["(4) Vesta"]).items():
        print(f"    {name:32s} {seconds:8.3f} s")
    baseline, found = per_night_cones(database, demo["(4) Vesta"])
    _, warm, _ = timed(lambda: search_all(database, demo["(4) Vesta"]), 1)
    print(f"  baseline, one q3c cone per night (candidates only, {found} found): "
          f"{baseline:.3f} s; ratio to the search (warm): {baseline / warm:.1f}x")


def search_all(database: Database, orbit):
    with database.reading(EVERYONE) as connection:
        return search_images(connection, orbit, SearchCriteria())


def bench_batch(database: Database, count: int, sample: int) -> None:
    with database.reading(EVERYONE) as connection:
        nids = connection.execute(
            "SELECT nid, min(obsjd), max(obsjd), count(*) FROM survey.exposures"
            " GROUP BY nid ORDER BY nid").fetchall()
    nid, first, last, exposures = nids[len(nids) // 2]
    begin, end = first - 2400000.5, last - 2400000.5 + EXPTIME_S / 86400
    rng = np.random.default_rng(11)
    orbits = random_orbits(count, round(begin) - 30.0, rng)
    print(f"Batch: {count:,} objects against night {nid} ({exposures} exposures)")
    started = time.perf_counter()
    with database.reading(EVERYONE) as connection:
        images, _ = night_images(connection, begin - 1e-3, end + 1e-3)
    read = time.perf_counter() - started
    started = time.perf_counter()
    found = search_night(orbits, images)
    searched = time.perf_counter() - started
    total = read + searched
    rate = count / total * 60
    print(f"  night's images read: {images.image_id.size:,} in {read:.2f} s")
    print(f"  search: {searched:.1f} s; {found.orbit_index.size:,} matches of "
          f"{np.unique(found.orbit_index).size:,} objects; {found.candidate_pairs:,} candidate "
          "pairs")
    print(f"  objects per minute (read + search): {rate:,.0f}")
    started = time.perf_counter()
    criteria = SearchCriteria(begin - 1e-3, end + 1e-3)
    single = 0
    for orbit in orbits[:sample]:
        with database.reading(EVERYONE) as connection:
            single += len(search_images(connection, orbit, criteria).matches)
    per_object = (time.perf_counter() - started) / sample
    print(f"  baseline, the per-object search on the same night ({sample} objects): "
          f"{60 / per_object:,.0f} objects per minute; ratio {rate * per_object / 60:.1f}x")
    check = sum(1 for k in found.orbit_index if k < sample)
    print(f"  same matches for the sampled objects: {check == single} ({single})")


@contextlib.contextmanager
def isolation(on: bool):
    saved = os.environ.get(ISOLATION_VARIABLE)
    os.environ[ISOLATION_VARIABLE] = "on" if on else "off"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ISOLATION_VARIABLE, None)
        else:
            os.environ[ISOLATION_VARIABLE] = saved


def bench_guard(database: Database, repeat: int, count: int) -> None:
    """Searches with and without the guard, alternating so that the machine's load falls on
    both alike; medians of ``repeat``."""
    shutdown()
    started = time.perf_counter()
    warm_up()
    print("Integration guard (ASSIST in a child process) against none, same run")
    print(f"  guard processes started (fork server, {POOL_SIZE} children, ephemeris files):"
          f" {time.perf_counter() - started:.2f} s")
    demo = {orbit.label: orbit for orbit in load_demo_orbits()}
    print(f"  {'search':32s} {'guarded s':>10s} {'unguarded s':>12s} {'ratio':>6s}")
    with database.reading(EVERYONE) as connection:
        nids = connection.execute(
            "SELECT min(obsjd), max(obsjd) FROM survey.exposures GROUP BY nid"
            " ORDER BY nid").fetchall()
    first, last = nids[len(nids) // 2]
    begin, end = first - 2400000.5, last - 2400000.5 + EXPTIME_S / 86400
    with database.reading(EVERYONE) as connection:
        images, _ = night_images(connection, begin - 1e-3, end + 1e-3)
    orbits = random_orbits(count, round(begin) - 30.0, np.random.default_rng(11))
    cases = [(f"year: {label}", lambda orbit=demo[label]: search_all(database, orbit))
             for label in ("(4) Vesta", "(433) Eros", "2P/Encke")]
    cases.append((f"batch: {count:,} objects, one night", lambda: search_night(orbits, images)))
    for name, function in cases:
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeat):
            for on in (True, False):
                with isolation(on):
                    started = time.perf_counter()
                    function()
                    times[on].append(time.perf_counter() - started)
        guarded, unguarded = (statistics.median(times[on]) for on in (True, False))
        print(f"  {name:32s} {guarded:10.3f} {unguarded:12.3f} {guarded / unguarded:6.2f}")


# --------------------------------------------------------------------------- the cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--dsn")
    parser.add_argument("--guard-only", action="store_true",
                        help="only the integration guard's cost (part 3)")
    args = parser.parse_args()
    cluster = base = None
    if args.dsn:
        admin = app = args.dsn
    else:
        cluster, base = throwaway_cluster(args.home, "skyvault-bench-most-")
        admin, app = cluster.url(), cluster.url(user="skyvault_app")
    try:
        upgrade(admin)
        database = Database(DatabaseUrls(admin=admin, app=app))
        with database.admin() as connection:
            images = connection.execute(
                "SELECT count(*) FROM survey.science_images").fetchone()[0]
            if images == 0:
                print(f"Loading a synthetic year ({args.nights} nights)")
                images = load_year(connection, args.nights)
            exposures = connection.execute("SELECT count(*) FROM survey.exposures").fetchone()[0]
        print(f"Archive: {images:,} science images of {exposures:,} exposures")
        predict(load_demo_orbits()[0], [FIRST_MJD])  # load DE440 and ASSIST once
        if not args.guard_only:
            bench_year(database, args.repeat)
            bench_batch(database, args.objects, args.sample)
        bench_guard(database, args.repeat, args.objects)
        database.close()
    finally:
        if cluster is not None:
            cluster.stop()
            if args.home is None:
                cluster.destroy()
                shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
