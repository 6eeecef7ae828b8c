"""What the embargo costs: row-level security, authentication, release declaration and export.

    .venv/bin/python -m benchmarks.bench_embargo [--sources 2000000] [--exposures 2000]
        [--requests 300]

A throwaway SkyVault home under /tmp gets its own PostgreSQL cluster (the project's tuned
settings), migrated to head, and ``exposures`` exposures x 64 science images, with ``sources``
PSF-catalog rows spread over 30 x 30 degrees: 60 % public survey in a public data release, 20 %
public survey observed after its cutoff (waiting), 10 % program 2, 10 % program 3 (within their
proprietary period).  Then, each beside a baseline measured in the same run:

- row-level security: a full COUNT(*), a 0.5-degree and a 10-arcsecond q3c cone over the
  catalog, as the owner (no policy) and as an anonymous and a program-2 requester, with the
  release rules read once per query (migration 0016) and, on an identical copy of the catalog,
  with the policy before it (a stored ``release_date`` per row): wall-clock medians, and the
  backend's own CPU per query (steadier when other work loads the machine);
- authentication: p50 latency of ``/auth/whoami`` over HTTP (``skyvault serve``, keep-alive),
  anonymous, with a Bearer token and with HTTP Basic, beside one argon2 verification (what every
  request would pay without the verified-secret memory);
- ``release declare``: one row in ``survey.data_releases`` (``time_declaration``, which
  benchmarks/bench_scale.py can call on its own archives), beside what declaring cost before
  migration 0016: an UPDATE rewriting the release date of the rows it released;
- ``release export``: HATS Parquet of the released rows (read as the public), beside a binary
  COPY of the same rows, and the disk's sequential write rate.
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

from benchmarks.support import free_port, throwaway_home, timed, wait_for

CUTOFF = "2024-01-01"
"""The public data release of the benchmark covers program 1 observed before this."""


def load(admin_url: str, exposures: int, sources: int) -> None:
    import psycopg

    with psycopg.connect(admin_url) as connection:
        connection.execute("""
            INSERT INTO survey.exposures (expid, obsjd, telra, teldec, programid)
            SELECT e, 2460000.5 + e * 0.0005, 0, 0, 1
              FROM generate_series(1, %s) e""", (exposures,))
        connection.execute("""
            INSERT INTO survey.science_images (pid, expid, obsjd, ra, dec, programid, rcid)
            SELECT e * 64 + q, e, 2460000.5 + e * 0.0005, 0, 0, 1, q
              FROM generate_series(1, %s) e, generate_series(0, 63) q""", (exposures,))
        connection.execute("CREATE TABLE survey.psf_sources_bench PARTITION OF"
                           " survey.psf_sources_nights FOR VALUES FROM (0) TO (100000)")
        # Programs and observation times by source number: 60 % public survey of 2023 (in the
        # release), 20 % public survey of ten days ago (waiting), 10 % program 2 and 10 %
        # program 3 of ten days ago (proprietary).
        connection.execute("""
            INSERT INTO survey.psf_sources (sourceid, pid, nid, ra, dec, obsjd, programid,
                                            mag, magerr)
            SELECT s, 64 + (s %% (%(pids)s)), 3000, 100 + random() * 30, random() * 30,
                   CASE WHEN s %% 10 < 6 THEN 2460000.5 + (s %% 1000) * 0.01
                        ELSE archive.timestamp_to_jd(now() - interval '10 days')
                             + (s %% 1000) * 0.001 END,
                   CASE WHEN s %% 10 < 8 THEN 1 WHEN s %% 10 = 8 THEN 2 ELSE 3 END,
                   18 + random() * 3, 0.05
              FROM generate_series(1, %(sources)s) s""",
                           {"pids": exposures * 64, "sources": sources})
        connection.execute("CREATE INDEX ON survey.psf_sources_bench (q3c_ang2ipix(ra, dec))")
        connection.execute("CLUSTER survey.psf_sources_bench USING"
                           " psf_sources_bench_q3c_ang2ipix_idx")
        connection.execute(
            "INSERT INTO survey.data_releases (release_name, release_date, observation_cutoff,"
            " programids) VALUES ('DR0', now() - interval '30 days', %s, '{1}')", (CUTOFF,))
        connection.execute("ANALYZE survey.psf_sources")


OLD_POLICY_COPY = """
CREATE SCHEMA bench_old;
CREATE TABLE bench_old.psf_sources (LIKE survey.psf_sources, release_date timestamptz NOT NULL)
    PARTITION BY RANGE (nid);
