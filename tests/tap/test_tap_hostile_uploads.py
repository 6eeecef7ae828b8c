"""Issue 21 item 2: what anyone may post is never served as a page of the archive's origin,
and job creation is bounded (upload count, request size; per-owner quotas are in
test_tap_job_quotas.py).

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
