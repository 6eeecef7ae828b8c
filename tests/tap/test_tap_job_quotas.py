"""Issue 21 item 2: per-owner quotas on async jobs (server/uws/quota.py): unfinished jobs and
stored bytes, per signed-in user and per client address of anonymous jobs, TAP and SODA
together; over either, job creation gets 429 in the protocol's format."""

from __future__ import annotations

import requests
from served_app import served_app
from test_tap_async import adql
from test_tap_hostile_uploads import _create, _dali_error

from skyvault.accounts import model as accounts
from skyvault.server.uws.quota import ACTIVE_PHASES, JobQuota


def _anonymous_active_jobs(database) -> int:
    with database.admin() as connection:
        return connection.execute(
            "SELECT count(*) FROM archive.uws_jobs WHERE owner_id IS NULL AND client_address ="
            " '127.0.0.1' AND destruction_time > now() AND phase = ANY(%s)",
            (list(ACTIVE_PHASES),)).fetchone()[0]


def test_anonymous_jobs_count_against_their_client_address(tap, database) -> None:
    """Every anonymous job of this session comes from 127.0.0.1: the quota allows one more."""
    quota = JobQuota(max_active=_anonymous_active_jobs(database) + 1)
    with served_app({"JOB_QUOTA": quota}) as base:
        first = _create(f"{base}/tap", *adql("SELECT 1 AS x FROM survey.programs"))
        assert first.status_code == 303
        refused = _create(f"{base}/tap", *adql("SELECT 2 AS x FROM survey.programs"))
        assert refused.status_code == 429 and "have not ended" in _dali_error(refused)
        soda = requests.post(f"{base}/soda/async", data={"ID": "x"}, allow_redirects=False,
                             timeout=30)
        assert soda.status_code == 429  # SODA jobs of the same owner count alike
        # A signed-in user is an owner of its own.
        assert requests.post(f"{base}/tap/async", data=adql("SELECT 3 AS x FROM survey.programs"),
                             headers=tap.bob.headers, allow_redirects=False,
                             timeout=30).status_code == 303
        requests.delete(first.headers["Location"], timeout=30)
        assert _create(f"{base}/tap", *adql("SELECT 4 AS x FROM survey.programs")
                       ).status_code == 303


def test_quotas_on_unfinished_jobs_and_stored_bytes_per_user(database) -> None:
    with database.admin() as connection:
        accounts.create_user(connection, "quota-carol", accounts.generate_password())
        token = accounts.create_token(connection, "quota-carol", "quota test").token
    carol = {"Authorization": f"Bearer {token}"}
    quota = JobQuota(max_active=2, max_stored_bytes=1_000)
    with served_app({"JOB_QUOTA": quota}) as base:
        tap_base = f"{base}/tap"

        def create(*pairs, files=None) -> requests.Response:
            return requests.post(f"{tap_base}/async", data=list(pairs), files=files,
                                 headers=carol, allow_redirects=False, timeout=30)

        first = create(*adql("SELECT 1 AS x FROM survey.programs"))
        second = create(*adql("SELECT 2 AS x FROM survey.programs"))
        assert first.status_code == second.status_code == 303
        third = create(*adql("SELECT 3 AS x FROM survey.programs"))
        assert third.status_code == 429 and "at most 2" in _dali_error(third)
        for created in (first, second):
            requests.delete(created.headers["Location"], headers=carol, timeout=30)
        upload = create(*adql("SELECT * FROM TAP_UPLOAD.t"), ("UPLOAD", "t,param:p"),
                        files={"p": ("p.xml", b"x" * 600)})
        assert upload.status_code == 303
        over = create(*adql("SELECT * FROM TAP_UPLOAD.t"), ("UPLOAD", "t,param:p"),
                      files={"p": ("p.xml", b"x" * 600)})
        assert over.status_code == 429 and "bytes" in _dali_error(over)
        requests.delete(upload.headers["Location"], headers=carol, timeout=30)
        assert create(*adql("SELECT * FROM TAP_UPLOAD.t"), ("UPLOAD", "t,param:p"),
                      files={"p": ("p.xml", b"x" * 600)}).status_code == 303
