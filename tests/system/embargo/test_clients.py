"""Real VO clients reach proprietary data with credentials, and only with them.

- pyvo with an authenticated session (HTTP Basic on a requests session; pyvo's AuthSession
  with the BasicAA security method; a Bearer token), sync and async.
- STILTS with Basic credentials (``star.basicauth.user``/``password``, answered through
  ``java.net.Authenticator`` on a 401 challenge), through the mandatory-authentication prefix
  ``/authn``, sync and async.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests
from embargo_seed import BASE, STATE
from leak_probe import has_rule

PROP2 = STATE["prop2"]
PROP3 = STATE["prop3"]
QUERY = f"SELECT expid FROM survey.exposures WHERE expid BETWEEN {BASE} AND {BASE + 99_999}"


def _expids(table) -> set[int]:
    return {int(v) for v in table["expid"]}


if has_rule("/tap/sync"):
    import pyvo

    @pytest.fixture(scope="module")
    def worker(database):
        """A real `skyvault worker` process running the async jobs of this module."""
        process = subprocess.Popen(
            [sys.executable, "-m", "skyvault", "worker", "--concurrency", "1",
             "--poll-interval", "0.5"], env=os.environ.copy(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        yield process
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    def test_pyvo_with_an_authenticated_session(live_server, world) -> None:
        alice = world["leak-p2"]
        session = requests.Session()
        session.auth = (alice.username, alice.password)
        service = pyvo.dal.TAPService(f"{live_server}/tap", session=session)
        seen = _expids(service.search(QUERY).to_table())
        assert PROP2.ident("expid") in seen and PROP3.ident("expid") not in seen
        anonymous = pyvo.dal.TAPService(f"{live_server}/tap")
        assert PROP2.ident("expid") not in _expids(anonymous.search(QUERY).to_table())

        bearer = requests.Session()
        bearer.headers["Authorization"] = f"Bearer {world['leak-p3'].token}"
        seen = _expids(pyvo.dal.TAPService(f"{live_server}/tap", session=bearer)
                       .search(QUERY).to_table())
        assert PROP3.ident("expid") in seen and PROP2.ident("expid") not in seen

    def test_pyvo_auth_session_basic_aa(live_server, world) -> None:
        from pyvo.auth import AuthSession, securitymethods

        alice = world["leak-p2"]
        auth = AuthSession()
        auth.credentials.set_password(alice.username, alice.password)
        for path in ("/tap", "/tap/sync", "/tap/async"):
            auth.add_security_method_for_url(f"{live_server}{path}", securitymethods.BASIC,
                                             exact=False)
        service = pyvo.dal.TAPService(f"{live_server}/tap", session=auth)
        assert PROP2.ident("expid") in _expids(service.search(QUERY).to_table())

    def test_pyvo_async_job_runs_with_the_owners_rights(live_server, world, worker) -> None:
        alice = world["leak-p2"]
        session = requests.Session()
        session.auth = (alice.username, alice.password)
        service = pyvo.dal.TAPService(f"{live_server}/tap", session=session)
        job = service.submit_job(QUERY)
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        assert job.phase == "COMPLETED", job.phase
        seen = _expids(job.fetch_result().to_table())
        assert PROP2.ident("expid") in seen and PROP3.ident("expid") not in seen
        # Another user, and the public, cannot read the job's results.
        for auth in ((world["leak-p3"].username, world["leak-p3"].password), None):
            response = requests.get(f"{job.url}/results/result", auth=auth, timeout=30)
            assert response.status_code == 404
            assert str(PROP2.ident("expid")).encode() not in response.content
        job.delete()

    def _stilts(*argv: str, user: str | None = None, password: str | None = None,
                ) -> subprocess.CompletedProcess:
        properties = [f"-Dstar.basicauth.user={user}", f"-Dstar.basicauth.password={password}"] \
            if user else []
        return subprocess.run(["stilts", *properties, *argv], capture_output=True, text=True,
                              timeout=180)

    @pytest.mark.parametrize("sync", ["true", "false"])
    def test_stilts_with_basic_credentials(live_server, world, worker, sync) -> None:
        carol = world["leak-p3"]
        polling = ["poll=500"] if sync == "false" else []
        result = _stilts("tapquery", f"tapurl={live_server}/authn/tap", f"adql={QUERY}",
                         f"sync={sync}", "ofmt=csv", "out=-", *polling,
                         user=carol.username, password=carol.password)
        assert result.returncode == 0, result.stderr[-2000:]
        values = {int(line) for line in result.stdout.split()[1:] if line.isdigit()}
        assert PROP3.ident("expid") in values and PROP2.ident("expid") not in values
        refused = _stilts("tapquery", f"tapurl={live_server}/authn/tap", f"adql={QUERY}",
                          "sync=true", "ofmt=csv", "out=-")
        assert refused.returncode != 0
        assert str(PROP3.ident("expid")) not in refused.stdout


def test_mandatory_authentication_prefix(live_server, world) -> None:
    """Under /authn every service asks anonymous clients to authenticate (401 with
    challenges) and behaves as the plain service for authenticated ones."""
    anonymous = requests.get(f"{live_server}/authn/auth/whoami", timeout=30)
    assert anonymous.status_code == 401
    assert 'Basic realm="SkyVault"' in anonymous.headers["WWW-Authenticate"]
    carol = world["leak-p3"]
    signed = requests.get(f"{live_server}/authn/auth/whoami", timeout=30,
                          auth=(carol.username, carol.password))
    assert signed.status_code == 200 and signed.json()["programs"] == [3]
    public = requests.get(f"{live_server}/auth/whoami", timeout=30)
    assert public.status_code == 200
