"""SIA's and SCS's limits are settings (``SiaConfig``, ``ScsConfig``): the environment's
SKYVAULT_SIA_* / SKYVAULT_SCS_*, overridden by an application's SIA_* / SCS_* config keys. An
application configured with small limits caps its answers there, with the overflow INFO, while
the session's default application answers the same query in full."""

from __future__ import annotations

import io

import requests
from astropy.io.votable import parse
from served_app import served_app

LIMITS = {"SIA_DEFAULT_MAXREC": 2, "SIA_MAX_MAXREC": 3,
          "SCS_DEFAULT_MAXREC": 1, "SCS_MAX_MAXREC": 2}


def _rows_and_overflow(response: requests.Response) -> tuple[int, bool]:
    assert response.status_code == 200, response.text
    votable = parse(io.BytesIO(response.content))
    overflow = any(info.name == "QUERY_STATUS" and info.value == "OVERFLOW"
                   for resource in votable.resources for info in resource.infos)
    return len(votable.get_first_table().array), overflow


def _sia(base: str, **params) -> requests.Response:
    return requests.get(f"{base}/sia/query", params={"POS": "CIRCLE 150.0 2.0 1", **params},
                        timeout=60)


def _scs(base: str, **params) -> requests.Response:
    return requests.get(f"{base}/scs/psf_sources",
                        params={"RA": 150.0, "DEC": 2.0, "SR": 0.05, **params}, timeout=60)


def test_configured_limits_cap_sia_and_scs_answers(live_server, world) -> None:
    sia_all, sia_overflow = _rows_and_overflow(_sia(live_server))
    scs_all, scs_overflow = _rows_and_overflow(_scs(live_server))
    assert sia_all > 3 and scs_all > 2 and not sia_overflow and not scs_overflow
    with served_app(LIMITS) as base:
        assert _rows_and_overflow(_sia(base)) == (2, True)
        assert _rows_and_overflow(_sia(base, MAXREC=1000)) == (3, True)
        assert _rows_and_overflow(_sia(base, MAXREC=1)) == (1, True)
        assert _rows_and_overflow(_scs(base)) == (1, True)
        assert _rows_and_overflow(_scs(base, MAXREC=1000)) == (2, True)
