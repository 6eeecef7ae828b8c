"""IRSA's sign-on fields on SkyVault's /login, for scripts written for IRSA (ztfquery):
``GET /login?josso_cmd=login&josso_username=..&josso_password=..`` (IRSA's ZTF API page,
Access Control: https://irsa.ipac.caltech.edu/docs/program_interface/ztf_api.html) and the same
two fields in a POST. The session cookie they get then reads the user's proprietary data; a
browser sent here by another site gets nothing; the password never reaches the access log.
"""

from __future__ import annotations

import pytest
import requests
from gunicorn.config import Config

from skyvault.accounts import model as accounts
from skyvault.db import Database
from skyvault.server.http.access_log import RedactingLogger, redact

USERNAME = "josso-user"
PASSWORD = "josso correct horse battery"


@pytest.fixture(scope="module")
def josso_user(database: Database) -> str:
    with database.admin() as connection:
        if connection.execute("SELECT 1 FROM archive.users WHERE username = %s",
                              (USERNAME,)).fetchone() is None:
            accounts.create_user(connection, USERNAME, PASSWORD)
            accounts.grant_programs(connection, USERNAME, [2])
    return USERNAME


def sign_on(base: str, password: str = PASSWORD, **headers) -> requests.Response:
    return requests.get(f"{base}/login", timeout=30, headers=headers, allow_redirects=False,
                        params={"josso_cmd": "login", "josso_username": USERNAME,
                                "josso_password": password})


def whoami(base: str, cookies) -> dict:
    return requests.get(f"{base}/auth/whoami", cookies=cookies, timeout=30).json()


def test_irsas_sign_on_url_opens_a_session(live_server, josso_user) -> None:
    response = sign_on(live_server)
    assert response.status_code == 200
    assert response.headers["X-VO-Authenticated"] == USERNAME
    identity = whoami(live_server, response.cookies)
    assert identity["authenticated"] and identity["username"] == USERNAME
    assert identity["programs"] == [2]


def test_irsas_form_fields_sign_in_by_post(live_server, josso_user) -> None:
    response = requests.post(f"{live_server}/login", timeout=30, allow_redirects=False,
                             data={"josso_username": USERNAME, "josso_password": PASSWORD})
    assert response.status_code == 200
    assert whoami(live_server, response.cookies)["username"] == USERNAME


def test_a_wrong_password_gets_no_session(live_server, josso_user) -> None:
    response = sign_on(live_server, password="wrong")
    assert response.status_code == 401 and "skyvault_session" not in response.cookies
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}])
def test_another_site_cannot_sign_a_visitor_in(live_server, josso_user, headers) -> None:
    """An image or link on another page would carry the attacker's credentials: login CSRF."""
    response = sign_on(live_server, **headers)
    assert response.status_code == 403 and "skyvault_session" not in response.cookies


def test_without_josso_cmd_the_form_is_shown(live_server, josso_user) -> None:
    response = requests.get(f"{live_server}/login", timeout=30, params={
        "josso_username": USERNAME, "josso_password": PASSWORD})
    assert response.status_code == 200 and "<form" in response.text
    assert "skyvault_session" not in response.cookies


def test_the_access_log_does_not_show_the_password() -> None:
    line = f"GET /login?josso_cmd=login&josso_username={USERNAME}&josso_password=s3cr%20t HTTP/1.1"
    assert redact(line) == (f"GET /login?josso_cmd=login&josso_username={USERNAME}"
                            "&josso_password=*** HTTP/1.1")

    class Answer:
        status = "200 OK"
        sent = 3
        headers = ()

    class Elapsed:
        seconds, microseconds = 0, 1000

    environ = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/login",
               "RAW_URI": "/login?josso_cmd=login&josso_password=hunter2",
               "QUERY_STRING": "josso_cmd=login&josso_password=hunter2&x=1"}
    atoms = RedactingLogger(Config()).atoms(Answer(), {}, environ, Elapsed())
    assert "hunter2" not in atoms["r"] and "hunter2" not in atoms["q"]
    assert atoms["q"] == "josso_cmd=login&josso_password=***&x=1"


def test_skyvault_serve_logs_with_the_redacting_logger() -> None:
    from skyvault.serving import gunicorn_argv

    argv = gunicorn_argv("127.0.0.1", 8614, 1, 1)
    logger_class = argv[argv.index("--logger-class") + 1]
    assert logger_class == "skyvault.server.http.access_log.RedactingLogger"
