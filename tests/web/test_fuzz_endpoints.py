"""Every endpoint's parameters fuzzed with hypothesis over real HTTP: no input yields a 5xx
(issue 21 item 7).

Each example is one request to one route of the application's URL map, chosen by hypothesis:
the route's methods (GET, HEAD, POST as a form, DELETE), its path variables (real identifiers
of the ingested nights and jobs, or hostile text), and its parameters: a valid request for the
endpoint with some values replaced by hostile ones (NUL and other control characters, numbers
that are subnormal, huge, infinite or not numbers, very long text, stray unicode) and with
parameters of other services added. Credentials are sometimes added too (malformed Basic,
Bearer and cookies). Every answer must be below 500.

The example count is small by default, so the suite stays fast; ``SKYVAULT_FUZZ_EXAMPLES``
raises it for a long run (BENCHMARKS.md records one: command, requests and result).
"""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass, field

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_support import ORBIT, WebData

EXAMPLES = int(os.environ.get("SKYVAULT_FUZZ_EXAMPLES", "250"))

EDGE_NUMBERS = [
    "0", "-0", "1", "-1", "0.5", "1e-320", "-1e-320", "5e-324", "2.2250738585072014e-308",
    "1e-300", "1e-160", "1e308", "1.8e308", "-1e308", "nan", "NaN", "inf", "-Inf", "+Inf",
    "Infinity", "99999999999999999999999", "-99999999999999999999999", "2147483648",
    "32768", "-32769", "9223372036854775808", "1e23", "360", "-360", "720", "90", "-90", "180",
    "90.000001", "0x10", "1_000", "1e", ".", "", " ", "+", "-", "1/2", "١٢٣", "9" * 400,
]
HOSTILE_TEXT = [
    "\x00", "a\x00b", "%00", "\t", "\r\n", "\x7f", "\x1b[31m", "\u2028", "\ufeff", "\ud7ff",
    "'", '"', "';--", "\\", "//evil.example", "/\t/evil.example/", "../../etc/passwd",
    "<script>alert(1)</script>", "${jndi:x}", "{{7*7}}", "%s%n", "\u0130", "ß", "🛰️",
    "x" * 5000, "CIRCLE", "POLYGON 0 0", "RANGE", "CIRCLE 0 0 180", "CIRCLE 0 0 90.0001",
    "CIRCLE 233 12 1e-320", "CIRCLE 1e-320 1e-320 1", "POLYGON 0 0 0 0 0 0",
    "POLYGON 233 12 233.1 12 233 12.1 233.1 12.1", "RANGE 0 360 -90 90",
    "RANGE -Inf +Inf -Inf +Inf", "RANGE 10 0 5 -5", "CIRCLE nan nan nan",
    "SELECT", "SELECT TOP 1 * FROM ivoa.obscore", "SELECT * FROM tap_schema.tables",
    "SELECT CAST(obs_id AS INTEGER) FROM ivoa.obscore",
    "SELECT 1/0 FROM ivoa.obscore", "SELECT POINT('ICRS', 1e-320, 1e308) FROM ivoa.obscore",
    "SELECT * FROM ivoa.obscore WHERE 1=CONTAINS(POINT('ICRS', s_ra, s_dec),"
    " CIRCLE('ICRS', 0, 0, 180))",
    "field 601", "field 99999999999999999999", "field 601 ccd 99 q 9",
    "ivo://skyvault.archive/sci?1", "ivo://skyvault.archive/sci?99999999999999999999",
    "ivo://skyvault.archive/sci?-1", "ivo://x", "(433) Eros", "(99999999999999999999) X",
    "2P/Encke", ORBIT[1], "1960-01-01", "2650-01-01", "9999-12-31T23:59:59",
    "0001-01-01", "2026-02-30", "2026-11-12T25:00", "J2000", "10:00:06 +02:12:00",
    "24:00:00 +90:00:00", "359.9999999 -90", "1e-320 1e-320", "nan nan", "1 2 3 4 5 6",
    "votable", "csv", "html", "ds9", "fits", "parquet", "tsv", "text/xml; foo=bar",
    "application/x-votable+xml;serialization=BINARY2", "votable/td", "zg", "zr", "zi",
    "images", "ephemeris", "both", "1m", "0.0001d", "1e9d", "-1d", "RUN", "ABORT", "QUEUED",
    "EXECUTING", "doQuery", "ADQL", "ADQL-2.0", "pql", "desc", "asc", "distance", "time",
    "sci", "raw", "diff", "ref", "small", "large", "icrs", "galactic", "circle", "box",
    "arcsec", "arcmin", "deg", "true", "false", "t,param:t", "t,http://127.0.0.1:1/x",
    "t,file:///etc/passwd",
]
PARAMETER_NAMES = [
    # DALI, TAP, UWS
    "LANG", "QUERY", "REQUEST", "MAXREC", "RESPONSEFORMAT", "FORMAT", "UPLOAD", "RUNID",
    "PHASE", "WAIT", "EXECUTIONDURATION", "DESTRUCTION", "AFTER", "LAST", "detail",
    # SIA, SODA, DataLink, SCS
    "POS", "BAND", "TIME", "POL", "FOV", "SPATRES", "EXPTIME", "ID", "COLLECTION",
    "FACILITY", "INSTRUMENT", "DPTYPE", "CALIB", "TARGET", "FIELD", "CIRCLE", "POLYGON",
    "PIXEL_1", "PIXEL_2", "RA", "DEC", "SR", "VERB",
    # forced photometry
    "JDSTART", "JDEND", "FILTER",
    # light curves (IRSA's ZTF light-curve API)
    "BANDNAME", "MAG", "NOBS_MIN", "BAD_CATFLAGS_MASK", "UPPERLIMITS",
    # web pages
    "position", "frame", "radius", "radius_unit", "shape", "width", "height", "box_unit",
    "time_from", "time_to", "filter", "field", "ccd", "quadrant", "programid", "seeing_max",
    "maglimit_min", "product", "sort", "order", "page", "per_page", "catalog", "ra", "dec",
    "size", "ids", "files", "next", "csrf_token", "username", "password", "label",
    "expires_days", "q", "name",
    # moving-object search
    "object", "orbit", "epoch", "e", "incl", "i", "node", "peri", "a", "m", "mean_anomaly",
    "tp", "h", "g", "obs_begin", "obs_end", "step", "mode",
    # IBE (search, file cutouts) and IRSA's sign-on
    "SIZE", "INTERSECT", "WHERE", "COLUMNS", "ct", "mcen", "center", "gzip", "josso_cmd",
    "josso_username", "josso_password",
]


