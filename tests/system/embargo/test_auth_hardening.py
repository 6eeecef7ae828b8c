"""Sign-in without side channels (issue 21, items 3, 4 and 5).

3. ``next`` after login never leads off the site: ``/%09/evil.example/`` used to pass the check
   and come out of Werkzeug as ``Location: //evil.example/``; ``/%0A/...`` gave a 500 after the
   session was made. Judged the way a browser reads the Location header (the WHATWG URL
   parser, through ada-url), for the issue's variants and for whatever hypothesis makes up.
4. Every failed sign-in costs one argon2 verification, whether or not the user exists (a
   token-like password was refused with none for a known user, with one for an unknown one):
   counted, not timed.
5. At most the throttle's limit of passwords is checked however many guesses arrive at once
   (24 concurrent guesses got 20 checks against a limit of 10): threads against the real
   database.
"""

from __future__ import annotations

import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import ada_url
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.utils import redirect

from skyvault.accounts import model as accounts
from skyvault.accounts import throttle as login_throttle
from skyvault.accounts.throttle import TooManyFailures, authenticate_login
from skyvault.db import Database
from skyvault.server.accounts import _safe_next

SITE = "https://archive.example/login"
PASSWORD = "hardening-pw-21"


class CountingHasher:
    """argon2's PasswordHasher, counting verifications (thread-safe)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.verifications = 0
        self._lock = threading.Lock()

    def verify(self, stored_hash: str, secret: str) -> bool:
        with self._lock:
            self.verifications += 1
        return self.inner.verify(stored_hash, secret)

    def hash(self, secret: str) -> str:
        return self.inner.hash(secret)

    def take(self) -> int:
        with self._lock:
            count, self.verifications = self.verifications, 0
        return count


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher(accounts._hasher)
    monkeypatch.setattr(accounts, "_hasher", counting)
    return counting


@pytest.fixture
def people(database: Database):
    """A user with a password and a token, a disabled user, a user without a password."""
    with database.admin() as connection:
        accounts.create_user(connection, "harden-alice", PASSWORD)
        accounts.create_user(connection, "harden-off", PASSWORD)
        accounts.set_disabled(connection, "harden-off", True)
        accounts.create_user(connection, "harden-tokenonly")
        token = accounts.create_token(connection, "harden-tokenonly").token
        revoked = accounts.create_token(connection, "harden-alice")
        accounts.revoke_token(connection, revoked.token_id)
    yield {"token": token, "revoked": revoked.token}
    with database.admin() as connection:
        connection.execute("DELETE FROM archive.login_failures")
        connection.execute("DELETE FROM archive.users WHERE username LIKE 'harden-%'")


# -- 3. the redirect after login ------------------------------------------------------------------


def _browser_destination(next_value: str) -> str:
    """Where a browser goes: the Location header Werkzeug sends for our redirect, resolved by
    the WHATWG URL parser against the login page."""
    response = redirect(_safe_next(next_value), code=303)
    headers = response.get_wsgi_headers(EnvironBuilder(base_url=SITE).get_environ())
    location = headers["Location"]
    assert location.isascii() and location.isprintable()
    return ada_url.join_url(SITE, location)


def _same_site(url: str) -> bool:
    parsed = ada_url.parse_url(url)
    return parsed["protocol"] == "https:" and parsed["host"] == "archive.example"


@pytest.mark.parametrize("next_value", [
    "/\t/evil.example/", "/\n/evil.example/", "/\r\n/evil.example/", "/\\evil.example/",
    "//evil.example/", "/\\/evil.example/", "\\\\evil.example", "/ /evil.example",
    "/\x00/evil.example", "/\x0b/evil.example", "/\u00a0/evil.example",
    "/\u2028/evil.example", "/\u200b/evil.example", "/\ufeff/evil.example",
    "/\uff0f/evil.example", "\uff0f\uff0fevil.example", "https://evil.example/",
    "https:evil.example", "javascript:alert(1)", "\t//evil.example", " //evil.example",
    "/%09/evil.example/", "/.//evil.example/", "/..//evil.example/",
])
def test_hostile_next_values_stay_on_the_site(next_value: str) -> None:
    assert _same_site(_browser_destination(next_value))


def test_local_next_values_are_kept() -> None:
    assert _safe_next("/search?position=10+20&radius=1") == "/search?position=10+20&radius=1"
    assert _safe_next("/images/sci/12?x=1#top") == "/images/sci/12?x=1#top"
    assert _safe_next("/most?object=C%C3%A9r%C3%A8s") == "/most?object=C%C3%A9r%C3%A8s"
    assert _safe_next("/most?object=Cérès") == "/most?object=C%C3%A9r%C3%A8s"
    assert _safe_next(None) == "/" and _safe_next("") == "/"


SEPARATORS = st.sampled_from(["/", "\\", "\t", "\n", "\r", " ", "\x00", "\x0c", "\x7f",
                              "\u00a0", "\u200b", "\u2028", "\u3000", "\ufeff", "\uff0f",
                              "\uff3c", "%2f", "%09", ".", "..", ":", "@"])
SCHEMES = st.sampled_from(["", "", "", "http:", "https:", "javascript:", "HTTPS:"])


@settings(max_examples=500, deadline=None)
@given(SCHEMES, st.lists(SEPARATORS, max_size=5).map("".join), st.text(max_size=6),
       st.sampled_from(["evil.example", "evil.example/", "@evil.example", ""]), st.text(max_size=6))
def test_no_next_value_leads_off_the_site(scheme: str, separators: str, noise: str, host: str,
                                          tail: str) -> None:
    """Whatever mixture of slashes, backslashes, controls, spaces and look-alikes comes before
    a host name, the browser stays on the site."""
    assert _same_site(_browser_destination(scheme + separators + noise + host + tail))
    assert _same_site(_browser_destination(scheme + noise + separators + host + tail))


def _login_form(session: requests.Session, base: str) -> str:
    page = session.get(f"{base}/login", timeout=30)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


@pytest.mark.parametrize("next_value", ["/\t/evil.example/", "/\n/evil.example/",
                                        "/\\evil.example/", "/auth/whoami"])
def test_login_over_http_redirects_on_site(live_server: str, people, next_value: str) -> None:
    browser = requests.Session()
    token = _login_form(browser, live_server)
    response = browser.post(
        f"{live_server}/login", headers={"Origin": live_server}, allow_redirects=False,
        data={"username": "harden-alice", "password": PASSWORD, "next": next_value,
              "csrf_token": token}, timeout=60)
    assert response.status_code == 303, response.text
    expected = "/auth/whoami" if next_value == "/auth/whoami" else "/"
    assert response.headers["Location"] == expected


# -- 4. one verification per failure --------------------------------------------------------------


def _failure_costs(database: Database, hasher: CountingHasher, monkeypatch, username: str,
                   password: str, warm: bool = False) -> int:
    if not warm:
        monkeypatch.setattr(accounts, "_verified", accounts._VerifiedCache())
    hasher.take()
    with pytest.raises(accounts.InvalidCredentials), database.app_writing() as connection:
        accounts.authenticate_password(connection, username, password)
    return hasher.take()


def test_every_failed_sign_in_costs_one_verification(database: Database, people,
                                                     hasher: CountingHasher,
                                                     monkeypatch) -> None:
    well_formed = "svt_999999_" + "x" * 40
    attempts = {
        "wrong password": ("harden-alice", "wrong"),
        "unknown user": ("harden-nobody", "wrong"),
        "token-like, known user": ("harden-alice", "svt_x"),
        "token-like, unknown user": ("harden-nobody", "svt_x"),
        "no such token, known user": ("harden-alice", well_formed),
        "no such token, unknown user": ("harden-nobody", well_formed),
        "another's token, known user": ("harden-alice", people["token"]),
        "another's token, unknown user": ("harden-nobody", people["token"]),
        "revoked token": ("harden-alice", people["revoked"]),
        "disabled user, right password": ("harden-off", PASSWORD),
        "user without a password": ("harden-tokenonly", "anything"),
        "empty password": ("harden-alice", ""),
    }
    costs = {name: _failure_costs(database, hasher, monkeypatch, *attempt)
             for name, attempt in attempts.items()}
    assert costs == dict.fromkeys(attempts, 1)
    # A token verified once is remembered; then it costs nothing, for any username alike.
    _failure_costs(database, hasher, monkeypatch, "harden-nobody", people["token"], warm=True)
    warm = {username: _failure_costs(database, hasher, monkeypatch, username, people["token"],
                                     warm=True)
            for username in ("harden-alice", "harden-nobody")}
    assert warm["harden-alice"] == warm["harden-nobody"]


def test_http_basic_with_a_token_like_password(live_server: str, people,
                                               hasher: CountingHasher, monkeypatch) -> None:
    """The issue's probe: ``svt_x`` as the password of a known and of an unknown user."""
    costs = {}
    for username in ("harden-alice", "harden-nobody"):
        monkeypatch.setattr(accounts, "_verified", accounts._VerifiedCache())
        hasher.take()
        basic = base64.b64encode(f"{username}:svt_x".encode()).decode()
        response = requests.get(f"{live_server}/auth/whoami", timeout=60,
                                headers={"Authorization": f"Basic {basic}"})
        assert response.status_code == 401
        costs[username] = hasher.take()
    assert costs == {"harden-alice": 1, "harden-nobody": 1}


