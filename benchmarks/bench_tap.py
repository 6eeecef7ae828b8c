"""TAP end to end over HTTP, through the production server (gunicorn via `skyvault serve`).

    .venv/bin/python -m benchmarks.bench_tap [--rows 10000000] [--export-rows 10000000]
                                             [--cones 300] [--regions cone,polygon,box]
                                             [--home DIR] [--keep]

--export-rows 0 leaves the export out.

1. Export: a 10-column result of --export-rows rows from survey.psf_sources through /tap/sync
   (BINARY2 VOTable), read by an HTTP client; rows/s, with the peak memory of the gunicorn
   workers. Baseline in the same run: a bare binary COPY of the same translated SQL in the same
   kind of session (reader role, row-level security), read by psycopg without decoding.
2. Region latency: sequential sync queries at random positions on the catalog of --rows rows,
   for cones (30 arcsec), quadrilaterals (about 1 arcminute across, like a small user
   polygon; ``wide-polygon``: the same, 25 times larger) and boxes (1 arcminute); p50/p90.
   Baselines in the same run: the translated SQL alone on an open connection (the database's
   share), for polygons and boxes alternated with the q3c_poly_query form they were
   translated to before issue 13, the same inside a fresh ``Database.reading()`` session per
   query (pool checkout, settings, role), which is what the service does, and the HTTP floor:
   /tap/availability (one such session running SELECT 1).

A throwaway PostgreSQL cluster is made under /tmp (or reused with --home, kept with --keep); the
catalog spans RA 140-160, Dec -10..+10 (400 square degrees), as a survey field block would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.support import free_port

RA_RANGE = (140.0, 160.0)
DEC_RANGE = (-10.0, 10.0)
EXPORT_COLUMNS = "sourceid, ra, dec, mag, magerr, flux, fluxerr, snr, obsjd, rcid"
CONE_RADIUS = 30 / 3600


def load_catalog(admin_url: str, rows: int) -> None:
    """survey.psf_sources filled with ``rows`` detections (skipped if already there)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        present = connection.execute(
            "SELECT to_regclass('survey.psf_sources_bench') IS NOT NULL").fetchone()[0]
        if present:
            count = connection.execute("SELECT count(*) FROM survey.psf_sources_bench"
                                       ).fetchone()[0]
            if count == rows:
                print(f"catalog: reusing {count:,} rows")
                return
            connection.execute("DROP TABLE survey.psf_sources_bench")
        started = time.perf_counter()
        connection.execute("SET synchronous_commit = off")
        connection.execute("CREATE TABLE survey.psf_sources_bench PARTITION OF"
                           " survey.psf_sources_nights FOR VALUES FROM (0) TO (100000)")
        ra0, ra1 = RA_RANGE
        dec0, dec1 = DEC_RANGE
        step = 2_000_000
        for first in range(1, rows + 1, step):
            last = min(rows, first + step - 1)
            connection.execute(f"""
                INSERT INTO survey.psf_sources (sourceid, pid, expid, nid, field, rcid, fid,
                    filtercode, ra, dec, x, y, mag, magerr, flux, fluxerr, sharpness, chi,
                    flags, snr, obsjd, programid)
                SELECT i, i / 2000, i / 128000, 2000 + (i % 300), 600 + (i % 50), (i % 64),
                       1 + (i % 2), CASE WHEN i % 2 = 0 THEN 'zg' ELSE 'zr' END,
                       {ra0} + random() * {ra1 - ra0},
                       degrees(asin(sin(radians({dec0})) + random()
                               * (sin(radians({dec1})) - sin(radians({dec0}))))),
                       random() * 3072, random() * 3080, 14 + random() * 7,
                       0.01 + random() * 0.2, random() * 1e5, random() * 100, random() - 0.5,
                       0.5 + random(), 0, 5 + random() * 500, 2459000.5 + (i % 300),
                       1
                  FROM generate_series({first}, {last}) AS i""")
        connection.execute("CREATE INDEX ON survey.psf_sources_bench (q3c_ang2ipix(ra, dec))")
        connection.execute("CLUSTER survey.psf_sources_bench USING"
                           " psf_sources_bench_q3c_ang2ipix_idx")
        connection.execute("ANALYZE survey.psf_sources_bench")
        # Public: a data release covers program 1 before 2022 (the rows are of 2020-21).
        connection.execute(
            "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
            " programids) VALUES ('BENCHDR', now() - interval '1 day', '2022-01-01', '{1}')"
            " ON CONFLICT DO NOTHING")
        print(f"catalog: loaded and indexed {rows:,} rows in "
              f"{time.perf_counter() - started:.0f} s")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


