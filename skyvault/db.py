"""The one place of database access.

Two kinds of connection exist:

- ``admin()``: the owner role, for migrations, ingest and account management. The owner
  bypasses row-level security, so nothing that answers a user's request may use it.
- ``reading(requester)``: the service's role, inside a transaction that carries who is asking.
  Row-level security on every embargoed table reads that setting, so whatever runs on this
  connection (TAP, SIA, files, ...) sees only rows the requester may see.

With read replicas configured (``DatabaseUrls.reads``, ``skyvault serve --read-url``),
``reading()`` takes its connection from them, in turn; ``reading(primary=True)`` (async jobs)
and ``app_writing()`` (accounts, sessions, sign-in throttling, job records, TAP uploads) stay on
the primary, since a hot standby refuses every write.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from skyvault.access import ANONYMOUS, Requester
from skyvault.cluster import EmbeddedCluster, cluster_for_home
from skyvault.config import Settings, settings

log = logging.getLogger(__name__)

APP_ROLE = "skyvault_app"
READER_ROLE = "skyvault_reader"


def session_settings_sql(requester: Requester, *, statement_timeout_ms: int | None,
                         base_url: str | None) -> sql.Composed:
    """One SELECT that says who is asking (and the time limit), for this transaction only."""
    settings_sql = [
        sql.SQL("set_config('skyvault.programs', {}, true)").format(
            sql.Literal(requester.programs_setting())),
        sql.SQL("set_config('skyvault.base_url', {}, true)").format(sql.Literal(base_url or "")),
    ]
    if statement_timeout_ms is not None:
        settings_sql.append(sql.SQL("set_config('statement_timeout', {}, true)").format(
            sql.Literal(str(int(statement_timeout_ms)))))
    return sql.SQL("SELECT ") + sql.SQL(", ").join(settings_sql)


def session_setup_sql(requester: Requester, *, user_query: bool,
                      statement_timeout_ms: int | None, base_url: str | None) -> sql.Composed:
    """The statements that make a transaction read-only and say who is asking; the settings
    come before the switch to the reader role, which may not call set_config."""
    statements = [sql.SQL("SET TRANSACTION READ ONLY"),
                  session_settings_sql(requester, statement_timeout_ms=statement_timeout_ms,
                                       base_url=base_url)]
    if user_query:
        statements.append(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(READER_ROLE)))
    return sql.SQL("; ").join(statements)


class DatabaseUnavailable(psycopg.OperationalError):
    """The database cannot be reached. A psycopg error, so that whatever already survives a
    lost connection (the job worker's loops, ``except psycopg.Error``) survives this too."""


def _with_role_option(url: str, role: str) -> str:
    """A URL that logs in as the given URL's user and switches to ``role`` at start-up."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = (query.get("options", "") + f" -c role={role}").strip()
    # %20, not '+': libpq decodes percent escapes in a URI but takes '+' literally.
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@dataclass(frozen=True)
class DatabaseUrls:
    admin: str
    app: str
    reads: tuple[str, ...] = ()
    """Service-role URLs of read-only replicas for ``reading()``; empty: the primary."""


def embedded_cluster(config: Settings | None = None) -> EmbeddedCluster:
    config = config or settings()
    return cluster_for_home(config.home, config.pg_port,
                            config.pgdata if config.pgdata != config.home / "pgdata" else None)


def database_urls(config: Settings | None = None) -> DatabaseUrls:
    config = config or settings()
    reads = tuple(_with_role_option(url, APP_ROLE) for url in config.read_database_urls)
    if config.database_url:
        app = config.app_database_url or _with_role_option(config.database_url, APP_ROLE)
        return DatabaseUrls(admin=config.database_url, app=app, reads=reads)
    cluster = embedded_cluster(config)
    return DatabaseUrls(admin=cluster.url(), app=cluster.url(user=APP_ROLE), reads=reads)


class Database:
    """Connections to the archive database for one process."""

    def __init__(self, urls: DatabaseUrls, pool_size: int = 8,
                 wait_seconds: float | None = None) -> None:
        self.urls = urls
        self._pool_size = pool_size
        self._wait_seconds = settings().database_wait_seconds if wait_seconds is None \
            else wait_seconds
        self._pool: ConnectionPool | None = None
        self._read_pools: list[ConnectionPool] = []
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._down = False

    # -- owner connections --------------------------------------------------------------------

    def admin(self, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(self.urls.admin, autocommit=autocommit)
        except psycopg.OperationalError as error:
            raise DatabaseUnavailable(str(error)) from error

    # -- request connections ------------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool:
        # Created lazily so that a forking server (gunicorn) opens connections in each worker.
        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool(self.urls.app)
            return self._pool

    def _new_pool(self, url: str) -> ConnectionPool:
        # Each connection is checked as it is handed out (an empty statement, a fraction of a
        # millisecond): after PostgreSQL restarts, the pool's old connections are all broken,
        # and would each fail a request otherwise.
        return ConnectionPool(url, min_size=1, max_size=self._pool_size, open=True,
                              kwargs={"autocommit": False}, timeout=self._wait_seconds,
                              check=ConnectionPool.check_connection)

    @contextmanager
    def _replica(self) -> Iterator[psycopg.Connection]:
        """A connection to the next read replica, in turn; DatabaseUnavailable when none can
        be had in time (a URL listing several hosts with ``target_session_attrs`` lets libpq
        fall back on another, deploy/OPERATIONS.md)."""
        with self._lock:
            if not self._read_pools:
                self._read_pools = [self._new_pool(url) for url in self.urls.reads]
            pool = self._read_pools[next(self._turn) % len(self._read_pools)]
        try:
            connection = pool.getconn()
        except PoolTimeout as error:
            raise DatabaseUnavailable(f"no read replica connection within "
                                      f"{self._wait_seconds:g} s") from error
        try:
            yield connection
        finally:
            pool.putconn(connection)

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection]:
        """A connection from the pool; DatabaseUnavailable when none can be had in time.

        Once the database was found unreachable, each request first tries a connection of
        its own (failing at once while it is down, so a client gets its 503 without waiting
        out the pool's timeout) and, when that succeeds, the pool is made anew: the old one
        would go on backing off its reconnections for many seconds after the server is back.
        """
        if self._down and not self._reachable():
            raise DatabaseUnavailable("the database is unreachable")
        pool = self.pool
        try:
            connection = pool.getconn()
        except PoolTimeout as error:
            # Fewer connections than the pool may hold, yet none to be had: the pool is
            # backing off its reconnections after an outage shorter than the wait.
            short = pool.get_stats().get("pool_size", 0) < self._pool_size
            if not self._reachable(renew=short):
                raise DatabaseUnavailable("the database is unreachable") from error
            if not short:
                raise DatabaseUnavailable(f"no database connection free within "
                                          f"{self._wait_seconds:g} s") from error
            pool = self.pool
            connection = pool.getconn()
        try:
            yield connection
        finally:
            pool.putconn(connection)  # to the pool it came from, even if renewed since

    def _reachable(self, renew: bool = False) -> bool:
        """Whether a new connection can be made now; renews the pool when the database is
        back after having been found down (or when ``renew`` says so)."""
        try:
            psycopg.connect(self.urls.app, connect_timeout=2).close()
        except psycopg.Error:
            self._down = True
            return False
        with self._lock:
            if self._down or renew:
                self._down = False
                stale, self._pool = self._pool, None
                if stale is not None:
                    # Connections still lent out are closed when they come back.
                    stale.close(timeout=0)
        return True

    @contextmanager
    def reading(
        self,
        requester: Requester = ANONYMOUS,
        *,
        user_query: bool = False,
        statement_timeout_ms: int | None = None,
        base_url: str | None = None,
        primary: bool = False,
    ) -> Iterator[psycopg.Connection]:
        """A read-only transaction that sees what ``requester`` may see.

        ``user_query`` marks text written by the user (ADQL translated to SQL): it then runs as
        the reader role, which can reach nothing but the published tables. It runs on a read
        replica when there are any, unless ``primary`` (async jobs: long queries that a
        standby's recovery could cancel, next to the job records they update).
        """
        source = self._pooled() if primary or not self.urls.reads else self._replica()
        with source as connection:
            read = False
            try:
                with connection.transaction():
                    # One round trip sets the whole session up (after BEGIN): each statement
                    # more would add its latency to every request.
                    connection.execute(session_setup_sql(
                        requester, user_query=user_query,
                        statement_timeout_ms=statement_timeout_ms, base_url=base_url))
                    yield connection
                    read = True
            except psycopg.OperationalError as error:
                # Everything was read; only the COMMIT of this read-only transaction failed
                # (the server went away just then): nothing is lost, so the reader's answer,
                # a stream perhaps already sent, stands.
                if not (read and connection.broken):
                    raise
                log.warning("the database went away after a read had finished: %s", error)

    @contextmanager
    def app_writing(self) -> Iterator[psycopg.Connection]:
        """A transaction for the service's own records (accounts, tokens, UWS jobs)."""
        with self._pooled() as connection, connection.transaction():
            yield connection

    def close(self) -> None:
        with self._lock:
            for pool in [self._pool, *self._read_pools]:
                if pool is not None:
                    pool.close()
            self._pool = None
            self._read_pools = []


_database: Database | None = None
_database_lock = threading.Lock()


def database() -> Database:
    """The process-wide database handle."""
    global _database
    with _database_lock:
        if _database is None:
            _database = Database(database_urls())
        return _database


def set_database(handle: Database | None) -> None:
    """Point the process at another database (tests, the CLI's --database option)."""
    global _database
    with _database_lock:
        if _database is not None and _database is not handle:
            _database.close()
        _database = handle