CREATE TABLE bench_old.psf_sources_bench PARTITION OF bench_old.psf_sources
    FOR VALUES FROM (0) TO (100000);
INSERT INTO bench_old.psf_sources
SELECT s.*, coalesce(archive.release_date_of(s.programid, s.obsjd), 'infinity')
  FROM survey.psf_sources s ORDER BY q3c_ang2ipix(s.ra, s.dec);
CREATE INDEX ON bench_old.psf_sources_bench (q3c_ang2ipix(ra, dec));
CLUSTER bench_old.psf_sources_bench USING psf_sources_bench_q3c_ang2ipix_idx;
ALTER TABLE bench_old.psf_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench_old.psf_sources_bench ENABLE ROW LEVEL SECURITY;
CREATE POLICY embargo ON bench_old.psf_sources FOR SELECT USING (release_date <= now()
    OR programid = ANY ((SELECT archive.member_programs())::smallint[]));
CREATE POLICY embargo ON bench_old.psf_sources_bench FOR SELECT USING (release_date <= now()
    OR programid = ANY ((SELECT archive.member_programs())::smallint[]));
GRANT USAGE ON SCHEMA bench_old TO skyvault_reader;
GRANT SELECT ON bench_old.psf_sources TO skyvault_reader;
ANALYZE bench_old.psf_sources;
"""
"""The same rows under the policy before migration 0016 (a stored release date per row)."""


def bench_rls(handle, admin_url: str, sources: int) -> None:
    import psycopg

    from skyvault.access import ANONYMOUS, Requester

    with psycopg.connect(admin_url) as connection:
        connection.execute(OLD_POLICY_COPY)
    member = Requester(user_id=1, username="bench", programs=frozenset({2}))
    queries = {
        "COUNT(*) whole catalog": "SELECT count(*) FROM {table}",
        "0.5 deg q3c cone": "SELECT count(*) FROM {table}"
                            " WHERE q3c_radial_query(ra, dec, 115, 15, 0.5)",
        "10 arcsec q3c cone": "SELECT count(*) FROM {table}"
                              " WHERE q3c_join(115.0, 15.0, ra, dec, 10 / 3600.0)",
    }
    print(f"Row-level security ({sources:,} catalog rows; median of 9 after a warm-up;"
          " connections opened beforehand); policy now | policy before migration 0016")
    owner_connection = handle.admin(autocommit=True)
    for label, template in queries.items():
        cells = []
        for table in ("survey.psf_sources", "bench_old.psf_sources"):
            sql = template.format(table=table)

            def as_owner(sql=sql):
                owner_connection.execute(sql).fetchone()

            def as_requester(requester, sql=sql):
                with handle.reading(requester, user_query=True) as connection:
                    return connection.execute(sql).fetchone()[0]

            owner = timed(as_owner, 9, warm=True)
            anonymous = timed(lambda r=ANONYMOUS: as_requester(r), 9, warm=True)
            member_time = timed(lambda r=member: as_requester(r), 9, warm=True)
            cells.append(f"owner {owner * 1000:7.2f} ms, anonymous {anonymous * 1000:7.2f} ms"
                         f" ({anonymous / owner:4.2f}x), program 2 {member_time * 1000:7.2f}"
                         f" ms ({member_time / owner:4.2f}x)")
        print(f"  {label:24s} {cells[0]} | {cells[1]}")
    with handle.reading(ANONYMOUS, user_query=True) as connection:
        now, before = (connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                       for table in ("survey.psf_sources", "bench_old.psf_sources"))
    assert now == before, (now, before)  # the same rows are public under both policies
    owner_connection.close()


def backend_cpu(pid: int) -> float:
    """CPU seconds a PostgreSQL backend has used (from /proc: steadier than wall time on a
    loaded machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_policy_cpu(handle) -> None:
    """Backend CPU per query under each policy (the copy made by ``bench_rls``)."""
    from skyvault.access import ANONYMOUS, Requester

    member = Requester(user_id=1, username="bench", programs=frozenset({2}))
    queries = {
        "10 arcsec cone": ("SELECT count(*) FROM {table}"
                           " WHERE q3c_join(115.0, 15.0, ra, dec, 10 / 3600.0)", 2000),
        "0.5 deg cone": ("SELECT count(*) FROM {table}"
                         " WHERE q3c_radial_query(ra, dec, 115, 15, 0.5)", 200),
        "COUNT(*)": ("SELECT count(*) FROM {table}", 10),
    }
    print("Backend CPU per query (same rows; policy now | before migration 0016)")
    for label, (template, repeat) in queries.items():
        for who, requester in (("anonymous", ANONYMOUS), ("program 2", member)):
            cpu = []
            for table in ("survey.psf_sources", "bench_old.psf_sources"):
                sql = template.format(table=table)
                with handle.reading(requester, user_query=True) as connection:
                    pid = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
                    connection.execute(sql).fetchone()
                    started = backend_cpu(pid)
                    for _ in range(repeat):
                        connection.execute(sql).fetchone()
                    cpu.append((backend_cpu(pid) - started) / repeat)
            print(f"  {label:16s} {who:10s} {cpu[0] * 1000:8.3f} ms | {cpu[1] * 1000:8.3f} ms"
                  f" ({cpu[0] / cpu[1]:4.2f}x)")


def time_declaration(handle, name: str = "DRBENCH", programs: tuple[int, ...] = (1,),
                     public_since: timedelta = timedelta(hours=1),
                     cutoff: datetime | None = None) -> float:
    """Seconds to declare a data release (and commit it): what ``skyvault release declare``
    costs on this archive, whatever its size (benchmarks/bench_scale.py calls it)."""
    from skyvault.releases.declare import declare_release

    now = datetime.now(UTC)
    with handle.admin() as connection:
        started = time.perf_counter()
        declare_release(connection, name, now - public_since, cutoff or now - 2 * public_since,
                        list(programs))
        connection.commit()
        return time.perf_counter() - started


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


def disk_write_rate(folder: Path, size: int = 1 << 30) -> float:
    """Sequential write rate of the disk under ``folder`` in bytes/s (dd, flushed to disk)."""
    target = folder / "ddtest"
    result = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=8M", f"count={size >> 23}",
         "conv=fdatasync"], capture_output=True, text=True, check=True)
    target.unlink()
    seconds = float(result.stderr.strip().splitlines()[-1].split(",")[-2].split()[0])
    return size / seconds


