"""`python -m benchmarks.load`: the Locust load test (benchmarks/locustfile.py) against the demo
archive, optionally with faults injected while it runs.

    pip install -e '.[bench]'                               # Locust, pinned in setup.cfg
    SKYVAULT_PORT=8105 SKYVAULT_PGPORT=54405 skyvault demo --no-serve   # the data, once
    SKYVAULT_PORT=8105 SKYVAULT_PGPORT=54405 python -m benchmarks.load --minutes 5
    SKYVAULT_PORT=8105 SKYVAULT_PGPORT=54405 python -m benchmarks.load --minutes 6 --faults

It serves the demo's archive itself, as production runs it (gunicorn from `skyvault serve`, a
`skyvault worker` beside it, the embedded PostgreSQL), so that it can kill and restart each
part: with ``--faults``, PostgreSQL is restarted (fast, then immediate shutdown), a gunicorn
worker is killed with SIGKILL, the job worker is killed in the middle of a job (which must then
complete once, with one result), and a client disconnects mid-download and resumes with Range.
Each fault's window lasts from its start until the service answers again; a failed request
outside every window, or a 500 anywhere, fails the run. Afterwards every request kind is asked
once more (none may fail) and `skyvault ingest check` must be clean.

It prints a Markdown table per request kind (count, failures, median, p95, p99, max, rate) and
the machine's load average, for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from benchmarks.support import wait_for

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SLOW_JOB = ("SELECT COUNT(*) AS n FROM tap_schema.columns AS a, tap_schema.columns AS b,"
            " tap_schema.columns AS c")
"""A job that computes for seconds: long enough to kill its worker in the middle of it."""
GRACE = 15.0
"""Seconds after a fault's recovery during which requests already under way may still fail."""


@dataclass
class Fault:
    name: str
    started: float
    recovered: float | None = None
    outcome: str = ""
    ok: bool = True


