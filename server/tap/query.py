"""Running one TAP query: translate, open the requester's transaction, stream the result.

Shared by /tap/sync (streaming to the HTTP response) and the async worker (streaming to a file),
so both answer the same query the same way. Rows travel from PostgreSQL as binary COPY (read in
megabyte chunks, ``tap_copy``), are decoded in batches of a few megabytes and go straight into
the writer: memory stays flat whatever the row count. MAXREC+1 rows are asked for, so that one
more row than MAXREC tells an overflow from a result of exactly MAXREC rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.postgres import types as pg_builtin_types

from skyvault.access import Requester
from skyvault.db import READER_ROLE, DatabaseUnavailable, database, session_settings_sql
from skyvault.db_errors import database_unreachable, public_message
from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.server.tap.copy_out import copy_chunks
from skyvault.server.tap.upload import UploadedTable, create_upload_tables
from skyvault.vo.adql import AdqlError, catalog_from_tables, translate
from skyvault.vo.dali import DaliError, InvalidParameter, TapQuery
from skyvault.vo.fields import FieldSpec
from skyvault.vo.votable.formats import OutputFormat, UnknownFormat, lookup_format
from skyvault.vo.votable.pgcopy import (
    UnsupportedPgType,
    decode_copy_stream,
    describe_pg_types,
)
from skyvault.vo.votable.streaming import WriteStats, resumed

log = logging.getLogger(__name__)

TAP_STANDARD_ID = "ivo://ivoa.net/std/TAP"


class QueryFailed(DaliError):
    """The database refused or could not finish the query; the message is for the user."""


class QueryTimeout(QueryFailed):
    """The query ran longer than its execution duration."""


class ServiceUnavailable(DaliError):
    http_status = 503


@dataclass(frozen=True)
class PreparedQuery:
    """A translated query, ready to run in a requester's transaction."""

    query: TapQuery
    sql: str
    params: Sequence[Any] | None
    fields: tuple[FieldSpec, ...]
    output: OutputFormat
    content_type: str
    """The Content-Type to send: the media type the client asked for, or the format's own."""
    uploads: tuple[UploadedTable, ...] = ()


def resolve_format(value: str | None) -> tuple[OutputFormat, str]:
    """RESPONSEFORMAT -> the writer and Content-Type; unknown formats fail (DALI 3.2.1)."""
    try:
        return lookup_format(value)
    except UnknownFormat as error:
        raise InvalidParameter(str(error)) from error


def prepare(query: TapQuery, uploads: Sequence[UploadedTable] = ()) -> PreparedQuery:
    """Translate ADQL against the published tables and this query's uploads."""
    output, content_type = resolve_format(query.response_format)
    catalog = catalog_from_tables(
        [*PUBLISHED_TABLES, *(u.model() for u in uploads)],
        sql_names={u.adql_name: u.sql_name for u in uploads},
    )
    try:
        # The translator asks for min(TOP, max_rows + 1) rows: one more than MAXREC reveals an
        # overflow, which the writer reports after writing MAXREC rows.
        translated = translate(query.query, catalog, max_rows=query.maxrec)
    except AdqlError as error:
        raise QueryFailed(f"ADQL: {error}") from error
    return PreparedQuery(query, translated.sql, translated.params,
                         tuple(translated.fields), output, content_type, tuple(uploads))


# -- the transaction ------------------------------------------------------------------------------


@contextmanager
def query_session(requester: Requester, *, base_url: str | None, timeout_ms: int,
                  uploads: Sequence[UploadedTable] = (),
                  primary: bool = False) -> Iterator[psycopg.Connection]:
    """The requester's read-only transaction, as the reader role, holding the uploads.

    Without uploads this is ``Database.reading(user_query=True)`` itself. With uploads the
    temporary tables must be created before the transaction turns read-only, which
    ``reading()`` does first thing; so this opens a transaction, sets who is asking (programs,
    base URL, time limit: as the service role, since the reader may not call set_config),
    switches to the reader role, creates and fills the tables, and only then turns read-only.
    tests/tap/test_uploads.py checks that both paths leave the same session state.
    Uploads need a writable database, so they run on the primary, as does whatever asks for
    ``primary`` (async jobs); other queries run on a read replica when there are any.
    """
    db = database()
    if not uploads:
        with db.reading(requester, user_query=True, statement_timeout_ms=timeout_ms,
                        base_url=base_url, primary=primary) as connection:
            yield connection
        return
    with db.app_writing() as connection:
        # Who is asking is set while still the service role (the reader may not call
        # set_config, migration 0009); the tables are made as the reader, who owns them.
        connection.execute(session_settings_sql(requester, statement_timeout_ms=timeout_ms,
                                                base_url=base_url))
        connection.execute(f"SET LOCAL ROLE {READER_ROLE}")
        create_upload_tables(connection, uploads)
        # A transaction may turn read-only at any point, only not back (PostgreSQL's
        # check_transaction_read_only): from here on it is as read-only as reading()'s.
        connection.execute("SET TRANSACTION READ ONLY")
        yield connection