class Server:
    """`skyvault serve` (gunicorn) as a child process."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "skyvault", "serve", "--host", "127.0.0.1", "--port",
                 str(port)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=os.environ.copy())
        import requests

        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{self.url}/availability", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("skyvault serve did not start")
            time.sleep(0.3)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tap"

    def workers(self) -> list[int]:
        return children_of(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def translated(adql: str, maxrec: int):
    from skyvault.schema.tables import PUBLISHED_TABLES
    from skyvault.vo.adql import catalog_from_tables, translate

    return translate(adql, catalog_from_tables(PUBLISHED_TABLES), max_rows=maxrec)


def bench_export(server: Server, rows: int) -> None:
    import requests

    from skyvault.access import ANONYMOUS
    from skyvault.db import database

    adql = f"SELECT {EXPORT_COLUMNS} FROM survey.psf_sources"
    query = translated(adql, rows)
    started = time.perf_counter()
    size = 0
    with database().reading(ANONYMOUS, user_query=True) as connection, \
            connection.cursor() as cursor, \
            cursor.copy(f"COPY ({query.sql}) TO STDOUT (FORMAT binary)") as copy:
        for chunk in copy:
            size += len(chunk)
    copy_seconds = time.perf_counter() - started
    copy_rate = rows / copy_seconds

    workers = server.workers()
    before = {pid: memory_kb(pid) for pid in workers}
    peaks = dict.fromkeys(workers, 0)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            for pid in workers:
                with contextlib.suppress(OSError):
                    peaks[pid] = max(peaks[pid], memory_kb(pid)[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    received = 0
    with requests.get(f"{server.url}/sync", params={"LANG": "ADQL", "QUERY": adql,
                                                    "MAXREC": str(rows)},
                      stream=True, timeout=3600) as response:
        response.raise_for_status()
        tail = b""
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
            tail = (tail + chunk)[-400:]
    http_seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    assert b"</VOTABLE>" in tail and b"OVERFLOW" not in tail and b"ERROR" not in tail, tail
    http_rate = rows / http_seconds
    print(f"\n== export of {rows:,} rows, 10 columns, BINARY2 over HTTP ==")
    print(f"baseline: bare binary COPY of the same SQL as the reader, psycopg read loop: "
          f"{copy_rate:,.0f} rows/s ({size / 1e6:,.0f} MB in {copy_seconds:.1f} s)")
    print(f"TAP /sync through gunicorn, client reading the stream: {http_rate:,.0f} rows/s "
          f"({received / 1e6:,.0f} MB in {http_seconds:.1f} s); ratio to COPY "
          f"{http_rate / copy_rate:.2f}; goal 500,000 rows/s")
    for pid in workers:
        rss_before, _ = before[pid]
        _, high_water = memory_kb(pid)
        print(f"gunicorn worker {pid}: RSS {rss_before / 1024:.0f} MB before, sampled peak "
              f"during {peaks[pid] / 1024:.0f} MB, lifetime VmHWM {high_water / 1024:.0f} MB")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


SELECT_REGION = "SELECT sourceid, ra, dec, mag, magerr, obsjd FROM survey.psf_sources WHERE "
POLYGON_OFFSETS = [(-0.008, -0.009), (0.009, -0.008), (0.007, 0.008), (-0.009, 0.007)]
"""An irregular quadrilateral, about 1 arcminute across."""
BOX_SIDE = 0.0167


def region_vertices(kind: str, ra: float, dec: float) -> list[tuple[float, float]]:
    from skyvault.vo.adql.geometry import box_vertices

    if kind in ("polygon", "wide-polygon"):
        scale = 25 if kind == "wide-polygon" else 1
        return [(round(ra + scale * x, 6), round(dec + scale * y, 6)) for x, y in POLYGON_OFFSETS]
    return box_vertices(round(ra, 6), round(dec, 6), BOX_SIDE, BOX_SIDE)


def region_adql(kind: str, ra: float, dec: float) -> str:
    """A query of the rows in a small region about (ra, dec)."""
    if kind == "cone":
        return (f"{SELECT_REGION}1 = CONTAINS(POINT('ICRS', ra, dec), "
                f"CIRCLE('ICRS', {ra:.6f}, {dec:.6f}, {CONE_RADIUS:.8f}))")
    if kind in ("polygon", "wide-polygon"):
        flat = ", ".join(f"{a:.6f}, {d:.6f}" for a, d in region_vertices(kind, ra, dec))
        return f"{SELECT_REGION}1 = CONTAINS(POINT('ICRS', ra, dec), POLYGON('ICRS', {flat}))"
    return (f"{SELECT_REGION}1 = CONTAINS(POINT('ICRS', ra, dec), "
            f"BOX('ICRS', {ra:.6f}, {dec:.6f}, {BOX_SIDE}, {BOX_SIDE}))")


def q3c_poly_query_sql(kind: str, ra: float, dec: float) -> str | None:
    """The SQL ADQL polygons and boxes were translated to before issue 13 (q3c_poly_query,
    whose per-backend cache a pooled connection carries between users): the same-run
    baseline of the translation that replaced it."""
    if kind == "cone":
        return None
    array = ", ".join(f"{v!r}::float8" for vertex in region_vertices(kind, ra, dec)
                      for v in vertex)
    return (f"{SELECT_REGION}q3c_poly_query(ra, dec, ARRAY[{array}]::float8[]) "
            f"LIMIT 100001")


def bench_regions(server: Server, kind: str, count: int) -> None:
    import random

    import requests

    from skyvault.access import ANONYMOUS
    from skyvault.db import database

    generator = random.Random(7)
    centres = [(generator.uniform(RA_RANGE[0] + 1, RA_RANGE[1] - 1),
                generator.uniform(DEC_RANGE[0] + 1, DEC_RANGE[1] - 1)) for _ in range(count)]

    def adql(ra: float, dec: float) -> str:
        return region_adql(kind, ra, dec)

    session = requests.Session()
    for ra, dec in centres[:20]:  # warm up every worker's pool and caches
        session.get(f"{server.url}/sync", params={"LANG": "ADQL", "QUERY": adql(ra, dec)})
    http_ms = []
    for ra, dec in centres:
        started = time.perf_counter()
        response = session.get(f"{server.url}/sync",
                               params={"LANG": "ADQL", "QUERY": adql(ra, dec)})
        body = response.content
        http_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and body.endswith(b"</VOTABLE>\n")
    floor_ms = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(f"{server.url}/availability").raise_for_status()
        floor_ms.append((time.perf_counter() - started) * 1000)
    sqls = [translated(adql(ra, dec), 100_000).sql for ra, dec in centres]
    former = [q3c_poly_query_sql(kind, ra, dec) for ra, dec in centres]
    db = database()
    alone_ms, former_ms, rows, former_rows = [], [], 0, 0
    with db.reading(ANONYMOUS, user_query=True) as connection, connection.cursor() as cursor:
        for sql in sqls[:20]:
            cursor.execute(sql)
            cursor.fetchall()
        for sql, old in zip(sqls, former, strict=True):  # alternated: the same conditions
            started = time.perf_counter()
            cursor.execute(sql)
            rows += len(cursor.fetchall())
            alone_ms.append((time.perf_counter() - started) * 1000)
            if old is not None:
                started = time.perf_counter()
                cursor.execute(old)
                former_rows += len(cursor.fetchall())
                former_ms.append((time.perf_counter() - started) * 1000)
    session_ms = []
    for sql in sqls:
        started = time.perf_counter()
        with db.reading(ANONYMOUS, user_query=True, statement_timeout_ms=600_000,
                        base_url="http://bench") as connection:
            connection.execute(sql).fetchall()
        session_ms.append((time.perf_counter() - started) * 1000)
    p50_http, p50_alone = statistics.median(http_ms), statistics.median(alone_ms)
    print(f"\n== sync {kind} queries, {count} positions, "
          f"{rows / count:.1f} rows each on average ==")
    print(f"baseline: the translated SQL alone on an open connection: p50 {p50_alone:.2f} ms, "
          f"p90 {percentile(alone_ms, 0.9):.2f} ms")
    if former_ms:
        print(f"the former q3c_poly_query SQL, alternated with it: p50 "
              f"{statistics.median(former_ms):.2f} ms, p90 {percentile(former_ms, 0.9):.2f} ms "
              f"({former_rows / count:.1f} rows each); ratio of the p50s "
              f"{p50_alone / statistics.median(former_ms):.2f}")
    print(f"the SQL in a fresh Database.reading() session each time: p50 "
          f"{statistics.median(session_ms):.2f} ms, p90 {percentile(session_ms, 0.9):.2f} ms")
    print(f"floor: /tap/availability over HTTP (one reading() session, SELECT 1): p50 "
          f"{statistics.median(floor_ms):.2f} ms")
    print(f"TAP /sync over HTTP (gunicorn, keep-alive client): p50 {p50_http:.2f} ms, "
          f"p90 {percentile(http_ms, 0.9):.2f} ms, mean {statistics.fmean(http_ms):.2f} ms; "
          f"p50 ratio to the database alone {p50_http / p50_alone:.1f}; goal p50 < 5 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--export-rows", type=int, default=None,
                        help="rows of the export (default: --rows)")
    parser.add_argument("--cones", type=int, default=300, help="positions per region kind")
    parser.add_argument("--regions", default="cone,polygon,box",
                        help="region kinds to time, comma-separated")
    parser.add_argument("--home", type=Path, default=None,
                        help="reuse this SKYVAULT_HOME (its cluster and catalog)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster and its data")
    arguments = parser.parse_args()
    home = arguments.home or Path(tempfile.mkdtemp(prefix="skyvault-bench-tap-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # the cluster runs as another user, who must reach its folder
    port_file = home / "bench-pgport"
    if not port_file.exists():
        port_file.write_text(str(free_port()))
    os.environ["SKYVAULT_HOME"] = str(home)
    os.environ["SKYVAULT_PGPORT"] = port_file.read_text().strip()
    os.environ.pop("SKYVAULT_DATABASE_URL", None)
    os.environ["SKYVAULT_TAP_HARD_MAXREC"] = str(max(arguments.rows, 50_000_000))

    from skyvault.db import database_urls, embedded_cluster
    from skyvault.schema.migrate import upgrade

    cluster = embedded_cluster()
    cluster.start()
    server = None
    try:
        upgrade(database_urls().admin)
        load_catalog(database_urls().admin, arguments.rows)
        server = Server(free_port(), home / "serve.log")
        print(f"skyvault serve: {len(server.workers())} gunicorn workers, {os.cpu_count()} cores;"
              f" load average {os.getloadavg()[0]:.1f}")
        for kind in arguments.regions.split(","):
            bench_regions(server, kind, arguments.cones)
        export_rows = arguments.rows if arguments.export_rows is None else arguments.export_rows
        if export_rows:
            bench_export(server, export_rows)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if server is not None:
            server.stop()
        if not arguments.keep:
            cluster.stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