@dataclass
class Service:
    """The archive's processes: gunicorn (its master's pid) and the job worker."""

    url: str
    logs: Path
    env: dict[str, str]
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    faults: list[Fault] = field(default_factory=list)

    def start_web(self) -> None:
        out = (self.logs / "load-web.log").open("ab")
        port = urlsplit(self.url).port
        self.web = subprocess.Popen([sys.executable, "-m", "skyvault", "serve", "--port",
                                     str(port)], stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env)
        wait_for(f"{self.url}/healthz")

    def start_worker(self) -> None:
        out = (self.logs / "load-worker.log").open("ab")
        # A killed worker's job is requeued once its heartbeat is 10 s old (default 60).
        self.worker = subprocess.Popen([sys.executable, "-m", "skyvault", "worker",
                                        "--stale-after", "10", "--sweep-interval", "2"],
                                       stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def gunicorn_workers(self) -> list[int]:
        assert self.web is not None
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.web.pid:
                children.append(int(stat.parent.name))
        return children


def _answers(url: str) -> bool:
    try:
        health = requests.get(f"{url}/healthz", timeout=10)
        query = requests.get(f"{url}/tap/sync", params={
            "LANG": "ADQL", "QUERY": "SELECT TOP 1 programid FROM survey.programs"}, timeout=30)
    except requests.RequestException:
        return False
    return health.status_code == 200 and query.status_code == 200


def _until_answering(service: Service, fault: Fault, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not _answers(service.url):
        if time.monotonic() > deadline:
            fault.ok, fault.outcome = False, f"no answer {limit:g} s after the fault"
            return
        time.sleep(0.2)
    fault.recovered = time.time()


# -- the faults ------------------------------------------------------------------------------


def restart_postgres(service: Service, mode: str) -> Fault:
    from skyvault.db import embedded_cluster

    fault = Fault(f"PostgreSQL restart ({mode} shutdown)", time.time())
    cluster = embedded_cluster()
    cluster.stop(mode=mode)
    time.sleep(3.0)  # down for a while, as a real restart under load is
    cluster.start()
    _until_answering(service, fault)
    fault.outcome = fault.outcome or \
        f"answering again {fault.recovered - fault.started:.1f} s after the stop"
    return fault


def kill_gunicorn_worker(service: Service) -> Fault:
    fault = Fault("gunicorn worker killed (SIGKILL)", time.time())
    workers = service.gunicorn_workers()
    if not workers:
        fault.ok, fault.outcome = False, "no gunicorn worker found"
        return fault
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while workers[0] in service.gunicorn_workers() or len(service.gunicorn_workers()) < len(
            workers):
        if time.monotonic() > deadline:
            fault.ok, fault.outcome = False, "gunicorn did not replace the worker"
            return fault
        time.sleep(0.2)
    _until_answering(service, fault)
    fault.outcome = fault.outcome or f"pid {workers[0]} killed; replaced, {len(workers)} again"
    return fault


def kill_job_worker_mid_job(service: Service) -> Fault:
    """The job completes after the worker is restarted, once, with one correct result."""
    from skyvault.db import database
    from skyvault.server.uws.store import job_directory

    fault = Fault("job worker killed mid-job (SIGKILL)", time.time())
    tap = f"{service.url}/tap"
    columns = int(requests.get(f"{tap}/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM tap_schema.columns",
        "RESPONSEFORMAT": "csv"}, timeout=60).text.split()[1])
    created = requests.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": SLOW_JOB,
                                                  "RESPONSEFORMAT": "csv", "PHASE": "RUN"},
                            allow_redirects=False, timeout=60)
    job = created.headers["Location"]
    job_id = job.rsplit("/", 1)[1]
    deadline = time.monotonic() + 120
    while requests.get(f"{job}/phase", timeout=30).text != "EXECUTING":
        if time.monotonic() > deadline:
            fault.ok, fault.outcome = False, "the job never started"
            return fault
        time.sleep(0.05)
    assert service.worker is not None
    service.worker.send_signal(signal.SIGKILL)
    service.worker.wait()
    service.start_worker()
    deadline = time.monotonic() + 180
    phase = "EXECUTING"
    while phase in ("QUEUED", "EXECUTING") and time.monotonic() < deadline:
        phase = requests.get(job, params={"WAIT": "10"}, timeout=60).text
        phase = requests.get(f"{job}/phase", timeout=30).text
    fault.recovered = time.time()
    result = requests.get(f"{job}/results/result", timeout=60)
    with database().admin() as connection:
        attempts, results = connection.execute(
            "SELECT attempts, jsonb_array_length(results) FROM archive.uws_jobs"
            " WHERE job_id = %s", (job_id,)).fetchone()
    files = sorted(p.name for p in job_directory(job_id).iterdir())
    count = int(result.text.split()[1]) if result.status_code == 200 else None
    fault.ok = (phase == "COMPLETED" and results == 1 and attempts == 2
                and count == columns ** 3 and files == ["result.csv"])
    fault.outcome = (f"{phase} after {fault.recovered - fault.started:.1f} s, taken {attempts}"
                     f" times, {results} result, files {files}, count {count} (expected"
                     f" {columns ** 3})")
    requests.delete(job, timeout=30)
    return fault


