"""Ingest runs: a list of paths (``ingest_paths``) or a folder watched during a night
(``watch``).

A run is a two-stage pipeline: a thread plans the next group (reads its files and catalogs,
checks them, lays out the COPY rows) while the main thread loads the current one into the
database, so Python's work and PostgreSQL's overlap on the two cores. At the end of a bulk run
the nights it loaded are sealed (indexed and attached).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from skyvault.db import Database
from skyvault.db import database as default_database
from skyvault.filestore import FileStore, archive_store
from skyvault.ingest.candidate_history import AnnotationReport, annotate_nights
from skyvault.ingest.catalogs import loaded_tables
from skyvault.ingest.discover import find_manifests, ingest_order
from skyvault.ingest.errors import DependencyMissing, GroupRejected
from skyvault.ingest.load import GroupResult, load_group
from skyvault.ingest.partitions import ensure_live, seal_all
from skyvault.ingest.plan import GroupPlan, ManifestHead, plan_group, read_manifest_head
from skyvault.ingest.quarantine import quarantine
from skyvault.lightcurves.ensemble import EnsembleSummary, run_ensemble

RUN_LOCK = zlib.crc32(b"skyvault.ingest.run") & 0x7FFFFFFF
"""Session advisory lock: every ingest run holds it shared; removing orphans needs it
exclusive, since files a running ingest has placed look orphaned until its COMMIT."""


@dataclass
class IngestSummary:
    manifests: int = 0
    ingested: int = 0
    unchanged: int = 0
    skipped: int = 0
    quarantined: int = 0
    deferred: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0
    new_versions: int = 0
    reprocessed: int = 0
    seconds: float = 0.0
    sealed: list[str] = field(default_factory=list)
    annotation: AnnotationReport | None = None
    """The candidates' history fields, filled after the load (``candidate_history``)."""
    ensemble: EnsembleSummary | None = None
    """Relative photometry and released statistics of what the run associated."""
    messages: list[str] = field(default_factory=list)
    results: list[GroupResult] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.quarantined == 0 and self.deferred == 0

    def add(self, result: GroupResult) -> None:
        self.results.append(result)
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.files += result.files
        self.bytes += result.bytes
        self.rows += result.rows
        self.new_versions += result.new_versions
        self.reprocessed += result.reprocessed
        if result.message:
            self.messages.append(f"{result.name}: {result.status}: {result.message}")

    def merge(self, other: IngestSummary) -> None:
        for name in ("manifests", "ingested", "unchanged", "skipped", "quarantined", "deferred",
                     "files", "bytes", "rows", "new_versions", "reprocessed", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sealed += other.sealed
        self.ensemble = other.ensemble or self.ensemble
        self.messages += other.messages
        self.results += other.results

    def lines(self) -> list[str]:
        return [
            f"manifests {self.manifests}: ingested {self.ingested}, unchanged {self.unchanged},"
            f" already in {self.skipped}, quarantined {self.quarantined},"
            f" deferred {self.deferred}",
            f"files {self.files} ({self.bytes / 1e6:.1f} MB), catalog rows {self.rows},"
            f" products archived {self.new_versions} (reprocessed {self.reprocessed})",
            f"{self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s"
            + (f"; sealed {', '.join(self.sealed)}" if self.sealed else ""),
            *([self.annotation.line()] if self.annotation else []),
            *([self.ensemble.line()] if self.ensemble else []),
            *self.messages,
        ]


@contextmanager
def _run_connection(handle: Database) -> Iterator[psycopg.Connection]:
    connection = handle.admin(autocommit=True)
    try:
        connection.execute("SELECT pg_advisory_lock_shared(%s)", (RUN_LOCK,))
        yield connection
    finally:
        connection.close()


def _ingested(connection: psycopg.Connection, hashes: list[str]) -> set[str]:
    rows = connection.execute(
        "SELECT manifest_sha256 FROM archive.ingested_manifests WHERE manifest_sha256 = ANY(%s)",
        (hashes,)).fetchall()
    return {row[0] for row in rows}


def _archived_names(connection: psycopg.Connection, names: list[str]) -> set[str]:
    rows = connection.execute(
        "SELECT DISTINCT manifest_name FROM archive.ingested_manifests"
        " WHERE manifest_name = ANY(%s)", (names,)).fetchall()
    return {row[0] for row in rows}


def _plan_or_problem(path: Path) -> GroupPlan | GroupRejected:
    try:
        return plan_group(path)
    except GroupRejected as rejected:
        return rejected


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="group", file=sys.stderr, dynamic_ncols=True)
        self.started = time.perf_counter()
        self.rows = 0

    def step(self, result: GroupResult) -> None:
        self.rows += result.rows
        if self.bar is not None:
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"{result.name} {self.rows:,} rows "
                                     f"{self.rows / elapsed:,.0f} rows/s")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def ingest_paths(paths: list[Path], *, database: Database | None = None,
                 store: FileStore | None = None, quarantine_root: Path | None = None,
                 live: bool = False, seal: bool = True, progress: bool = False,
                 stop: threading.Event | None = None) -> IngestSummary:
    """Ingest the manifests at or under ``paths``; see ingest/README.md.

    ``live`` makes each exposure's catalog rows queryable at its commit (watch mode);
    otherwise rows go to unindexed loading tables that are sealed at the end (``seal``).
    """
    from skyvault.config import settings

    handle = database or default_database()
    store = store or archive_store()
    quarantine_root = quarantine_root or settings().quarantine_root
    summary = IngestSummary()
    started = time.perf_counter()
    with _run_connection(handle) as connection:
        heads: list[ManifestHead] = []
        for path in find_manifests(paths):
            summary.manifests += 1
            try:
                heads.append(read_manifest_head(path))
            except GroupRejected as rejected:
                quarantine(connection, quarantine_root, path, None, rejected.problems)
                summary.add(GroupResult(path.stem, "quarantined", message=str(rejected)))
        done = _ingested(connection, [head.sha256 for head in heads])
        for head in heads:
            if head.sha256 in done:
                summary.add(GroupResult(head.name, "skipped"))
        order = ingest_order([head for head in heads if head.sha256 not in done])
        known = _archived_names(connection, sorted({d for h in order for d in h.depends_on}))
        failed: set[str] = set()
        progress_bar = _Progress(len(order), progress)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-plan") as planner:
            # Two groups planned ahead at most: memory stays at a few groups' catalogs.
            futures: list[Future | None] = [planner.submit(_plan_or_problem, head.path)
                                            for head in order[:2]]
            for index, head in enumerate(order):
                if index + 2 < len(order):
                    futures.append(planner.submit(_plan_or_problem, order[index + 2].path))
                future = futures[index]
                futures[index] = None  # free the plan's memory once loaded
                if stop is not None and stop.is_set():
                    break
                assert future is not None
                result = _ingest_one(connection, store, quarantine_root, head, future.result(),
                                     known, failed, live)
                if result.status in ("ingested", "unchanged", "skipped"):
                    known.add(head.name)
                else:
                    failed.add(head.name)
                summary.add(result)
                progress_bar.step(result)
        progress_bar.close()
        if seal:
            summary.sealed = seal_all(
                connection, connect=lambda: handle.admin(autocommit=True))
        summary.seconds = time.perf_counter() - started
        nights = sorted({nid for result in summary.results if result.status == "ingested"
                         for nid in result.nights})
        # Unsealed nights are not queryable yet: ``skyvault ingest seal`` annotates them.
        if nights and (seal or live):
            summary.annotation = annotate_nights(connection, nights)
        if seal and summary.ingested:
            summary.ensemble = run_ensemble(handle)
    if summary.annotation is None and summary.ensemble is None:
        summary.seconds = time.perf_counter() - started
    return summary


