"""Authentication over real HTTP: Bearer tokens, HTTP Basic, session cookies with CSRF.

IVOA "Authentication in the VO" (section 3.1, RFC 9110 section 11): a 401 carries challenges;
responses to an authenticated client carry X-VO-Authenticated; anonymous ones never do.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests

from skyvault.accounts import model as accounts
from skyvault.db import Database


@pytest.fixture(scope="module")
def people(database: Database) -> dict[str, tuple[str, str]]:
    """username -> (password, API token)."""
    made = {}
    with database.admin() as connection:
        for username, programs in (("http-alice", [2]), ("http-bob", [3])):
            password = accounts.generate_password()
            accounts.create_user(connection, username, password)
            accounts.grant_programs(connection, username, programs)
            made[username] = (password, accounts.create_token(connection, username).token)
    return made


def whoami(base: str, **kwargs) -> requests.Response:
    return requests.get(f"{base}/auth/whoami", timeout=30, **kwargs)


def test_anonymous_is_welcome_and_unmarked(live_server: str) -> None:
    response = whoami(live_server)
    assert response.status_code == 200
    assert response.json() == {"authenticated": False, "username": None, "programs": []}
    assert "X-VO-Authenticated" not in response.headers
    assert {"Authorization", "Cookie"} <= {v.strip() for v in
                                           response.headers["Vary"].split(",")}


def test_bearer_and_basic_identify_the_user(live_server: str, people) -> None:
    password, token = people["http-alice"]
    for kwargs in ({"headers": {"Authorization": f"Bearer {token}"}},
                   {"auth": ("http-alice", password)},
                   {"auth": ("http-alice", token)}):
        response = whoami(live_server, **kwargs)
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "http-alice"
        assert response.json()["programs"] == [2]
        assert response.headers["X-VO-Authenticated"] == "http-alice"
        assert "private" in response.headers["Cache-Control"]


@pytest.mark.parametrize("kwargs", [
    {"headers": {"Authorization": "Bearer svt_1_" + "A" * 43}},
    {"headers": {"Authorization": "Bearer not-a-token"}},
    {"auth": ("http-alice", "wrong password")},
    {"auth": ("no-such-user", "whatever")},
    {"headers": {"Authorization": "Basic !!!"}},
    {"headers": {"Authorization": "Negotiate abc"}},
])
def test_bad_credentials_get_401_with_challenges(live_server: str, people, kwargs) -> None:
    response = whoami(live_server, **kwargs)
    assert response.status_code == 401
    challenges = response.headers["WWW-Authenticate"]
    assert 'Basic realm="SkyVault"' in challenges
    assert "Bearer" in challenges and "ivoa_cookie" in challenges
    assert "X-VO-Authenticated" not in response.headers


def test_challenge_endpoint_asks_anonymous_clients_to_log_in(live_server: str, people) -> None:
    response = requests.get(f"{live_server}/auth/challenge", timeout=30)
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    password, _ = people["http-bob"]
    response = requests.get(f"{live_server}/auth/challenge", auth=("http-bob", password),
                            timeout=30)
    assert response.status_code == 200 and response.json()["programs"] == [3]


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skyvault", *argv], capture_output=True,
                          text=True, timeout=120, env=os.environ.copy())


def test_cli_manages_users_and_revocation_counts_on_the_next_request(
        live_server: str, database: Database) -> None:
    added = _cli("users", "add", "cli-carol", "--programs", "3")
    assert added.returncode == 0, added.stderr
    password = re.search(r"password: (\S+)", added.stdout).group(1)
    assert whoami(live_server, auth=("cli-carol", password)).json()["programs"] == [3]

    granted = _cli("users", "grant", "cli-carol", "--programs", "2")
    assert "[2, 3]" in granted.stdout, granted.stderr
    assert whoami(live_server, auth=("cli-carol", password)).json()["programs"] == [2, 3]

    issued = _cli("users", "token", "cli-carol", "--label", "laptop")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    token_id = re.search(r"token (\d+)", issued.stdout).group(1)
    bearer = {"Authorization": f"Bearer {token}"}
    assert whoami(live_server, headers=bearer).json()["username"] == "cli-carol"

    revoked = _cli("users", "revoke", "cli-carol", "--programs", "3")
    assert revoked.returncode == 0, revoked.stderr
    assert whoami(live_server, headers=bearer).json()["programs"] == [2]

    listing = _cli("users", "list")
    assert re.search(r"cli-carol\tprograms \[2\]", listing.stdout), listing.stdout

    gone = _cli("users", "token", "cli-carol", "--revoke", token_id)
    assert gone.returncode == 0, gone.stderr
    assert whoami(live_server, headers=bearer).status_code == 401

    assert _cli("users", "disable", "cli-carol").returncode == 0
    assert whoami(live_server, auth=("cli-carol", password)).status_code == 401
    failing = _cli("users", "grant", "nobody-at-all", "--programs", "2")
    assert failing.returncode != 0 and "no user" in failing.stderr


def test_expired_token_is_refused_on_the_next_request(live_server: str, database) -> None:
    with database.admin() as connection:
        accounts.create_user(connection, "http-expiring")
        issued = accounts.create_token(connection, "http-expiring")
    bearer = {"Authorization": f"Bearer {issued.token}"}
    assert whoami(live_server, headers=bearer).status_code == 200
    with database.admin() as connection:
        connection.execute("UPDATE archive.api_tokens SET expires_at = now()"
                           " WHERE token_id = %s", (issued.token_id,))
    response = whoami(live_server, headers=bearer)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_self_service_tokens(live_server: str, people) -> None:
    alice = ("http-alice", people["http-alice"][0])
    bob = ("http-bob", people["http-bob"][0])
    created = requests.post(f"{live_server}/auth/tokens", data={"label": "script",
                            "expires_days": "7"}, auth=alice, timeout=30)
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["token_id"]
    listed = requests.get(f"{live_server}/auth/tokens", auth=alice, timeout=30).json()["tokens"]
    assert token_id in [t["token_id"] for t in listed]
    assert all("token" not in t and "hash" not in str(t) for t in listed)
    # Bob cannot revoke Alice's token, and the answer is that of a token that does not exist.
    theirs = requests.delete(f"{live_server}/auth/tokens/{token_id}", auth=bob, timeout=30)
    missing = requests.delete(f"{live_server}/auth/tokens/999999999", auth=bob, timeout=30)
    assert (theirs.status_code, theirs.text) == (missing.status_code, missing.text) == (
        404, "No such token.\n")
    bearer = {"Authorization": f"Bearer {token}"}
    assert whoami(live_server, headers=bearer).json()["username"] == "http-alice"
    assert requests.delete(f"{live_server}/auth/tokens/{token_id}", auth=alice,
                           timeout=30).status_code == 204
    assert whoami(live_server, headers=bearer).status_code == 401
    assert requests.get(f"{live_server}/auth/tokens", timeout=30).status_code == 401
    too_long = requests.post(f"{live_server}/auth/tokens", data={"expires_days": "9999"},
                             auth=alice, timeout=30)
    assert too_long.status_code == 400


def _login_form(session: requests.Session, base: str) -> str:
    page = session.get(f"{base}/login", timeout=30)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_browser_login_session_cookie_and_csrf(live_server: str, people) -> None:
    browser = requests.Session()
    password = people["http-alice"][0]
    form = {"username": "http-alice", "password": password, "next": "/auth/whoami"}
    origin = {"Origin": live_server}

    # Without the token of the form page: refused (login CSRF).
    refused = browser.post(f"{live_server}/login", data={**form, "csrf_token": "forged"},
                           headers=origin, allow_redirects=False, timeout=30)
    assert refused.status_code == 403
    # From another site: refused.
    token = _login_form(browser, live_server)
    cross = browser.post(f"{live_server}/login", data={**form, "csrf_token": token},
                         headers={"Origin": "https://evil.example"}, allow_redirects=False,
                         timeout=30)
    assert cross.status_code == 403
    wrong = browser.post(f"{live_server}/login",
                         data={**form, "password": "nope", "csrf_token": token},
                         headers=origin, allow_redirects=False, timeout=30)
    assert wrong.status_code == 401 and "skyvault_session" not in wrong.cookies

    token = _login_form(browser, live_server)
    signed_in = browser.post(f"{live_server}/login", data={**form, "csrf_token": token},
                             headers=origin, allow_redirects=False, timeout=30)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/auth/whoami"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = browser.get(f"{live_server}/auth/whoami", timeout=30).json()
    assert me["username"] == "http-alice" and me["programs"] == [2]
    csrf = me["csrf_token"]

    # A state change with the cookie alone is refused; with the session's CSRF token it works.
    forged = browser.post(f"{live_server}/auth/tokens", data={"label": "x"}, timeout=30)
    assert forged.status_code == 403
    made = browser.post(f"{live_server}/auth/tokens", data={"label": "x"},
                        headers={"X-CSRF-Token": csrf}, timeout=30)
    assert made.status_code == 201

    permit = browser.cookies["skyvault_session"]
    # The session permit is no Bearer token.
    assert whoami(live_server, headers={"Authorization": f"Bearer {permit}"}).status_code == 401
    out = browser.post(f"{live_server}/logout", data={"csrf_token": csrf},
                       allow_redirects=False, timeout=30)
    assert out.status_code in (200, 303)
    # The revoked cookie, replayed, is anonymous from now on.
    replay = whoami(live_server, cookies={"skyvault_session": permit})
    assert replay.json()["authenticated"] is False


def test_non_browser_cookie_login(live_server: str, people) -> None:
    """ivoa_cookie with tls-with-password: POST username and password, get 200 and a cookie."""
    client = requests.Session()
    response = client.post(f"{live_server}/login", timeout=30, data={
        "username": "http-bob", "password": people["http-bob"][0]})
    assert response.status_code == 200 and response.text == "OK\n"
    assert response.headers["X-VO-Authenticated"] == "http-bob"
    assert client.get(f"{live_server}/auth/whoami", timeout=30).json()["programs"] == [3]
    bad = requests.post(f"{live_server}/login", data={"username": "http-bob", "password": "x"},
                        timeout=30)
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers
