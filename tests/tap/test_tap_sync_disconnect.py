"""Issue 21 item 8: a sync query whose client hangs up is cancelled in PostgreSQL.

Before, a synchronous query ran on until it finished or met its time limit (600 s) after its
client had gone, holding a connection and a core. The client here is a raw socket that sends
the request and closes; the query (a four-way product of TAP_SCHEMA.columns: minutes of work,
within what ADQL allows) must leave pg_stat_activity long before it could have finished.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlencode, urlsplit

import requests
from test_tap_async import SLOW, _running_slow_queries, adql


def _send_and_hang_up(tap_url: str, query: str, wait_until) -> None:
    parts = urlsplit(tap_url)
    target = f"{parts.path}/sync?{urlencode(adql(query))}"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as client:
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        wait_until()


def test_a_sync_query_is_cancelled_when_its_client_disconnects(tap, database) -> None:
    assert _running_slow_queries(database) == 0

    def running() -> None:
        deadline = time.monotonic() + 60
        while not _running_slow_queries(database):
            assert time.monotonic() < deadline, "the slow query never started"
            time.sleep(0.1)

    _send_and_hang_up(tap.url, SLOW, running)
    deadline = time.monotonic() + 30
    while _running_slow_queries(database):
        assert time.monotonic() < deadline, "the query runs on after its client left"
        time.sleep(0.2)
    # The service is unharmed: the next query on the same pool answers.
    answered = requests.get(f"{tap.url}/sync", params=adql(
        "SELECT TOP 1 programid FROM survey.programs"), timeout=60)
    assert answered.status_code == 200
