"""Failed password sign-ins slow an attacker down: the one place passwords are checked.

A password guess costs the service a deliberately slow hash; without a limit a client could
still try thousands an hour. Failures are recorded per (username, client address) and per
client address in ``archive.login_failures``, shared by every server process:

- 10 failures for one account from one address in 15 minutes stop that pair (a guesser of one
  account), while the owner signing in from elsewhere is not locked out;
- 50 failures from one address in 15 minutes stop the address (a sprayer of many accounts).

A throttled attempt is refused before its password is checked, so it teaches nothing, and is
answered 429 with the seconds to wait. API tokens are not throttled: they are random 256-bit
secrets, beyond guessing.

Counting and recording are one step: each attempt first claims a slot, in one transaction that
holds a lock on its client address, by counting the failures and inserting its own row as a
failure; only then is the password checked, and a success takes its row back. So however many
guesses arrive at once, at most the limit's worth of passwords are ever checked (when counting
and recording were separate, 24 concurrent guesses got 20 checks against a limit of 10).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import psycopg

from skyvault.access import Requester
from skyvault.accounts.model import authenticate_password
from skyvault.db import Database

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 10
"""Per username and client address, within WINDOW."""
MAX_FAILURES_PER_CLIENT = 50
"""Per client address, any usernames, within WINDOW."""
ADVISORY_LOCK_CLASS = 21_001
"""First key of the advisory locks taken on client addresses (the second is a hash of it)."""


class TooManyFailures(Exception):
    """Sign-ins are refused for a while after too many failures."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins; try again in {retry_after} s.")
        self.retry_after = retry_after


def _refuse_if_over(connection: psycopg.Connection, username: str, client: str) -> None:
    """Raise TooManyFailures if this username from this client, or this client, is stopped."""
    row = connection.execute(
        """SELECT count(*) FILTER (WHERE username = %(username)s),
                  min(failed_at) FILTER (WHERE username = %(username)s),
                  count(*), min(failed_at), now()
             FROM archive.login_failures
            WHERE client = %(client)s AND failed_at > now() - %(window)s""",
        {"username": username, "client": client, "window": WINDOW}).fetchone()
    account_failures, account_oldest, client_failures, client_oldest, now = row
    for failures, limit, oldest in ((account_failures, MAX_FAILURES_PER_ACCOUNT, account_oldest),
                                    (client_failures, MAX_FAILURES_PER_CLIENT, client_oldest)):
        if failures >= limit:
            # The oldest failure leaving the window is the earliest the count can drop.
            wait = (oldest + WINDOW - now).total_seconds()
            raise TooManyFailures(max(1, math.ceil(wait)))


def claim_attempt(connection: psycopg.Connection, username: str,
                  client: str) -> datetime:
    """Count and record one attempt atomically: TooManyFailures, or the attempt's row is in
    (as a failure until ``release_attempt``) and its timestamp is returned.

    Both limits count rows of one client address, so a transaction-scoped advisory lock on the
    address serialises claims from it (and only from it) until this transaction commits.
    """
    connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                       (ADVISORY_LOCK_CLASS, client))
    _refuse_if_over(connection, username, client)
    connection.execute("DELETE FROM archive.login_failures WHERE failed_at < now() - %s",
                       (WINDOW,))
    return connection.execute(
        "INSERT INTO archive.login_failures (username, client) VALUES (%s, %s)"
        " RETURNING failed_at", (username, client)).fetchone()[0]


def release_attempt(connection: psycopg.Connection, username: str, client: str,
                    claimed_at: datetime) -> None:
    """A claimed attempt succeeded: its row is not a failure (one row, even if two claims of
    the same pair share a timestamp)."""
    connection.execute(
        "DELETE FROM archive.login_failures WHERE ctid = (SELECT ctid FROM"
        " archive.login_failures WHERE username = %s AND client = %s AND failed_at = %s"
        " LIMIT 1)", (username, client, claimed_at))


def authenticate_login(db: Database, username: str, password: str, client: str) -> Requester:
    """The requester a username and password stand for; InvalidCredentials (recorded) or
    TooManyFailures. The attempt is claimed in a transaction of its own and committed before
    the password is checked, so a failing check (rolled back) leaves it recorded."""
    with db.app_writing() as connection:
        claimed_at = claim_attempt(connection, username, client)
    with db.app_writing() as connection:
        requester = authenticate_password(connection, username, password)
        release_attempt(connection, username, client, claimed_at)
        return requester
