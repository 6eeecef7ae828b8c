"""Database errors as a user may read them: the kind of failure, never the rows' values.

PostgreSQL's messages often quote the value that failed (``invalid input syntax for type
integer: "<the value>"``, a constraint's DETAIL with the row): under row-level security that
value may come from a row the requester cannot see (a query may touch an embargoed row while
computing, before the policy filters it out, when a function is not leakproof) or from a row a
job's owner could see then but not now. So what reaches a user is chosen by SQLSTATE class:

- the classes that describe the query's text (42 syntax or access rule, 0A not supported, 21
  cardinality, 54 limits) keep PostgreSQL's primary message: it names identifiers and types
  of the query the user wrote, not data;
- every other class is named by its condition (``division by zero``, ``invalid text
  representation``) and SQLSTATE, with a hint for the common ones; no DETAIL, HINT, CONTEXT or
  primary message is ever shown.

Errors are recognised by their ``sqlstate`` attribute, so the VOTable writers (which report a
failure met after the first rows inside the document) use this too without depending on psycopg.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

QUERY_TEXT_CLASSES = frozenset({"42", "0A", "21", "54"})
"""SQLSTATE classes whose primary message describes the query, not the data."""

HINTS = {
    "22P02": "a value could not be read as the type the query converts it to",
    "22003": "a number is out of the range of its type",
    "22012": "",
    "22023": "a function was given an argument outside what it accepts",
    "2201E": "a logarithm of zero or of a negative number",
    "2201F": "a power function was given arguments it cannot raise",
    "22007": "a date or time has the wrong format",
    "22008": "a date or time is out of range",
    "22001": "a string is too long for its type",
}


def condition_name(error: BaseException) -> str:
    """``DivisionByZero`` -> ``division by zero``: psycopg names each error class after its
    SQLSTATE condition."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", type(error).__name__.rstrip("_"))
    return words.lower()


def public_message(error: BaseException) -> str:
    """What a user is told of a database error; no row values (see the module's text)."""
    sqlstate: str | None = getattr(error, "sqlstate", None)
    if not sqlstate:
        return "the database failed to run the query"
    if sqlstate[:2] in QUERY_TEXT_CLASSES:
        diag = getattr(error, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if primary:
            return primary
    name = condition_name(error)
    if name in ("error", "database error", "internal error", "operational error",
                "data error", "programming error"):
        name = "the database failed to run the query"
    hint = HINTS.get(sqlstate)
    return f"{name} (SQLSTATE {sqlstate})" + (f": {hint}" if hint else "")


_UNREACHABLE_STATES = (
    pg_errors.AdminShutdown,       # 57P01: the server is shutting down (fast or immediate)
    pg_errors.CrashShutdown,       # 57P02: another backend crashed; the server restarts
    pg_errors.CannotConnectNow,    # 57P03: the server is starting up
    pg_errors.ConnectionException,  # class 08: the connection failed or was lost
    pg_errors.TooManyConnections,  # 53300: no connection slot left
)


def database_unreachable(error: BaseException | None) -> bool:
    """Whether ``error`` (or one that caused it) says the database cannot be reached, as
    opposed to a query it refused or a statement it cancelled."""
    from skyvault.db import DatabaseUnavailable  # here: skyvault.db is heavy for vo/ writers

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (DatabaseUnavailable, PoolTimeout, *_UNREACHABLE_STATES)):
            return True
        # A connection lost or closed on the client's side carries no SQLSTATE.
        if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
            return True
        error = error.__cause__ or error.__context__
    return False


def is_database_error(error: BaseException) -> bool:
    """A psycopg error from the server (it carries a SQLSTATE)."""
    return bool(getattr(error, "sqlstate", None)) and hasattr(error, "diag")
