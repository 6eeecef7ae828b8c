"""Issue 21 items 2 and 8: security headers on every response, and the Host header believed
only where it is trusted.

- Every response says nosniff, refuses framing (CSP frame-ancestors and X-Frame-Options) and
  keeps its address to this origin (Referrer-Policy). The web pages get a policy that lets them
  load their own scripts and styles (tests/web/test_browser.py drives them under it); every
  other response is a sandbox that loads nothing.
- Without SKYVAULT_BASE_URL the URLs the service hands out come from the request's Host: a Host
  that is neither loopback nor allowed (SKYVAULT_ALLOWED_HOSTS) is refused, in the protocol's
  format, and the /tap page escapes the URL it shows.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests
from lxml import etree
from served_app import served_app

from skyvault.config import settings
from skyvault.server.http import context

PAGES = ["/", "/search", "/catalogs", "/query", "/tables", "/most", "/login"]
OTHERS = ["/tap", "/tap/capabilities", "/tap/tables", "/tap/examples",
          "/sia/query?MAXREC=0", "/scs/psf_sources?RA=1&DEC=1&SR=0.001", "/healthz",
          "/files/no/such/file.fits", "/no/such/page", "/tap/async/no-such-job-0123456789"]


def _common(response: requests.Response) -> str:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    return policy


@pytest.mark.parametrize("path", PAGES)
def test_web_pages_may_load_only_their_own_scripts_and_styles(live_server, path) -> None:
    response = requests.get(live_server + path, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "text/html")
    policy = _common(response)
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
        "script-src")[1].split(";")[0]
    assert "sandbox" not in policy


@pytest.mark.parametrize("path", OTHERS)
def test_every_other_response_is_a_sandbox_that_loads_nothing(live_server, path) -> None:
    response = requests.get(live_server + path, timeout=60)
    policy = _common(response)
    assert "sandbox" in policy and "default-src 'none'" in policy


def test_a_host_outside_the_trusted_ones_is_refused_in_the_protocols_format(live_server) -> None:
    refused = requests.get(f"{live_server}/tap/capabilities",
                           headers={"Host": "evil.example"}, timeout=30)
    assert refused.status_code == 400
    assert refused.headers["Content-Type"] == "application/x-votable+xml"
    assert "evil.example" not in refused.text
    page = requests.get(f"{live_server}/search", headers={"Host": "evil.example"}, timeout=30)
    assert page.status_code == 400 and "evil.example" not in page.text
    assert requests.get(f"{live_server}/tap", headers={"Host": "localhost"},
                        timeout=30).status_code == 200


def test_allowed_hosts_are_answered() -> None:
    config = replace(settings(), allowed_hosts=(".archive.example",))
    with served_app({"TRUSTED_HOSTS": context.trusted_hosts(config)}) as base:
        answered = requests.get(f"{base}/tap", headers={"Host": "tap.archive.example"},
                                timeout=30)
        assert answered.status_code == 200
        assert "http://tap.archive.example/tap/sync" in answered.text
        assert requests.get(f"{base}/tap", headers={"Host": "archive.example.evil"},
                            timeout=30).status_code == 400
    assert context.trusted_hosts(replace(settings(), base_url="https://a.example")) is None


def test_the_tap_page_escapes_the_base_url(live_server, monkeypatch) -> None:
    odd = replace(settings(), base_url='https://a.example/x?a=1&b="<i>')
    monkeypatch.setattr(context, "settings", lambda: odd)
    page = requests.get(f"{live_server}/tap", timeout=30)
    assert "<i>" not in page.text and "&lt;i&gt;" in page.text
    etree.fromstring(page.content)  # still well-formed XHTML
