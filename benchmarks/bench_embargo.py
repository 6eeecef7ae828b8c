"""What the embargo costs: row-level security, authentication, release declaration and export.

    .venv/bin/python -m benchmarks.bench_embargo [--sources 2000000] [--exposures 2000]
        [--requests 300]

A throwaway SkyVault home under /tmp gets its own PostgreSQL cluster (the project's tuned
settings), migrated to head, and ``exposures`` exposures x 64 science images, with ``sources``
PSF-catalog rows spread over 30 x 30 degrees: 60 % public and released, 20 % public waiting for
a release, 10 % program 2, 10 % program 3 (proprietary). Then, each beside a baseline measured
in the same run:

- row-level security: a full COUNT(*) and a 0.5-degree q3c cone over the catalog, as the
  owner (no policy) and as an anonymous and a program-2 requester (policy applied);
- authentication: p50 latency of ``/auth/whoami`` over HTTP (``skyvault serve``, keep-alive),
  anonymous, with a Bearer token and with HTTP Basic, beside one argon2 verification (what every
  request would pay without the verified-secret memory);
- ``release declare``: recomputing the release dates of the catalog, beside an UPDATE that
  rewrites the same rows with a constant;
- ``release export``: HATS Parquet of the released rows (read as the public), beside a binary
  COPY of the same rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.support import free_port, wait_for


def timed(action, repeat: int = 3, warm: bool = False) -> float:
    """Median wall time of ``action`` over ``repeat`` runs, in seconds (after one unmeasured
    run when ``warm``, so every variant starts with the same pages cached)."""
    if warm:
        action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def load(admin_url: str, exposures: int, sources: int) -> None:
    import psycopg

    with psycopg.connect(admin_url) as connection:
        connection.execute("""
            INSERT INTO survey.exposures (expid, obsjd, telra, teldec, programid, release_date)
            SELECT e, 2460000.5 + e * 0.0005, 0, 0, 1, now() - interval '1 day'
              FROM generate_series(1, %s) e""", (exposures,))
        connection.execute("""
            INSERT INTO survey.science_images (pid, expid, obsjd, ra, dec, programid,
                                               release_date, rcid)
            SELECT e * 64 + q, e, 2460000.5 + e * 0.0005, 0, 0, 1, now() - interval '1 day', q
              FROM generate_series(1, %s) e, generate_series(0, 63) q""", (exposures,))
        connection.execute("CREATE TABLE survey.psf_sources_bench PARTITION OF"
                           " survey.psf_sources_nights FOR VALUES FROM (0) TO (100000)")
        # Programs and dates by source number: 60 % released, 20 % waiting (public survey),
        # 10 % program 2, 10 % program 3.
        connection.execute("""
            INSERT INTO survey.psf_sources (sourceid, pid, nid, ra, dec, obsjd, programid,
                                            release_date, mag, magerr)
            SELECT s, 64 + (s %% (%(pids)s)), 3000, 100 + random() * 30, random() * 30,
                   2460000.5 + (s %% 1000) * 0.01,
                   CASE WHEN s %% 10 < 8 THEN 1 WHEN s %% 10 = 8 THEN 2 ELSE 3 END,
                   CASE WHEN s %% 10 < 6 THEN now() - interval '30 days'
                        WHEN s %% 10 < 8 THEN 'infinity'
                        ELSE now() + interval '200 days' END,
                   18 + random() * 3, 0.05
              FROM generate_series(1, %(sources)s) s""",
                           {"pids": exposures * 64, "sources": sources})
        connection.execute("ANALYZE survey.psf_sources")


def bench_rls(handle, sources: int) -> None:
    from skyvault.access import ANONYMOUS, Requester

    member = Requester(user_id=1, username="bench", programs=frozenset({2}))
    queries = {
        "COUNT(*) whole catalog": "SELECT count(*) FROM survey.psf_sources",
        "0.5 deg q3c cone": "SELECT count(*) FROM survey.psf_sources"
                            " WHERE q3c_radial_query(ra, dec, 115, 15, 0.5)",
    }
    print(f"Row-level security ({sources:,} catalog rows; median of 5 after a warm-up;"
          " connections opened beforehand)")
    owner_connection = handle.admin(autocommit=True)
    for label, sql in queries.items():
        def as_owner(sql=sql):
            owner_connection.execute(sql).fetchone()

        def as_requester(requester, sql=sql):
            with handle.reading(requester, user_query=True) as connection:
                return connection.execute(sql).fetchone()[0]

        owner = timed(as_owner, 5, warm=True)
        anonymous = timed(lambda r=ANONYMOUS: as_requester(r), 5, warm=True)
        member_time = timed(lambda r=member: as_requester(r), 5, warm=True)
        print(f"  {label:24s} owner {owner * 1000:8.1f} ms | anonymous {anonymous * 1000:8.1f}"
              f" ms ({anonymous / owner:4.2f}x) | program 2 {member_time * 1000:8.1f} ms"
              f" ({member_time / owner:4.2f}x)")
    owner_connection.close()


def bench_auth(base: str, token: str, password: str, count: int) -> None:
    import requests
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    stored = hasher.hash(password)
    argon2_time = timed(lambda: hasher.verify(stored, password), repeat=5)
    session = requests.Session()

    def p50(**kwargs) -> float:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            response = session.get(f"{base}/auth/whoami", timeout=30, **kwargs)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200
        return statistics.median(samples)

    anonymous = p50()
    bearer = p50(headers={"Authorization": f"Bearer {token}"})
    basic = p50(auth=("bench", password))
    print(f"Authentication: /auth/whoami p50 over {count} requests (keep-alive)")
    print(f"  anonymous {anonymous * 1000:6.2f} ms | Bearer {bearer * 1000:6.2f} ms"
          f" ({bearer / anonymous:4.2f}x) | Basic {basic * 1000:6.2f} ms"
          f" ({basic / anonymous:4.2f}x) | one argon2 verify {argon2_time * 1000:6.2f} ms")


def bench_release(handle, admin_url: str, sources: int) -> None:
    import psycopg

    from skyvault.access import ANONYMOUS
    from skyvault.releases import declare_release, export_release

    now = datetime.now(UTC)
    with handle.admin() as connection:
        started = time.perf_counter()
        _release, changed = declare_release(connection, "DRBENCH", now - timedelta(hours=1),
                                            now - timedelta(hours=2), [1])
        declare = time.perf_counter() - started
    rows = changed["survey.psf_sources"]
    with psycopg.connect(admin_url) as connection:
        started = time.perf_counter()
        connection.execute("UPDATE survey.psf_sources SET release_date = now() - interval"
                           " '2 hours' WHERE programid = 1")
        baseline = time.perf_counter() - started
        connection.rollback()
    print(f"release declare: {rows:,} catalog rows redated in {declare:.1f} s"
          f" ({rows / declare:,.0f} rows/s); UPDATE of the same rows with a constant"
          f" {baseline:.1f} s (ratio {declare / baseline:4.2f})")

    import hats  # noqa: F401  (imported once per process, seconds; not the export's cost)

    out = Path(tempfile.mkdtemp(prefix="skyvault-bench-export-", dir="/tmp"))
    started = time.perf_counter()
    summary = export_release(handle, "DRBENCH", out, "http://127.0.0.1:8000")
    export = time.perf_counter() - started
    exported = summary.catalog_rows["survey.psf_sources"]

    def copy_rows() -> None:
        with handle.reading(ANONYMOUS) as connection, connection.cursor() as cursor, \
                cursor.copy("COPY (SELECT * FROM survey.psf_sources WHERE release_date <="
                            " now()) TO STDOUT (FORMAT binary)") as copy:
            for _block in copy:
                pass

    copy_time = timed(copy_rows, repeat=1)
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    print(f"release export: {exported:,} released rows as HATS ({size / 2**20:.0f} MiB Parquet)"
          f" in {export:.1f} s ({exported / export:,.0f} rows/s); binary COPY of the same rows"
          f" as the public {copy_time:.1f} s (ratio {export / copy_time:4.2f})")
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=2_000_000)
    parser.add_argument("--exposures", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="skyvault-bench-embargo-", dir="/tmp"))
    home.chmod(0o755)
    http_port = free_port()
    os.environ.update({"SKYVAULT_HOME": str(home), "SKYVAULT_PGPORT": str(free_port()),
                       "SKYVAULT_PORT": str(http_port)})
    for variable in ("SKYVAULT_DATABASE_URL", "SKYVAULT_PGDATA", "SKYVAULT_BASE_URL"):
        os.environ.pop(variable, None)

    from skyvault import accounts
    from skyvault.db import Database, database_urls, embedded_cluster
    from skyvault.schema.migrate import upgrade

    cluster = embedded_cluster()
    server = None
    try:
        cluster.start()
        urls = database_urls()
        upgrade(urls.admin)
        print(f"Loading {args.exposures:,} exposures x 64 science images and"
              f" {args.sources:,} catalog rows ...")
        load(urls.admin, args.exposures, args.sources)
        handle = Database(urls)
        bench_rls(handle, args.sources)
        password = accounts.generate_password()
        with handle.admin() as connection:
            accounts.create_user(connection, "bench", password)
            accounts.grant_programs(connection, "bench", [2])
            token = accounts.create_token(connection, "bench").token
        server = subprocess.Popen(
            [sys.executable, "-m", "skyvault", "serve", "--port", str(http_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{http_port}"
        wait_for(f"{base}/healthz")
        bench_auth(base, token, password, args.requests)
        bench_release(handle, urls.admin, args.sources)
        handle.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
