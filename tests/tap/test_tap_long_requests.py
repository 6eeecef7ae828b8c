"""Long requests through the production server: `skyvault serve` (gunicorn) started here.

gunicorn reads request lines up to ``--limit-request-line`` (4094 bytes by default) and
answered longer ones with its own HTML 414 page. `skyvault serve` accepts gunicorn's largest
bounded line (skyvault/serving.py) and its worker answers what is still too long (the line,
or the headers) with a DALI error VOTable (DALI 1.1 section 4.2). Issue 13 item 10.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from astropy.io.votable import parse
from worker_process import ServeProcess

from skyvault.serving import REQUEST_LINE_LIMIT


@pytest.fixture(scope="module")
def served(database, tmp_path_factory) -> Iterator[str]:
    """`skyvault serve` on a free port, one worker, against the session's database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ServeProcess(tmp_path_factory.mktemp("gunicorn") / "serve.log", "--workers", "1",
                          "--threads", "2")
    yield server.start(port)
    server.stop()


def padded_query(line_bytes: int) -> str:
    """An ADQL query (a long IN list) whose GET request line to /tap/sync is close to
    ``line_bytes`` long, URL-encoded as requests sends it."""
    ids: list[str] = []
    while True:
        query = ("SELECT TOP 5 expid FROM survey.exposures WHERE expid NOT IN ("
                 + ",".join(ids or ["-1"]) + ")")
        line = f"GET /tap/sync?{urlencode({'LANG': 'ADQL', 'QUERY': query})} HTTP/1.1"
        if len(line) >= line_bytes - 12:
            return query
        ids.append(str(-1_000_000 - len(ids)))


def _status_of(body: bytes) -> tuple[str, str]:
    info = parse(io.BytesIO(body)).resources[0].infos[0]
    return info.value, str(info.content or "")


def test_a_get_query_twice_as_long_as_gunicorns_default_runs(served) -> None:
    query = padded_query(REQUEST_LINE_LIMIT)
    response = requests.get(f"{served}/tap/sync", params={"LANG": "ADQL", "QUERY": query},
                            timeout=60)
    assert len(response.request.path_url) > 2 * 4094 - 40  # twice gunicorn's default limit
    assert response.status_code == 200, response.text[:500]
    assert _status_of(response.content)[0] == "OK"


@pytest.mark.parametrize("path", ["/tap/sync", "/sia/query", "/datalink/links"])
def test_a_longer_get_is_a_dali_error_saying_to_post(served, path) -> None:
    query = padded_query(3 * REQUEST_LINE_LIMIT)
    response = requests.get(f"{served}{path}", params={"LANG": "ADQL", "QUERY": query},
                            timeout=60)
    assert response.status_code == 414
    assert response.headers["Content-Type"] == "application/x-votable+xml"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    value, message = _status_of(response.content)
    assert value == "ERROR" and "POST" in message
    # The same query in a POST body runs.
    posted = requests.post(f"{served}/tap/sync", data={"LANG": "ADQL", "QUERY": query},
                           timeout=60)
    assert posted.status_code == 200 and _status_of(posted.content)[0] == "OK"


def test_oversized_headers_are_a_dali_error(served) -> None:
    response = requests.get(f"{served}/tap/sync", timeout=60,
                            headers={"X-Padding": "x" * (3 * REQUEST_LINE_LIMIT)})
    assert response.status_code == 431
    assert response.headers["Content-Type"] == "application/x-votable+xml"
    assert _status_of(response.content)[0] == "ERROR"


def test_the_server_keeps_serving_afterwards(served) -> None:
    assert requests.get(f"{served}/tap/availability", timeout=30).status_code == 200
