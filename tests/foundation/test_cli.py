"""`skyvault db ...` manages a private embedded cluster, idempotently."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from skyvault.cluster import cluster_for_home
from skyvault.schema.migrate import head_revision


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def private_home(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    tmp_path.chmod(0o755)
    env = {**os.environ, "SKYVAULT_HOME": str(home), "SKYVAULT_PGPORT": str(_free_port())}
    env.pop("SKYVAULT_DATABASE_URL", None)
    yield home, env
    subprocess.run([sys.executable, "-m", "skyvault", "db", "stop"], env=env,
                   capture_output=True)


def skyvault(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skyvault", *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def test_db_lifecycle_is_idempotent(private_home) -> None:
    home, env = private_home
    assert skyvault(env, "db", "status").returncode == 3
    first = skyvault(env, "db", "start")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("started")
    again = skyvault(env, "db", "start")
    assert again.returncode == 0 and again.stdout.startswith("already running")
    migrated = skyvault(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert skyvault(env, "db", "migrate").returncode == 0
    status = skyvault(env, "db", "status")
    head = head_revision()
    assert status.returncode == 0 and f"schema revision {head} (head {head})" in status.stdout
    # A home under a folder the service user cannot traverse keeps its cluster elsewhere.
    pgdata = cluster_for_home(home, int(env["SKYVAULT_PGPORT"])).pgdata
    settings = (pgdata / "skyvault.conf").read_text()
    assert "jit = 'off'" in settings and "shared_buffers" in settings
    if os.geteuid() == 0:
        # PostgreSQL refuses root: the data folder belongs to the unprivileged service user.
        assert pgdata.owner() == "skyvault"
    stopped = skyvault(env, "db", "stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    assert skyvault(env, "db", "stop").stdout.strip() == "not running"