@dataclass
class Route:
    rule: str
    methods: tuple[str, ...]
    base: dict[str, str] = field(default_factory=dict)


def _routes(app) -> list[Route]:
    """Every rule of the URL map (a new endpoint is fuzzed without anyone listing it)."""
    routes = []
    for rule in app.url_map.iter_rules():
        methods = tuple(sorted(rule.methods - {"OPTIONS"}))
        routes.append(Route(rule.rule, methods, dict(BASES.get(rule.endpoint, {}))))
    return sorted(routes, key=lambda route: route.rule)


# A valid request per endpoint, so that fuzzed values reach past the first check.
BASES: dict[str, dict[str, str]] = {
    "tap.sync": {"LANG": "ADQL", "REQUEST": "doQuery",
                 "QUERY": "SELECT TOP 5 obs_id, s_ra FROM ivoa.obscore"},
    "tap_async.create_job": {"LANG": "ADQL", "QUERY": "SELECT TOP 1 * FROM ivoa.obscore"},
    "sia.query": {"POS": "CIRCLE 233 12 0.5", "MAXREC": "10"},
    "soda.sync": {"ID": "ivo://skyvault.archive/sci?1", "CIRCLE": "233 12 0.01"},
    "soda_async.create_job": {"ID": "ivo://skyvault.archive/sci?1", "CIRCLE": "233 12 0.01"},
    "datalink.links": {"ID": "ivo://skyvault.archive/sci?1"},
    "scs.cone_search": {"RA": "233", "DEC": "12", "SR": "0.1"},
    "forcedphot.sync": {"RA": "233", "DEC": "12"},
    "forcedphot_async.create_job": {"RA": "233", "DEC": "12"},
    "lightcurves.query": {"POS": "CIRCLE 233 12 0.01", "BANDNAME": "r", "NOBS_MIN": "1",
                          "MAG": "10 25", "TIME": "-Inf Inf", "FORMAT": "CSV"},
    "lightcurves.irsa_query": {"ID": "1,2", "BAD_CATFLAGS_MASK": "32768",
                               "COLLECTION": "TESTDR0", "FORMAT": "IPAC_TABLE"},
    "web.search_page": {"position": "233 12", "radius": "30", "radius_unit": "arcmin"},
    "web.catalogs_page": {"position": "233 12", "radius": "60"},
    "web.catalog_csv": {"ra": "233", "dec": "12", "radius": "60"},
    "web.cutout": {"position": "233 12", "radius": "20"},
    "web.download": {"ids": "sci:1", "files": "sci"},
    "most.most": {"object": ORBIT[1], "obs_begin": "2026-11-10", "obs_end": "2026-11-14"},
    "most.thumbnail": {"ra": "233", "dec": "12"},
    "most_field.field_objects": {"ID": "ivo://skyvault.archive/sci?1"},
    "previews.preview": {"size": "small"},
    "accounts.login": {"username": "nobody", "password": "wrong"},
    "accounts.new_token": {"label": "fuzz", "expires_days": "5"},
    "ibe_search.search": {"POS": "233,12", "SIZE": "0.1", "ct": "csv",
                          "WHERE": "filtercode='zr' AND qid IN (1,3)"},
    "ibe_data.product": {"center": "233,12", "size": "10arcsec", "gzip": "false"},
}

