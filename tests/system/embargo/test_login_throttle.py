"""Password guessing is throttled: per account and address, per address, over HTTP with 429.

The addresses are from the documentation ranges (RFC 5737), except over HTTP, where the
client is the test itself on 127.0.0.1; every test removes the failures it recorded, so no
other test's sign-ins are throttled.
"""

from __future__ import annotations

import pytest
import requests

from skyvault.accounts import model as accounts
from skyvault.accounts import throttle as login_throttle
from skyvault.accounts.throttle import TooManyFailures, authenticate_login
from skyvault.db import Database

PASSWORD = "throttle-pw-1"


@pytest.fixture
def user(database: Database):
    with database.admin() as connection:
        accounts.create_user(connection, "throttled", PASSWORD)
    yield "throttled"
    with database.admin() as connection:
        connection.execute("DELETE FROM archive.login_failures")
        connection.execute("DELETE FROM archive.users WHERE username LIKE 'throttled%'")


def _fail(database: Database, username: str, client: str) -> None:
    with pytest.raises(accounts.InvalidCredentials):
        authenticate_login(database, username, "wrong", client)


def test_an_account_guessed_from_one_address_is_stopped_there_only(database, user) -> None:
    guesser, owner = "203.0.113.5", "198.51.100.7"
    for _ in range(login_throttle.MAX_FAILURES_PER_ACCOUNT):
        _fail(database, user, guesser)
    # Refused before the password is checked: even the right one teaches nothing.
    with pytest.raises(TooManyFailures) as refused:
        authenticate_login(database, user, PASSWORD, guesser)
    assert 0 < refused.value.retry_after <= login_throttle.WINDOW.total_seconds()
    # The owner, elsewhere, signs in; another account from the guesser's address still works.
    assert authenticate_login(database, user, PASSWORD, owner).username == user
    with database.admin() as connection:
        accounts.create_user(connection, "throttled-2", PASSWORD)
    assert authenticate_login(database, "throttled-2", PASSWORD, guesser).username


def test_an_address_spraying_many_accounts_is_stopped(database, user) -> None:
    sprayer = "203.0.113.9"
    for index in range(login_throttle.MAX_FAILURES_PER_CLIENT):
        _fail(database, f"nobody-{index % 20}", sprayer)
    with pytest.raises(TooManyFailures):
        authenticate_login(database, user, PASSWORD, sprayer)
    assert authenticate_login(database, user, PASSWORD, "198.51.100.8").username == user


def test_failures_older_than_the_window_do_not_count(database, user) -> None:
    client = "203.0.113.12"
    for _ in range(login_throttle.MAX_FAILURES_PER_ACCOUNT):
        _fail(database, user, client)
    with database.admin() as connection:
        connection.execute("UPDATE archive.login_failures SET failed_at = failed_at - %s",
                           (login_throttle.WINDOW,))
    assert authenticate_login(database, user, PASSWORD, client).username == user


def test_http_basic_guessing_gets_429_with_retry_after(live_server: str, user) -> None:
    """RFC 6585 section 4: 429 Too Many Requests, Retry-After in seconds."""
    url = f"{live_server}/tap/tables"
    for _ in range(login_throttle.MAX_FAILURES_PER_ACCOUNT):
        assert requests.get(url, auth=(user, "wrong"), timeout=30).status_code == 401
    refused = requests.get(url, auth=(user, PASSWORD), timeout=30)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins" in refused.text
    login = requests.post(f"{live_server}/login", data={"username": user,
                                                        "password": PASSWORD}, timeout=30)
    assert login.status_code == 429 and "Retry-After" in login.headers