# -- 5. the throttle under concurrent guesses -----------------------------------------------------


def test_concurrent_guesses_get_at_most_the_limit_of_checks(database: Database, people,
                                                            hasher: CountingHasher) -> None:
    guesses = 24
    client = "203.0.113.77"
    start = threading.Barrier(guesses)

    def guess(_: int) -> str:
        start.wait(timeout=60)
        try:
            authenticate_login(database, "harden-alice", "wrong", client)
        except accounts.InvalidCredentials:
            return "checked"
        except TooManyFailures:
            return "throttled"
        return "signed in"

    hasher.take()
    with ThreadPoolExecutor(max_workers=guesses) as pool:
        outcomes = list(pool.map(guess, range(guesses)))
    limit = login_throttle.MAX_FAILURES_PER_ACCOUNT
    assert hasher.take() == limit
    assert outcomes.count("checked") == limit
    assert outcomes.count("throttled") == guesses - limit
    with database.admin() as connection:
        recorded = connection.execute(
            "SELECT count(*) FROM archive.login_failures WHERE client = %s",
            (client,)).fetchone()[0]
    assert recorded == limit


def test_a_successful_sign_in_takes_its_claim_back(database: Database, people) -> None:
    client = "203.0.113.78"
    for _ in range(login_throttle.MAX_FAILURES_PER_ACCOUNT - 1):
        with pytest.raises(accounts.InvalidCredentials):
            authenticate_login(database, "harden-alice", "wrong", client)
    for _ in range(3):  # successes do not fill the last slot
        assert authenticate_login(database, "harden-alice", PASSWORD, client).username
    with pytest.raises(accounts.InvalidCredentials):
        authenticate_login(database, "harden-alice", "wrong", client)
    with pytest.raises(TooManyFailures):
        authenticate_login(database, "harden-alice", PASSWORD, client)
