"""What the benchmarks share: free ports, waiting for a server, throwaway PostgreSQL clusters
under /tmp, median timings."""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import time
from pathlib import Path


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def throwaway_home(prefix: str, **environment: str) -> Path:
    """A new SkyVault home under /tmp made this process's settings: its own database port, no
    database URL, data folder or base URL inherited from the caller's environment; then
    ``environment`` (e.g. SKYVAULT_PORT)."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home.chmod(0o755)  # the cluster runs as another user, who must reach its folder
    os.environ.update({"SKYVAULT_HOME": str(home), "SKYVAULT_PGPORT": str(free_port()),
                       **environment})
    for variable in ("SKYVAULT_DATABASE_URL", "SKYVAULT_PGDATA", "SKYVAULT_BASE_URL"):
        os.environ.pop(variable, None)
    return home


def throwaway_cluster(home: Path | None = None, prefix: str = "skyvault-bench-"):
    """A started cluster with the project's settings and its base folder: a new folder under
    /tmp, or ``home`` (a kept cluster there listens on the port it was made with)."""
    from skyvault.cluster import EmbeddedCluster

    base = home or Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # the cluster runs as another user, who must reach its folder
    settings = base / "pgdata" / "skyvault.conf"
    if settings.exists():
        port = int(next(line.split("=")[1] for line in settings.read_text().splitlines()
                        if line.startswith("port ")))
    else:
        port = free_port()
    cluster = EmbeddedCluster(base / "pgdata", base / "run", port)
    cluster.start()
    return cluster, base


def wait_for(url: str, seconds: float = 120) -> None:
    """Until ``url`` answers 200 (a server the benchmark started); RuntimeError after
    ``seconds``."""
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer")
