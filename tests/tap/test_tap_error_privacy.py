"""Issue 21 item 6: database errors carry no row values, and a withheld job's error is withheld.

PostgreSQL quotes the value it failed on (``invalid input syntax for type integer: "<value>"``):
a ``CAST(path AS INTEGER)`` over embargoed files put an embargoed path into the error. Errors
are now described by SQLSTATE (skyvault/db_errors.py), sync and async, and the errorSummary and
/error of a job whose results are withheld (its owner lost a program it ran with) are withheld
too.
"""

from __future__ import annotations

import requests
from lxml import etree
from tap_seed import EXPOSURES
from test_tap_async import UWS_NS, adql, create, job_xml, wait_final

from skyvault.accounts import model as accounts

EMBARGOED = next(e for e in EXPOSURES if e.programid == 2)
PATHS = f"taptest/{EMBARGOED.expid}/"
CAST_QUERY = ("SELECT CAST(path AS INTEGER) AS n FROM survey.files"
              f" WHERE path LIKE '{PATHS}%'")


def _dali_message(content: bytes) -> str:
    root = etree.fromstring(content)
    info = root.find("{*}RESOURCE/{*}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR"
    return info.text or ""


def test_a_sync_cast_error_names_the_failure_not_the_embargoed_value(tap) -> None:
    response = requests.get(f"{tap.url}/sync", params=adql(CAST_QUERY),
                            headers=tap.alice.headers, timeout=60)
    assert response.status_code == 400
    message = _dali_message(response.content)
    assert "invalid text representation" in message and "22P02" in message
    assert "taptest" not in response.text and str(EMBARGOED.expid) not in response.text


def test_an_error_after_the_first_rows_names_no_value_either(tap) -> None:
    """A failure met while the document streams is written into it (DALI 4.4.2): by SQLSTATE
    as well. The visible public rows come first; the embargoed member's row fails."""
    query = ("SELECT file_id, CASE WHEN path LIKE '" + PATHS + "%' THEN CAST(path AS INTEGER)"
             " ELSE 0 END AS n FROM survey.files WHERE path LIKE 'taptest/%' ORDER BY"
             " CASE WHEN path LIKE '" + PATHS + "%' THEN 1 ELSE 0 END, file_id")
    response = requests.get(f"{tap.url}/sync", params=adql(query, ("MAXREC", "100000")),
                            headers=tap.alice.headers, timeout=60)
    assert "taptest" not in response.text and str(EMBARGOED.expid) not in response.text


def test_an_async_error_is_by_sqlstate_and_withheld_once_its_program_is_lost(tap,
                                                                              database) -> None:
    alice = tap.alice.headers
    url = create(tap, *adql(CAST_QUERY), ("PHASE", "RUN"), headers=alice)
    assert wait_final(url, alice) == "ERROR"
    summary = job_xml(url, alice).findtext("uws:errorSummary/uws:message", namespaces=UWS_NS)
    assert "invalid text representation" in summary and "taptest" not in summary
    error = requests.get(f"{url}/error", headers=alice, timeout=30)
    assert error.status_code == 200 and "taptest" not in error.text
    with database.admin() as connection:
        accounts.revoke_programs(connection, "tap-alice", [2])
    try:
        withheld = job_xml(url, alice)
        assert withheld.findtext("uws:phase", namespaces=UWS_NS) == "ERROR"
        shown = withheld.findtext("uws:errorSummary/uws:message", namespaces=UWS_NS)
        assert shown is not None and "withheld" in shown and "invalid" not in shown
        refused = requests.get(f"{url}/error", headers=alice, timeout=30)
        assert refused.status_code == 403 and "withheld" in refused.text
        assert "invalid" not in refused.text
    finally:
        with database.admin() as connection:
            accounts.grant_programs(connection, "tap-alice", [2])
    again = requests.get(f"{url}/error", headers=alice, timeout=30)
    assert again.status_code == 200 and "invalid text representation" in again.text
