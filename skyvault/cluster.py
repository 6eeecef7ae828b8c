"""The embedded PostgreSQL cluster: a private initdb'd data folder the project starts itself.

PostgreSQL refuses to run as root, so when SkyVault runs as root the server runs as the
unprivileged system user ``skyvault``, which owns the data folder.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "skyvault"
SUPERUSER = "skyvault"
DATABASE = "skyvault"
PG_MAJOR = 15


class ClusterError(RuntimeError):
    """The embedded cluster could not be created, started or stopped."""


def pg_bindir() -> Path:
    configured = os.environ.get("SKYVAULT_PG_BINDIR")
    if configured:
        return Path(configured)
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (debian / "initdb").exists():
        return debian
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(f"PostgreSQL {PG_MAJOR} binaries not found; run `make setup`")


def running_as_root() -> bool:
    return os.geteuid() == 0


def ensure_service_user() -> None:
    """Create the unprivileged system user that runs the server when we are root."""
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
        )


def tuned_settings(memory_bytes: int, cores: int) -> dict[str, str]:
    """Server settings for an archive on one machine, each with the reason for it."""
    shared_mb = max(128, min(memory_bytes // (4 * 2**20), 8192))
    return {
        # A quarter of memory is PostgreSQL's usual advice; the rest is left to the page cache,
        # which serves the file store as well.
        "shared_buffers": f"{shared_mb}MB",
        "effective_cache_size": f"{max(256, memory_bytes * 3 // (4 * 2**20))}MB",
        # Sorts and hashes of catalog queries (ORDER BY, joins with uploads) stay in memory.
        "work_mem": "64MB",
        # Index builds after a night's COPY and VACUUM after supersessions.
        "maintenance_work_mem": "1GB",
        # Parallel scans help the big TAP aggregates; one worker per core at most.
        "max_worker_processes": str(max(8, cores * 2)),
        "max_parallel_workers": str(cores),
        "max_parallel_workers_per_gather": str(max(1, cores // 2)),
        "max_parallel_maintenance_workers": str(max(1, cores // 2)),
        # JIT compilation costs tens of milliseconds, far more than a cone query takes.
        "jit": "off",
        # The data live on SSD or in cache; random reads cost little more than sequential ones.
        "random_page_cost": "1.1",
        # An embedded, unreplicated cluster: COPY into a table created in the same transaction
        # skips the WAL. Production with replicas or pg_basebackup sets 'replica'
        # (deploy/OPERATIONS.md).
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "max_wal_size": "4GB",
        # The ingest of a night commits per exposure; durability stays on, nothing may be lost.
        "synchronous_commit": "on",
        "max_connections": "200",
        "log_min_duration_statement": "2000",
        "timezone": "UTC",
    }


REPLICATION_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
    # A standby tells the primary which rows its queries still read, so vacuum on the primary
    # does not remove them and the standby need not cancel long TAP queries.
    "hot_standby_feedback": "on",
}


@dataclass(frozen=True)
class EmbeddedCluster:
    pgdata: Path
    socket_dir: Path
    port: int

    @property
    def bindir(self) -> Path:
        return pg_bindir()

    def url(self, user: str = SUPERUSER, database: str = DATABASE) -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    # -- running the server binaries as the right OS user ----------------------------------

    def _as_owner(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if running_as_root():
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        return subprocess.run(argv, text=True, capture_output=True, **kwargs)

    def _prepare_folders(self) -> None:
        for folder in (self.pgdata.parent, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if running_as_root():
            ensure_service_user()
            self.pgdata.mkdir(parents=True, exist_ok=True)
            for folder in (self.pgdata, self.socket_dir):
                shutil.chown(folder, SERVICE_USER, SERVICE_USER)
            self.pgdata.chmod(0o700)
            self.socket_dir.chmod(0o700)
            blocked = self._as_owner(["test", "-w", str(self.pgdata)])
            if blocked.returncode != 0:
                raise ClusterError(
                    f"user {SERVICE_USER} cannot reach {self.pgdata}; set SKYVAULT_HOME to a "
                    "folder whose parents are world-traversable"
                )

    # -- lifecycle -------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> bool:
        """initdb the data folder; returns False when it was there already."""
        if self.is_initialised():
            return False
        self._prepare_folders()
        result = self._as_owner([
            str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--locale=C.UTF-8", "--no-instructions",
        ])
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stderr.strip()}")
        self._write_settings()
        return True

    def _write_settings(self) -> None:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        lines = ["# Written by `skyvault db init`; see skyvault/cluster.py for the reasons."]
        lines += [f"{name} = '{value}'" for name, value in
                  tuned_settings(memory, os.cpu_count() or 1).items()]
        lines += [
            f"port = {self.port}",
            # Only this machine, and only through the private socket folder or loopback.
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "unix_socket_permissions = 0770",
            "shared_preload_libraries = ''",
        ]
        conf = self.pgdata / "skyvault.conf"
        conf.write_text("\n".join(lines) + "\n")
        with open(self.pgdata / "postgresql.conf", "a") as main_conf:
            main_conf.write("\ninclude 'skyvault.conf'\n")
        if running_as_root():
            shutil.chown(conf, SERVICE_USER, SERVICE_USER)

    def status(self) -> bool:
        if not self.is_initialised():
            return False
        result = self._as_owner([str(self.bindir / "pg_ctl"), "status", "-D", str(self.pgdata)])
        return result.returncode == 0

    def start(self, timeout: float = 60) -> bool:
        """Start the server (initialising it first); returns False when it was running."""
        self.init()
        if self.status():
            return False
        self._prepare_folders()
        log = self.pgdata / "server.log"
        result = self._as_owner([
            str(self.bindir / "pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(log),
            "-w", "-t", str(int(timeout)),
        ])
        if result.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ClusterError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")
        self._wait_ready(timeout)
        self._ensure_database()
        return True

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise ClusterError("PostgreSQL did not accept connections in time")

    def _ensure_database(self) -> None:
        psql = [str(self.bindir / "psql"), "-X", "-q", "-h", str(self.socket_dir),
                "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", "-tA"]
        exists = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_output=True, text=True, check=True,
        )
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, "-c", f"CREATE DATABASE {DATABASE}"], check=True,
                           capture_output=True)

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server; ``mode`` is pg_ctl's: smart, fast, or immediate (no checkpoint:
        recovery runs at the next start, as after a crash)."""
        if not self.status():
            return False
        result = self._as_owner(
            [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", mode, "-w"]
        )
        if result.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed: {result.stderr.strip()}")
        return True

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)

    # -- streaming replication (deploy/OPERATIONS.md, "Read replicas") --------------------

    def allow_replication(self) -> None:
        """Settings a primary needs to feed hot standbys; they take effect at the next start.
        (The embedded default, ``wal_level = minimal``, lets a night's first COPY skip the WAL,
        which a standby needs to see.)"""
        self.init()
        with open(self.pgdata / "skyvault.conf", "a") as conf:
            conf.write("".join(f"{name} = '{value}'\n"
                               for name, value in REPLICATION_SETTINGS.items()))

    def make_standby(self, pgdata: Path, socket_dir: Path, port: int) -> EmbeddedCluster:
        """A hot standby of this running primary, not started: ``pg_basebackup`` with its WAL
        streamed and ``-R`` (standby.signal and the primary's connection in
        postgresql.auto.conf), then its own port and socket folder."""
        standby = EmbeddedCluster(pgdata, socket_dir, port)
        standby._prepare_folders()  # an empty data folder the server's user owns
        result = self._as_owner([
            str(self.bindir / "pg_basebackup"), "-D", str(pgdata), "-h", str(self.socket_dir),
            "-p", str(self.port), "-U", SUPERUSER, "-X", "stream", "-R",
            "--checkpoint=fast", "--no-password"])
        if result.returncode != 0:
            raise ClusterError(f"pg_basebackup failed: {result.stderr.strip()}")
        conf = pgdata / "skyvault.conf"
        lines = [line for line in self._as_owner(["cat", str(conf)]).stdout.splitlines()
                 if not line.startswith(("port ", "unix_socket_directories "))]
        lines += [f"port = {port}", f"unix_socket_directories = '{socket_dir}'"]
        self._as_owner(["tee", str(conf)], input="\n".join(lines) + "\n")
        return standby


def cluster_for_home(home: Path, port: int, pgdata: Path | None = None) -> EmbeddedCluster:
    """The embedded cluster of a SkyVault home folder.

    A root-owned home that the service user cannot traverse (e.g. under /root) keeps its
    cluster in /var/lib/skyvault instead, keyed by the home's path.
    """
    data = pgdata or home / "pgdata"
    sockets = home / "run"
    if running_as_root() and not _world_traversable(home):
        key = hashlib.sha256(str(home).encode()).hexdigest()[:12]
        base = Path("/var/lib/skyvault") / key
        base.mkdir(parents=True, exist_ok=True)
        base.parent.chmod(0o755)
        base.chmod(0o755)
        data, sockets = base / "pgdata", base / "run"
    return EmbeddedCluster(pgdata=data, socket_dir=sockets, port=port)


def _world_traversable(path: Path) -> bool:
    path = path.resolve()
    for parent in [*reversed(path.parents)]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return False
    return True