def resume_download(service: Service) -> Fault:
    """Half a file, the connection dropped, the rest with Range: the whole file, checksummed."""
    from skyvault.db import database

    fault = Fault("client disconnects mid-download, resumes with Range", time.time())
    # The largest file an anonymous client may download: read as one, through the embargo.
    with database().reading() as connection:
        path, size, sha256 = connection.execute(
            "SELECT path, size_bytes, sha256 FROM survey.files"
            " ORDER BY size_bytes DESC LIMIT 1").fetchone()
    target = "/files/" + quote(path)
    parts = urlsplit(service.url)
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as client:
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        while len(received) < size // 2:
            chunk = client.recv(65536)
            if not chunk:
                break
            received += chunk
    _headers, _, body = received.partition(b"\r\n\r\n")
    rest = requests.get(service.url + target, headers={"Range": f"bytes={len(body)}-"},
                        timeout=120)
    whole = body + rest.content
    fault.recovered = time.time()
    fault.ok = (rest.status_code == 206 and len(whole) == size
                and hashlib.sha256(whole).hexdigest() == sha256.strip())
    fault.outcome = (f"{len(body)} of {size} bytes, then {rest.status_code} with"
                     f" {len(rest.content)} more; SHA-256 {'matches' if fault.ok else 'differs'}")
    return fault


FAULTS: list[tuple[str, Callable[[Service], Fault]]] = [
    ("pg-fast", lambda s: restart_postgres(s, "fast")),
    ("gunicorn-kill", kill_gunicorn_worker),
    ("pg-immediate", lambda s: restart_postgres(s, "immediate")),
    ("job-worker-kill", kill_job_worker_mid_job),
    ("resume-download", resume_download),
]


def inject_faults(service: Service, start_after: float, spacing: float,
                  stop: threading.Event) -> None:
    if stop.wait(start_after):
        return
    for _, inject in FAULTS:
        fault = inject(service)
        service.faults.append(fault)
        print(f"fault: {fault.name}: {'ok' if fault.ok else 'FAILED'}: {fault.outcome}",
              flush=True)
        if stop.wait(spacing):
            return


# -- running and reporting --------------------------------------------------------------------


def load_user() -> tuple[str, str, str]:
    """A member of program 2 for the signed-in Locust users: (name, password, token)."""
    from skyvault.accounts import model as accounts
    from skyvault.db import database

    username, password = "load-member", accounts.generate_password()
    with database().admin() as connection:
        if connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                              (username,)).fetchone():
            accounts.set_password(connection, username, password)
        else:
            accounts.create_user(connection, username, password)
        accounts.grant_programs(connection, username, [2])
        token = accounts.create_token(connection, username, "load test").token
    return username, password, token


def percentile_table(stats_csv: Path, seconds: float) -> list[str]:
    lines = ["| request kind | requests | failures | median ms | p95 ms | p99 ms | max ms |"
             " req/s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    with stats_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"].startswith("(setup)"):
                continue
            name = "**all**" if row["Name"] == "Aggregated" else row["Name"]
            lines.append(
                f"| {name} | {row['Request Count']} | {row['Failure Count']} |"
                f" {row['50%']} | {row['95%']} | {row['99%']} |"
                f" {float(row['Max Response Time']):.0f} |"
                f" {int(row['Request Count']) / seconds:.2f} |")
    return lines


def classify_failures(log: Path, faults: list[Fault]) -> tuple[int, int, list[str]]:
    """(failures inside fault windows, failures outside them, problems)."""
    inside = outside = 0
    problems: list[str] = []
    if not log.exists():
        return 0, 0, []
    for line in log.read_text().splitlines():
        failure = json.loads(line)
        # A request failed by a fault was under way while it lasted: [started, t] overlaps
        # the fault's window (a long MOST search may end well after the recovery).
        began = failure.get("started", failure["t"])
        window = any(began <= (f.recovered or f.started) + GRACE and failure["t"] >= f.started - 1
                     for f in faults)
        if failure.get("status") == 500:
            problems.append(f"500 from {failure['name']}: {failure['error'][:120]}")
        if window:
            inside += 1
        else:
            outside += 1
            problems.append(f"outside any fault: {failure['name']} {failure['status']}"
                            f" {failure['error'][:120]}")
    return inside, outside, problems