def _ingest_one(connection: psycopg.Connection, store: FileStore, quarantine_root: Path,
                head: ManifestHead, planned: GroupPlan | GroupRejected, known: set[str],
                failed: set[str], live: bool) -> GroupResult:
    waiting = [name for name in head.depends_on if name not in known]
    if waiting:
        why = "quarantined or deferred" if any(n in failed for n in waiting) else "not archived"
        return GroupResult(head.name, "deferred",
                           message=f"waits for {', '.join(waiting)} ({why})")
    if isinstance(planned, GroupRejected):
        quarantine(connection, quarantine_root, head.path, head.name, planned.problems)
        return GroupResult(head.name, "quarantined", message=str(planned))
    if live:
        for nid, catalog in sorted({(p.values["nid"], table.name)
                                    for p in planned.products for load in p.catalogs
                                    for table in loaded_tables(load.product_type)
                                    if table.sky_layout is not None}):
            ensure_live(connection, catalog, nid)
    try:
        return load_group(connection, store, planned, live=live)
    except GroupRejected as rejected:
        quarantine(connection, quarantine_root, head.path, head.name, rejected.problems)
        return GroupResult(head.name, "quarantined", message=str(rejected))
    except DependencyMissing as missing:
        return GroupResult(head.name, "deferred", message=str(missing))


def watch(directory: Path, *, database: Database | None = None, store: FileStore | None = None,
          quarantine_root: Path | None = None, interval: float = 5.0,
          idle_exit: float | None = None, progress: bool = False,
          on_summary: Callable[[IngestSummary], None] | None = None) -> IngestSummary:
    """Ingest manifests as they appear under ``directory``, each queryable at its commit.

    Polls every ``interval`` seconds; a manifest is taken up again when it changes (a rerun
    rewrote it) or while it waits for a dependency. Stops on SIGINT/SIGTERM after the group in
    hand, or after ``idle_exit`` seconds without new manifests.
    """
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda *_: stop.set())
    total = IngestSummary()
    seen: dict[Path, tuple[int, int]] = {}
    last_activity = time.monotonic()
    handle = database or default_database()
    try:
        with _run_connection(handle) as connection:
            total.sealed += seal_all(connection)  # leftovers of a crashed bulk run
        while not stop.is_set():
            fresh = []
            for path in find_manifests([directory]):
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                signature = (stat.st_mtime_ns, stat.st_size)
                if seen.get(path) != signature:
                    fresh.append((path, signature))
            if fresh:
                summary = ingest_paths([p for p, _ in fresh], database=handle, store=store,
                                       quarantine_root=quarantine_root, live=True,
                                       progress=progress, stop=stop)
                waiting = {r.name for r in summary.results if r.status == "deferred"}
                for path, signature in fresh:
                    if path.stem not in waiting:
                        seen[path] = signature
                if summary.ingested or summary.unchanged or summary.quarantined:
                    last_activity = time.monotonic()
                total.merge(summary)
                if on_summary is not None:
                    on_summary(summary)
            if idle_exit is not None and time.monotonic() - last_activity > idle_exit:
                break
            stop.wait(interval)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return total
