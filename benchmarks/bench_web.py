"""Response times of the web pages, against the SIA service answering the same search.

    .venv/bin/python -m benchmarks.bench_web [--nights 9] [--exposures 8] [--repeat 40]
    .venv/bin/python -m benchmarks.bench_web --base-url http://127.0.0.1:8000   # e.g. make demo

Without ``--base-url``, a throwaway PostgreSQL cluster is started under /tmp and filled the real
way (ingest's synthetic product writer: real FITS files and manifests, loaded by
``ingest_paths``) with data the size of the demo's: by default 9 night/field/filter groups of 8
exposures on 4 CCDs x 4 quadrants (1152 science images, their raw frames, differences and
references, 40 sources per quadrant), programs 1-3 with a public data release for program 1.
The application is served over real HTTP by a threaded werkzeug server in this process.

Each page is requested ``--repeat`` times over one keep-alive connection, cycling through
positions of real images, after a warm-up; the figures are wall-clock times per response,
body included. The baseline is ``/sia/query`` for the same circle and product (science images,
MAXREC 50, the page's size): the machine-readable answer to the same search.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from benchmarks.support import free_port

TYPICAL_RADIUS_ARCMIN = 1.0


# -- the archive ----------------------------------------------------------------------------------


def build_archive(base: Path, nights: int, exposures: int) -> tuple[object, object]:
    """A cluster under ``base`` with the synthetic nights ingested; (cluster, database)."""
    from skyvault.cluster import EmbeddedCluster
    from skyvault.db import APP_ROLE, Database, DatabaseUrls, set_database
    from skyvault.ingest import LocalFileStore, ingest_paths
    from skyvault.ingest.synthetic import NightSpec, write_night
    from skyvault.releases.declare import declare_release
    from skyvault.schema.migrate import upgrade

    cluster = EmbeddedCluster(base / "pgdata", base / "run", free_port())
    cluster.start()
    upgrade(cluster.url())
    handle = Database(DatabaseUrls(admin=cluster.url(), app=cluster.url(user=APP_ROLE)))
    set_database(handle)

    started = time.perf_counter()
    roots = []
    filters = ("zr", "zg", "zi")
    for index in range(nights):
        field = 700 + index % 2
        # Each group its own night (a calibration manifest per night) and field/filter pair,
        # references for the first visit of each pair (a reference manifest per pair).
        spec = NightSpec(
            nightdate=f"2026-10-{1 + index:02d}", exposures=exposures, ccds=(6, 7, 10, 11),
            quadrants=(1, 2, 3, 4), sources=40, size=64, programids=(1, 2, 3, 1, 2),
            field=field, filtercode=filters[(index // 2) % 3],
            ra=150.0 + 7.0 * (index % 2), dec=2.0, seed=index + 1,
            references=index < 6)
        roots.append(write_night(base / "products" / str(index), spec).root)
    written = time.perf_counter() - started
    summary = ingest_paths(roots, database=handle, store=LocalFileStore(base / "store"),
                           quarantine_root=base / "quarantine")
    if not summary.ok:
        raise SystemExit("\n".join(summary.lines()))
    import datetime as dt

    with handle.admin() as connection:
        now = dt.datetime.now(dt.UTC)
        declare_release(connection, "DR1", now - dt.timedelta(days=1),
                        now - dt.timedelta(days=10), notes="benchmark release")
        counts = connection.execute(
            "SELECT (SELECT count(*) FROM survey.science_images),"
            " (SELECT count(*) FROM survey.difference_images),"
            " (SELECT count(*) FROM survey.raw_images),"
            " (SELECT count(*) FROM survey.reference_images),"
            " (SELECT count(*) FROM survey.psf_sources)").fetchone()
    print(f"Archive: {counts[0]} science, {counts[1]} difference, {counts[2]} raw, "
          f"{counts[3]} reference images, {counts[4]:,} PSF sources "
          f"(written in {written:.0f} s, ingested in {time.perf_counter() - started - written:.0f}"
          " s)")
    return cluster, handle


def serve() -> tuple[str, object]:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    from skyvault.server.app import create_app

    # No summary cache: the home page and maps are computed for every request here.
    app = create_app({"WEB_SUMMARY_TTL": 0})
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


# -- measuring ------------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                                     timeout=120)
        self.headers = headers or {}

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.connection.request("GET", self.prefix + path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started


def targets(client: Client, count: int = 40) -> list[tuple[float, float, int, str]]:
    """(ra, dec, field, DID) of science images the public may see, spread over the data."""
    query = ("SELECT s_ra, s_dec, field, obs_publisher_did FROM ivoa.obscore"
             " WHERE calib_level = 2 AND obs_collection = 'SkyVault/sci' ORDER BY t_min")
    status, body, _ = client.get("/tap/sync?" + urlencode(
        {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "csv", "QUERY": query}))
    if status != 200:
        raise SystemExit(f"cannot list images through TAP: {status} {body[:300]!r}")
    rows = list(csv.reader(io.StringIO(body.decode())))[1:]
    if not rows:
        raise SystemExit("the archive holds no public science image")
    step = max(1, len(rows) // count)
    return [(float(r[0]), float(r[1]), int(r[2]), r[3]) for r in rows[::step]][:count]


def measure(client: Client, paths: list[str], repeat: int) -> list[float]:
    for path in paths[:3]:  # warm-up: connection, first-use imports, previews
        status, body, _ = client.get(path)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}: {body[:300]!r}")
    times = []
    for index in range(repeat):
        status, body, seconds = client.get(paths[index % len(paths)])
        if status != 200:
            raise SystemExit(f"{paths[index % len(paths)]}: HTTP {status}")
        times.append(seconds)
    return times


def report(label: str, times: list[float], baseline: float | None) -> str:
    ordered = sorted(times)
    median = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    ratio = f"{median / baseline:6.2f}" if baseline else "     -"
    return (f"  {label:52s} {median * 1000:8.1f} {p90 * 1000:8.1f} {ordered[-1] * 1000:8.1f}"
            f" {ratio}")


def run_benchmark(base_url: str, repeat: int, token: str | None, cached: bool = True) -> None:
    from skyvault.server.web.coords import format_degrees, format_hours

    client = Client(base_url)
    spots = targets(client)
    radius = TYPICAL_RADIUS_ARCMIN
    print(f"Server {base_url}, {len(spots)} positions of public science images, "
          f"{repeat} requests each, times in ms")
    print(f"  {'request':52s} {'median':>8s} {'p90':>8s} {'max':>8s} {'/ SIA':>6s}")

    def search(ra: float, dec: float, **extra: object) -> str:
        return "/search?" + urlencode({"position": f"{ra:.6f} {dec:+.6f}", "radius": radius,
                                       "radius_unit": "arcmin", "product": "sci", **extra})

    sia = ["/sia/query?" + urlencode({
        "POS": f"CIRCLE {ra:.6f} {dec:.6f} {radius / 60:.6f}", "COLLECTION": "SkyVault/sci",
        "MAXREC": 50}) for ra, dec, _, _ in spots]
    sia_times = measure(client, sia, repeat)
    baseline = statistics.median(sia_times)
    lines = [report("SIA 2.0 /sia/query, same circle (baseline)", sia_times, None)]
    cases = [
        ("image search: position, 1' radius (typical)",
         [search(ra, dec) for ra, dec, _, _ in spots]),
        ("image search: sexagesimal position, sorted by time",
         ["/search?" + urlencode({"position": f"{format_hours(ra)} {format_degrees(dec)}",
                                  "radius": radius, "product": "sci", "sort": "time"})
          for ra, dec, _, _ in spots]),
        ("image search: name 'field N', all products",
         ["/search?" + urlencode({"position": f"field {f}", "radius": 5, "radius_unit": "arcmin",
                                  "product": ["sci", "raw", "ref", "diff"]}, doseq=True)
          for _, _, f, _ in spots]),
        ("image search: field, filter and time range, page 2",
         ["/search?" + urlencode({"field": f, "filter": "zr", "time_from": "2026-10-01",
                                  "time_to": "2026-10-31", "page": 2, "per_page": 25})
          for _, _, f, _ in spots]),
        ("image page (detail, header, relations)",
         ["/images/sci/" + did.rsplit("?", 1)[1] for _, _, _, did in spots]),
        ("catalog search: 30\" cone on PSF sources",
         ["/catalogs?" + urlencode({"position": f"{ra:.6f} {dec:+.6f}", "radius": 30})
          for ra, dec, _, _ in spots]),
        (f"home page (summary {'cached for 60 s' if cached else 'computed each time'})",
         ["/"]),
        (f"coverage map SVG ({'cached for 60 s' if cached else 'computed each time'})",
         ["/coverage/zr.svg"]),
    ]
    for label, paths in cases:
        lines.append(report(label, measure(client, paths, repeat), baseline))
    if token:
        member = Client(base_url, {"Authorization": f"Bearer {token}"})
        lines.append(report("image search, typical, signed in (Bearer token)",
                            measure(member, [search(ra, dec) for ra, dec, _, _ in spots], repeat),
                            baseline))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="measure a running server instead")
    parser.add_argument("--token", help="an API token, for the signed-in figure")
    parser.add_argument("--nights", type=int, default=9)
    parser.add_argument("--exposures", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    if args.base_url:
        run_benchmark(args.base_url.rstrip("/"), args.repeat, args.token)
        return
    base = Path(tempfile.mkdtemp(prefix="skyvault-bench-web-", dir="/tmp"))
    base.chmod(0o755)
    # Before anything reads the settings: the store, caches and jobs of this run live here.
    os.environ["SKYVAULT_HOME"] = str(base)
    os.environ.pop("SKYVAULT_DATABASE_URL", None)
    cluster = None
    try:
        cluster, handle = build_archive(base, args.nights, args.exposures)
        from skyvault.accounts import model as accounts

        with handle.admin() as connection:  # type: ignore[attr-defined]
            accounts.create_user(connection, "bench", "bench-password")
            accounts.grant_programs(connection, "bench", [2, 3])
            token = accounts.create_token(connection, "bench", "bench_web").token
        base_url, server = serve()
        run_benchmark(base_url, args.repeat, token, cached=False)
        server.shutdown()  # type: ignore[attr-defined]
    finally:
        from skyvault.db import set_database

        set_database(None)
        if cluster is not None:
            cluster.destroy()  # type: ignore[attr-defined]
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
