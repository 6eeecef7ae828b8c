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
"""

from __future__ import annotations

import math
from datetime import timedelta

import psycopg

from skyvault.access import Requester
from skyvault.accounts import InvalidCredentials, authenticate_password
from skyvault.db import Database

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 10
"""Per username and client address, within WINDOW."""
MAX_FAILURES_PER_CLIENT = 50
"""Per client address, any usernames, within WINDOW."""


class TooManyFailures(Exception):
    """Sign-ins are refused for a while after too many failures."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins; try again in {retry_after} s.")
        self.retry_after = retry_after


def check(connection: psycopg.Connection, username: str, client: str) -> None:
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


def record(connection: psycopg.Connection, username: str, client: str) -> None:
    connection.execute("DELETE FROM archive.login_failures WHERE failed_at < now() - %s",
                       (WINDOW,))
    connection.execute("INSERT INTO archive.login_failures (username, client) VALUES (%s, %s)",
                       (username, client))


def authenticate_login(db: Database, username: str, password: str, client: str) -> Requester:
    """The requester a username and password stand for; InvalidCredentials (recorded) or
    TooManyFailures. The failure is recorded in a transaction of its own: the failing one is
    rolled back."""
    try:
        with db.app_writing() as connection:
            check(connection, username, client)
            return authenticate_password(connection, username, password)
    except InvalidCredentials:
        with db.app_writing() as connection:
            record(connection, username, client)
        raise
