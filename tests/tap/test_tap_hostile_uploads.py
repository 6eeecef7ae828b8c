"""Issue 21 item 2: what anyone may post is never served as a page of the archive's origin,
and job creation is bounded (upload count, request size, per-owner quotas).

``POST /tap/async`` with ``UPLOAD=t,param:p`` stores the part, and
``/tap/async/<id>/parameters/p`` gave it back inline as application/x-votable+xml, which some
browsers render, scripts included, with the victim's cookies. It is now an attachment, with
nosniff and a sandboxing Content-Security-Policy.
"""

from __future__ import annotations

import requests
from lxml import etree
from served_app import served_app
from test_tap_async import adql

from skyvault import accounts
from skyvault.server.job_quota import ACTIVE_PHASES, JobQuota

XHTML_IN_VOTABLE = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
                    b"<script>alert(document.cookie)</script></html>")


def _dali_error(response: requests.Response) -> str:
    assert response.headers["Content-Type"] == "application/x-votable+xml"
    info = etree.fromstring(response.content).find("{*}RESOURCE/{*}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR"
    return info.text or ""


def _create(base: str, *pairs, files=None) -> requests.Response:
    return requests.post(f"{base}/async", data=list(pairs), files=files,
                         allow_redirects=False, timeout=30)


def test_a_stored_upload_is_an_attachment_that_no_browser_runs(tap) -> None:
    created = _create(tap.url, *adql("SELECT * FROM TAP_UPLOAD.t"), ("UPLOAD", "t,param:p"),
                      files={"p": ("p.xml", XHTML_IN_VOTABLE)})
    assert created.status_code == 303
    served = requests.get(f"{created.headers['Location']}/parameters/p", timeout=30)
    assert served.status_code == 200 and served.content == XHTML_IN_VOTABLE
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    policy = served.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy


def test_more_uploads_than_max_uploads_are_refused_when_the_job_is_created(tap) -> None:
    """TAP 1.1 2.5.4 lets a service limit uploads; the limit holds for the job as created,
    not only when it would run (it could never run, yet its parts were kept)."""
    eleven = ";".join(f"t{i},http://127.0.0.1:9/t{i}.xml" for i in range(11))
    refused = _create(tap.url, *adql("SELECT 1 AS x FROM survey.programs"), ("UPLOAD", eleven))
    assert refused.status_code == 400
    assert "At most 10 tables" in _dali_error(refused)
    pending = _create(tap.url, *adql("SELECT 1 AS x FROM survey.programs"),
                      ("UPLOAD", "t0,http://127.0.0.1:9/t0.xml"))
    assert pending.status_code == 303
    more = requests.post(f"{pending.headers['Location']}/parameters",
                         data={"UPLOAD": ";".join(f"u{i},http://127.0.0.1:9/u{i}.xml"
                                                  for i in range(10))},
                         allow_redirects=False, timeout=30)
    assert more.status_code == 400 and "At most 10 tables" in more.text


def test_a_request_larger_than_the_limit_gets_413_in_the_protocols_format(database) -> None:
    with served_app({"MAX_CONTENT_LENGTH": 20_000}) as base:
        query = "SELECT 1 AS x FROM survey.programs -- " + "x" * 30_000
        refused = requests.post(f"{base}/tap/sync", data=adql(query), timeout=30)
        assert refused.status_code == 413
        assert "larger than this service accepts" in _dali_error(refused)
        small = requests.post(f"{base}/tap/sync",
                              data=adql("SELECT TOP 1 programid FROM survey.programs"),
                              timeout=30)
        assert small.status_code == 200


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