def final_round(url: str, env: dict[str, str], out: Path) -> list[str]:
    """Every request kind again for 30 s after everything: any failure is a problem."""
    log = out / "final-round.log"
    run = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                          "-u", "4", "-r", "4", "--run-time", "30s", "--host", url,
                          "--only-summary", "--exit-code-on-error", "1"],
                         env={**env, "SKYVAULT_LOAD_FAILURE_LOG": ""}, cwd=ROOT,
                         stdout=log.open("w"), stderr=subprocess.STDOUT)
    return [] if run.returncode == 0 else [f"the final round failed; see {log}"]


def ingest_check(env: dict[str, str]) -> str:
    run = subprocess.run([sys.executable, "-m", "skyvault", "ingest", "check"], env=env,
                         capture_output=True, text=True)
    return (run.stdout + run.stderr).strip().splitlines()[-1] if run.returncode == 0 else \
        f"FAILED ({run.returncode}): {(run.stdout + run.stderr)[-500:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=2.0)
    parser.add_argument("--faults", action="store_true", help="inject the faults while loaded")
    parser.add_argument("--fault-spacing", type=float, default=40.0)
    args = parser.parse_args(argv)

    from skyvault.config import settings
    from skyvault.db import embedded_cluster

    config = settings()
    url = f"http://127.0.0.1:{config.http_port}"
    logs = config.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if not config.database_url:
        embedded_cluster().start()
    username, password, token = load_user()
    # One address (this machine) plays every anonymous astronomer: it may keep more jobs
    # than one real client would.
    env = {**os.environ, "SKYVAULT_JOBS_MAX_ACTIVE": "500"}
    service = Service(url, logs, env)
    out = Path(tempfile.mkdtemp(prefix="skyvault-load-", dir="/tmp"))
    failure_log = out / "failures.jsonl"
    stop = threading.Event()
    load_before = os.getloadavg()
    started = time.time()
    try:
        service.start_worker()
        service.start_web()
        seconds = args.minutes * 60
        users_env = {**env, "SKYVAULT_LOAD_USER": username, "SKYVAULT_LOAD_PASSWORD": password,
                     "SKYVAULT_LOAD_TOKEN": token}
        locust = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
             "-u", str(args.users), "-r", str(args.spawn_rate), "--run-time", f"{seconds:.0f}s",
             "--host", url, "--csv", str(out / "load"), "--only-summary"],
            env={**users_env, "SKYVAULT_LOAD_FAILURE_LOG": str(failure_log)},
            cwd=ROOT, stdout=(out / "locust.log").open("w"), stderr=subprocess.STDOUT)
        injector = None
        if args.faults:
            injector = threading.Thread(target=inject_faults,
                                        args=(service, 40.0, args.fault_spacing, stop))
            injector.start()
        locust.wait()
        stop.set()
        if injector is not None:
            injector.join()
        elapsed = time.time() - started
        load_after = os.getloadavg()
        again = final_round(url, users_env, out)
        check = ingest_check(env)
    finally:
        stop.set()
        service.stop()
    inside, outside, problems = classify_failures(failure_log, service.faults)
    problems += again
    problems += [f"fault {f.name}: {f.outcome}" for f in service.faults if not f.ok]
    if check != "clean":
        problems.append(f"ingest check: {check}")
    print(f"\n{args.users} users for {args.minutes:g} min against {url}"
          f" ({'with' if args.faults else 'without'} faults); results in {out}")
    print(f"load average before {load_before[0]:.1f} {load_before[1]:.1f}"
          f" {load_before[2]:.1f}, after {load_after[0]:.1f} {load_after[1]:.1f}"
          f" {load_after[2]:.1f} on {os.cpu_count()} cores")
    print("\n".join(percentile_table(out / "load_stats.csv", elapsed)))
    for fault in service.faults:
        print(f"- {fault.name}: {'ok' if fault.ok else 'FAILED'}; {fault.outcome}")
    print(f"failed requests during faults: {inside}; outside: {outside}")
    print(f"final round of every request kind: {'ok' if not again else 'FAILED'}")
    print(f"ingest check: {check}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