VALUES = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=30),
    st.lists(st.sampled_from([*EDGE_NUMBERS, "CIRCLE", "RANGE", "POLYGON", "ICRS"]),
             min_size=1, max_size=8).map(" ".join),
)
# Mostly none: a wrong password costs an argon2 verification (deliberately slow).
CREDENTIALS = st.one_of(st.just({}), st.just({}), st.just({}), st.sampled_from([
    {"Authorization": "Basic"}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic Og=="}, {"Authorization": "Basic dXNlcjpzdnRfeA=="},
    {"Authorization": "Bearer svt_1_" + "A" * 40}, {"Authorization": "Bearer \u00e9"},
    {"Authorization": "Negotiate x"}, {"Cookie": "skyvault_session=svs_1_" + "B" * 40},
    {"Cookie": "skyvault_session=%00"}, {"Cookie": "skyvault_session=" + "x" * 3000},
]))


@dataclass
class Tally:
    requests: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def targets(site: str, web_data: WebData) -> dict[str, list[str]]:
    """Real values for path variables: image ids, archived paths, jobs of both kinds."""
    tap_job = requests.post(f"{site}/tap/async", data=BASES["tap_async.create_job"],
                            allow_redirects=False, timeout=60)
    soda_job = requests.post(f"{site}/soda/async", data=BASES["soda.sync"],
                             allow_redirects=False, timeout=60)
    jobs = [response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
            for response in (tap_job, soda_job) if response.status_code == 303]
    assert jobs, (tap_job.text, soda_job.text)
    return {
        "int": [str(i) for i in sorted(web_data.public["sci"])[:3]],
        "path": sorted(web_data.sha256)[:5],
        "job_id": jobs,
        "catalog": ["psf_sources", "aperture_sources"],
        "collection": ["sci", "raw", "diff", "ref"],
        "name": ["DR1", "ivoa.obscore", "tap_schema.tables"],
        "table": ["sci", "raw", "cal", "ref"],
        "product_path": [path.replace("diff/", "sci/", 1) for path in sorted(web_data.sha256)[:5]],
    }


def _path_value(draw, variable: str, targets: dict[str, list[str]]) -> str:
    kind = "int" if variable.startswith("int:") else variable.split(":")[-1]
    known = targets.get(kind) or targets.get({"relative_path": "path", "artefact": "path",
                                              "filename": "path", "catalog_name": "catalog",
                                              "filtercode": "collection"}.get(kind, ""), [])
    hostile = st.sampled_from(EDGE_NUMBERS + HOSTILE_TEXT) if kind != "int" \
        else st.sampled_from(["0", "1", "99999999999999999999999", "9223372036854775807"])
    choices = st.sampled_from(known) if known else hostile
    return draw(st.one_of(choices, hostile) if known else hostile)


@st.composite
def fuzzed_requests(draw, routes: list[Route], targets: dict[str, list[str]]):
    route = draw(st.sampled_from(routes))
    method = draw(st.sampled_from(route.methods))
    path = re.sub(r"<([^>]+)>", lambda match: _path_value(draw, match.group(1), targets)
                  .replace("%", "%25").replace("?", "%3F").replace("#", "%23"), route.rule)
    params = dict(route.base)
    for name in draw(st.lists(st.sampled_from(sorted(params)), unique=True)) if params else []:
        params[name] = draw(VALUES)
    extra_names = st.one_of(st.sampled_from(PARAMETER_NAMES), st.text(min_size=1, max_size=8))
    for name in draw(st.lists(extra_names, max_size=4)):
        params[name] = draw(VALUES)
    return method, path, params, draw(CREDENTIALS)


def test_no_input_yields_a_server_error(site: str, targets) -> None:
    from skyvault.server.app import create_app

    routes = _routes(create_app())
    tally = Tally()
    session = requests.Session()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(fuzzed_requests(routes, targets))
    def one_request(request) -> None:
        method, path, params, headers = request
        form = method in ("POST", "DELETE")
        response = session.request(
            method, site + path, params=None if form else params, data=params if form else None,
            headers=headers, allow_redirects=False, timeout=300)
        tally.requests += 1
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.failures.append(f"{method} {path} {params!r} {headers!r} -> "
                                  f"{response.status_code} {response.text[:200]!r}")
        assert response.status_code < 500, tally.failures[-1]

    one_request()
    print(f"\nfuzz: {tally.requests} requests over {len(routes)} routes, statuses "
          f"{dict(sorted(tally.statuses.items()))}, server errors: {len(tally.failures)}")
    assert tally.requests >= EXAMPLES * 0.9
