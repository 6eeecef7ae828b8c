"""pyvo's AuthSession against every service, as a program member: it sends the member's
credentials only where a service's VOSI capabilities declare a security method, so every
service declares what it accepts (issue 13 item 8), and the member sees the program's rows.

Credentials, as pyvo 1.10 holds them: HTTP Basic (``set_password``, SSO 2.0 #BasicAA), a
session cookie from signing in (``set_cookie``, #cookie), and a bearer token on a session
registered under SSO 2.0's #OAuth (pyvo knows no identifier of its own for tokens; it takes
any through ``credentials.set``). Cookies are tried on the GET services only: a cookie
request that changes state (TAP's POSTs) must carry the session's CSRF token, which a
non-browser client does not have.
"""

from __future__ import annotations

import io

import pytest
import pyvo
import requests
from astropy.io import fits
from embargo_seed import BASE, STATE, did
from lxml import etree
from pyvo.auth import AuthSession, securitymethods
from pyvo.dal.adhoc import DatalinkService, SodaQuery
from pyvo.io.vosi import parse_capabilities

from skyvault.server.auth import BEARER_TOKEN_AA, SESSION_COOKIE

PROP2 = STATE["prop2"]
MEMBER = "leak-p2"
CAPABILITIES_NS = {"vs": "http://www.ivoa.net/xml/VODataService/v1.1"}
SERVICES = {"tap": "/tap", "sia": "/sia", "soda": "/soda", "datalink": "/datalink",
            "scs": "/scs/psf_sources"}


def auth_session(base: str, person, method: str) -> AuthSession:
    auth = AuthSession()
    if method == "basic":
        auth.credentials.set_password(person.username, person.password)
    elif method == "token":
        bearer = requests.Session()
        bearer.headers["Authorization"] = f"Bearer {person.token}"
        auth.credentials.set(BEARER_TOKEN_AA, bearer)
    elif method == "cookie":
        signed_in = requests.post(f"{base}/login", timeout=30, data={
            "username": person.username, "password": person.password})
        assert signed_in.status_code == 200, signed_in.text
        auth.credentials.set_cookie(SESSION_COOKIE, signed_in.cookies[SESSION_COOKIE])
    return auth


def _capabilities(base: str, path: str):
    return parse_capabilities(io.BytesIO(requests.get(f"{base}{path}/capabilities",
                                                      timeout=30).content))


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_declares_its_security_methods(live_server, service) -> None:
    """Each service interface lists anonymous use and every method the service accepts;
    VOSI's own resources stay anonymous (no securityMethod)."""
    document = etree.fromstring(requests.get(
        f"{live_server}{SERVICES[service]}/capabilities", timeout=30).content)
    declared = {}
    for capability in document.iter("capability"):
        methods = [m.get("standardID") for m in capability.iter("securityMethod")]
        declared[capability.get("standardID")] = methods
    services = {k: v for k, v in declared.items() if "VOSI#" not in k and "DALI#" not in k}
    assert services, declared
    for methods in services.values():
        assert sorted(methods, key=str) == sorted(
            [None, securitymethods.BASIC, securitymethods.COOKIE, BEARER_TOKEN_AA], key=str)
    assert all(not v for k, v in declared.items() if "VOSI#capabilities" in k
               or "VOSI#availability" in k)


def _tap_expids(base: str, auth) -> set[int]:
    service = pyvo.dal.TAPService(f"{base}/tap", session=auth)
    table = service.run_sync(f"SELECT expid FROM survey.exposures "
                             f"WHERE expid BETWEEN {BASE} AND {BASE + 99_999}").to_table()
    return {int(v) for v in table["expid"]}


def _sia_dids(base: str, auth) -> set[str]:
    service = pyvo.dal.SIA2Service(f"{base}/sia", session=auth)
    return {str(r["obs_publisher_did"]) for r in service.search(pos=(PROP2.ra, PROP2.dec, 0.05))}


def _scs_sourceids(base: str, auth) -> set[int]:
    # pyvo's SCSService reads no capabilities itself: the client hands them to its session.
    auth.update_from_capabilities(_capabilities(base, "/scs/psf_sources"))
    service = pyvo.dal.SCSService(f"{base}/scs/psf_sources?", session=auth)
    table = service.search(pos=(PROP2.ra, PROP2.dec), radius=0.05).to_table()
    return {int(v) for v in table["sourceid"]}


def _datalink_semantics(base: str, auth) -> set[str]:
    """The semantics of the links that lead somewhere (an unknown ID has one error row)."""
    service = DatalinkService(f"{base}/datalink/links", session=auth)
    table = service.run_sync(did("sci", PROP2.ident("pid"))).to_table()
    return {str(row["semantics"]) for row in table if row["access_url"]}


def _soda_cutout_status(base: str, descriptor_session, auth) -> int:
    """A SODA cutout of the member's image, built from the descriptor the member's DataLink
    answer holds, requested with ``auth``."""
    auth.update_from_capabilities(_capabilities(base, "/soda"))
    links = DatalinkService(f"{base}/datalink/links", session=descriptor_session).run_sync(
        did("sci", PROP2.ident("pid")))
    descriptor = links.get_adhocservice_by_ivoid("ivo://ivoa.net/std/SODA#sync-1.0")
    query = SodaQuery.from_resource([links.get_first_proc()], descriptor, session=auth,
                                    circle=(PROP2.ra, PROP2.dec, 0.002))
    response = query.submit()
    if response.status_code == 200:
        assert fits.open(io.BytesIO(response.content))[0].data.size > 0
    return response.status_code


ASKS = {
    "tap": (_tap_expids, PROP2.ident("expid")),
    "sia": (_sia_dids, did("sci", PROP2.ident("pid"))),
    "scs": (_scs_sourceids, PROP2.source_ids()[0]),
    "datalink": (_datalink_semantics, "#this"),
}


# TAP queries are POSTs, which with a cookie need the session's CSRF token (module docstring).
PAIRS = [(service, method) for service in sorted(ASKS) for method in ("basic", "token", "cookie")
         if (service, method) != ("tap", "cookie")]


@pytest.mark.parametrize(("service", "method"), PAIRS)
def test_pyvo_auth_session_sees_the_members_rows(live_server, world, service, method) -> None:
    ask, members_value = ASKS[service]
    seen = ask(live_server, auth_session(live_server, world[MEMBER], method))
    assert members_value in seen, (service, method)
    anonymous = ask(live_server, AuthSession())
    assert members_value not in anonymous


@pytest.mark.parametrize("method", ["basic", "token", "cookie"])
def test_pyvo_auth_session_cuts_out_the_members_image(live_server, world, method) -> None:
    member = auth_session(live_server, world[MEMBER], method)
    assert _soda_cutout_status(live_server, member, member) == 200
    assert _soda_cutout_status(live_server, member, AuthSession()) == 404
