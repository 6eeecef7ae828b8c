"""A survey that holds only what a test puts in it, for answers that depend on everything the
archive holds (the TAP examples are written around the data): inside one owner transaction the
survey's rows are emptied, the test's seed goes in, and everything is rolled back at the end, so
the other suites' data are untouched. Queries inside run as the service would: the service
role or the reader role, with the requester's programs set for the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from skyvault.access import Requester
from skyvault.db import APP_ROLE, READER_ROLE, Database, session_settings_sql
from skyvault.schema.tables import PUBLISHED_TABLES
from skyvault.vo.adql import catalog_from_tables, translate

CATALOG = catalog_from_tables(list(PUBLISHED_TABLES))
KEPT = {"survey.programs", "survey.data_releases"}
"""Reference rows every seed relies on."""


@contextmanager
def only(database: Database, seed: Callable[[psycopg.Connection], None]
         ) -> Iterator[psycopg.Connection]:
    tables = [t.qualified_name for t in PUBLISHED_TABLES
              if t.schema == "survey" and t.table_type == "table" and t.qualified_name not in KEPT]
    with database.admin() as connection:
        try:
            connection.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
            seed(connection)
            yield connection
        finally:
            connection.rollback()


@contextmanager
def as_requester(connection: psycopg.Connection, requester: Requester,
                 role: str = APP_ROLE) -> Iterator[psycopg.Connection]:
    """The connection as ``role`` seeing what ``requester`` may see, until the block ends."""
    connection.execute(f"SET LOCAL ROLE {APP_ROLE}")
    connection.execute(session_settings_sql(requester, statement_timeout_ms=None,
                                            base_url=None))
    if role != APP_ROLE:
        connection.execute(f"SET LOCAL ROLE {role}")
    try:
        yield connection
    finally:
        connection.execute("RESET ROLE")


def adql_rows(connection: psycopg.Connection, requester: Requester, query: str) -> list[tuple]:
    """An ADQL query as TAP runs it for ``requester``: translated, as the reader role."""
    translated = translate(query, CATALOG, max_rows=100_000)
    with as_requester(connection, requester, READER_ROLE):
        return connection.execute(translated.sql, translated.params).fetchall()