# -- running ------------------------------------------------------------------------------------


def _type_name(oid: int) -> str | None:
    info = pg_builtin_types.get(oid)
    if info is None:
        return None
    return f"{info.name}[]" if oid == info.array_oid and oid != info.oid else info.name


def column_pg_types(cursor: psycopg.Cursor, sql: str, params: Sequence[Any] | None) -> list[str]:
    """The result's PostgreSQL types, from the query planned with LIMIT 0 (one round trip for
    built-in types; extension types need a second)."""
    cursor.execute(f"SELECT * FROM ({sql}) AS _described LIMIT 0", params)
    names = [_type_name(column.type_code) for column in cursor.description or ()]
    if any(name is None for name in names):
        return describe_pg_types(cursor, sql, params)
    return [name for name in names if name is not None]


def database_error(error: psycopg.Error, timeout_s: float) -> DaliError:
    """The user's view of a database failure: what went wrong, without internals."""
    if isinstance(error, psycopg.errors.QueryCanceled):
        return QueryTimeout(
            f"The query ran longer than its limit of {timeout_s:g} s and was stopped; "
            "narrow it, or run it asynchronously with a longer EXECUTIONDURATION")
    if database_unreachable(error) or (error.sqlstate or "").startswith("53"):
        return ServiceUnavailable("The database is not available; try again later")
    # By SQLSTATE, never PostgreSQL's text: it can quote row values (skyvault.db_errors).
    return QueryFailed(f"The query failed in the database: {public_message(error)}")


@dataclass
class ResultHeader:
    """What a running query's document is; ``stats`` fills in as its bytes are consumed."""

    output: OutputFormat
    content_type: str
    stats: WriteStats


def stream_result(prepared: PreparedQuery, *, requester: Requester, base_url: str | None,
                  timeout_s: float,
                  on_cancel: Callable[[Callable[[], None] | None], None] | None = None,
                  primary: bool = False) -> Iterator[Any]:
    """A generator that first yields a ``ResultHeader``, then the document's bytes.

    Everything that can fail before the first row (the database refusing the query, the first
    rows failing to compute) raises from the first ``next()``, so the caller can still answer
    with an error document and a fitting HTTP status; later failures are written into the
    document (an ERROR INFO after the table). Closing the generator ends the transaction.
    ``on_cancel`` receives a function that cancels the running statement from another thread
    (the async worker's monitor uses it for ABORT), and None when the connection is about to
    go back to the pool. ``primary``: on the primary even when read replicas serve queries
    (async jobs).
    """
    stats = WriteStats()
    try:
        with query_session(requester, base_url=base_url, timeout_ms=int(timeout_s * 1000),
                           uploads=prepared.uploads, primary=primary) as connection, \
                connection.cursor() as cursor:
            if on_cancel is not None:
                on_cancel(connection.cancel_safe)
            try:
                yield from _stream(prepared, cursor, stats, timeout_s)
            finally:
                if on_cancel is not None:
                    on_cancel(None)
    except DatabaseUnavailable as error:
        raise ServiceUnavailable("The database is not available; try again later") from error


def _stream(prepared: PreparedQuery, cursor: psycopg.Cursor, stats: WriteStats,
            timeout_s: float) -> Iterator[Any]:
    """The header, then the document, of one query on an open cursor."""
    try:
        pg_types = column_pg_types(cursor, prepared.sql, prepared.params)
    except psycopg.Error as error:
        raise database_error(error, timeout_s) from error
    chunks_in = copy_chunks(cursor, prepared.sql, prepared.params)
    batches = decode_copy_stream(chunks_in, pg_types)
    try:
        try:
            first = next(batches, None)
        except UnsupportedPgType as error:
            raise QueryFailed(f"A selected column cannot be written: {error}") from error
        except psycopg.Error as error:
            raise database_error(error, timeout_s) from error
        chunks = prepared.output.write(
            prepared.fields, resumed(first, batches), limit=prepared.query.maxrec,
            stats=stats, infos=[("standardID", TAP_STANDARD_ID, None),
                                ("QUERY", prepared.query.query, None)],
        )
        yield ResultHeader(prepared.output, prepared.content_type, stats)
        yield from chunks
    finally:
        # Ends the COPY (and releases the connection's lock) however the stream ends.
        batches.close()
        chunks_in.close()