def bench_release(handle, admin_url: str, sources: int) -> None:
    import psycopg

    from skyvault.access import ANONYMOUS
    from skyvault.releases.export import export_release

    declare = time_declaration(handle)
    with psycopg.connect(admin_url) as connection:
        rows = connection.execute("SELECT count(*) FROM survey.psf_sources"
                                  " WHERE programid = 1").fetchone()[0]
        started = time.perf_counter()
        connection.execute("UPDATE bench_old.psf_sources SET release_date = now() - interval"
                           " '2 hours' WHERE programid = 1")
        baseline = time.perf_counter() - started
        connection.rollback()
    print(f"release declare: {declare * 1000:.1f} ms for a release of {rows:,} catalog rows;"
          f" before migration 0016 it rewrote them: an UPDATE of their release date"
          f" {baseline:.1f} s (ratio {baseline / declare:,.0f})")

    import hats  # noqa: F401  (imported once per process, seconds; not the export's cost)

    out = Path(tempfile.mkdtemp(prefix="skyvault-bench-export-", dir="/tmp"))
    started = time.perf_counter()
    summary = export_release(handle, "DRBENCH", out, "http://127.0.0.1:8000")
    export = time.perf_counter() - started
    exported = summary.catalog_rows["survey.psf_sources"]

    def copy_rows() -> None:
        from skyvault.releases.export import catalog_sql
        from skyvault.schema.tables import PSF_SOURCES

        with handle.reading(ANONYMOUS) as connection, connection.cursor() as cursor, \
                cursor.copy(f"COPY ({catalog_sql(PSF_SOURCES)}) TO STDOUT (FORMAT binary)",
                            {"release_date": summary.release.release_date}) as copy:
            for _block in copy:
                pass

    copy_time = timed(copy_rows, repeat=1)
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    disk = disk_write_rate(out)
    print(f"release export: {exported:,} released rows as HATS ({size / 2**20:.0f} MiB Parquet)"
          f" in {export:.1f} s ({exported / export:,.0f} rows/s, {size / export / 2**20:.0f}"
          f" MiB/s); binary COPY of the same rows as the public {copy_time:.1f} s (ratio"
          f" {export / copy_time:4.2f}); disk sequential write {disk / 2**20:,.0f} MiB/s")
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=2_000_000)
    parser.add_argument("--exposures", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    http_port = free_port()
    home = throwaway_home("skyvault-bench-embargo-", SKYVAULT_PORT=str(http_port))

    from skyvault.accounts import model as accounts
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
        bench_rls(handle, urls.admin, args.sources)
        bench_policy_cpu(handle)
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
